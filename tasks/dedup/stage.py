"""The `dedup` stage: exact SHA256 dedup, then MinHash-LSH near-dedup (spec §2), at file, repo or chunk level.

    cookbook dedup                                        # data/clean -> data/dedup, reports/dedup/
    cookbook dedup --input DIR --output OUT --set dedup.level=repo

Passes over the input:
1. on Ray (`tasks.common.runner.map_batches` of `units.unit_batch`): each worker shingles, signs and
   band-hashes its batch; only content hashes and band keys (repo level: one merged signature per
   repo and batch) come back to the driver, never texts;
2. in the driver (`plan.build_plan`): keep-policy ranks, exact groups, LSH candidate pairs, connected
   components; the exact Jaccard verification of the candidate pairs runs on the Ray workers
   (`worker_verifier`), each batch of pairs reading only its documents' texts, so no text reaches the driver;
3. on Ray again (`runner.map_to_shards` of `plan.mark_batch`), every row gets `drop_reason` (null,
   `exact_duplicate`, `near_duplicate`) and `duplicate_of` (the id of the kept row it duplicates); the
   workers write kept and `dropped/` parts, committed by the folder's manifest.
The report (cluster sizes, largest clusters, removal per language and level, guardrail) goes to
`reports/dedup/` for the default output, else to `<output>.reports/`, and to the tracker.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from tasks.common.runner import TASKS_PER_WORKER, map_batches, map_items, map_to_shards
from tasks.common.shards import filesystem, list_shards, read_table
from tasks.dedup.config import DedupConfig
from tasks.dedup.plan import META_COLUMNS, PairVerifier, Plan, build_plan, mark_batch, verify_pair_table
from tasks.dedup.report import GuardrailError, guardrail, meta_dict, summarize, write_report
from tasks.dedup.units import unit_batch, unit_schema

log = logging.getLogger("cookbook.dedup")

DEFAULT_OUTPUT = Path("data/dedup")


def report_dir(output: Path) -> Path:
    """`reports/dedup` for the pipeline's default output, else a folder next to the output."""
    if Path(output) == DEFAULT_OUTPUT:
        return Path("reports/dedup")
    return Path(output).with_name(Path(output).name + ".reports")


def shard_dataset(input_dir: str | Path) -> pads.Dataset:
    """The input's shards as one pyarrow dataset, on the folder's filesystem (local or object store)."""
    fs, _ = filesystem(input_dir)
    return pads.dataset([filesystem(p)[1] for p in list_shards(input_dir)], format="parquet", filesystem=fs)


def shard_text_loader(input_dir: Path):
    """Load the texts of a set of document ids from the input shards (only the rows asked for)."""

    def load(ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        dataset = shard_dataset(input_dir)
        table = dataset.to_table(columns=["id", "text"], filter=pads.field("id").isin(pa.array(sorted(ids))))
        return dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))

    return load


def verify_batch(pairs: pa.Table, input_dir: str, cfg: DedupConfig) -> pa.Table:
    """Ray task body: which candidate pairs of the batch reach the Jaccard threshold, from texts this task
    reads itself (only those of its pairs' documents)."""
    return pa.table({"ok": verify_pair_table(pairs, shard_text_loader(input_dir), cfg)})


def worker_verifier(params, input_dir: Path, cfg: DedupConfig) -> PairVerifier:
    """A `PairVerifier` that spreads the pairs over the Ray workers (about four batches per worker), so the
    driver never loads a text."""

    def verify(pairs: pa.Table) -> np.ndarray:
        num_batches = max(1, params.compute.num_workers * TASKS_PER_WORKER)
        parts = map_items(verify_batch, pairs.to_pylist(), fn_kwargs={"input_dir": str(input_dir), "cfg": cfg},
                          num_workers=params.compute.num_workers, batch_size=-(-pairs.num_rows // num_batches),
                          ray_address=params.compute.ray_address)
        return np.concatenate([p.column("ok").to_numpy(zero_copy_only=False) for p in parts]).astype(bool)

    return verify


def hash_units(params, input_dir: Path, cfg: DedupConfig) -> pa.Table:
    """Unit rows of the whole input, computed on Ray."""
    columns = ["id", "text", "repo"] if cfg.level == "repo" else ["id", "text"]
    parts = list(
        map_batches(
            unit_batch,
            input_dir,
            fn_kwargs={"cfg": cfg},
            num_workers=params.compute.num_workers,
            batch_size=params.compute.batch_size,
            ray_address=params.compute.ray_address,
            columns=columns,
        )
    )
    schema = unit_schema(cfg)
    units = pa.concat_tables([p.cast(schema) for p in parts]) if parts else schema.empty_table()
    return first_occurrences(units, ["doc_id", "unit"])


def first_occurrences(table: pa.Table, keys: list[str]) -> pa.Table:
    """The rows whose `keys` no earlier row has, in order: a repeated document id is planned once, as its
    first row (the marking pass drops the later ones as `duplicate_id`)."""
    rows = table.select(keys).append_column("row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    first = rows.group_by(keys, use_threads=False).aggregate([("row", "min")]).column("row_min").to_numpy()
    return table if len(first) == table.num_rows else table.take(np.sort(first))


def read_meta(input_dir: Path) -> pa.Table:
    """The metadata columns of every document (no texts)."""
    names = shard_dataset(input_dir).schema.names if list_shards(input_dir) else []
    return first_occurrences(read_table(input_dir, columns=[c for c in META_COLUMNS if c in names] or None), ["id"])


def _metrics(written: dict[str, Any], plan: Plan, summary: dict[str, Any]) -> dict[str, Any]:
    clusters = summary["clusters"]
    return {
        **written,
        "level": summary["level"],
        **plan.stats,
        "num_clusters": clusters["num_clusters"],
        "largest_cluster": max((c["size"] for c in clusters["largest"]), default=1),
        "guardrail_flagged": len(summary["guardrail"]),
    }


def run(params, input: Path | None, output: Path, tracker) -> dict[str, Any]:
    """Deduplicate `input` into `output` (kept) and `output/dropped` (duplicates); return the metrics."""
    cfg: DedupConfig = params.dedup
    input, output = Path(input), Path(output)
    meta = read_meta(input)
    plan = build_plan(meta, hash_units(params, input, cfg), cfg, worker_verifier(params, input, cfg))
    lookup = meta_dict(meta)
    flagged = guardrail(lookup, plan.decisions, cfg)
    for item in flagged:
        log.warning("dedup guardrail: %s '%s' would lose %d of %d rows (%.0f%%)", item["group"], item["name"], item["removed"], item["rows"], 100 * item["share"])
    if flagged and cfg.guardrail_action == "fail":
        raise GuardrailError(f"dedup would remove more than {cfg.guardrail_share:.0%} of: " + ", ".join(f"{f['group']} {f['name']}" for f in flagged))
    written = map_to_shards(mark_batch, input, output, fn_kwargs={"decisions": plan.decisions}, num_workers=params.compute.num_workers,
                            batch_size=params.compute.batch_size * 4, ray_address=params.compute.ray_address)
    summary = summarize(plan, lookup, cfg, flagged)
    files = write_report(summary, report_dir(output))
    tracker.log_dict(summary, "dedup/dedup_report.json")
    for path in files[1:]:
        tracker.log_artifact(path, "dedup")
    return _metrics(written, plan, summary)
