"""Parquet shard folders: the one hand-over format between stages, on any filesystem pyarrow speaks.

A stage output folder holds Parquet shards of kept rows and a `dropped/` sub-folder of removed rows
(with `drop_reason`). Readers only look at top-level `*.parquet` files, so `dropped/` never leaks
downstream. Folders are URIs (`/local/path`, `s3://bucket/prefix`, ...) resolved by `filesystem`.

Two ways to write a folder atomically:
- `commit_parts` (workers write): every map task writes its own parts under content-addressed names
  (`part-<slice>-<sha256 prefix>.parquet`, so a re-run writes the same name for the same bytes and never
  rewrites a file an older manifest lists), each whole or not at all (a temporary name and a rename on a
  local disk, one upload on an object store); then the stage writes `_manifest.json` last, the same way,
  and deletes the parts no manifest lists and any temporary file a killed run left. `list_shards` reads the manifest where there is
  one, so a reader never sees a partial stage and a re-run never duplicates rows; nothing renames
  folders, which object storage cannot do.
- `atomic_dir` (one process writes, local disk only): shards go to a temporary sibling folder that is
  renamed over the target only when the stage finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
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


MANIFEST = "_manifest.json"
UNCOMMITTED_PART = re.compile(r"part-\d{5}-[0-9a-f]{16}\.parquet")
"""A worker-written part (`part_name`): in a folder without a manifest, the leftover of a stage killed before its commit."""
"""Written last into a folder whose parts workers wrote: the folder's committed parts, in order."""


