"""The Ray runner: the one place that maps a pure batch function over a dataset.

Stages write their logic as `fn(batch: pa.Table, **kwargs) -> pa.Table` and never import Ray.
`map_batches` cuts the input shards into slices of whole Parquet row groups (`plan_slices`), makes
them a Ray Data dataset of slice descriptions and maps one task per slice on `num_workers` parallel
tasks: the task reads its row groups itself, applies `fn` to every `batch_size` rows and returns one
table. Results stream back to the driver in input order, so stage outputs are deterministic.
`map_items` maps `fn` over in-memory rows, `batch_size` at a time. Locally `ray.init()` starts a private
instance; `RAY_ADDRESS` or `compute.ray_address` points the same code at a cluster.

Why not `ray.data.read_parquet(...).map_batches(fn)`: its read tasks put every text block into the
object store for a separate map task to fetch, a file is never split below one read task, and each of
`fn`'s outputs becomes a block the driver tracks. On 2 cores, the dedup signature pass with 2 workers
ran 1.2x faster than with 1 that way; with a task per slice that reads its own rows and returns one
block, 1.8x on 300k documents (`benchmarks/dedup.py`; 1.4-1.6x on 100k, where Ray Data's 0.5-1 s of
driver work per pass weighs more; plain Ray tasks gave 1.8-2.0x there).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.shards import list_shards

log = logging.getLogger(__name__)

BatchFn = Callable[..., pa.Table]
Slice = list[tuple[str, list[int]]]
"""Row groups of one or more shards, read and processed by one task: [(path, [row group index, ...]), ...]."""

TASKS_PER_WORKER = 4
"""Slices per worker: enough for every worker to stay busy when slices take unequal time."""
MAX_SLICE_BYTES = 256 << 20
"""Uncompressed Parquet bytes of one slice at most (bounds a task's memory on large inputs)."""


def ensure_ray(ray_address: str | None = None, num_cpus: int | None = None) -> None:
    """Start (or join) Ray once per process."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or ray_address
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    if address:
        ray.init(address=address, **kwargs)
    else:
        # A private local instance: workers see the driver's import path (tests, scripts, editable installs).
        env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        ray.init(num_cpus=num_cpus or os.cpu_count(), runtime_env={"env_vars": env}, **kwargs)
    ctx = ray.data.DataContext.get_current()
    # Should anything read Parquet through Ray Data: Ray 2.60's DataSourceV2 read (ListFiles -> ReadFiles)
    # spends 3-30 s of wall time listing a handful of local files on a loaded 2-core machine, V1 under 1 s.
    ctx.use_datasource_v2 = False
    ctx.execution_options.preserve_order = True
    # Our datasets are one map operator: a resource reservation per operator only holds its tasks back
    # (dedup signature pass on 300k docs, 2 workers: 12.3-12.7 s with it, 11.4-12.3 s without).
    ctx.op_resource_reservation_enabled = False
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


def _apply(ds, fn: BatchFn, fn_kwargs: dict, num_workers: int, batch_size: int):
    import ray

    return ds.map_batches(
        fn,
        batch_format="pyarrow",
        batch_size=batch_size,
        fn_kwargs=fn_kwargs,
        compute=ray.data.TaskPoolStrategy(size=max(1, num_workers)),
        num_cpus=1,
    )


def plan_slices(shards: Sequence[Path], num_workers: int) -> list[Slice]:
    """Consecutive whole row groups of the shards, in order, about `1 / (num_workers * TASKS_PER_WORKER)` of
    the input's bytes each (at most `MAX_SLICE_BYTES`, at least one row group); empty row groups are left out."""
    groups = []
    for path in shards:
        meta = pq.ParquetFile(path).metadata
        groups += [(str(path), g, meta.row_group(g).total_byte_size) for g in range(meta.num_row_groups) if meta.row_group(g).num_rows]
    target = min(MAX_SLICE_BYTES, sum(size for *_, size in groups) / max(1, num_workers * TASKS_PER_WORKER))
    slices: list[Slice] = []
    current: dict[str, list[int]] = {}
    filled = 0
    for path, group, size in groups:
        if current and filled + size > target:
            slices.append(list(current.items()))
            current, filled = {}, 0
        current.setdefault(path, []).append(group)
        filled += size
    if current:
        slices.append(list(current.items()))
    return slices


def apply_to_slice(items: pa.Table, fn: BatchFn, fn_kwargs: dict, columns: list[str] | None, batch_size: int) -> pa.Table:
    """Task body: read the slice's row groups and return `fn` of every `batch_size` rows, as one table."""
    outputs = []
    for spec in items.column("slice").to_pylist():
        for path, row_groups in json.loads(spec):
            rows = pq.ParquetFile(path).read_row_groups(row_groups, columns=columns)
            outputs += [fn(rows.slice(start, batch_size), **fn_kwargs) for start in range(0, rows.num_rows, batch_size)]
    return pa.concat_tables(outputs, promote_options="default")


def map_batches(
    fn: BatchFn,
    input_dir: str | Path,
    *,
    fn_kwargs: dict | None = None,
    num_workers: int = 1,
    batch_size: int = 256,
    ray_address: str | None = None,
    columns: list[str] | None = None,
) -> Iterator[pa.Table]:
    """Yield `fn(batch)` for every batch of the shard folder, computed on Ray, in input order (one table per
    slice of row groups)."""
    import ray

    slices = plan_slices(list_shards(input_dir), num_workers)
    if not slices:
        return iter(())
    ensure_ray(ray_address)
    ds = ray.data.from_items([{"slice": json.dumps(s)} for s in slices], override_num_blocks=len(slices))
    kwargs = {"fn": fn, "fn_kwargs": fn_kwargs or {}, "columns": columns, "batch_size": batch_size}
    return _iter(_apply(ds, apply_to_slice, kwargs, num_workers, 1))


def map_items(
    fn: BatchFn,
    items: Sequence[dict],
    *,
    fn_kwargs: dict | None = None,
    num_workers: int = 1,
    batch_size: int = 256,
    ray_address: str | None = None,
) -> Iterator[pa.Table]:
    """Like `map_batches`, over in-memory rows (for example a list of file paths to read)."""
    import ray

    if not items:
        return iter(())
    ensure_ray(ray_address)
    ds = ray.data.from_items(list(items), override_num_blocks=max(1, min(len(items), num_workers * 8)))
    return _iter(_apply(ds, fn, fn_kwargs or {}, num_workers, batch_size))


def _iter(ds) -> Iterator[pa.Table]:
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        yield batch
