"""The data stages of the lifecycle one after another under one root (a local folder or an `s3://` prefix),
for the tests that run them somewhere else than the pipeline's default (a bucket, a multi-node cluster) and
compare what every stage kept and dropped."""

from __future__ import annotations

from collections.abc import Callable

from tasks.common.shards import read_table

CHAIN = {"ingest": None, "recall": "ingest", "clean": "recall", "dedup": "clean", "sample": "dedup", "curate": "sample",
         "decontaminate": None, "tokenize": "decontaminate"}
"""Stage: the folder it reads (None: its params say: the embedded corpus, decontaminate's parts)."""

SMALL = ["ingest.max_files=120", "compute.num_workers=2", "tokenize.vocab_size=600", "tokenize.seq_len=32"]

COMPARED = ["ingest", "recall", "clean", "dedup", "sample", "curate/sft_stage1", "decontaminate/pretrain"]


def run_chain(root: str, cookbook: Callable[..., int]) -> None:
    """`cookbook(stage, *args)` for every data stage, each reading the previous one's folder under `root`."""
    parts = {"pretrain": "sample", "algorithmic": "curate/algorithmic", "synthetic": "curate/synthetic",
             "sft_stage1": "curate/sft_stage1", "sft_stage2": "curate/sft_stage2"}
    decontaminate_parts = "decontaminate.parts={" + ", ".join(f"{k}: {root}/{v}" for k, v in parts.items()) + "}"
    sets = [a for s in SMALL for a in ("--set", s)]
    for stage, previous in CHAIN.items():
        source = ["--input", f"{root}/{previous}"] if previous else []
        extra = ["--set", decontaminate_parts] if stage == "decontaminate" else []
        status = cookbook(stage, *source, "--output", f"{root}/{stage}", *sets, *extra)
        assert status == 0, f"cookbook {stage} on {root} exited {status}"


def outcome(root: str, folder: str) -> list[tuple]:
    """(id, drop_reason, duplicate_of) of every row of a stage folder, kept and dropped, sorted."""
    rows = []
    for sub in (folder, f"{folder}/dropped"):
        table = read_table(f"{root}/{sub}")
        rows += [(r["id"], r.get("drop_reason"), r.get("duplicate_of")) for r in
                 table.select([c for c in ("id", "drop_reason", "duplicate_of") if c in table.column_names]).to_pylist()]
    return sorted(rows, key=str)
