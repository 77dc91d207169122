"""The Ray runner: the one place that maps a pure batch function over a dataset.

Stages write their logic as `fn(batch: pa.Table, **kwargs) -> pa.Table` and never import Ray.
`map_batches` cuts the input shards into slices of consecutive rows (`plan_slices`: whole Parquet row
groups, or row ranges inside a row group that is larger than a slice, so one shard of one row group
still spreads over every worker) and runs one Ray task per slice, at most `num_workers` at a time
(`run_tasks`): the task reads its rows itself, applies `fn` to every `batch_size` rows and returns one table.
Results stream back to the driver in input order, so stage outputs are deterministic.
`map_to_shards` is the same map for filtering stages, with the writes on the workers: each task writes
its kept part and `dropped/` part (content-addressed names) and returns only counts; the stage commits
by the folder's manifest (`shards.commit_parts`), and input ids are checked unique first by a
distributed group-by (`find_duplicates`; repeats go to `dropped/` as `duplicate_id`). Folders are URIs
(`/local`, `s3://...`). `map_items` maps `fn` over in-memory rows, `batch_size` at a time. Locally `ray.init()` starts a private
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
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tasks.common.progress import Progress, output_label
from tasks.common.shards import (DROPPED, absolute, commit_parts, join, list_shards, open_parquet, prepare_output, uncommit,
                                 write_part)
from tasks.common.stage import DROP_REASON, add_counts, finish_counts, split_counts, split_kept_dropped

log = logging.getLogger(__name__)

BatchFn = Callable[..., pa.Table]
Slice = list[tuple[str, int, int, int]]
"""Row ranges of one or more shards, read and processed by one task: [(path, row group, start, stop), ...]
(`start`/`stop`: rows within the row group, stop exclusive)."""

TASKS_PER_WORKER = 8
"""Slices per worker: enough for every worker to stay busy when slices take unequal time (clean benchmark,
2 workers on 2 cores: the last worker idled 9 s of 47 with 4 slices per worker, about 3 s with 8)."""
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
        # Object-store settings (`AWS_ENDPOINT_URL`, credentials) go with them, so `s3://` URIs resolve alike.
        env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
               **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
        ray.init(num_cpus=num_cpus or os.cpu_count(), runtime_env={"env_vars": env}, **kwargs)
    ctx = ray.data.DataContext.get_current()
    # Should anything read Parquet through Ray Data: Ray 2.60's DataSourceV2 read (ListFiles -> ReadFiles)
    # spends 3-30 s of wall time listing a handful of local files on a loaded 2-core machine, V1 under 1 s.
    ctx.use_datasource_v2 = False
    ctx.execution_options.preserve_order = True
    # Our datasets are one map operator: a resource reservation per operator only holds its tasks back
    # (dedup signature pass on 300k docs, 2 workers: 12.3-12.7 s with it, 11.4-12.3 s without).
    ctx.op_resource_reservation_enabled = False
    # Group-bys (`find_duplicates`) sort-shuffle with tasks: the default hash shuffle starts aggregator
    # actors, 8-10 s per group-by of 100 rows on 2 busy cores against 0.3 s (after the first, which warms workers).
    ctx.shuffle_strategy = ray.data.context.ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
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


def _call_in_batches(shared, items: pa.Table, batch_size: int) -> list[pa.Table]:
    """Task body of `run_tasks`: `fn` of every `batch_size` rows of the task's items."""
    fn, fn_kwargs = shared
    return [fn(items.slice(start, batch_size), **fn_kwargs) for start in range(0, items.num_rows, batch_size)]


