"""Instruction sets for SFT, as `{"instruction", "output"}` rows (single-turn, spec §8).

The `sft` stage loads its sets by name (`sft.stage1.sets`, `sft.stage2.sets`):

- `curated:NAME`: a set built by the `curate` stage and decontaminated, read from `data/decontaminate/NAME`
  (`curated:sft_stage1`, `curated:sft_stage2`: the embedded default).
- `parquet:PATH`: any folder (or file) of Parquet rows with `instruction` and `output` columns.
- `mbpp-train`: MBPP task_ids 601-974 (tasks/evaluate/data/mbpp/mbpp.jsonl), which evaluation never scores.
  Instruction = the problem text and its assert tests; output = the reference code.
- `jsonl:PATH`: the user's own JSONL with `instruction` and `output` fields (e.g. OpenCoder-SFT exports).

The paper's own sets (RealUser-, Diverse-, Educational-, Package-Instruct...) are not available offline.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tasks.common.config import ConfigError
from tasks.common.inputs import InputError
from tasks.common.shards import MissingInputError

MBPP_PATH = Path(__file__).resolve().parents[1] / "evaluate" / "data" / "mbpp" / "mbpp.jsonl"
MBPP_TRAIN_IDS = range(601, 975)
CURATED_DIR = Path("data/decontaminate")


def mbpp_instruction(text: str, tests: list[str]) -> str:
    return f"{text.strip()}\nYour code should pass these tests:\n\n" + "\n".join(t.strip() for t in tests)


def mbpp_train_rows(path: Path = MBPP_PATH) -> list[dict]:
    """MBPP-train as candidate rows: instruction, output and the `program` (setup, reference, tests) that
    must pass in the sandbox for the row to be kept."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = []
    for r in rows:
        if r["task_id"] not in MBPP_TRAIN_IDS:
            continue
        code = r["code"].replace("\r\n", "\n").strip()
        program = "\n".join([r.get("test_setup_code") or "", code, "", *r["test_list"]])
        out.append({"id": hashlib.sha256(f"mbpp-train/{r['task_id']}".encode()).hexdigest()[:16],
                    "instruction": mbpp_instruction(r["text"], r["test_list"]), "output": code,
                    "source": "mbpp-train", "origin": f"mbpp/{r['task_id']}", "validation": None, "program": program,
                    "drop_reason": None})
    return out


def mbpp_train(path: Path = MBPP_PATH) -> list[dict]:
    return [{"instruction": r["instruction"], "output": r["output"]} for r in mbpp_train_rows(path)]


def jsonl_record(line: str) -> dict | None:
    """The {instruction, output} of a JSONL line, None when it is not an object with those two strings."""
    try:
        r = json.loads(line)
    except ValueError:
        return None
    if not isinstance(r, dict) or not isinstance(r.get("instruction"), str) or not isinstance(r.get("output"), str):
        return None
    return {"instruction": r["instruction"], "output": r["output"]}


def jsonl_set(path: str) -> list[dict]:
    if not Path(path).is_file():
        raise MissingInputError(f"SFT set file '{path}' does not exist: fix the jsonl:PATH entry in sft.*.sets")
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        record = jsonl_record(line)
        if record is None:
            raise InputError(f"{path}: line {lineno} is not a JSON object with string 'instruction' and 'output' fields")
        rows.append(record)
    return rows


def parquet_set(path: str | Path) -> list[dict]:
    from tasks.common.shards import list_shards, read_table

    if not list_shards(path):
        raise MissingInputError(f"{path}: no Parquet shards (run `cookbook curate` and `cookbook decontaminate` first)")
    table = read_table(path)
    missing = {"instruction", "output"} - set(table.column_names)
    if missing:
        raise InputError(f"{path}: no {sorted(missing)} column(s); an SFT set needs instruction and output")
    return [{"instruction": i, "output": o} for i, o in zip(table["instruction"].to_pylist(), table["output"].to_pylist())]


def load_sets(names: tuple[str, ...] | list[str]) -> list[dict]:
    """Concatenate the named sets, in order."""
    rows: list[dict] = []
    for name in names:
        if name == "mbpp-train":
            rows += mbpp_train()
        elif name.startswith("jsonl:"):
            rows += jsonl_set(name.removeprefix("jsonl:"))
        elif name.startswith("parquet:"):
            rows += parquet_set(name.removeprefix("parquet:"))
        elif name.startswith("curated:"):
            rows += parquet_set(CURATED_DIR / name.removeprefix("curated:"))
        else:
            raise ConfigError(f"unknown SFT set '{name}' (known: curated:NAME, parquet:PATH, mbpp-train, jsonl:PATH)")
    return rows
