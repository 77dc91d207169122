"""Several versions of one `(repo, path)` through every data stage, with the exact expected outcome.

A Stack-v2-style JSONL holds four commits of `o/lib:pkg/util.py` (different `blob_id` and date): v1, v2 (v1
with one word changed: a near-copy), v3 (v1 again: a revert) and v4 (another module), plus a fork
`o/fork:pkg/util.py` holding v4 with more stars and an unrelated file. With ids that tell versions apart,
ingest yields seven distinct ids, clean keeps them, and dedup's keep policy (most stars, then latest commit,
then smallest id) decides: v1 is an exact copy of v3 (newer), v2 a near copy of v3, v4 an exact copy of the
fork's file (more stars). Every removed row names a kept row, and no content is lost; sample, decontaminate
and tokenize then carry the three survivors by their ids (recall off: no web rows join).
"""

from __future__ import annotations

import json
import random

from tasks.common.shards import read_table
from tasks.common.stage import check_conservation
from tasks.common.tracking import NullTracker
from tasks.config import load_params
from tasks.ingest.read import doc_id

WORDS = ["total", "count", "index", "value", "result", "items", "buffer", "offset", "limit", "name", "record", "entry",
         "score", "weight", "window", "prefix", "suffix", "token", "cursor", "batch"]


def module(seed: int, num_functions: int = 40) -> str:
    """A plausible Python module of distinct functions (long enough that one changed word keeps Jaccard > 0.98)."""
    rng = random.Random(seed)
    lines = [f'"""Helpers for module {seed}: small numeric utilities."""', "", "import math", ""]
    for k in range(num_functions):
        a, b, c = rng.sample(WORDS, 3)
        lines += ["", f"def {a}_{b}_{seed}_{k}({a}, {b}):", f'    """Return the {c} of {a} and {b} for step {k}."""',
                  f"    {c} = {a} * {rng.randint(2, 99)} + {b}", f"    if {c} > {rng.randint(100, 999)}:",
                  f"        {c} = math.sqrt({c}) - {rng.randint(1, 9)}", f"    return {c}", ""]
    return "\n".join(lines) + "\n"


V1 = module(1)
V2 = V1.replace("for step 7.", "for stage 7.", 1)
V4 = module(4)
RECORDS = [  # (name, repo, blob_id, date, stars, content)
    ("v1", "o/lib", "b1", "2021-01-01T00:00:00+00:00", 10, V1),
    ("v2", "o/lib", "b2", "2022-01-01T00:00:00+00:00", 10, V2),
    ("v3", "o/lib", "b3", "2023-01-01T00:00:00+00:00", 10, V1),
    ("v4", "o/lib", "b4", "2024-01-01T00:00:00+00:00", 10, V4),
    ("fork", "o/fork", "b5", "2019-01-01T00:00:00+00:00", 50, V4),
]


def write_stack_jsonl(path) -> dict[str, str]:
    """The input file; returns {name: expected id}."""
    rows = [{"repo_name": repo, "path": "pkg/util.py", "blob_id": blob, "revision_date": date, "star_events_count": stars,
             "language": "Python", "content": text} for _, repo, blob, date, stars, text in RECORDS]
    rows.append({"repo_name": "o/other", "path": "main.py", "blob_id": "b6", "revision_date": "2020-01-01T00:00:00+00:00",
                 "star_events_count": 1, "language": "Python", "content": module(6)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    names = [r[0] for r in RECORDS] + ["other"]
    return {name: doc_id("stack", r["repo_name"], r["path"], r["blob_id"]) for name, r in zip(names, rows)}


def test_versions_of_one_file_through_every_data_stage(tmp_path):
    from tasks.clean.stage import run as clean
    from tasks.decontaminate.stage import run as decontaminate
    from tasks.dedup.stage import run as dedup
    from tasks.ingest.stage import run as ingest
    from tasks.recall.stage import run as recall
    from tasks.sample.stage import run as sample
    from tasks.tokenize.stage import run as tokenize

    ids = write_stack_jsonl(tmp_path / "stack.jsonl")
    name_of = {v: k for k, v in ids.items()}
    params = load_params("params.yaml", ["tracking.enabled=false", "compute.num_workers=2", "compute.batch_size=8",
                                         "recall.enabled=false", "tokenize.vocab_size=600", "tokenize.seq_len=32"])
    metrics = {}
    for stage, fn, src, dst in (("ingest", ingest, tmp_path / "stack.jsonl", tmp_path / "ingest"),
                                ("recall", recall, tmp_path / "ingest", tmp_path / "recall"),
                                ("clean", clean, tmp_path / "recall", tmp_path / "clean"),
                                ("dedup", dedup, tmp_path / "clean", tmp_path / "dedup"),
                                ("sample", sample, tmp_path / "dedup", tmp_path / "sample"),
                                ("decontaminate", decontaminate, tmp_path / "sample", tmp_path / "decontaminate"),
                                ("tokenize", tokenize, tmp_path / "decontaminate", tmp_path / "tokenize")):
        metrics[stage] = fn(params, src, dst, NullTracker())
        check_conservation(stage, metrics[stage])

    ingested = read_table(tmp_path / "ingest").column("id").to_pylist()
    assert sorted(ingested) == sorted(ids.values())  # seven rows, seven ids: duplicate_ids_after_ingest == 0
    assert len(set(ids.values())) == len(ids)
    assert sorted(name_of[i] for i in read_table(tmp_path / "clean").column("id").to_pylist()) == sorted(ids)

    kept = sorted(name_of[i] for i in read_table(tmp_path / "dedup").column("id").to_pylist())
    dropped = read_table(tmp_path / "dedup" / "dropped").to_pylist()
    removed = {name_of[r["id"]]: (r["drop_reason"], name_of[r["duplicate_of"]]) for r in dropped}
    assert kept == ["fork", "other", "v3"]
    assert removed == {"v1": ("exact_duplicate", "v3"), "v2": ("near_duplicate", "v3"), "v4": ("exact_duplicate", "fork")}
    assert metrics["dedup"]["rows_in"] == 6 and metrics["dedup"]["rows_kept"] == 3
    for stage in ("sample", "decontaminate", "tokenize"):  # the three survivors, each once, by the same ids
        assert sorted(name_of[i] for i in read_table(tmp_path / stage).column("id").to_pylist()) == kept, stage
        assert metrics[stage]["rows_in"] == 3 and metrics[stage]["rows_dropped"] == 0, stage
