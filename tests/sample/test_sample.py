"""Language sampling: caps as corpus shares or bytes, seeded and id-based; the distributed rule (histograms,
boundary bucket, threshold key) keeps exactly the documents the single-process rule kept; the stage conserves
rows on Ray and reports."""

from __future__ import annotations

import random

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import read_table
from tasks.common.tracking import NullTracker
from tasks.sample import ranking, stage
from tasks.sample.config import SampleConfig
from tasks.sample.stage import find_thresholds, language_caps

from .conftest import doc, write_docs
from .reference import sampled_out_ids


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "lang", "size_bytes"])


def distributed_out_ids(rows: list[dict], cfg: SampleConfig, batch_rows: int = 37, passes: list | None = None) -> set[str]:
    """The stage's rule run in this process over batches of `batch_rows` rows, as the workers would run it."""
    table = pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.string()), ("lang", pa.string()), ("size_bytes", pa.int64())]))
    batches = [table.slice(i, batch_rows) for i in range(0, table.num_rows, batch_rows)]

    def run_pass(fn, kwargs):
        outputs = [fn(b, **kwargs) for b in batches]
        if passes is not None:
            passes.append((fn.__name__, sum(t.num_rows for t in outputs)))
        return outputs

    _, _, thresholds = find_thresholds(run_pass, cfg)
    out: set[str] = set()
    for b in batches:
        mask = ranking.sampled_out_mask(b, cfg.seed, thresholds)
        out |= {i for i, m in zip(b["id"].to_pylist(), mask) if m}
    return out


def two_languages(num_java: int = 50, num_python: int = 50) -> list[dict]:
    return [doc(f"j{i}", "java", 100) for i in range(num_java)] + [doc(f"p{i}", "python", 100) for i in range(num_python)]


def mixed_corpus(seed: int, n: int = 1500) -> list[dict]:
    """Several capped languages (by share, by bytes, a cap of 0, one under its cap, one absent), uncapped and
    null languages, null, zero and many equal sizes."""
    rng = random.Random(seed)
    langs = ["java", "html", "go", "rust", "python", None]
    rows = []
    for i in range(n):
        lang = rng.choices(langs, weights=[5, 3, 1, 1, 4, 1])[0]
        size = rng.choice([None, 0, 100, 100, 100, 250, rng.randint(1, 5000)])
        rows.append(doc(f"d{seed}-{i:05d}", lang, size))
    return rows


CAPPED = dict(caps={"java": 0.1, "rust": 0.9, "kotlin": 0.01}, caps_bytes={"html": 20_000, "go": 0, "java": 10**9})


def exact_cap_for(rows: list[dict], lang: str, keep: int, seed: int) -> int:
    """A byte cap equal to the running total of `lang`'s first `keep` documents in rank order (the boundary case
    `running total == cap`, which is kept)."""
    ranked = sorted((ranking.priority(r["id"], seed), r["id"], r["size_bytes"] or 0) for r in rows if r["lang"] == lang)
    return sum(size for *_, size in ranked[:keep])


def test_a_language_over_its_share_is_cut_to_the_cap_and_others_are_untouched():
    for rule in (sampled_out_ids, distributed_out_ids):
        rows = two_languages()
        out = rule(frame(rows) if rule is sampled_out_ids else rows, SampleConfig(caps={"java": 0.2}))
        assert len(out) == 30 and all(i.startswith("j") for i in out)  # 20% of 10,000 bytes = 20 java files kept


def test_a_language_under_its_cap_is_kept_whole():
    assert distributed_out_ids(two_languages(5, 95), SampleConfig(caps={"java": 0.2})) == set()


def test_byte_caps_and_the_smaller_of_two_caps_wins():
    assert language_caps({"java": 5000, "python": 5000}, SampleConfig(caps={"java": 0.2}, caps_bytes={"java": 1000})) == {"java": 1000}
    assert len(distributed_out_ids(two_languages(), SampleConfig(caps={}, caps_bytes={"java": 1000}))) == 40


def test_choice_is_reproducible_by_seed_and_independent_of_row_order():
    cfg = SampleConfig(caps={"java": 0.2}, seed=7)
    rows = two_languages()
    first = distributed_out_ids(rows, cfg)
    assert distributed_out_ids(random.Random(3).sample(rows, len(rows)), cfg, batch_rows=11) == first
    assert distributed_out_ids(rows, SampleConfig(caps={"java": 0.2}, seed=8)) != first


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distributed_rule_keeps_exactly_what_the_single_process_rule_kept(seed):
    rows = mixed_corpus(seed)
    cfg = SampleConfig(caps=CAPPED["caps"], caps_bytes={**CAPPED["caps_bytes"], "python": exact_cap_for(rows, "python", 200, seed)},
                       seed=seed)
    expected = sampled_out_ids(frame(rows), cfg)
    assert distributed_out_ids(rows, cfg) == expected
    langs = {r["id"]: r["lang"] for r in rows}
    assert {langs[i] for i in expected} == {"java", "html", "go", "python"}  # rust is under its cap, kotlin absent
    python_out = sorted((ranking.priority(i, seed), i) for i in expected if langs[i] == "python")
    python_all = sorted((ranking.priority(r["id"], seed), r["id"]) for r in rows if r["lang"] == "python")
    assert python_out == python_all[200:]  # a running total equal to the cap is kept; the rest is a suffix