def filesystem(uri: str | Path) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem of a URI (`s3://...`, `file://...`) or local path, and the path on it."""
    text = str(uri)
    if "://" in text:
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), os.path.abspath(text)


def is_uri(location: str | Path) -> bool:
    """Whether a stage location names an object store or another filesystem by scheme (`s3://...`)."""
    return "://" in str(location)


def absolute(location: str | Path) -> str:
    """A location as workers anywhere read it: a URI as given, a local path made absolute (a Ray worker's
    working directory is not the driver's)."""
    return str(location) if is_uri(location) else os.path.abspath(location)


def location(text: str) -> str | Path:
    """A command-line location: a URI stays a string (`Path` would fold `s3://b` into `s3:/b`), a local path
    becomes a `Path`."""
    return text if is_uri(text) else Path(text)


def location_name(location: str | Path) -> str:
    """The last component of a location (`s3://b/corpus/clean` -> `clean`)."""
    return str(location).rstrip("/").rsplit("/", 1)[-1]


def report_folder(output: str | Path, default_output: str | Path, default_reports: str | Path) -> Path:
    """Where a stage writes its report files (charts, tables), always on the local disk: `default_reports`
    for the pipeline's own output, `<output>.reports` next to any other local output, and
    `./<name>.reports` for an output on an object store."""
    if is_uri(output):
        return Path(f"{location_name(output)}.reports")
    if Path(output).resolve() == Path(default_output).resolve():
        return Path(default_reports)
    return Path(output).with_name(Path(output).name + ".reports")


def join(uri: str | Path, name: str) -> str:
    """`uri/name` for a URI or a local path."""
    text = str(uri)
    return f"{text.rstrip('/')}/{name}" if "://" in text else str(Path(text) / name)


def _missing(uri: str | Path) -> MissingInputError:
    return MissingInputError(f"input '{uri}' does not exist: run the stage that produces it first, or pass --input PATH")


def read_manifest(folder: str | Path) -> dict | None:
    """The folder's committed manifest, or None where workers did not write it."""
    return _manifest_at(*filesystem(folder))


def _manifest_at(fs: pafs.FileSystem, path: str) -> dict | None:
    try:
        with fs.open_input_stream(f"{path}/{MANIFEST}") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


def list_shards(folder: str | Path) -> list[str]:
    """Sorted top-level Parquet shards of a stage folder (never its `dropped/`): the parts its manifest
    lists where it has one, else every `*.parquet` file; a file is its own only shard. Local paths come back
    absolute (`absolute`), so a worker of any working directory reads them."""
    fs, path = filesystem(folder)
    try:
        info = fs.get_file_info(path)
    except OSError as exc:  # unreachable endpoint, no permission, bad bucket name
        raise MissingInputError(f"input '{folder}' cannot be read: {exc}") from None
    if info.type == pafs.FileType.NotFound:
        raise _missing(folder)
    if info.type == pafs.FileType.File:
        return [absolute(folder)]
    manifest = read_manifest(folder)
    if manifest is not None:
        return [join(absolute(folder), name) for name in manifest["parts"]]
    entries = fs.get_file_info(pafs.FileSelector(path))
    names = sorted(e.base_name for e in entries if e.type == pafs.FileType.File and e.base_name.endswith(".parquet"))
    if any(UNCOMMITTED_PART.match(name) for name in names):
        raise MissingInputError(f"input '{folder}' holds the parts of a stage that did not finish (no {MANIFEST}): "
                                "re-run the stage that writes it")
    return [join(absolute(folder), name) for name in names]


def prepare_output(folder: str | Path) -> None:
    """Create the output folder, or fail with one line naming it (a missing bucket, no permission) before
    any work is done."""
    fs, path = filesystem(folder)
    try:
        fs.create_dir(path, recursive=True)
    except OSError as exc:
        raise MissingInputError(f"output '{folder}' cannot be written: {str(exc).splitlines()[0]}") from None


def open_parquet(uri: str | Path) -> pq.ParquetFile:
    """A Parquet file on any filesystem."""
    fs, path = filesystem(uri)
    return pq.ParquetFile(path, filesystem=fs)


def count_rows(folder: str | Path) -> int:
    """Number of rows in a shard folder, read from Parquet footers only."""
    return sum(open_parquet(p).metadata.num_rows for p in list_shards(folder))


def read_table(folder: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All shards of a folder as one table (small data and tests; large data goes through the runner)."""
    shards = list_shards(folder)
    if not shards:
        return DOC_SCHEMA.empty_table() if columns is None else DOC_SCHEMA.empty_table().select(columns)
    return pa.concat_tables([open_parquet(p).read(columns=columns) for p in shards], promote_options="default")


def iter_batches(folder: str | Path, batch_size: int = 1024, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Stream a shard folder batch by batch without loading it all."""
    for shard in list_shards(folder):
        yield from open_parquet(shard).iter_batches(batch_size=batch_size, columns=columns)


@contextlib.contextmanager
def atomic_dir(target: str | Path, *, while_absent: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces `target` only if the block succeeds. `while_absent`, where
    given, runs after the previous `target` is moved away and before the new one is moved in (a companion file
    that must change with it: a reader or a kill in between finds no output)."""
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
    if while_absent:
        while_absent()
    tmp.rename(target)
    for previous in target.parent.glob(f".{target.name}.old-*"):  # this one, and any a killed run left
        shutil.rmtree(previous, ignore_errors=True)


@contextlib.contextmanager
def staged_output(output: str | Path) -> Iterator[str | Path]:
    """Where a stage whose output holds more than committed Parquet folders (token files, models, round
    folders) writes it: for a local output a fresh hidden sibling that replaces the output in one rename when
    the block succeeds (the staging folders of killed runs are removed first), so a reader or a kill sees the
    previous output or the new one, never a mix; an object store, where nothing renames, gets the output itself."""
    if is_uri(output):
        yield output
        return
    output = Path(output)
    for leftover in output.parent.glob(f".{output.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    with atomic_dir(output) as staging:
        yield staging


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (a temporary file renamed over `path` on a local disk; one upload on an object store)."""
    data = (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()
    if is_uri(path):
        fs, target = filesystem(path)
        _put(fs, target, data)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
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


def part_name(index: int, data: bytes) -> str:
    """Content-addressed name of part `index`: the same bytes always get the same name."""
    return f"part-{index:05d}-{hashlib.sha256(data).hexdigest()[:16]}.parquet"


def write_part(table: pa.Table, folder: str | Path, index: int) -> str:
    """Write one part of a folder (the worker side of `commit_parts`); return its name.

    A part already there under the same name has the same bytes and is left alone, so a re-run never
    rewrites a file that a committed manifest lists (a reader of it could see it half-written)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=ROW_GROUP_ROWS)
    data = sink.getvalue().to_pybytes()
    name = part_name(index, data)
    fs, path = filesystem(folder)
    target = f"{path}/{name}"
    if fs.get_file_info(target).size == len(data):
        return name
    fs.create_dir(path, recursive=True)
    _put(fs, target, data)
    return name


def _put(fs: pafs.FileSystem, target: str, data: bytes) -> None:
    """Write a file whole or not at all: on a local disk through a temporary name and a rename; an object
    store makes an object visible only once its upload completed."""
    if not isinstance(fs, pafs.LocalFileSystem):
        with fs.open_output_stream(target) as f:
            f.write(data)
        return
    folder, name = target.rsplit("/", 1)
    tmp = f"{folder}/.{name}.tmp-{uuid.uuid4().hex[:8]}"
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, target)


def commit_parts(folder: str | Path, parts: list[str], num_rows: int) -> None:
    """Commit a folder: write its manifest (the parts, in order) atomically, then delete every Parquet
    file it does not list (left by an earlier or killed run)."""
    fs, path = filesystem(folder)
    fs.create_dir(path, recursive=True)
    _put(fs, f"{path}/{MANIFEST}", json.dumps({"parts": parts, "num_rows": num_rows}, indent=1).encode())
    listed = set(parts)
    for entry in fs.get_file_info(pafs.FileSelector(path)):
        stale = entry.base_name.endswith(".parquet") and entry.base_name not in listed
        if entry.type == pafs.FileType.File and (stale or ".tmp-" in entry.base_name):
            fs.delete_file(entry.path)


def uncommit(folder: str | Path) -> None:
    """Remove a folder's manifest (if any): its parts are no output to a reader until the next `commit_parts`."""
    fs, path = filesystem(folder)
    with contextlib.suppress(FileNotFoundError):
        fs.delete_file(f"{path}/{MANIFEST}")


def upload_folder(local: str | Path, target: str | Path) -> None:
    """Copy a local folder's files to a location on any filesystem (`target/<relative path>`)."""
    fs, path = filesystem(target)
    fs.create_dir(path, recursive=True)
    pafs.copy_files(str(Path(local).resolve()), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def output_exists(location: str | Path) -> bool:
    """Whether a stage output (folder or file) is there before a run."""
    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def discard_unfinished(location: str | Path, existed: bool) -> None:
    """After a failed run: remove what it wrote that no reader may take for an output. An output that was
    not there before goes whole; in one that was, every Parquet file its folder's manifest does not list (a
    part of the failed run) and every temporary file goes, so the previous committed output stays as it was."""
    fs, path = filesystem(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        return
    if not existed:
        if info.type == pafs.FileType.Directory:
            fs.delete_dir(path)
        else:
            fs.delete_file(path)
        return
    if info.type != pafs.FileType.Directory:
        return
    files_by_folder: dict[str, list[pafs.FileInfo]] = {}
    for e in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        if e.type == pafs.FileType.File:
            files_by_folder.setdefault(e.path.rsplit("/", 1)[0], []).append(e)
    for folder, files in files_by_folder.items():
        manifest = _manifest_at(fs, folder)
        listed = set(manifest["parts"]) if manifest else None
        for e in files:
            unlisted = listed is not None and e.base_name.endswith(".parquet") and e.base_name not in listed
            orphan = listed is None and UNCOMMITTED_PART.fullmatch(e.base_name)
            if unlisted or orphan or ".tmp-" in e.base_name:
                fs.delete_file(e.path)