def run_tasks(fn: BatchFn, tasks: Sequence[pa.Table], fn_kwargs: dict, num_workers: int,
              batch_size: int | None = None, *, in_order: bool = True) -> Iterator[pa.Table]:
    """`fn(batch, **fn_kwargs)` for every `batch_size` rows (default: all) of every task's table, one Ray task of
    one CPU per table, at most `num_workers` running at once; yields the results in task order (or, with
    `in_order=False`, as tasks finish: for results that say which task they are).

    A task starts as soon as another ends, so one slow task never holds back the rest (a Ray Data map
    operator held the last task of the clean benchmark until the one before it ended, with or without
    `preserve_order`). At most `2 * num_workers` finished results wait for an earlier one,
    so the driver's memory stays bounded. A task whose worker dies is retried by Ray (its writes are idempotent);
    when a task fails, the running ones are stopped (`stop_tasks`) before the error reaches the stage."""
    import ray

    call = ray.remote(num_cpus=1)(_call_in_batches)
    shared = ray.put((fn, fn_kwargs))
    width = max(1, num_workers)
    running: dict[Any, int] = {}
    finished: dict[int, list[pa.Table]] = {}
    launched = emitted = 0
    waiting_room = 2 * width if in_order else len(tasks)
    try:
        while emitted < len(tasks):
            while launched < len(tasks) and len(running) < width and len(running) + len(finished) < waiting_room:
                running[call.remote(shared, tasks[launched], batch_size or max(1, tasks[launched].num_rows))] = launched
                launched += 1
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                finished[running.pop(ref)] = ray.get(ref)
            while finished and (not in_order or emitted in finished):
                yield from finished.pop(emitted if in_order else min(finished))
                emitted += 1
    finally:  # a task failed (or the caller stopped): the others are stopped before the stage cleans up after itself
        stop_tasks(list(running))


def stop_tasks(refs: list) -> None:
    """Cancel running tasks and wait until they are gone, so none writes a part after the caller has removed
    what the failed map wrote."""
    import ray

    for ref in refs:
        ray.cancel(ref)  # force=True (killing the worker) crashes the driver in Ray 2.60 (task_manager.cc:1329)
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=60)


def _slice_tasks(specs: Sequence[dict]) -> list[pa.Table]:
    """One single-row task table per slice description."""
    return [pa.Table.from_pylist([spec]) for spec in specs]


def _row_group_pieces(shards: Sequence[Path]) -> list[tuple[str, int, int, int]]:
    """(path, row group, rows, uncompressed bytes) of every non-empty row group, in order."""
    groups = []
    for path in shards:
        meta = open_parquet(path).metadata
        groups += [(absolute(path), g, meta.row_group(g).num_rows, meta.row_group(g).total_byte_size)
                   for g in range(meta.num_row_groups) if meta.row_group(g).num_rows]
    return groups


