"""Web pages in: Parquet/JSONL(.gz) files with a URL and a text column, turned into document rows.

Column names of the common web dumps are recognised (`url`/`text` as FineWeb and
opc-fineweb-code-corpus, `WARC-Target-URI`/`content` as CC WET extracts, `raw_content` as RedPajama).
Every record becomes one row, DOC_SCHEMA plus `url` and `drop_reason`: doc_type "text", source "web",
repo = the domain, path = the URL, lang null, id = `web_doc_id` (URL + content hash). Records that cannot
be used carry their reason (`undecodable`, `malformed_record`, `missing_url`, `empty_text`) and are never
scored; a record identical to an earlier one (same id) is dropped by the stage as `duplicate_id`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.shards import DOC_SCHEMA, MissingInputError
from tasks.recall.domains import domain_of

URL_COLUMNS = ("url", "URL", "WARC-Target-URI", "warc_target_uri", "uri", "link")
TEXT_COLUMNS = ("text", "content", "raw_content", "body")

WEB_SCHEMA = DOC_SCHEMA.append(pa.field("url", pa.string())).append(pa.field("drop_reason", pa.string()))
"""A web row: a document row plus its URL and why it cannot be used (null: usable)."""


def web_files(path: Path) -> list[Path]:
    """The Parquet/JSONL files of a file or folder, sorted."""
    if not path.exists():
        raise MissingInputError(f"recall.web_path '{path}' does not exist: set recall.web_path to a Parquet/JSONL file or folder")
    if path.is_file():
        return [path]
    suffixes = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz")
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))


def _first(record: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if record.get(name) is not None:
            return record[name]
    return None


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


def _jsonl_records(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        for num, line in enumerate(f, 1):
            if not line.strip():
                continue
            location = f"{path.name}:{num}"
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                yield make_web_row(None, None, "undecodable", location)
                continue
            except json.JSONDecodeError:
                yield make_web_row(None, None, "malformed_record", location)
                continue
            if not isinstance(record, dict):
                yield make_web_row(None, None, "malformed_record", location)
                continue
            yield web_row(_first(record, URL_COLUMNS), _first(record, TEXT_COLUMNS), location)


def _parquet_records(path: Path) -> Iterator[dict[str, Any]]:
    table = pq.read_table(path)
    names = table.column_names
    url_col = next((c for c in URL_COLUMNS if c in names), None)
    text_col = next((c for c in TEXT_COLUMNS if c in names), None)
    urls = table[url_col].to_pylist() if url_col else [None] * table.num_rows
    texts = table[text_col].to_pylist() if text_col else [None] * table.num_rows
    for num, (url, text) in enumerate(zip(urls, texts)):
        yield web_row(url, text, f"{path.name}:{num}")


def read_web(path: Path) -> pa.Table:
    """All records of the web input as one WEB_SCHEMA table (bad records carry a drop reason)."""
    rows: list[dict[str, Any]] = []
    for file in web_files(path):
        records = _parquet_records(file) if file.suffix == ".parquet" else _jsonl_records(file)
        rows.extend(records)
    return pa.Table.from_pylist(rows, schema=WEB_SCHEMA)
