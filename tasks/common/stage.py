"""What every stage execution shares: tracking, timing, metrics and the kept/dropped split.

`execute` wraps a stage's `run(params, input, output, tracker) -> metrics` function: it opens the
stage's MLflow run (`tracking.stage_run`: a child of the lifecycle run; the whole params tree flattened, the
input and output paths as params and datasets), times it, checks conservation (rows in = kept + dropped), writes `metrics/<stage>.json` atomically and logs
the metrics.

The kept/dropped split of a batch carrying a `drop_reason` column (null = kept) and its counts
(`split_kept_dropped`, `split_counts`, summed by `add_counts`) are shared by the two writers:
`runner.map_to_shards`, where the Ray workers write their own parts (clean, dedup), and
`split_and_write`, which writes batches that reach this process into an atomic folder (the stages
whose rows still pass through the driver).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tasks.common.config import flatten
from tasks.common.progress import Progress, output_label
from tasks.common.shards import ShardWriter, atomic_dir, discard_unfinished, is_uri, output_exists, write_json
from tasks.common.tracking import Tracker, log_stage_outputs, stage_run

log = logging.getLogger("cookbook")

DROP_REASON = "drop_reason"


class ConservationError(RuntimeError):
    """Rows in != rows kept + rows dropped: a stage lost or invented rows."""


def check_conservation(stage: str, metrics: dict[str, Any]) -> None:
    if "rows_in" not in metrics:
        return
    kept, dropped = metrics.get("rows_kept", 0), metrics.get("rows_dropped", 0)
    if metrics["rows_in"] != kept + dropped:
        raise ConservationError(f"{stage}: rows_in={metrics['rows_in']} != rows_kept={kept} + rows_dropped={dropped}")
    by_reason = metrics.get("dropped_by_reason")
    if by_reason is not None and sum(by_reason.values()) != dropped:
        raise ConservationError(f"{stage}: dropped_by_reason sums to {sum(by_reason.values())}, not {dropped}")


def split_kept_dropped(batch: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Rows with a null `drop_reason` (without that column) and the others (with it)."""
    dropped_mask = pc.is_valid(batch[DROP_REASON])
    return batch.filter(pc.invert(dropped_mask)).drop_columns([DROP_REASON]), batch.filter(dropped_mask)


def split_counts(batch: pa.Table, kept: pa.Table, dropped: pa.Table, bytes_column: str = "size_bytes") -> dict[str, Any]:
    """The stage counts of one batch split into `kept` and `dropped` (summed over batches by `add_counts`)."""
    counts: dict[str, Any] = {"rows_in": batch.num_rows, "rows_kept": kept.num_rows, "rows_dropped": dropped.num_rows,
                              "bytes_in": 0, "bytes_kept": 0}
    if bytes_column in batch.column_names:
        counts["bytes_in"] = int(pc.sum(batch[bytes_column]).as_py() or 0)
        counts["bytes_kept"] = int(pc.sum(kept[bytes_column]).as_py() or 0)
    counts["dropped_by_reason"] = dict(Counter(dropped[DROP_REASON].to_pylist()))
    return counts


def add_counts(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """`total` plus `part`, key by key, into nested dicts of numbers (counts of batches or of workers)."""
    out = dict(total)
    for key, value in part.items():
        if isinstance(value, dict):
            out[key] = add_counts(out.get(key, {}), value)
        else:
            out[key] = out.get(key, 0) + value
    return out


def finish_counts(counts: dict[str, Any]) -> dict[str, Any]:
    """Stage metrics from summed counts: every count present, `dropped_by_reason` sorted by reason."""
    base = {"rows_in": 0, "rows_kept": 0, "rows_dropped": 0, "bytes_in": 0, "bytes_kept": 0}
    return {**base, **counts, "dropped_by_reason": dict(sorted(counts.get("dropped_by_reason", {}).items()))}


def split_and_write(
    batches: Iterable[pa.Table],
    output_dir: str | Path,
    *,
    bytes_column: str = "size_bytes",
    on_batch: Callable[[pa.Table], None] | None = None,
) -> dict[str, Any]:
    """Write batches (with a `drop_reason` column) as kept and dropped shards from this process; return the
    counts. Data stages that map a function over shards use `runner.map_to_shards` instead, where the
    workers write."""
    counts: dict[str, Any] = {}
    progress = Progress(output_label(output_dir))
    with atomic_dir(output_dir) as tmp:
        writer = ShardWriter(tmp)
        for batch in batches:
            if on_batch:
                on_batch(batch)
            kept, dropped = split_kept_dropped(batch)
            writer.write(kept)
            writer.write_dropped(dropped)
            counts = add_counts(counts, split_counts(batch, kept, dropped, bytes_column))
            progress.advance(batch.num_rows, kept=counts["rows_kept"])
        writer.close()
    progress.finish(kept=counts.get("rows_kept", 0))
    return finish_counts(counts)


def execute(
    stage: str,
    run: Callable[..., dict[str, Any]],
    params,
    input_path: str | Path | None,
    output_path: str | Path,
    metrics_path: str | Path,
    extra_inputs: list[Path] = (),
) -> dict[str, Any]:
    """Run one stage under tracking; write and return its metrics."""
    inputs = [p for p in [input_path, *extra_inputs] if p is not None]
    with stage_run(params, stage, inputs) as tracker:
        tracker.log_params(flatten(params))  # the whole tree: the same keys in every stage run and variant
        started = time.monotonic()
        existed = output_exists(output_path)
        try:
            metrics = run(params, input_path, output_path, tracker)
        except BaseException:
            discard_unfinished(output_path, existed)  # no partial output a reader could take for one
            raise
        metrics = {"stage": stage, **metrics, "seconds": round(time.monotonic() - started, 3)}
        check_conservation(stage, metrics)
        write_json(metrics_path, metrics)
        tracker.log_metrics(metrics)
        if is_uri(metrics_path):
            tracker.log_dict(metrics, f"{stage}.metrics.json")
        else:
            tracker.log_artifact(metrics_path)
        log_stage_outputs(tracker, [output_path])
    log.info("%s done in %.1fs -> %s", stage, metrics["seconds"], output_path)
    return metrics
