"""Read listed files and tables into document rows: pure batch functions mapped on Ray by the stage.

`read_files(batch, max_file_bytes)` takes a table of file descriptors (`listing.FILE_KEYS`) and returns
one document row per file; `read_tables(batch, max_file_bytes)` takes table descriptors
(`listing.TABLE_KEYS`) and returns one row per record of each Parquet row group or JSONL file.
Output columns are `OUTPUT_SCHEMA`: `DOC_SCHEMA`, `source_lang` (a language column of a table source)
and `drop_reason` (null = kept). Nothing raises on bad input; it becomes a dropped row:

- `empty`: no bytes, or only whitespace;
- `binary`: a NUL byte in the first `BINARY_SNIFF_BYTES`;
- `undecodable`: not valid UTF-8;
- `oversized`: larger than `max_file_bytes` (a file is not even read);
- `unreadable`: an I/O error (missing, permission) or not a regular file (a folder, a FIFO);
- `missing_text`: a table record without text;
- `corrupt_file`: a Parquet/JSONL file (path = the file) or JSONL line (path = `file:line`) that does not parse.

`lang` and `doc_type` stay null: the clean stage routes languages.

This module is the one reader of Parquet/JSONL inputs: `parquet_records` (the records of a Parquet file or row
group, only the columns asked for) and `jsonl_lines` (the lines of a JSONL(.gz) file) are also what the recall
stage reads web pages with (`tasks/recall/web.py`, which maps records to web rows with its own ids and reasons).

Ids (`doc_id`) hash source, repository, path and the row's version: the input's `blob_id` (The Stack v2;
`hexsha` in v1) when it has one, else the sha256 of the content, else (a row whose content is unknown) its
location in the input. Several versions of one `(repo, path)` (commits of one file in a Stack dump) are
therefore distinct rows with distinct ids; only byte-identical records of one file share an id.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from tasks.common.shards import DOC_SCHEMA, filesystem, open_parquet

OUTPUT_SCHEMA = DOC_SCHEMA.append(pa.field("source_lang", pa.string())).append(pa.field("drop_reason", pa.string()))
"""Rows the reader emits: document columns, the source's own language label, and the drop reason."""
BINARY_SNIFF_BYTES = 8192
"""How much of a file is searched for NUL bytes (git and The Stack use the same heuristic)."""
TABLE_SOURCE = "stack"
INT64_MAX = 2**63 - 1

TEXT_COLUMNS = ("content", "text")
REPO_COLUMNS = ("repo_name", "max_stars_repo_name", "repo")
PATH_COLUMNS = ("path", "max_stars_repo_path")
LANG_COLUMNS = ("language", "gha_language", "lang")
STARS_COLUMNS = ("star_events_count", "max_stars_count", "stars")
DATE_COLUMNS = ("revision_date", "committer_date", "commit_date")
BLOB_COLUMNS = ("blob_id", "hexsha")
"""Column names accepted from The Stack v2, The Stack v1 and our own document schema, first match wins."""
ALL_COLUMNS = TEXT_COLUMNS + REPO_COLUMNS + PATH_COLUMNS + LANG_COLUMNS + STARS_COLUMNS + DATE_COLUMNS + BLOB_COLUMNS


