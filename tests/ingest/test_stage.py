"""The `ingest` stage end to end on local Ray: each source kind, every drop reason, conservation, stable ids."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.shards import DOC_SCHEMA, read_table
from tasks.common.stage import check_conservation
from tasks.common.tracking import NullTracker
from tasks.ingest.stage import run, top_groups


def ingest(params, input_path, output):
    metrics = run(params, input_path, output, NullTracker())
    check_conservation("ingest", metrics)
    return metrics, read_table(output), read_table(output / "dropped")


def bad_input_folder(root: Path) -> Path:
    root.mkdir()
    (root / "ok.py").write_text("def f():\n    return 1\n")
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.js").write_text("export const x = 1;\n")
    (root / "empty.py").write_bytes(b"")
    (root / "blob.bin").write_bytes(b"\x7fELF\x00\x00\x01")
    (root / "latin1.txt").write_bytes(b"caf\xe9\n")
    (root / "huge.py").write_bytes(b"x = 1\n" * 200)
    os.symlink(root / "gone.py", root / "dangling.py")
    with open(os.path.join(os.fsencode(root), b"caf\xe9.py"), "wb") as f:
        f.write(b"name_not_utf8 = True\n")
    return root


def test_folder_source_every_file_kind(tmp_path, params_factory):
    root = bad_input_folder(tmp_path / "myproj")
    metrics, kept, dropped = ingest(params_factory("ingest.max_file_bytes=1000"), root, tmp_path / "out")
    assert metrics["input_kind"] == "local" and metrics["files_listed"] == 8
    assert (metrics["rows_in"], metrics["rows_kept"], metrics["rows_dropped"]) == (8, 3, 5)
    assert metrics["dropped_by_reason"] == {"binary": 1, "empty": 1, "oversized": 1, "undecodable": 1, "unreadable": 1}
    assert sorted(kept.column("path").to_pylist()) == ["caf\\xe9.py", "ok.py", "pkg/mod.js"]  # a non-UTF-8 name is shown escaped
    assert set(kept.column("repo").to_pylist()) == {"myproj"} and set(kept.column("source").to_pylist()) == {"local"}
    assert kept.schema.names[: len(DOC_SCHEMA)] == DOC_SCHEMA.names
    reasons = dict(zip(dropped.column("path").to_pylist(), dropped.column("drop_reason").to_pylist()))
    assert reasons == {"blob.bin": "binary", "dangling.py": "unreadable", "empty.py": "empty", "huge.py": "oversized", "latin1.txt": "undecodable"}
    assert metrics["bytes_in"] == metrics["by_repo"]["myproj"]["bytes_in"] == metrics["by_source"]["local"]["bytes_in"]
    assert metrics["by_repo"]["myproj"]["rows_kept"] == 3


def test_ids_are_stable_across_runs(tmp_path, params_factory):
    root = bad_input_folder(tmp_path / "p")
    params = params_factory("ingest.max_file_bytes=1000")
    _, kept1, dropped1 = ingest(params, root, tmp_path / "o1")
    _, kept2, dropped2 = ingest(params, root, tmp_path / "o2")
    assert kept1.column("id").to_pylist() == kept2.column("id").to_pylist()
    assert sorted(dropped1.column("id").to_pylist()) == sorted(dropped2.column("id").to_pylist())
    ids = kept1.column("id").to_pylist() + dropped1.column("id").to_pylist()
    assert len(set(ids)) == len(ids) == 8


def test_git_repos_source(tmp_path, params_factory, git_repo_factory):
    root = tmp_path / "repos"
    git_repo_factory(root / "alpha", [
        ("2020-01-01T00:00:00+00:00", {"a.py": b"a = 1\n", "b.py": b"b = 1\n"}),
        ("2021-06-01T00:00:00+00:00", {"a.py": b"a = 2\n"}),
    ])
    git_repo_factory(root / "org" / "beta", [("2019-05-05T00:00:00+00:00", {"src/c.rs": b"fn main() {}\n", "d.bin": b"\x00\x01"})])
    (root / "alpha" / "scratch.py").write_text("untracked = True\n")
    (root / "loose.py").write_text("outside any repo\n")
    metrics, kept, dropped = ingest(params_factory(), root, tmp_path / "out")
    assert metrics["input_kind"] == "git" and metrics["files_listed"] == 4
    rows = {(r["repo"], r["path"]): r for r in kept.to_pylist()}
    assert sorted(rows) == [("alpha", "a.py"), ("alpha", "b.py"), ("org/beta", "src/c.rs")]
    assert rows[("alpha", "a.py")]["commit_date"] == "2021-06-01T00:00:00+00:00"
    assert rows[("alpha", "b.py")]["commit_date"] == "2020-01-01T00:00:00+00:00"
    assert rows[("alpha", "a.py")]["text"] == "a = 2\n" and rows[("alpha", "a.py")]["source"] == "git"
    assert dropped.column("path").to_pylist() == ["d.bin"] and metrics["dropped_by_reason"] == {"binary": 1}
    assert set(metrics["by_repo"]) == {"alpha", "org/beta"} and metrics["by_source"]["git"]["rows_in"] == 4


def test_table_sources_stack_v2_parquet_and_v1_jsonl(tmp_path, params_factory):
    root = tmp_path / "stack"
    root.mkdir()
    pq.write_table(pa.table({
        "blob_id": ["b0", "b1", "b2"], "repo_name": ["o/r", "o/r", "o/s"], "path": ["a.py", "b.py", "c.go"],
        "content": ["import os\n", None, "package main\n"], "language": ["Python", "Python", "Go"],
        "gha_language": ["Python", None, "Go"], "star_events_count": [5, 5, 9],
        "revision_date": pa.array([1_600_000_000_000_000, None, 1_700_000_000_000_000], pa.timestamp("us", tz="UTC")),
        "length_bytes": [10, 0, 13],
    }), root / "v2.parquet", row_group_size=2)
    (root / "broken.parquet").write_bytes(b"PAR1 not really")
    v1 = [{"content": "int main() { return 0; }\n", "max_stars_repo_name": "c/d", "max_stars_repo_path": "m.c", "max_stars_count": 3, "lang": "C", "hexsha": "h1"},
          {"content": "   \n", "max_stars_repo_name": "c/d", "max_stars_repo_path": "blank.c", "max_stars_count": 3, "lang": "C", "hexsha": "h2"}]
    (root / "v1.jsonl").write_text(json.dumps(v1[0]) + "\n{oops\n" + json.dumps(v1[1]) + "\n")
    metrics, kept, dropped = ingest(params_factory(), root, tmp_path / "out")
    assert metrics["input_kind"] == "table" and metrics["files_listed"] == 3
    assert (metrics["rows_in"], metrics["rows_kept"]) == (7, 3)
    assert metrics["dropped_by_reason"] == {"corrupt_file": 2, "empty": 1, "missing_text": 1}
    rows = {r["path"]: r for r in kept.to_pylist()}
    assert sorted(rows) == ["a.py", "c.go", "m.c"]
    assert (rows["a.py"]["repo"], rows["a.py"]["stars"], rows["a.py"]["source_lang"]) == ("o/r", 5, "Python")
    assert rows["a.py"]["commit_date"] == "2020-09-13T12:26:40+00:00"
    assert (rows["m.c"]["repo"], rows["m.c"]["stars"], rows["m.c"]["source_lang"], rows["m.c"]["source"]) == ("c/d", 3, "C", "stack")
    corrupt = sorted(r["path"] for r in dropped.to_pylist() if r["drop_reason"] == "corrupt_file")
    assert corrupt == sorted([str(root / "broken.parquet"), f"{root / 'v1.jsonl'}:2"])


def test_max_files_caps_the_listing(tmp_path, params_factory):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(12):
        (root / f"f{i:02d}.py").write_text(f"x = {i}\n")
    metrics, kept, _ = ingest(params_factory("ingest.max_files=5"), root, tmp_path / "out")
    assert metrics["files_listed"] == metrics["rows_in"] == 5
    assert kept.column("path").to_pylist() == [f"f{i:02d}.py" for i in range(5)]


def test_installed_source_small_cap(tmp_path, params_factory):
    metrics, kept, dropped = ingest(params_factory("ingest.max_files=30"), None, tmp_path / "out")
    assert metrics["input_kind"] == "installed" and metrics["rows_in"] == 30
    assert set(kept.column("source").to_pylist()) <= {"installed"} and kept.num_rows + dropped.num_rows == 30
    assert all(s > 0 for s in kept.column("stars").to_pylist())


def test_top_groups_sums_the_rest_as_other():
    stats = {n: {"rows_in": 1, "rows_kept": 1, "bytes_in": b, "bytes_kept": b} for n, b in [("a", 5), ("b", 9), ("c", 1), ("d", 2)]}
    top = top_groups(stats, 2)
    assert list(top) == ["b", "a", "(other)"] and top["(other)"] == {"rows_in": 2, "rows_kept": 2, "bytes_in": 3, "bytes_kept": 3}


def test_empty_folder_writes_empty_shards(tmp_path, params_factory):
    (tmp_path / "nothing").mkdir()
    metrics, kept, dropped = ingest(params_factory(), tmp_path / "nothing", tmp_path / "out")
    assert (metrics["rows_in"], metrics["files_listed"], kept.num_rows, dropped.num_rows) == (0, 0, 0, 0)
    assert "id" in kept.schema.names and metrics["by_repo"] == {}
