"""Fixtures: params with tracking off and every path under tmp_path, and document rows from literal texts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA
from tasks.config import load_params


def doc(text: str, *, lang: str = "python", path: str | None = None, repo: str = "repo", size: int | None = None) -> dict:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {"id": digest[:16], "text": text, "repo": repo, "path": path or f"{digest[:8]}.py", "lang": lang,
            "doc_type": "code", "source": "test", "stars": 1, "commit_date": "2024-01-01",
            "size_bytes": len(text.encode()) if size is None else size, "sha256": digest}


def write_docs(folder: Path, rows: list[dict], rows_per_shard: int = 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, max(1, len(rows)), rows_per_shard):
        pq.write_table(pa.Table.from_pylist(rows[i:i + rows_per_shard], schema=DOC_SCHEMA), folder / f"part-{i // rows_per_shard:05d}.parquet")
    return folder


@pytest.fixture
def params_for(tmp_path):
    """load_params('params.yaml') with tracking off, the teacher cache and decontaminate parts under tmp_path."""
    def make(*overrides: str):
        parts = {"pretrain": "sample", "algorithmic": "curate/algorithmic", "synthetic": "curate/synthetic",
                 "sft_stage1": "curate/sft_stage1", "sft_stage2": "curate/sft_stage2"}
        parts_yaml = "{" + ", ".join(f"{k}: {tmp_path / v}" for k, v in parts.items()) + "}"
        return load_params("params.yaml", ["tracking.enabled=false", f"curate.teacher.cache_dir={tmp_path / 'cache'}",
                                           f"decontaminate.parts={parts_yaml}", "curate.mbpp_train=false", *overrides])
    return make


@pytest.fixture(scope="session")
def site_python() -> list[tuple[str, str]]:
    """(path, text) of the installed sources of a few packages that contain no benchmark code."""
    import sys

    root = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    files = []
    for pkg in ("requests", "urllib3", "idna", "jinja2", "markupsafe", "yaml", "rich", "pygments/lexers"):
        files += [(str(f.relative_to(root)), f.read_text(errors="replace")) for f in sorted((root / pkg).rglob("*.py"))]
    return files