def split_rows(num_rows: int, num_pieces: int) -> list[tuple[int, int]]:
    """`[start, stop)` row ranges cutting `num_rows` into `num_pieces` near-equal consecutive pieces."""
    num_pieces = max(1, min(num_rows, num_pieces))
    bounds = [num_rows * k // num_pieces for k in range(num_pieces + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def plan_slices(shards: Sequence[Path], num_workers: int) -> list[Slice]:
    """Consecutive row ranges of the shards, in order, about `1 / (num_workers * TASKS_PER_WORKER)` of the
    input's bytes each (at most `MAX_SLICE_BYTES`). A row group larger than that is cut into row ranges, so
    one shard of one big row group still feeds every worker; smaller ones are packed whole. Empty row
    groups are left out."""
    groups = _row_group_pieces(shards)
    target = min(MAX_SLICE_BYTES, sum(size for *_, size in groups) / max(1, num_workers * TASKS_PER_WORKER))
    slices: list[Slice] = []
    current: Slice = []
    filled = 0.0
    for path, group, rows, size in groups:
        ranges = split_rows(rows, math.ceil(size / target) if target and size > target else 1)
        for start, stop in ranges:
            piece_size = size * (stop - start) / rows
            if current and filled + piece_size > target * (1 + 1e-9):
                slices.append(current)
                current, filled = [], 0.0
            current.append((path, group, start, stop))
            filled += piece_size
    if current:
        slices.append(current)
    return slices


def read_piece(path: str, group: int, start: int, stop: int, columns: list[str] | None) -> pa.Table:
    """Rows `[start, stop)` of one row group; a whole row group is read at once, a part streamed in batches
    up to `stop` (Parquet has no random access to rows inside a row group)."""
    parquet = open_parquet(path)
    if start == 0 and stop == parquet.metadata.row_group(group).num_rows:
        return parquet.read_row_groups([group], columns=columns)
    batches, seen = [], 0
    for batch in parquet.iter_batches(batch_size=min(8192, stop - start), row_groups=[group], columns=columns):
        if seen + batch.num_rows > start:
            batches.append(batch.slice(max(0, start - seen), stop - max(seen, start)))
        seen += batch.num_rows
        if seen >= stop:
            break
    return pa.Table.from_batches(batches)


def read_slice(spec: Slice, columns: list[str] | None) -> pa.Table:
    """All rows of one slice, in order."""
    return pa.concat_tables([read_piece(*piece, columns) for piece in spec], promote_options="default")


def apply_to_slice(items: pa.Table, fn: BatchFn, fn_kwargs: dict, columns: list[str] | None, batch_size: int) -> pa.Table:
    """Task body: read the slice's rows and return `fn` of every `batch_size` rows, as one table."""
    outputs = []
    for spec in items.column("slice").to_pylist():
        rows = read_slice(json.loads(spec), columns)
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
    slices = plan_slices(list_shards(input_dir), num_workers)
    if not slices:
        return iter(())
    ensure_ray(ray_address)
    kwargs = {"fn": fn, "fn_kwargs": fn_kwargs or {}, "columns": columns, "batch_size": batch_size}
    return run_tasks(apply_to_slice, _slice_tasks([{"slice": json.dumps(s)} for s in slices]), kwargs, num_workers)


DUPLICATE_ID = "duplicate_id"
"""`drop_reason` of a row whose id an earlier row of the input already has (its `duplicate_of`: that id)."""
POSITION_BITS = 40
"""A row's input position is `shard index << POSITION_BITS | row in the shard`: the same for every slicing."""


def piece_positions(piece: tuple[str, int, int, int], shard_index: int) -> np.ndarray:
    """Input positions of the rows of one piece."""
    path, group, start, stop = piece
    meta = open_parquet(path).metadata
    first = sum(meta.row_group(g).num_rows for g in range(group)) + start
    return (np.int64(shard_index) << POSITION_BITS) + np.arange(first, first + stop - start, dtype=np.int64)


def slice_positions(spec: Slice, shard_index: dict[str, int]) -> np.ndarray:
    """Input positions of the rows of one slice, in order."""
    return np.concatenate([piece_positions(piece, shard_index[piece[0]]) for piece in spec])


def key_positions(items: pa.Table, key: str, shard_index: dict[str, int]) -> pa.Table:
    """Task body of `find_duplicates`: the key and input position of every row of the slices."""
    tables = []
    for spec in map(json.loads, items.column("slice").to_pylist()):
        keys = read_slice(spec, [key]).column(key)
        tables.append(pa.table({"key": keys, "position": slice_positions(spec, shard_index)}))
    return pa.concat_tables(tables)


def find_duplicates(slices: list[Slice], shards: Sequence[str], key: str, num_workers: int) -> dict[str, int]:
    """Every key that more than one input row has -> the input position of its first row.

    A distributed group-by on Ray Data (count and minimum position per key), so only the duplicated keys
    reach the driver; the map tasks then drop every other row of those keys."""
    import ray
    from ray.data.aggregate import Count, Min
    from ray.data.expressions import col

    shard_index = {absolute(path): i for i, path in enumerate(shards)}
    ds = ray.data.from_items([{"slice": json.dumps(s)} for s in slices], override_num_blocks=len(slices))
    ds = _apply(ds, key_positions, {"key": key, "shard_index": shard_index}, num_workers, 1)
    grouped = ds.groupby("key").aggregate(Count(alias_name="rows"), Min("position", alias_name="first"))
    repeated = grouped.filter(expr=col("rows") > 1)
    found: dict[str, int] = {}
    for batch in repeated.iter_batches(batch_format="pyarrow", batch_size=None):
        found.update(zip(batch.column("key").to_pylist(), batch.column("first").to_pylist()))
    return found


def split_duplicates(source: pa.Table, positions: np.ndarray, key: str, first_of: dict[str, int]) -> tuple[pa.Table, pa.Table]:
    """The rows of a slice to process, and those whose key an earlier input row has, marked
    `drop_reason: duplicate_id` with `duplicate_of` = the key."""
    later = np.zeros(source.num_rows, dtype=bool)
    if first_of:
        keys = source.column(key).to_pylist()
        later = np.array([k in first_of and first_of[k] != p for k, p in zip(keys, positions.tolist())], dtype=bool)
    dropped = source.filter(pa.array(later))
    dropped = dropped.append_column("duplicate_of", dropped.column(key).cast(pa.string()) if key else pa.nulls(0, pa.string()))
    reasons = pa.array([DUPLICATE_ID] * dropped.num_rows, pa.string())
    return source.filter(pa.array(~later)), dropped.append_column(DROP_REASON, reasons)


SummarizeFn = Callable[[pa.Table], dict]
"""Counts of one output batch as nested dicts of numbers (summed over all batches on the driver)."""


def write_slice(items: pa.Table, fn: BatchFn, fn_kwargs: dict, columns: list[str] | None, batch_size: int,
                output: str, summarize: SummarizeFn | None, key: str | None, first_of: dict[str, int],
                shard_index: dict[str, int]) -> pa.Table:
    """Task body of `map_to_shards`: read the slice, set aside the rows of duplicated keys that are not the
    first, apply `fn` to the others, write the kept part and `dropped/` part and return one row per slice:
    the part names and the counts (JSON), never rows."""
    rows = []
    own_kwargs = items.column("kwargs").to_pylist() if "kwargs" in items.column_names else ["{}"] * items.num_rows
    for index, spec, own in zip(items.column("index").to_pylist(), map(json.loads, items.column("slice").to_pylist()), own_kwargs):
        source, repeated = split_duplicates(read_slice(spec, columns), slice_positions(spec, shard_index), key, first_of)
        kwargs = {**fn_kwargs, **json.loads(own)}
        outputs = [fn(source.slice(start, batch_size), **kwargs) for start in range(0, source.num_rows, batch_size)]
        counts = split_counts(repeated, repeated.slice(0, 0), repeated)
        if outputs:
            table = pa.concat_tables(outputs, promote_options="default")
            kept, dropped = split_kept_dropped(table)
            counts = add_counts(counts, split_counts(table, kept, dropped))
            dropped = pa.concat_tables([dropped, repeated], promote_options="permissive") if repeated.num_rows else dropped
        else:  # every row of the slice repeats an earlier id
            table, kept, dropped = None, repeated.slice(0, 0).drop_columns([DROP_REASON, "duplicate_of"]), repeated
        rows.append({
            "index": index,
            "kept_part": write_part(kept, output, index),
            "dropped_part": write_part(dropped, join(output, DROPPED), index),
            "counts": json.dumps(counts),
            "summary": json.dumps(summarize(table) if summarize and table is not None else {}),
        })
    return pa.Table.from_pylist(rows)


def commit_outputs(output: str | Path, results: list[dict]) -> None:
    """Commit the parts the workers wrote, in slice order: `dropped/` first, then the kept rows, whose
    manifest, written last, makes the stage visible. A previous output's kept manifest is removed first, so
    from then until the new one is written (or after a kill in between) a reader finds no output, never the
    new `dropped/` beside the previous kept rows. A folder that got no rows lists one empty part, so
    the next stage can read the schema."""
    results = sorted(results, key=lambda r: r["index"])
    uncommit(output)
    for folder, key, rows_key in ((join(output, DROPPED), "dropped_part", "rows_dropped"), (str(output), "kept_part", "rows_kept")):
        parts = [r[key] for r in results if json.loads(r["counts"])[rows_key]] or [results[0][key]]
        commit_parts(folder, parts, sum(json.loads(r["counts"])[rows_key] for r in results))


def fold_results(results: list[dict], with_summary: bool) -> dict[str, Any]:
    """The stage counts (and `summary`) of the tasks' result rows, summed in slice order: the same numbers and
    key order whatever order the tasks finished in."""
    counts: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for row in sorted(results, key=lambda r: r["index"]):
        counts = add_counts(counts, json.loads(row["counts"]))
        summary = add_counts(summary, json.loads(row["summary"]))
    return {**finish_counts(counts), **({"summary": summary} if with_summary else {})}


def write_empty_outputs(output: str | Path) -> None:
    """The outputs of a stage whose input has no rows: one empty kept part and one empty `dropped/` part."""
    from tasks.common.shards import DOC_SCHEMA

    kept = DOC_SCHEMA.empty_table()
    dropped = DOC_SCHEMA.append(pa.field(DROP_REASON, pa.string())).empty_table()
    commit_parts(join(output, DROPPED), [write_part(dropped, join(output, DROPPED), 0)], 0)
    commit_parts(output, [write_part(kept, output, 0)], 0)


def map_to_shards(
    fn: BatchFn,
    input_dir: str | Path,
    output_dir: str | Path,
    *,
    fn_kwargs: dict | None = None,
    num_workers: int = 1,
    batch_size: int = 256,
    ray_address: str | None = None,
    columns: list[str] | None = None,
    summarize: SummarizeFn | None = None,
    unique_key: str | None = "id",
    slice_kwargs: Callable[[int], dict] | None = None,
) -> dict[str, Any]:
    """Map `fn` (which adds a `drop_reason` column, null = kept) over the shard folder on Ray; the workers
    write the kept rows to `output_dir` and the others to `output_dir/dropped/`, in input order, and the
    folder is committed by its manifest. Returns the stage counts (as `stage.split_and_write`), plus
    `summary`, the sum of `summarize(batch)` over every output batch, where given.

    Where the input has a `unique_key` column (the document `id`), a row whose key an earlier row has is
    not given to `fn`: it goes to `dropped/` with `drop_reason: duplicate_id` (`find_duplicates`). The
    driver holds one row per slice and one per duplicated key, never a document.

    `slice_kwargs(i)`, where given, adds JSON-able keyword arguments of `fn` for slice `i` only (for example
    the path of what a previous pass computed for that slice; the slices are `plan_slices(shards, num_workers)`)."""
    shards = list_shards(input_dir)
    prepare_output(output_dir)
    slices = plan_slices(shards, num_workers)
    if not slices:
        write_empty_outputs(output_dir)
        return {**finish_counts({}), **({"summary": {}} if summarize else {})}
    ensure_ray(ray_address)
    key = unique_key if unique_key in open_parquet(shards[0]).schema_arrow.names and (columns is None or unique_key in columns) else None
    first_of = find_duplicates(slices, shards, key, num_workers) if key else {}
    if first_of:
        log.warning("%s: %d ids occur more than once; every row after the first is dropped as %s", input_dir, len(first_of), DUPLICATE_ID)
    items = [{"index": i, "slice": json.dumps(s), **({"kwargs": json.dumps(slice_kwargs(i))} if slice_kwargs else {})}
             for i, s in enumerate(slices)]
    kwargs = {"fn": fn, "fn_kwargs": fn_kwargs or {}, "columns": columns, "batch_size": batch_size,
              "output": absolute(output_dir), "summarize": summarize, "key": key, "first_of": first_of,
              "shard_index": {str(path): i for i, path in enumerate(shards)}}
    results: list[dict] = []
    kept = 0
    progress = Progress(output_label(output_dir), total=sum(stop - start for s in slices for _, _, start, stop in s))
    for batch in run_tasks(write_slice, _slice_tasks(items), kwargs, num_workers, in_order=False):
        for row in batch.to_pylist():
            results.append(row)
            slice_counts = json.loads(row["counts"])
            kept += slice_counts.get("rows_kept", 0)
            progress.advance(slice_counts.get("rows_in", 0), kept=kept)
    progress.finish(kept=kept)
    commit_outputs(output_dir, results)
    return fold_results(results, with_summary=summarize is not None)


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
    if not items:
        return iter(())
    ensure_ray(ray_address)
    bounds = split_rows(len(items), num_workers * TASKS_PER_WORKER * 2)
    tasks = [pa.Table.from_pylist(list(items[start:stop])) for start, stop in bounds]
    return run_tasks(fn, tasks, fn_kwargs or {}, num_workers, batch_size)


def write_items(tasks: pa.Table, fn: BatchFn, fn_kwargs: dict, batch_size: int, output: str,
                summarize: SummarizeFn | None) -> pa.Table:
    """Task body of `map_items_to_shards`: `fn` of every `batch_size` work items of the task, the kept part and
    the `dropped/` part written here; one row back per task (part names and counts, never rows)."""
    rows = []
    for index, chunk in zip(tasks.column("index").to_pylist(), map(json.loads, tasks.column("items").to_pylist())):
        outputs = [fn(pa.Table.from_pylist(chunk[start:start + batch_size]), **fn_kwargs)
                   for start in range(0, len(chunk), batch_size)]
        table = pa.concat_tables(outputs, promote_options="default")
        kept, dropped = split_kept_dropped(table)
        rows.append({
            "index": index,
            "kept_part": write_part(kept, output, index),
            "dropped_part": write_part(dropped, join(output, DROPPED), index),
            "counts": json.dumps(split_counts(table, kept, dropped)),
            "summary": json.dumps(summarize(table) if summarize else {}),
        })
    return pa.Table.from_pylist(rows)


def map_items_to_shards(
    fn: BatchFn,
    items: Sequence[dict],
    output_dir: str | Path,
    *,
    fn_kwargs: dict | None = None,
    num_workers: int = 1,
    batch_size: int = 256,
    ray_address: str | None = None,
    summarize: SummarizeFn | None = None,
) -> dict[str, Any]:
    """`map_to_shards` over in-memory work items (JSON-able dicts, for example the files to read) instead of
    an input folder: about `TASKS_PER_WORKER` tasks per worker (at least one item each), each applying `fn` to
    `batch_size` items at a time (`fn` returns document rows with a `drop_reason` column) and writing its own
    kept and `dropped/` parts; the folder is committed by its manifest, in item order. Returns the counts
    (and `summary`, the sum of `summarize(batch)`, where given)."""
    prepare_output(output_dir)
    if not items:
        write_empty_outputs(output_dir)
        return {**finish_counts({}), **({"summary": {}} if summarize else {})}
    ensure_ray(ray_address)
    bounds = split_rows(len(items), num_workers * TASKS_PER_WORKER * 2)
    tasks = [{"index": i, "items": json.dumps(list(items[start:stop]))} for i, (start, stop) in enumerate(bounds)]
    kwargs = {"fn": fn, "fn_kwargs": fn_kwargs or {}, "batch_size": batch_size, "output": absolute(output_dir),
              "summarize": summarize}
    results: list[dict] = []
    kept = 0
    progress = Progress(output_label(output_dir), total=len(items), unit="items")
    for batch in run_tasks(write_items, _slice_tasks(tasks), kwargs, num_workers, in_order=False):
        for row in batch.to_pylist():
            results.append(row)
            kept += json.loads(row["counts"]).get("rows_kept", 0)
            progress.advance(bounds[row["index"]][1] - bounds[row["index"]][0], kept=kept)
    progress.finish(kept=kept)
    commit_outputs(output_dir, results)
    return fold_results(results, with_summary=summarize is not None)
