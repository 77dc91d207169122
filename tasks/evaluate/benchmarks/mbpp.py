"""MBPP (the original 974-task file): `mbpp_3shot` (OpenCodeEval's MBPP) and `mbpp_500` (0-shot, task_ids 11-510).

Prompt per item (OpenCodeEval): "You are an expert Python programmer, and here is your task:\\n{text}Your
code should pass these tests:\\n{tests}\\n" then "\\n```python\\n" left open for the model; the 3-shot
variant prepends task_ids 1-3 with their solutions in closed code blocks, joined by newlines. Test program:
import header, `test_setup_code`, the sanitized solution, the three asserts. The whole prompt is refined as
OpenCodeEval's main.py does (tabs expanded: task 323's asserts hold one).

`mbpp_3shot` is OpenCodeEval's MBPP exactly: task_ids 10-509 (its `test_start = 10`, an off-by-one against
the standard test split 11-510) with task_ids 1-3 as shots. `mbpp_500` is the standard test split, 0-shot,
kept for decontamination and older runs (the paper's "MBPP" for base models is EvalPlus's subset, `mbpp`).
OpenCodeEval sanitizes MBPP answers without an entry point (every import and definition kept).
"""

from __future__ import annotations

import re

from tasks.evaluate.benchmarks.base import DATA_DIR, Benchmark, Problem, read_jsonl
from tasks.evaluate.prompts import IMPORT_HEADER, refine_text

TEST_IDS = range(11, 511)
OPENCODEEVAL_IDS = range(10, 510)
SHOT_IDS = (1, 2, 3)
_CALL = re.compile(r"assert\s+(?:not\s+)?\(?\s*(?:set\(|math\.isclose\()?\s*([A-Za-z_]\w*)\s*\(")


def format_item(text: str, tests: list[str], code: str | None = None) -> str:
    prompt = f"You are an expert Python programmer, and here is your task:\n{refine_text(text)}"
    prompt += "Your code should pass these tests:\n" + "\n".join(tests) + "\n"
    return prompt + (f"\n```python\n{refine_text(code)}\n```\n" if code else "\n```python\n")


def entry_point(tests: list[str]) -> str | None:
    match = _CALL.search(tests[0]) if tests else None
    return match.group(1) if match else None


class Mbpp(Benchmark):
    name = "mbpp_500"
    kind = "instruction"
    path = DATA_DIR / "mbpp" / "mbpp.jsonl"
    data_files = (path,)
    data_version = "google-research mbpp.jsonl (974 tasks)"
    sanitize_with_entry_point = False
    num_shots = 0
    task_ids = TEST_IDS

    def problems(self) -> list[Problem]:
        rows = {r["task_id"]: r for r in read_jsonl(self.path)}
        shots = "\n".join(format_item(rows[i]["text"], rows[i]["test_list"], rows[i]["code"]) for i in SHOT_IDS[: self.num_shots])
        prefix = shots + "\n" if shots else ""
        return [
            Problem(str(r["task_id"]), refine_text(prefix + format_item(r["text"], r["test_list"])), self.kind,
                    entry_point(r["test_list"]), r["code"],
                    {"setup": r["test_setup_code"], "tests": r["test_list"], "question": r["text"] + "\n" + "\n".join(r["test_list"])})
            for r in (rows[i] for i in self.task_ids)
        ]

    def program(self, problem: Problem, solution: str) -> str:
        tests = "\n".join(problem.data["tests"])
        return f"{IMPORT_HEADER}\n{problem.data['setup']}\n{solution}\n\n{tests}\n"


class Mbpp3Shot(Mbpp):
    name = "mbpp_3shot"
    num_shots = 3
    task_ids = OPENCODEEVAL_IDS


BENCHMARKS = [Mbpp(), Mbpp3Shot()]
