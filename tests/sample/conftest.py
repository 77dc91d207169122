"""Fixtures of the sample tests: document rows with chosen sizes written as shards, params with tracking off."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA
from tasks.config import load_params


def doc(doc_id: str, lang: str | None, size: int | None) -> dict:
    """A document row whose text is a placeholder: `sample` reads only id, lang and size_bytes."""
    return {"id": doc_id, "text": f"# {doc_id}\n", "repo": "repo", "path": f"{doc_id}.txt", "lang": lang, "doc_type": "code",
            "source": "test", "stars": 1, "commit_date": "2024-01-01", "size_bytes": size, "sha256": doc_id}


def write_docs(folder: Path, rows: list[dict], rows_per_shard: int = 1000, row_group_rows: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, max(1, len(rows)), rows_per_shard):
        pq.write_table(pa.Table.from_pylist(rows[i:i + rows_per_shard], schema=DOC_SCHEMA),
                       folder / f"part-{i // rows_per_shard:05d}.parquet", row_group_size=row_group_rows)
    return folder


@pytest.fixture
def params_for():
    def make(*overrides: str):
        return load_params("params.yaml", ["tracking.enabled=false", *overrides])
    return make
