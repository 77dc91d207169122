"""The dedup stage end to end on local Ray: kept/dropped shards, duplicate_of, extra columns, report, guardrail."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA, read_table
from tasks.common.stage import check_conservation
from tasks.common.tracking import NullTracker
from tasks.config import load_params
from tasks.dedup.report import GuardrailError
from tasks.dedup.stage import report_dir, run

from .test_dedup_plan import edited, long_text


def write_input(folder, num_shards: int = 2) -> list[dict]:
    base = [long_text(100 + k) for k in range(3)]
    rows = []
    for k in range(30):
        text = base[k % 3] if k % 4 else edited(base[k % 3], 1)
        rows.append(dict(id=f"doc{k:02d}", text=text if k < 27 else f"unique file {k}\n", repo=f"repo{k % 5}", path=f"f{k}.py",
                         lang="python" if k % 2 else "c", doc_type="code", source="test", stars=k, commit_date=None,
                         size_bytes=len(text), sha256=None))
    table = pa.Table.from_pylist(rows, schema=DOC_SCHEMA).append_column("quality", pa.array([float(k) for k in range(30)]))
    folder.mkdir()
    step = len(rows) // num_shards
    for s in range(num_shards):
        pq.write_table(table.slice(s * step, step), folder / f"part-{s:05d}.parquet")
    return rows


def test_stage_on_local_ray(tmp_path):
    write_input(tmp_path / "clean")
    params = load_params("params.yaml", ["tracking.enabled=false", "compute.num_workers=2", "compute.batch_size=8"])
    output = tmp_path / "dedup"
    metrics = run(params, tmp_path / "clean", output, NullTracker())
    check_conservation("dedup", metrics)
    kept, dropped = read_table(output), read_table(output / "dropped")
    # one survivor per family (the most-starred copy: doc26, doc25, doc24 are exact, doc27-29 unique)
    assert sorted(kept.column("id").to_pylist()) == ["doc24", "doc25", "doc26", "doc27", "doc28", "doc29"]
    assert metrics["rows_in"] == 30 and metrics["rows_kept"] == 6 and metrics["rows_dropped"] == 24
    assert set(metrics["dropped_by_reason"]) == {"exact_duplicate", "near_duplicate"}
    assert "quality" in kept.column_names and "duplicate_of" in dropped.column_names
    family_keeper = {k % 3: f"doc{k}" for k in (24, 25, 26)}
    for doc_id, target in zip(dropped.column("id").to_pylist(), dropped.column("duplicate_of").to_pylist()):
        assert target == family_keeper[int(doc_id[3:]) % 3]
    reports = report_dir(output)
    assert reports == tmp_path / "dedup.reports"
    assert (reports / "cluster_sizes.png").stat().st_size > 0 and (reports / "removal_by_language.png").stat().st_size > 0
    summary = json.loads((reports / "dedup_report.json").read_text())
    assert summary["clusters"]["size_histogram"] == {"9": 3}


def test_guardrail_fail_stops_before_writing(tmp_path):
    write_input(tmp_path / "clean", num_shards=1)
    params = load_params("params.yaml", ["tracking.enabled=false", "dedup.guardrail_action=fail", "dedup.level=repo",
                                         "dedup.num_perm=256", "dedup.bands=32", "dedup.rows=8"])
    with pytest.raises(GuardrailError, match="source test"):
        run(params, tmp_path / "clean", tmp_path / "dedup", NullTracker())
    assert not (tmp_path / "dedup").exists()


def test_a_repeated_id_is_planned_once_and_its_later_rows_dropped_as_duplicate_id(tmp_path):
    text, other = long_text(300), long_text(301)
    rows = [dict(id=i, text=t, repo="r", path=f"{i}.py", lang="python", doc_type="code", source="test", stars=s,
                 commit_date=None, size_bytes=len(t), sha256=None)
            for i, t, s in [("a", text, 5), ("a", text, 5), ("b", other, 1), ("c", text, 1), ("b", text, 9)]]
    (tmp_path / "clean").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=DOC_SCHEMA), tmp_path / "clean" / "part-00000.parquet")
    params = load_params("params.yaml", ["tracking.enabled=false", "compute.num_workers=1"])
    metrics = run(params, tmp_path / "clean", tmp_path / "dedup", NullTracker())
    assert read_table(tmp_path / "dedup").column("id").to_pylist() == ["a", "b"], "the first row of each id is planned"
    dropped = read_table(tmp_path / "dedup" / "dropped").select(["id", "drop_reason", "duplicate_of"]).to_pylist()
    assert sorted(map(tuple, (d.values() for d in dropped))) == [
        ("a", "duplicate_id", "a"), ("b", "duplicate_id", "b"), ("c", "exact_duplicate", "a")]
    assert metrics["rows_in"] == 5 and metrics["units_in"] == 3


def test_stage_on_ray_decides_as_the_reference_and_reruns_identically(tmp_path):
    from .test_dedup_distributed import corpus, reference, write_folder

    folder = write_folder(tmp_path / "clean", corpus(seed=5))
    params = load_params("params.yaml", ["tracking.enabled=false", "compute.num_workers=2", "compute.batch_size=8"])
    expected = reference.reference_decisions(folder, params.dedup)
    outputs = []
    for name in ("dedup", "again"):
        metrics = run(params, folder, tmp_path / name, NullTracker())
        check_conservation("dedup", metrics)
        dropped = read_table(tmp_path / name / "dropped").select(["id", "drop_reason", "duplicate_of"]).to_pylist()
        outputs.append((read_table(tmp_path / name).column("id").to_pylist(), dropped))
        assert not (tmp_path / f"{name}.scratch").exists(), "the scratch folder is removed"
    kept, dropped = outputs[0]
    assert {d["id"]: (d["drop_reason"], d["duplicate_of"]) for d in dropped if d["drop_reason"] != "duplicate_id"} == expected
    assert set(kept).isdisjoint(expected) and len(kept) + len(dropped) == metrics["rows_in"]
    assert outputs[0] == outputs[1]
    assert (tmp_path / "dedup" / "_manifest.json").read_text() == (tmp_path / "again" / "_manifest.json").read_text()
