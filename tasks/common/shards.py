"""Parquet shard folders: the one hand-over format between stages.

A stage output folder holds `part-NNNNN.parquet` shards of kept rows and a `dropped/` sub-folder of
removed rows (with `drop_reason`). Readers only look at top-level `*.parquet` files, so `dropped/`
never leaks downstream. Writes are atomic: shards go to a temporary sibling folder that is renamed
over the target only when the stage finished, so a killed stage leaves no half-written output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

DOC_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("lang", pa.string()),
        ("doc_type", pa.string()),
        ("source", pa.string()),
        ("stars", pa.int64()),
        ("commit_date", pa.string()),
        ("size_bytes", pa.int64()),
        ("sha256", pa.string()),
    ]
)
"""Columns every document row carries (DESIGN.md, data contracts); stages may add more."""

DROPPED = "dropped"
ROW_GROUP_ROWS = 10_000
"""Rows per Parquet row group of written shards: the unit the runner splits work by (`runner.plan_slices`)."""


class MissingInputError(FileNotFoundError):
    """An input folder or file does not exist; the message says which and what to run."""


def list_shards(folder: str | Path) -> list[Path]:
    """Sorted top-level Parquet shards of a stage folder (never its `dropped/`)."""
    folder = Path(folder)
    if not folder.exists():
        raise MissingInputError(
            f"input '{folder}' does not exist: run the stage that produces it first, or pass --input PATH"
        )
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.glob("*.parquet") if p.is_file())


def count_rows(folder: str | Path) -> int:
    """Number of rows in a shard folder, read from Parquet footers only."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in list_shards(folder))


def read_table(folder: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All shards of a folder as one table (small data and tests; large data goes through the runner)."""
    shards = list_shards(folder)
    if not shards:
        return DOC_SCHEMA.empty_table() if columns is None else DOC_SCHEMA.empty_table().select(columns)
    return pa.concat_tables(
        [pq.read_table(p, columns=columns) for p in shards], promote_options="default"
    )


def iter_batches(folder: str | Path, batch_size: int = 1024, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Stream a shard folder batch by batch without loading it all."""
    for shard in list_shards(folder):
        yield from pq.ParquetFile(shard).iter_batches(batch_size=batch_size, columns=columns)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


class ShardWriter:
    """Writes numbered shards of kept rows and of dropped rows into one (temporary) stage folder.

    Rows are buffered up to `rows_per_shard`; an empty stage still writes one empty shard so that
    the next stage can read the schema.
    """

    def __init__(self, folder: Path, rows_per_shard: int = 50_000, schema: pa.Schema | None = None):
        self.folder = Path(folder)
        self.rows_per_shard = rows_per_shard
        self.schema = schema
        self._parts: dict[str, list[pa.Table]] = {"kept": [], DROPPED: []}
        self._buffered = {"kept": 0, DROPPED: 0}
        self._num_shards = {"kept": 0, DROPPED: 0}
        self._schemas: dict[str, pa.Schema] = {}

    def write(self, table: pa.Table) -> None:
        self._add("kept", table)

    def write_dropped(self, table: pa.Table) -> None:
        self._add(DROPPED, table)

    def _add(self, kind: str, table: pa.Table) -> None:
        if table.num_rows == 0:
            self._schemas.setdefault(kind, table.schema)
            return
        self._parts[kind].append(table)
        self._buffered[kind] += table.num_rows
        if self._buffered[kind] >= self.rows_per_shard:
            self._flush(kind)

    def _flush(self, kind: str) -> None:
        parts = self._parts[kind]
        if not parts:
            return
        table = pa.concat_tables(parts, promote_options="default")
        folder = self.folder if kind == "kept" else self.folder / DROPPED
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"part-{self._num_shards[kind]:05d}.parquet", row_group_size=ROW_GROUP_ROWS)
        self._schemas[kind] = table.schema
        self._num_shards[kind] += 1
        self._parts[kind], self._buffered[kind] = [], 0

    def close(self) -> None:
        for kind in ("kept", DROPPED):
            self._flush(kind)
            if self._num_shards[kind] == 0:
                schema = self._schemas.get(kind) or self.schema or DOC_SCHEMA
                if kind == DROPPED and "drop_reason" not in schema.names:
                    schema = schema.append(pa.field("drop_reason", pa.string()))
                folder = self.folder if kind == "kept" else self.folder / DROPPED
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(schema.empty_table(), folder / "part-00000.parquet")
