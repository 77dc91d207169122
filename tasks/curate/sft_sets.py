"""Instruction sets for SFT, as `{"instruction", "output"}` rows (single-turn, spec §8).

The paper's SFT sets (RealUser-, Diverse-, Educational-, Package-Instruct...) are not available
offline; the embedded default is the MBPP train split, which evaluation never scores:

- `mbpp-train`: MBPP task_ids 601-974 (tasks/evaluate/data/mbpp/mbpp.jsonl). Instruction = the problem
  text and its assert tests; output = the reference code.
- `jsonl:PATH`: the user's own JSONL with `instruction` and `output` fields (e.g. OpenCoder-SFT exports).
"""

from __future__ import annotations

import json
from pathlib import Path

MBPP_PATH = Path(__file__).resolve().parents[1] / "evaluate" / "data" / "mbpp" / "mbpp.jsonl"
MBPP_TRAIN_IDS = range(601, 975)


def mbpp_instruction(text: str, tests: list[str]) -> str:
    return f"{text.strip()}\nYour code should pass these tests:\n\n" + "\n".join(t.strip() for t in tests)


def mbpp_train(path: Path = MBPP_PATH) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"instruction": mbpp_instruction(r["text"], r["test_list"]), "output": r["code"].replace("\r\n", "\n").strip()}
            for r in rows if r["task_id"] in MBPP_TRAIN_IDS]


def jsonl_set(path: str) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    bad = [i for i, r in enumerate(rows) if not isinstance(r.get("instruction"), str) or not isinstance(r.get("output"), str)]
    if bad:
        raise ValueError(f"{path}: line {bad[0] + 1} lacks string 'instruction' and 'output' fields")
    return [{"instruction": r["instruction"], "output": r["output"]} for r in rows]


def load_sets(names: tuple[str, ...] | list[str]) -> list[dict]:
    """Concatenate the named sets, in order."""
    rows: list[dict] = []
    for name in names:
        if name == "mbpp-train":
            rows += mbpp_train()
        elif name.startswith("jsonl:"):
            rows += jsonl_set(name.removeprefix("jsonl:"))
        else:
            raise ValueError(f"unknown SFT set '{name}' (known: mbpp-train, jsonl:PATH)")
    return rows
