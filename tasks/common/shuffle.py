"""A partitioned shuffle on plain Ray tasks: map tasks split their rows into P partitions, reduce tasks take one
partition from every map task, and the driver holds only object refs (O(tasks x partitions)), never rows.

    tasks = Tasks.on_ray()                     # or Tasks.in_process() (tests, tiny inputs)
    parts = [tasks.submit(split_fn, x, returns=P) for x in inputs]          # per input, P refs
    out = [tasks.submit(reduce_fn, *column(parts, p)) for p in range(P)]    # partition p of every input
    tasks.get(counts)                                                        # only small results come back

A task body is a plain function of tables that returns a table, a tuple (`returns` > 1) or a small dict; on
Ray each result is its own object in the object store (`num_returns`), passed to the next task as a top-level
argument (Ray resolves it on the worker). Lost tasks are retried by Ray (a node that dies mid-stage).
`partition_table` and `hash_partitions` / `string_partitions` cut a table by a stable hash, so every re-run
puts every row in the same partition (deterministic outputs).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

_MIX = np.uint64(0x9E3779B97F4A7C15)


class Tasks:
    """Runs task bodies as Ray tasks (one CPU each), or directly in this process when `ray` is False."""

    def __init__(self, ray: bool):
        self.ray = ray

    @classmethod
    def on_ray(cls) -> Tasks:
        return cls(True)

    @classmethod
    def in_process(cls) -> Tasks:
        return cls(False)

    def submit(self, fn: Callable, *args: Any, returns: int = 1) -> list:
        """Start `fn(*args)`; a list of `returns` handles (Ray object refs, or the values themselves). A task
        body with `returns` > 1 returns a tuple of that many values."""
        if not self.ray:
            value = _call(fn, returns, *args)
            return list(value) if returns > 1 else [value]
        refs = _remote_call().options(num_returns=returns).remote(fn, returns, *args)
        return list(refs) if returns > 1 else [refs]

    def get(self, handles: Sequence) -> list:
        """The values of handles (small results only: counts, aggregates)."""
        if not self.ray:
            return list(handles)
        import ray

        return ray.get(list(handles))


def _call(fn: Callable, returns: int, *args: Any) -> Any:
    """`fn(*args)`, a one-value tuple unwrapped where one value is expected (a split into one partition)."""
    value = fn(*args)
    if returns == 1 and isinstance(value, tuple):
        (value,) = value
    return value


@lru_cache(maxsize=None)
def _remote_call():
    import ray

    return ray.remote(num_cpus=1)(_call)


def column(handles: Sequence[Sequence], index: int) -> list:
    """Handle `index` of every task's outputs (partition `index` of every map task)."""
    return [h[index] for h in handles]


def partition_table(table: pa.Table, parts: np.ndarray, num_partitions: int) -> list[pa.Table]:
    """The rows of `table` cut into `num_partitions` tables by `parts` (a partition index per row), each
    keeping the rows' order."""
    order = np.argsort(parts, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(parts, minlength=num_partitions))])
    ordered = table.take(pa.array(order, pa.int64())) if table.num_rows else table
    return [ordered.slice(int(bounds[p]), int(bounds[p + 1] - bounds[p])) for p in range(num_partitions)]


def hash_partitions(values: np.ndarray, num_partitions: int) -> np.ndarray:
    """Partition index of each 64-bit integer (mixed, so sequential values spread)."""
    with np.errstate(over="ignore"):
        mixed = (np.asarray(values, dtype=np.uint64) * _MIX) >> np.uint64(33)
    return (mixed % np.uint64(num_partitions)).astype(np.int64)


def string_partitions(values: Sequence[str | bytes | None], num_partitions: int) -> np.ndarray:
    """Partition index of each string (CRC32 of its UTF-8 bytes; the same in every process)."""
    crc = np.fromiter((zlib.crc32(v.encode("utf-8", "surrogatepass") if isinstance(v, str) else (v or b""))
                       for v in values), dtype=np.uint64, count=len(values))
    return hash_partitions(crc, num_partitions)


def concat(tables: Sequence[pa.Table], schema: pa.Schema | None = None) -> pa.Table:
    """One table of the partitions (an empty one of `schema` when there are none)."""
    tables = [t for t in tables if t is not None]
    if not tables:
        return schema.empty_table() if schema is not None else pa.table({})
    return pa.concat_tables(tables, promote_options="default")
