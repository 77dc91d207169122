"""HumanEval+ (EvalPlus): the 164 HumanEval prompts, scored on base + plus inputs against the canonical outputs.

Data: `data/humanevalplus/` (EvalPlus's repository at commit 9a26cab, 2023-04-27, the last one holding both
`HumanEvalPlus.jsonl`, with each task's contract, canonical body, base inputs and atol, and
`HumanEvalPlusInputs.jsonl`, the plus inputs; see that folder's README). The prompts are HumanEval's
(OpenCodeEval renders HumanEval+ exactly as HumanEval). Expected outputs: the HumanEval prompt + the contract +
the canonical body, run in the sandbox on every input; inputs the contract rejects are left out (`evalplus.py`).
A candidate's program holds the prompt with `pass` as body first (the helpers some prompts define), then the
solution, then the checker.
"""

from __future__ import annotations

from tasks.evaluate.benchmarks.base import DATA_DIR, Problem, read_jsonl
from tasks.evaluate.benchmarks.evalplus import EvalPlusBenchmark
from tasks.evaluate.benchmarks.humaneval import HumanEval
from tasks.evaluate.prompts import refine_text

DATA_VERSION = "evalplus HumanEvalPlus 2023-04-27 (9a26cab, 164 tasks)"


class HumanEvalPlus(EvalPlusBenchmark):
    name = "humaneval_plus"
    kind = "completion"
    plus_path = DATA_DIR / "humanevalplus" / "HumanEvalPlus.jsonl"
    inputs_path = DATA_DIR / "humanevalplus" / "HumanEvalPlusInputs.jsonl"
    data_files = (HumanEval.path, plus_path, inputs_path)
    data_version = DATA_VERSION

    def problems(self) -> list[Problem]:
        plus = read_jsonl(self.plus_path)
        extra = {r["task_id"].replace("_", "/"): r["inputs"] for r in read_jsonl(self.inputs_path)}
        out = []
        for r, p in zip(read_jsonl(HumanEval.path), plus, strict=True):
            inputs = list(p["base_input"]) + list(extra.get(r["task_id"], []))
            out.append(Problem(r["task_id"], refine_text(r["prompt"]), self.kind, r["entry_point"], p["reference"],
                               {"raw_prompt": r["prompt"], "contract": p["contract"], "inputs": inputs,
                                "atol": float(p["atol"] or 0)}))
        return out

    def canonical_code(self, problem: Problem) -> str:
        return problem.data["raw_prompt"] + problem.data["contract"] + problem.reference

    def candidate_prefix(self, problem: Problem) -> str:
        return f"{problem.data['raw_prompt']}\n    pass\n\n"


BENCHMARKS = [HumanEvalPlus()]
