"""Web pages in: Parquet/JSONL(.gz) files with a URL and a text column, turned into document rows.

Column names of the common web dumps are recognised (`url`/`text` as FineWeb and
opc-fineweb-code-corpus, `WARC-Target-URI`/`content` as CC WET extracts, `raw_content` as RedPajama).
Every record becomes one row, DOC_SCHEMA plus `url` and `drop_reason`: doc_type "text", source "web",
repo = the domain, path = the URL, lang null, id = `web_doc_id` (URL + content hash). Records that cannot
be used carry their reason (`undecodable`, `malformed_record`, `missing_url`, `empty_text`) and are never
scored; a record identical to an earlier one (same id) is dropped by the stage as `duplicate_id`.

Files are read by the ingest reader (`tasks/ingest/read.py`: `jsonl_lines`, `parquet_records`), one Ray task per
file (`read_web`); labelled seed and held-out files are read the same way with their `label` column.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.shards import DOC_SCHEMA, MissingInputError
from tasks.ingest.read import first, jsonl_lines, parquet_records
from tasks.recall.domains import domain_of

URL_COLUMNS = ("url", "URL", "WARC-Target-URI", "warc_target_uri", "uri", "link")
PAGE_TEXT_COLUMNS = ("text", "content", "raw_content", "body")
"""Column names of a page's URL and text, first match wins (a code table's are `read.TEXT_COLUMNS`)."""

WEB_SCHEMA = DOC_SCHEMA.append(pa.field("url", pa.string())).append(pa.field("drop_reason", pa.string()))
"""A web row: a document row plus its URL and why it cannot be used (null: usable)."""
LABELLED_SCHEMA = WEB_SCHEMA.append(pa.field("label", pa.int8()))
"""A web row of a labelled seed or held-out file: plus its label (1 code-related, 0 not, null none)."""


def web_files(path: Path) -> list[Path]:
    """The Parquet/JSONL files of a file or folder, sorted."""
    if not path.exists():
        raise MissingInputError(f"recall.web_path '{path}' does not exist: set recall.web_path to a Parquet/JSONL file or folder")
    if path.is_file():
        return [path]
    suffixes = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz")
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))


def web_row(url: Any, text: Any, location: str) -> dict[str, Any]:
    """One web record as a row; `location` (file:line) names records whose URL is missing."""
    reason = None
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            text, reason = None, "undecodable"
    if isinstance(url, bytes):
        url = url.decode("utf-8", "replace")
    if reason is None and text is not None and not isinstance(text, str):
        text, reason = None, "malformed_record"
    if isinstance(text, str):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text, reason = None, "undecodable"
    url = url.strip() if isinstance(url, str) else None
    if reason is None and not url:
        reason = "missing_url"
    if reason is None and (text is None or not text.strip()):
        reason = "empty_text"
    return make_web_row(url, text, reason, location)


def web_doc_id(url: str | None, sha256: str | None, location: str) -> str:
    """Id of a web row: hash of its URL (its location in the input when it has none) and its content's sha256,
    so two crawls of one URL with different text are two documents; only identical records share an id."""
    return hashlib.sha256(f"web|{url or location}|{sha256 or ''}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


def make_web_row(url: str | None, text: str | None, reason: str | None, location: str) -> dict[str, Any]:
    data = text.encode("utf-8") if text is not None else b""
    sha256 = hashlib.sha256(data).hexdigest() if text is not None else None
    return {
        "id": web_doc_id(url, sha256, location),
        "text": text, "repo": domain_of(url) if url else None, "path": url, "lang": None, "doc_type": "text",
        "source": "web", "stars": 0, "commit_date": None, "size_bytes": len(data),
        "sha256": sha256, "url": url, "drop_reason": reason,
    }


def jsonl_web_rows(path: Path, with_labels: bool) -> Iterator[dict[str, Any]]:
    """Web rows of a JSONL(.gz) file, read by the ingest reader (`read.jsonl_lines`), in line order."""
    for num, line in jsonl_lines(str(path)):
        if not line.strip():
            continue
        location = f"{path.name}:{num}"
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            yield labelled(make_web_row(None, None, "undecodable", location), None, with_labels)
            continue
        except json.JSONDecodeError:
            yield labelled(make_web_row(None, None, "malformed_record", location), None, with_labels)
            continue
        if not isinstance(record, dict):
            yield labelled(make_web_row(None, None, "malformed_record", location), None, with_labels)
            continue
        row = web_row(first(record, URL_COLUMNS), first(record, PAGE_TEXT_COLUMNS), location)
        yield labelled(row, record.get("label"), with_labels)


def parquet_web_rows(path: Path, with_labels: bool) -> Iterator[dict[str, Any]]:
    """Web rows of a Parquet file, read by the ingest reader (`read.parquet_records`): the URL and text are the
    first of `URL_COLUMNS` / `PAGE_TEXT_COLUMNS` the file has."""
    names = pq.ParquetFile(path).schema_arrow.names
    url_col = next((c for c in URL_COLUMNS if c in names), None)
    text_col = next((c for c in PAGE_TEXT_COLUMNS if c in names), None)
    wanted = tuple(c for c in (url_col, text_col, "label" if with_labels else None) if c)
    for num, record in enumerate(parquet_records(str(path), -1, wanted)):
        row = web_row(record.get(url_col), record.get(text_col), f"{path.name}:{num}")
        yield labelled(row, record.get("label"), with_labels)


def as_label(value: Any) -> int | None:
    """1 (code-related), 0 (not) or None (no usable label) from the label spellings seed files use."""
    if value in (1, True, "1", "code", "code_related", "__label__code"):
        return 1
    if value in (0, False, "0", "other", "not_code", "__label__other"):
        return 0
    return None


def labelled(row: dict[str, Any], label: Any, with_labels: bool) -> dict[str, Any]:
    return {**row, "label": as_label(label)} if with_labels else row


def read_web_files(batch: pa.Table, *, with_labels: bool = False) -> pa.Table:
    """Batch function (run on the workers): files (`location`) -> their web rows, in order."""
    rows: list[dict[str, Any]] = []
    for location in batch["location"].to_pylist():
        path = Path(location)
        rows.extend(parquet_web_rows(path, with_labels) if path.suffix == ".parquet" else jsonl_web_rows(path, with_labels))
    return pa.Table.from_pylist(rows, schema=LABELLED_SCHEMA if with_labels else WEB_SCHEMA)


def read_web(path: Path, *, with_labels: bool = False, num_workers: int = 1, ray_address: str | None = None) -> pa.Table:
    """All records of the web input as one WEB_SCHEMA table (bad records carry a drop reason), read on the
    workers, one task per file (`runner.map_items`); with `with_labels`, plus `label` (1, 0 or null)."""
    from tasks.common.runner import map_items

    files = [{"location": str(f)} for f in web_files(path)]
    tables = list(map_items(read_web_files, files, fn_kwargs={"with_labels": with_labels}, num_workers=num_workers,
                            batch_size=1, ray_address=ray_address))
    schema = LABELLED_SCHEMA if with_labels else WEB_SCHEMA
    return pa.concat_tables([t.cast(schema) for t in tables]) if tables else schema.empty_table()