def test_ties_in_priority_and_full_buckets_narrow_to_the_same_choice(monkeypatch):
    """Eight distinct priorities (every bucket of every pass is full, ties broken by id) and buckets of at most
    5 files: extra histogram passes down to the last priority bit, and the same documents as the reference,
    also where the running total equals the cap inside the boundary bucket."""
    real = ranking.priority
    monkeypatch.setattr(ranking, "priority", lambda doc_id, seed: (real(doc_id, seed) % 8) << 61)
    monkeypatch.setattr(stage, "MAX_BOUNDARY_ROWS", 5)
    rows = mixed_corpus(4, n=600)
    cfg = SampleConfig(caps={"java": 0.15}, caps_bytes={"go": 0, "python": exact_cap_for(rows, "python", 90, 4)}, seed=4)
    passes: list = []
    assert distributed_out_ids(rows, cfg, passes=passes) == sampled_out_ids(frame(rows), cfg) != set()
    names = [name for name, _ in passes]
    assert names == ["language_histograms"] * 4 + ["boundary_rows"]  # 16, 32, 48 and 64 bits
    python = sorted((ranking.priority(r["id"], 4), r["id"]) for r in rows if r["lang"] == "python")
    assert {i for _, i in python[90:]} <= sampled_out_ids(frame(rows), cfg)


def test_the_driver_fetches_one_bounded_bucket_of_rows_per_capped_language():
    rows = [doc(f"j{i}", "java", 10) for i in range(3000)] + [doc(f"p{i}", "python", 10) for i in range(3000)]
    passes: list = []
    out = distributed_out_ids(rows, SampleConfig(caps={"java": 0.25}), batch_rows=500, passes=passes)
    assert len(out) == 1500
    assert [name for name, _ in passes] == ["language_histograms", "boundary_rows"]
    assert passes[1][1] <= 3  # the rows of one of 65,536 buckets, not the language's 3,000


def test_stage_on_ray_keeps_the_reference_set_conserves_rows_and_writes_the_table(tmp_path, params_for):
    rows = mixed_corpus(5, n=900)
    write_docs(tmp_path / "dedup", rows, rows_per_shard=250, row_group_rows=100)
    params = params_for("sample.caps={java: 0.1, rust: 0.9, kotlin: 0.01}", "sample.caps_bytes={html: 20000, go: 0}", "sample.seed=5")
    m = stage.run(params, tmp_path / "dedup", tmp_path / "sample", NullTracker())
    expected = sampled_out_ids(frame(rows), params.sample)
    assert (m["rows_in"], m["rows_dropped"], m["rows_kept"]) == (900, len(expected), 900 - len(expected))
    assert m["dropped_by_reason"] == {"sampled_out": len(expected)}
    dropped = pq.read_table(tmp_path / "sample" / "dropped")
    assert set(dropped["id"].to_pylist()) == expected and set(dropped["drop_reason"].to_pylist()) == {"sampled_out"}
    kept = read_table(tmp_path / "sample")
    assert sorted(kept["id"].to_pylist()) == sorted(r["id"] for r in rows if r["id"] not in expected)
    table = pd.read_csv(tmp_path / "sample.reports" / "languages.csv").set_index("lang")
    langs = pd.DataFrame(rows)
    for lang in ("java", "html", "go", "rust", "python"):
        mine = langs[langs["lang"] == lang]
        assert table.loc[lang, "files_before"] == len(mine)
        assert table.loc[lang, "files_after"] == len(mine) - len(set(mine["id"]) & expected)
        assert m["sampled_out_by_lang"].get(lang, 0) == len(set(mine["id"]) & expected)
    assert table.loc["html", "bytes_after"] <= 20000 < table.loc["html", "bytes_before"]
    assert table.loc["python", "share_after"] > table.loc["python", "share_before"]
    assert "| java |" in (tmp_path / "sample.reports" / "languages.md").read_text()


def test_stage_on_an_empty_input_writes_empty_outputs(tmp_path, params_for):
    write_docs(tmp_path / "dedup", [])
    m = stage.run(params_for(), tmp_path / "dedup", tmp_path / "sample", NullTracker())
    assert (m["rows_in"], m["rows_kept"], m["rows_dropped"], m["languages"]) == (0, 0, 0, 0)
    assert read_table(tmp_path / "sample").num_rows == 0
