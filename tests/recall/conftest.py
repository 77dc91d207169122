"""Fixtures for the recall tests: small planted web corpora and repository rows built in tmp_path."""

from __future__ import annotations

import gzip
import json
import random
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA
from tasks.config import ComputeConfig, TrackingConfig
from tasks.recall import corpus
from tasks.recall.config import RecallConfig

PLANTED_CODE = ("devanswers.net", "pyforum.dev")
PLANTED_PROSE = ("gardenweekly.com", "citynews-daily.com", "recipesathome.net")


def planted_pages(seed: int = 0) -> list[dict]:
    """Pages of two planted code domains (code Q&A; conceptual questions) and three prose domains."""
    rng = random.Random(seed)
    snippets = corpus.stdlib_functions(["textwrap", "shlex", "fnmatch", "glob", "colorsys", "statistics", "heapq", "bisect"])
    pages = []
    for k, snippet in enumerate(snippets[:60]):
        _, text = corpus.qa_page(rng, snippet)
        pages.append({"url": f"https://devanswers.net/q/{k}", "text": text})
    for k in range(40):
        _, text = corpus.concept_question(rng)
        pages.append({"url": f"https://pyforum.dev/q/{k}/topic", "text": text})
    for domain, topic in zip(PLANTED_PROSE, ("gardening", "news", "cooking")):
        for k in range(50):
            _, text = corpus.prose_page(rng, topic)
            pages.append({"url": f"https://www.{domain}/{k}", "text": text})
    rng.shuffle(pages)
    return pages


def write_jsonl(path: Path, rows: list[dict], raw_lines: list[bytes] = ()) -> Path:
    with open(path, "wb") as f:
        for row in rows:
            f.write(json.dumps(row).encode() + b"\n")
        for line in raw_lines:
            f.write(line + b"\n")
    return path


def repo_rows() -> pa.Table:
    """A small ingest-like folder: code files, a README, a code-ish notes file and a prose text file."""
    files = [
        ("demo", "src/app.py", "def main():\n    return 1\n"),
        ("demo", "README.md", "# demo\n\nInstall with `pip install demo` and run:\n\n```python\nimport demo\ndemo.main()\n```\n"),
        ("demo", "docs/usage.rst", "Usage\n=====\n\nCall ``demo.main()`` from Python:\n\n    >>> import demo\n    >>> demo.main()\n    1\n"),
        ("demo", "poem.txt", "The garden was quiet in the morning and the roses were fragrant after the rain."),
        ("other", "lib/util.js", "function add(a, b) { return a + b; }\n"),
    ]
    rows = [{"id": f"r{i}", "text": t, "repo": r, "path": p, "lang": None, "doc_type": None, "source": "local",
             "stars": 0, "commit_date": None, "size_bytes": len(t.encode()) * 400, "sha256": None}
            for i, (r, p, t) in enumerate(files)]
    return pa.Table.from_pylist(rows, schema=DOC_SCHEMA)


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ingest"
    folder.mkdir()
    pq.write_table(repo_rows(), folder / "part-00000.parquet")
    return folder


@pytest.fixture
def web_file(tmp_path: Path) -> Path:
    """Planted pages plus one of each kind of bad record."""
    bad = [
        json.dumps({"url": "https://devanswers.net/q/empty", "text": "   "}).encode(),
        json.dumps({"text": "def f():\n    return 1\n"}).encode(),
        b'{"url": "https://pyforum.dev/q/latin1", "text": "caf\xe9"}',
        b"{not json",
    ]
    return write_jsonl(tmp_path / "web.jsonl", planted_pages(), bad)


@pytest.fixture
def planted() -> list[dict]:
    return planted_pages()


@pytest.fixture
def params_factory(tmp_path: Path):
    """A stand-in for `Params` with the sections the recall stage reads (checkpoints under tmp_path)."""

    def make(**recall) -> types.SimpleNamespace:
        cfg = RecallConfig(checkpoint_dir=str(tmp_path / "ckpt"), **recall)
        return types.SimpleNamespace(recall=cfg, compute=ComputeConfig(num_workers=2, batch_size=64),
                                     tracking=TrackingConfig(enabled=False))

    return make