def doc_id(source: str, repo: str, path: str, version: str) -> str:
    """Stable document id: the first 16 hex digits of sha256(source|repo|path|version).

    `version` is what tells versions of one file apart: the blob id, else the content's sha256, else the
    record's location in the input (see the module docstring).
    """
    return hashlib.sha256(f"{source}|{repo}|{path}|{version}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


def decode(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) for usable content, else (None, drop reason)."""
    if not data.strip():
        return None, "empty"
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None, "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "undecodable"


def make_row(
    *, source: str, repo: str, path: str, text: str | None = None, stars: int | None = 0, commit_date: str | None = None,
    size_bytes: int | None = None, sha256: str | None = None, source_lang: str | None = None, drop_reason: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """A reader row; `version` defaults to the content's sha256 (empty when the content is unknown)."""
    return {
        "id": doc_id(source, repo, path, version or sha256 or ""), "text": text, "repo": repo, "path": path, "lang": None, "doc_type": None,
        "source": source, "stars": stars, "commit_date": commit_date or None, "size_bytes": size_bytes,
        "sha256": sha256, "source_lang": source_lang, "drop_reason": drop_reason,
    }


def content_fields(data: bytes, max_file_bytes: int) -> dict[str, Any]:
    """text / size / sha256 / drop_reason of raw content (the sha256 of kept text is that of its UTF-8 bytes)."""
    if len(data) > max_file_bytes:
        return {"text": None, "size_bytes": len(data), "sha256": None, "drop_reason": "oversized"}
    text, reason = decode(data)
    return {"text": text, "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "drop_reason": reason}


def read_file(location: str | bytes, max_file_bytes: int) -> dict[str, Any]:
    """Content fields of one file; oversized files are not read, I/O errors become `unreadable`."""
    try:
        info = os.stat(location)
        if not stat.S_ISREG(info.st_mode):  # a folder, FIFO or device is never read
            raise IsADirectoryError(location)
        size = info.st_size
        if size > max_file_bytes:
            return {"text": None, "size_bytes": size, "sha256": None, "drop_reason": "oversized"}
        with open(location, "rb") as f:
            data = f.read(max_file_bytes + 1)
    except OSError:
        return {"text": None, "size_bytes": None, "sha256": None, "drop_reason": "unreadable"}
    return content_fields(data, max_file_bytes)


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)


def read_files(batch: pa.Table, max_file_bytes: int) -> pa.Table:
    """Batch function: file descriptors -> document rows (one per descriptor, in order)."""
    rows = []
    for d in batch.to_pylist():
        rows.append(make_row(
            source=d["source"], repo=d["repo"], path=d["path"], stars=d["stars"], commit_date=d["commit_date"],
            **read_file(bytes.fromhex(d["location_hex"]) if d.get("location_hex") else d["location"], max_file_bytes),
        ))
    return to_table(rows)


def first(record: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The value of the first of `names` present (and non-null) in the record."""
    for name in names:
        if record.get(name) is not None:
            return record[name]
    return None


def as_date(value: Any) -> str | None:
    """ISO 8601 string of a date-like value (datetimes in UTC), None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def as_stars(value: Any) -> int:
    """A star count as a non-negative int64 (0 when absent or not a number)."""
    try:
        return min(max(int(value), 0), INT64_MAX)
    except (TypeError, ValueError, OverflowError):
        return 0


def as_str(value: Any) -> str | None:
    """A label as valid UTF-8 text (JSON may carry lone surrogates; they become `\\xNN` escapes)."""
    if value is None:
        return None
    return str(value).encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")


def record_row(record: dict[str, Any], fallback_repo: str, fallback_path: str, max_file_bytes: int) -> dict[str, Any]:
    """One document row from a table record with The Stack's (or our) column names.

    `fallback_path` (`file:line`, `file#group:index`) locates the record; it is the path when the record has
    none and the id's version when the record has neither a blob id nor content.
    """
    repo = first(record, REPO_COLUMNS)
    blob_id = first(record, BLOB_COLUMNS)
    path = first(record, PATH_COLUMNS) or blob_id or fallback_path
    lang = first(record, LANG_COLUMNS)
    common = {
        "source": TABLE_SOURCE, "repo": as_str(repo) if repo is not None else fallback_repo, "path": as_str(path),
        "stars": as_stars(first(record, STARS_COLUMNS)), "commit_date": as_str(as_date(first(record, DATE_COLUMNS))),
        "source_lang": as_str(lang),
    }
    text = first(record, TEXT_COLUMNS)
    if isinstance(text, str):
        data = text.encode("utf-8", "surrogatepass")
    elif isinstance(text, (bytes, bytearray)):
        data = bytes(text)
    else:
        return make_row(**common, drop_reason="missing_text", version=as_str(blob_id) or fallback_path)
    version = as_str(blob_id) or hashlib.sha256(data).hexdigest()  # also for oversized content (sha256 column null)
    return make_row(**common, **content_fields(data, max_file_bytes), version=version)


def corrupt_row(location: str, path: str) -> dict[str, Any]:
    """The dropped row that stands for a file (or line) that does not parse."""
    return make_row(source=TABLE_SOURCE, repo=Path(location).name, path=path, stars=0, drop_reason="corrupt_file")


def parquet_records(location: str, row_group: int, columns: tuple[str, ...] = ALL_COLUMNS) -> list[dict[str, Any]]:
    """Records of one row group (or of the whole file when -1), only those of `columns` the file has."""
    pf = open_parquet(location)
    names = [n for n in pf.schema_arrow.names if n in columns]
    table = pf.read(columns=names) if row_group < 0 else pf.read_row_group(row_group, columns=names)
    return table.to_pylist()


def read_parquet_part(location: str, row_group: int, max_file_bytes: int) -> list[dict[str, Any]]:
    try:
        records = parquet_records(location, row_group)
    except FileNotFoundError:
        return [make_row(source=TABLE_SOURCE, repo=Path(location).name, path=location, stars=0, drop_reason="unreadable")]
    except Exception:  # pyarrow raises several types for damaged files
        return [corrupt_row(location, location)]
    stem = Path(location).name
    suffix = f"#{row_group}" if row_group >= 0 else ""
    return [record_row(r, stem, f"{location}{suffix}:{i}", max_file_bytes) for i, r in enumerate(records)]


def jsonl_lines(location: str) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw bytes) of every line of a JSONL file, gzip-compressed when its name ends in .gz."""
    fs, path = filesystem(location)
    with fs.open_input_file(path) as raw:
        lines = gzip.open(raw) if location.lower().endswith(".gz") else io.BufferedReader(raw)
        yield from enumerate(lines, start=1)


def read_jsonl(location: str, max_file_bytes: int) -> list[dict[str, Any]]:
    """Rows of a JSONL file: a line that is not a JSON object is one `corrupt_file` row (`file:line`)."""
    rows = []
    stem = Path(location).name
    try:
        for lineno, line in jsonl_lines(location):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                rows.append(corrupt_row(location, f"{location}:{lineno}"))
                continue
            rows.append(record_row(record, stem, f"{location}:{lineno}", max_file_bytes))
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        rows.append(make_row(source=TABLE_SOURCE, repo=stem, path=location, stars=0, drop_reason="unreadable"))
    except (OSError, EOFError):  # a damaged gzip stream: what was read stays, the file is one corrupt row
        rows.append(corrupt_row(location, location))
    return rows


def read_tables(batch: pa.Table, max_file_bytes: int) -> pa.Table:
    """Batch function: table descriptors -> document rows (one per record, plus corrupt/unreadable rows)."""
    rows: list[dict[str, Any]] = []
    for d in batch.to_pylist():
        if d["format"] == "parquet":
            rows += read_parquet_part(d["location"], int(d["row_group"]), max_file_bytes)
        else:
            rows += read_jsonl(d["location"], max_file_bytes)
    return to_table(rows)
