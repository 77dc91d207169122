"""Planted chat answers: 50 model-style answers in the shapes chat models give, to check post-processing.

`planted_chat_answers()` builds them from the benchmarks' reference solutions (30 HumanEval, sanitized with the
entry point; 20 OpenCodeEval-MBPP, without), each wrapped in one of ten shapes: fenced code between prose,
trailing end-of-sequence tokens, unfenced code, a helper before the entry point, a helper without `return`,
test code and prints after the function, an `if __name__` block, a short example block before the real one,
tab indentation with CRLF line ends, a ```py fence with a class helper. `tools/opencodeeval_fixtures.py` runs
OpenCodeEval's own sanitizer on them once (the expected programs, in tasks/evaluate/data/opencodeeval/); the test and
`benchmarks/evaluate.py` compare our post-processing with it (`postprocess_agreement`).
"""

from __future__ import annotations

from tasks.evaluate import benchmarks
from tasks.evaluate.backends import finish_text
from tasks.evaluate.benchmarks import Problem
from tasks.evaluate.prompts import stop_strings
from tasks.evaluate.stage import solution

SHAPES = ("fenced_prose", "eos_tokens", "unfenced", "helper_first", "helper_without_return", "test_code_after",
          "main_block", "example_then_answer", "tabs_crlf", "py_fence_class")


def _function(problem: Problem) -> str:
    if problem.kind == "completion":
        return problem.data["raw_prompt"] + problem.reference
    return problem.reference.replace("\r\n", "\n")


def _shape(shape: str, code: str, name: str) -> str:
    code = code.strip("\n")
    if shape == "fenced_prose":
        return f"Here is a solution.\n\n```python\n{code}\n```\n\nIt runs in linear time."
    if shape == "eos_tokens":
        return f"```python\n{code}\n```<|im_end|>\n<|endoftext|>"
    if shape == "unfenced":
        return f"{code}<|im_end|>"
    if shape == "helper_first":
        return f"```python\ndef _identity(x):\n    return x\n\n{code}\n```"
    if shape == "helper_without_return":
        return f"```python\ndef debug(x):\n    print(x)\n\n{code}\n```\nDone."
    if shape == "test_code_after":
        return f"{code}\n\nprint({name}.__name__)\nassert callable({name})\n"
    if shape == "main_block":
        return f"```python\n{code}\n\nif __name__ == '__main__':\n    print('ok')\n```"
    if shape == "example_then_answer":
        return f"For example:\n```python\nx = 1\n```\nThe full solution:\n```python\n{code}\n```"
    if shape == "tabs_crlf":
        return "Solution:\r\n" + code.replace("    ", "\t").replace("\n", "\r\n") + "<|im_end|>"
    if shape == "py_fence_class":
        return f"```py\nclass Helper:\n    value = 1\n\n{code}\n```\nThanks!"
    raise ValueError(f"unknown shape {shape!r}")


def planted_chat_answers() -> list[dict]:
    """[{benchmark, task_id, shape, answer}], 50 rows, the same every call."""
    chosen = ([("humaneval", p) for p in benchmarks.get("humaneval").problems()[:30]]
              + [("mbpp_3shot", p) for p in benchmarks.get("mbpp_3shot").problems()[:20]])
    rows = []
    for i, (bench, problem) in enumerate(chosen):
        shape = SHAPES[i % len(SHAPES)]
        rows.append({"benchmark": bench, "task_id": problem.task_id, "shape": shape,
                     "answer": _shape(shape, _function(problem), problem.entry_point or "f")})
    return rows


def postprocess_chat_answer(benchmark: str, task_id: str, answer: str) -> str:
    """Our program for a raw chat answer: the backend's stop/end-of-sequence cut, then the stage's solution."""
    bench = benchmarks.get(benchmark)
    problem = next(p for p in bench.problems() if p.task_id == task_id)
    return solution(problem, finish_text(answer, stop_strings("chat")), chat=True,
                    entry_point=bench.sanitize_with_entry_point)
