"""How close our evaluation is to OpenCodeEval's: prompts string for string, post-processing program for program.

The reference is `data/opencodeeval/fixture.json.gz`, written once by `tools/opencodeeval_fixtures.py` from
OpenCodeEval's own code (commit in its `meta`). `prompt_mismatches()` renders every prompt of every benchmark
here, base and chat (`stage.model_input`), and lists those that differ; `planted_mismatches()` post-processes the
planted chat answers our way and lists those whose program differs from OpenCodeEval's.
"""

from __future__ import annotations

import gzip
import json
from functools import cache

from tasks.evaluate import benchmarks
from tasks.evaluate.benchmarks.base import DATA_DIR
from tasks.evaluate.planted_answers import postprocess_chat_answer
from tasks.evaluate.stage import model_input

FIXTURE = DATA_DIR / "opencodeeval" / "fixture.json.gz"


@cache
def load_fixture() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return json.load(f)


def prompt_mismatches() -> tuple[int, list[tuple[str, str]]]:
    """(prompts compared, [(benchmark/model_type, task_id) of each differing or missing one])."""
    compared, bad = 0, []
    for key, expected in load_fixture()["prompts"].items():
        name, model_type = key.split("/")
        ours = {p.task_id: model_input(p, model_type == "chat") for p in benchmarks.get(name).problems()}
        for task_id, text in expected.items():
            compared += 1
            if ours.get(task_id) != text:
                bad.append((key, task_id))
        bad += [(key, task_id) for task_id in ours if task_id not in expected]
    return compared, bad


def planted_mismatches() -> tuple[int, list[dict]]:
    """(planted answers compared, the rows whose program differs, with ours added)."""
    rows = load_fixture()["planted"]
    bad = []
    for row in rows:
        ours = postprocess_chat_answer(row["benchmark"], row["task_id"], row["answer"])
        if ours != row["opencodeeval_program"]:
            bad.append({**row, "ours": ours})
    return len(rows), bad
