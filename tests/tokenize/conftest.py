"""Fixtures: a small Parquet corpus of DOC_SCHEMA rows built from installed Python sources."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA


def site_packages() -> Path:
    return next(Path(p) for p in sys.path if p.endswith("site-packages"))


def build_corpus(folder: Path, packages: tuple[str, ...], max_bytes: int, rows_per_shard: int = 400) -> Path:
    """Write `.py` files of `packages` (up to `max_bytes`) as DOC_SCHEMA shards into `folder`."""
    rows = []
    total = 0
    for pkg in packages:
        for f in sorted((site_packages() / pkg).rglob("*.py")):
            text = f.read_text(errors="replace")
            if total + len(text) > max_bytes:
                break
            total += len(text)
            digest = hashlib.sha256(text.encode()).hexdigest()
            rows.append({"id": digest[:16], "text": text, "repo": pkg, "path": str(f.relative_to(site_packages())),
                         "lang": "python", "doc_type": "code", "source": "test", "stars": 0, "commit_date": "",
                         "size_bytes": len(text.encode()), "sha256": digest})
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(rows), rows_per_shard):
        pq.write_table(pa.Table.from_pylist(rows[i : i + rows_per_shard], schema=DOC_SCHEMA), folder / f"part-{i // rows_per_shard:05d}.parquet")
    return folder


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("corpus") / "docs", ("requests", "urllib3", "idna"), 1_500_000)
