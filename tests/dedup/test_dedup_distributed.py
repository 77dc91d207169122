"""The distributed dedup passes against the single-process reference (`benchmarks/dedup_reference.py`, the
implementation they replaced): the same dropped ids, drop reasons, `duplicate_of`, counts and report at
file, repo and chunk level, on a corpus with exact and near duplicates, ties, null stars and dates, shared
paths and a repeated id; the rank key against the reference's ranks; a re-run with another slicing gives
the same answer."""

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA
from tasks.dedup.config import DedupConfig
from tasks.dedup.keys import key_name, rank_key
from tasks.dedup.report import summarize

from .test_dedup_plan import edited, long_text, plan_folder

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("dedup_reference", ROOT / "benchmarks" / "dedup_reference.py")
reference = sys.modules.setdefault("dedup_reference", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(reference)

CFG = DedupConfig()
STARS = [None, 0, 3, 3, 7]
DATES = [None, "", "2023-01-01", "2023-01-01", "2024-06-30T12:00:00", "2023-01-01T00:00:00"]


def corpus(num_docs: int = 72, seed: int = 0, repeat_an_id: bool = True) -> pa.Table:
    """Families of copies (exact, one-edit, many-edit) spread over repos that fork each other, with tied and
    null stars and dates, files sharing paths, a file with no repo, and one id repeated (the reference fails
    on a repeated id at repo level: the repo's partial signature can sit on the repeated row it drops)."""
    rng = np.random.default_rng(seed)
    bases = [long_text(500 + k, 900) for k in range(6)]
    rows = []
    for k in range(num_docs):
        family = int(rng.integers(len(bases)))
        kind = int(rng.integers(4))
        text = bases[family] if kind < 2 else edited(bases[family], 1 if kind == 2 else 40)
        if k % 17 == 5:
            text = bases[family] + "\n" + long_text(900 + k, 600)  # a new second chunk
        rows.append(dict(id=f"d{k:03d}", text=text, repo=None if k % 23 == 7 else f"org/r{k % 6}", path=f"src/m{family}.py",
                         lang=["python", "c", None][k % 3], doc_type="code", source=["gh", "mirror"][k % 2],
                         stars=STARS[int(rng.integers(len(STARS)))], commit_date=DATES[int(rng.integers(len(DATES)))],
                         size_bytes=len(text), sha256=None))
    if repeat_an_id:
        rows.append({**rows[3], "stars": 1000})  # the first row is the one planned
    return pa.Table.from_pylist(rows, schema=DOC_SCHEMA)


def write_folder(folder: Path, table: pa.Table, num_shards: int = 3) -> Path:
    folder.mkdir()
    step = -(-table.num_rows // num_shards)
    for s in range(num_shards):
        pq.write_table(table.slice(s * step, step), folder / f"part-{s:05d}.parquet", row_group_size=7)
    return folder


LEVELS = [
    CFG,
    dataclasses.replace(CFG, verify=False),
    dataclasses.replace(CFG, level="repo", num_perm=256, bands=32, rows=8),
    dataclasses.replace(CFG, level="chunk", chunk_tokens=1000),
    dataclasses.replace(CFG, exact=False),
]


@pytest.mark.parametrize("cfg", LEVELS, ids=["file", "file-unverified", "repo", "chunk", "near-only"])
def test_distributed_passes_decide_as_the_reference(tmp_path, cfg):
    folder = write_folder(tmp_path / "input", corpus(repeat_an_id=cfg.level != "repo"))
    expected = reference.reference_plan(folder, cfg)
    got = plan_folder(folder, cfg)
    assert expected.decisions, "the fixture has duplicates"
    assert {r for r, _ in expected.decisions.values()} >= ({"near_duplicate"} if not cfg.exact else {"exact_duplicate", "near_duplicate"})
    assert got.decisions == expected.decisions
    assert got.stats == expected.stats
    meta = reference.meta_dict(reference.read_meta(folder))
    flagged = reference.guardrail(meta, expected.decisions, cfg)
    assert got.flagged == flagged
    assert summarize(cfg, got.stats, got.clusters, got.by_lang, got.flagged) == reference.summarize(expected, meta, cfg, flagged)


def test_a_rerun_with_another_slicing_decides_the_same(tmp_path):
    folder = write_folder(tmp_path / "input", corpus(seed=3), num_shards=2)
    first = plan_folder(folder, CFG, num_workers=1)
    (tmp_path / "scratch").rename(tmp_path / "scratch-1")
    again = plan_folder(folder, CFG, num_workers=3)
    assert first.decisions == again.decisions and first.stats == again.stats and first.clusters == again.clusters


def test_rank_key_orders_as_the_reference_ranks_with_ties_and_nulls():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = 40
        stars = [STARS[i] for i in rng.integers(len(STARS), size=n)] + [2**62, -3]
        dates = [DATES[i] for i in rng.integers(len(DATES), size=n)] + ["2025-01-01", None]
        ids = [f"u{int(i)}" for i in rng.permutation(n)] + ["z/ü", "a#10"]
        rank = reference.keep_rank(stars, dates, ids)
        keys = [rank_key(s, d, i) for s, d, i in zip(stars, dates, ids)]
        assert sorted(range(len(ids)), key=keys.__getitem__) == list(np.argsort(rank))
        assert [key_name(k) for k in keys] == ids
