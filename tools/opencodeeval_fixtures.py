"""Write the OpenCodeEval fidelity fixture: every prompt OpenCodeEval renders, and its sanitizer's programs for
the planted chat answers, produced by running OpenCodeEval's own code on a checkout of it.

    python tools/opencodeeval_fixtures.py /path/to/OpenCoder-llm            # a checkout at commit 6131c47
    # -> tasks/evaluate/data/opencodeeval/fixture.json.gz

What runs where (OpenCodeEval = `OpenCodeEval/src` of OpenCoder-llm/OpenCoder-llm, MIT):
- HumanEval: `HumanEval(prompt_type="Completion").get_prompt()` on its own `data/HumanEval.jsonl`; MBPP 3-shot:
  `MBPP(prompt_type="Instruction").get_prompt()` on its own `data/mbpp.jsonl`; the EvalPlus MBPP subset:
  `MBPPPlus(name="MBPPBase").get_prompt()` with `get_task` given our `data/mbppplus/MbppPlus.jsonl` rows in the
  fields it reads (`text` = the problem text, `test_list` = the asserts), since its own MBPPPlus.jsonl is a
  download that is not in the repository. Then `main.py`'s step: `refine_text(prefix + prompt + suffix)`, with
  `check_args`'s markdown-code-block prefix/suffix for a chat model on a completion task. "base" is the text a
  base model is given, "chat" the user message a chat model is given (before the tokenizer's chat template).
- Planted answers (`tasks/evaluate/planted_answers.py`): each answer as vLLM would return it (cut at the first
  stop string of `general_stop_words`; end-of-sequence tokens are never in vLLM's text), then the benchmark's
  `postprocess_generation` (HumanEval: `sanitize(completion, entry_point)`; MBPP: `sanitize(completion)`) after
  the generator's `refine_text(sample)`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURE = ROOT / "tasks" / "evaluate" / "data" / "opencodeeval" / "fixture.json.gz"
END_OF_SEQUENCE = ("<|im_end|>", "<|endoftext|>")


def _vllm_text(answer: str, stops: list[str]) -> str:
    cut = min((i for i in (answer.find(s) for s in list(stops) + list(END_OF_SEQUENCE)) if i != -1), default=len(answer))
    return answer[:cut]


def _logging_stand_in() -> None:
    """OpenCodeEval's args.py logs its warnings through loguru; without it installed, a module whose `logger`
    prints them (the warnings only, nothing that renders prompts)."""
    try:
        import loguru  # noqa: F401
    except ImportError:
        import types

        module = types.ModuleType("loguru")
        module.logger = types.SimpleNamespace(warning=lambda m, *a: print("opencodeeval:", m, file=sys.stderr),
                                              error=lambda m, *a: print("opencodeeval:", m, file=sys.stderr),
                                              info=lambda m, *a: None)
        sys.modules["loguru"] = module


def render(src: Path) -> dict:
    _logging_stand_in()
    sys.path.insert(0, str(src))
    from args import check_args  # noqa: E402  (OpenCodeEval's modules)
    from benchmark.HumanEval import HumanEval
    from benchmark.MBPP import MBPP
    from benchmark.MBPPPlus import MBPPPlus
    from utils import refine_text

    from tasks.evaluate.benchmarks.base import read_jsonl
    from tasks.evaluate.benchmarks.mbppplus import MbppPlus, _question
    from tasks.evaluate.planted_answers import planted_chat_answers

    def user_messages(task, model_type: str, prompt_type: str) -> dict[str, str]:
        args = check_args(argparse.Namespace(tokenizer_name="m", model_name="m", model_type=model_type, prompt_type=prompt_type,
                                             prompt_prefix="", prompt_suffix="", num_samples=1, temperature=0.0))
        return {str(p["task_id"]): refine_text(args.prompt_prefix + p["prompt"] + args.prompt_suffix) for p in task.get_prompt()}

    mbpp_base = MBPPPlus(name="MBPPBase")
    rows = read_jsonl(MbppPlus.path)
    mbpp_base.get_task = lambda: [{"task_id": r["task_id"], "text": _question(r["prompt"]),
                                   "test_list": [ln for ln in r["assertion"].splitlines() if ln.strip()]} for r in rows]
    prompts = {}
    for model_type in ("Base", "Chat"):
        key = model_type.lower()
        prompts[f"humaneval/{key}"] = {f"HumanEval/{k}": v for k, v in user_messages(HumanEval(prompt_type="Completion"), model_type, "Completion").items()}
        prompts[f"mbpp_3shot/{key}"] = user_messages(MBPP(prompt_type="Instruction"), model_type, "Instruction")
        base_prompts = [refine_text(p) for p in mbpp_base.get_prompt()]  # MBPPPlus.get_prompt returns bare strings
        prompts[f"mbpp/{key}"] = {r["task_id"]: p for r, p in zip(rows, base_prompts)}

    humaneval, mbpp = HumanEval(prompt_type="Completion"), MBPP(prompt_type="Instruction")
    planted = []
    for row in planted_chat_answers():
        task = humaneval if row["benchmark"] == "humaneval" else mbpp
        task_id = int(row["task_id"].split("/")[-1])
        completion = refine_text(_vllm_text(row["answer"], task.general_stop_words))
        program = task.postprocess_generation({"task_id": task_id, "completion_id": 0, "completion": completion})["solution"]
        planted.append({**row, "opencodeeval_program": program})
    return {"prompts": prompts, "planted": planted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="an OpenCoder-llm/OpenCoder-llm checkout (OpenCodeEval/src inside)")
    parser.add_argument("--commit", help="the checkout's commit, when it is not a git work tree")
    args = parser.parse_args()
    commit = args.commit or subprocess.run(["git", "-C", str(args.checkout), "rev-parse", "HEAD"], capture_output=True,
                                           text=True).stdout.strip()
    fixture = {"meta": {"source": "OpenCoder-llm/OpenCoder-llm OpenCodeEval/src", "commit": commit or "unknown",
                        "generated_by": "tools/opencodeeval_fixtures.py"},
               **render(args.checkout / "OpenCodeEval" / "src")}
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(FIXTURE, "wt", encoding="utf-8") as f:
        json.dump(fixture, f, indent=0, sort_keys=True)
    print(json.dumps({"fixture": str(FIXTURE.relative_to(ROOT)), "commit": fixture["meta"]["commit"],
                      **{k: len(v) for k, v in fixture["prompts"].items()}, "planted": len(fixture["planted"])}))


if __name__ == "__main__":
    main()
