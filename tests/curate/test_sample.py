"""Language sampling: caps as corpus shares or bytes, seeded and id-based, the stage conserves rows and reports."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from tasks.common.shards import read_table
from tasks.common.tracking import NullTracker
from tasks.curate.config import SampleConfig
from tasks.curate.sample import language_caps, sampled_out_ids
from tasks.curate import sample

from .conftest import doc, write_docs


def corpus(num_java: int = 50, num_python: int = 50) -> pd.DataFrame:
    rows = [{"id": f"j{i}", "lang": "java", "size_bytes": 100} for i in range(num_java)]
    rows += [{"id": f"p{i}", "lang": "python", "size_bytes": 100} for i in range(num_python)]
    return pd.DataFrame(rows)


def test_a_language_over_its_share_is_cut_to_the_cap_and_others_are_untouched():
    out = sampled_out_ids(corpus(), SampleConfig(caps={"java": 0.2}))
    assert len(out) == 30 and all(i.startswith("j") for i in out)  # 20% of 10,000 bytes = 20 java files kept


def test_a_language_under_its_cap_is_kept_whole():
    assert sampled_out_ids(corpus(5, 95), SampleConfig(caps={"java": 0.2})) == set()


def test_byte_caps_and_the_smaller_of_two_caps_wins():
    assert language_caps({"java": 5000, "python": 5000}, SampleConfig(caps={"java": 0.2}, caps_bytes={"java": 1000})) == {"java": 1000}
    assert len(sampled_out_ids(corpus(), SampleConfig(caps={}, caps_bytes={"java": 1000}))) == 40


def test_choice_is_reproducible_by_seed_and_independent_of_row_order():
    cfg = SampleConfig(caps={"java": 0.2}, seed=7)
    df = corpus()
    first = sampled_out_ids(df, cfg)
    assert sampled_out_ids(df.sample(frac=1.0, random_state=3), cfg) == first
    assert sampled_out_ids(df, SampleConfig(caps={"java": 0.2}, seed=8)) != first


def test_stage_conserves_rows_marks_sampled_out_and_writes_the_table(tmp_path, params_for):
    rows = [doc(f"class A{i} {{ int x = {i}; }}", lang="java", size=100) for i in range(40)]
    rows += [doc(f"def f{i}():\n    return {i}\n", size=100) for i in range(60)]
    write_docs(tmp_path / "dedup", rows, rows_per_shard=30)
    params = params_for("sample.caps={java: 0.1}")
    m = sample.run(params, tmp_path / "dedup", tmp_path / "sample", NullTracker())
    assert (m["rows_in"], m["rows_kept"], m["rows_dropped"]) == (100, 70, 30)
    assert m["dropped_by_reason"] == {"sampled_out": 30} and m["sampled_out_by_lang"] == {"java": 30}
    kept = read_table(tmp_path / "sample")
    assert kept.num_rows == 70 and sorted(set(kept["lang"].to_pylist())) == ["java", "python"]
    table = pd.read_csv(tmp_path / "sample.reports" / "languages.csv").set_index("lang")
    assert table.loc["java", "files_before"] == 40 and table.loc["java", "files_after"] == 10
    assert table.loc["python", "share_after"] > table.loc["python", "share_before"]
    assert "| java |" in (tmp_path / "sample.reports" / "languages.md").read_text()
    dropped = pq.read_table(tmp_path / "sample" / "dropped")
    assert set(dropped["drop_reason"].to_pylist()) == {"sampled_out"}
