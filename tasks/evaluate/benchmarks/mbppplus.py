"""MBPP as EvalPlus ships it: `mbpp` (the base tests, the paper's "MBPP" for base models) and `mbpp_plus`.

Both read `data/mbppplus/MbppPlus.jsonl` (EvalPlus, 2023-11-16, 399 tasks; the paper's v0.2.0 release with 378
tasks is a release asset that is not in the repository, see that folder's README). Prompt (OpenCodeEval's
MBPPPlus/MBPPBase, 0-shot): "{problem text}\\n{first MBPP assert}", refined. `mbpp` scores a solution on the
task's base inputs, `mbpp_plus` on base + plus inputs, both against the canonical solution's outputs
(`evalplus.py`). OpenCodeEval sanitizes MBPP answers without an entry point (every definition kept).

`Problem.reference` is MBPP's own published solution of the task (`data/mbpp/mbpp.jsonl`), the text that can
leak into training data and that decontamination looks for; EvalPlus's canonical solution, which the expected
outputs come from, is `data["canonical"]` (EvalPlus rewrote some as one-liners, such as Mbpp/93's `return a ** b`,
that would match unrelated generic functions). `data["question"]` is the problem text with its asserts, as for
`mbpp_500`.
"""

from __future__ import annotations

from tasks.evaluate.benchmarks.base import DATA_DIR, Problem, read_jsonl
from tasks.evaluate.benchmarks.mbpp import Mbpp
from tasks.evaluate.benchmarks.evalplus import MBPP_INPUTS, EvalPlusBenchmark
from tasks.evaluate.prompts import refine_text

DATA_VERSION = "evalplus MbppPlus 2023-11-16 (767efcc, 399 tasks)"


def _question(prompt: str) -> str:
    return prompt.strip().strip("'\"").strip()


def first_assert(assertion: str) -> str:
    return next((ln for ln in assertion.splitlines() if ln.strip()), "")


class MbppPlus(EvalPlusBenchmark):
    name = "mbpp_plus"
    kind = "instruction"
    path = DATA_DIR / "mbppplus" / "MbppPlus.jsonl"
    data_files = (path, Mbpp.path)
    data_version = DATA_VERSION
    sanitize_with_entry_point = False
    input_harness = MBPP_INPUTS
    plus_inputs = True

    def problems(self) -> list[Problem]:
        published = {r["task_id"]: r["code"] for r in read_jsonl(Mbpp.path)}
        out = []
        for r in read_jsonl(self.path):
            question = _question(r["prompt"])
            tests = [ln for ln in r["assertion"].splitlines() if ln.strip()]
            inputs = list(r["base_input"] or []) + (list(r["plus_input"] or []) if self.plus_inputs else [])
            number = int(r["task_id"].split("/")[-1])
            out.append(Problem(r["task_id"], refine_text(f"{question}\n{first_assert(r['assertion'])}"), self.kind,
                               r["entry_point"], published.get(number, r["canonical_solution"]),
                               {"inputs": inputs, "atol": float(r["atol"] or 0), "question": "\n".join([question, *tests]),
                                "tests": tests, "canonical": r["canonical_solution"]}))
        return out

    def canonical_code(self, problem: Problem) -> str:
        return problem.data["canonical"]


class MbppBase(MbppPlus):
    """EvalPlus's MBPP: the same 399 problems and prompts, scored on the base inputs only."""

    name = "mbpp"
    plus_inputs = False


BENCHMARKS = [MbppPlus(), MbppBase()]
