"""Shard I/O is atomic, readers ignore dropped/, and the stage harness enforces conservation."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from tasks.common.shards import (MissingInputError, atomic_dir, commit_parts, count_rows, list_shards, read_table,
                                 write_part)
from tasks.common.stage import ConservationError, check_conservation, execute, split_and_write
from tasks.config import load_params

ROOT = Path(__file__).resolve().parents[2]


def _batch(reasons):
    n = len(reasons)
    return pa.table({"id": [f"r{i}" for i in range(n)], "size_bytes": [10] * n,
                     "drop_reason": pa.array(reasons, pa.string())})


def test_split_and_write_counts_and_layout(tmp_path):
    out = tmp_path / "stage"
    metrics = split_and_write([_batch([None, "binary", None]), _batch(["empty", None])], out)
    assert metrics["rows_in"] == 5 and metrics["rows_kept"] == 3 and metrics["rows_dropped"] == 2
    assert metrics["dropped_by_reason"] == {"binary": 1, "empty": 1}
    assert metrics["bytes_in"] == 50 and metrics["bytes_kept"] == 30
    assert count_rows(out) == 3 and "drop_reason" not in read_table(out).column_names
    assert read_table(out / "dropped").column("drop_reason").to_pylist() == ["binary", "empty"]
    check_conservation("x", metrics)


def test_killed_write_leaves_previous_output(tmp_path):
    out = tmp_path / "stage"
    split_and_write([_batch([None])], out)

    def exploding():
        yield _batch([None, None])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        split_and_write(exploding(), out)
    assert count_rows(out) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["stage"]


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "t"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"


def test_empty_stage_still_writes_a_readable_shard(tmp_path):
    out = tmp_path / "stage"
    metrics = split_and_write([], out)
    assert metrics["rows_in"] == 0 and len(list_shards(out)) == 1 and count_rows(out) == 0


def test_missing_input_names_the_path(tmp_path):
    with pytest.raises(MissingInputError, match="does-not-exist"):
        list_shards(tmp_path / "does-not-exist")


def test_parts_of_a_killed_first_run_are_never_read(tmp_path):
    """Workers wrote parts, the stage died before its manifest: a reader refuses the folder instead of reading
    half a stage; after the commit it reads exactly the committed parts."""
    out = tmp_path / "clean"
    table = pa.table({"id": ["a", "b"], "text": ["x", "y"]})
    parts = [write_part(table.slice(i, 1), out, i) for i in range(2)]
    with pytest.raises(MissingInputError, match="did not finish"):
        list_shards(out)
    commit_parts(out, parts[:1], 1)
    assert read_table(out).column("id").to_pylist() == ["a"]


def test_a_failed_run_leaves_the_previous_output_or_none(tmp_path):
    """A stage that fails after its workers wrote parts: a first run leaves no folder; a re-run over a
    committed output leaves exactly the committed parts (its own parts and temporary files removed)."""
    params = load_params(ROOT / "params.yaml", ["tracking.enabled=false"])
    out = tmp_path / "clean"
    table = pa.table({"id": ["a", "b"], "text": ["x", "y"]})

    def fails_after_writing(params, input_path, output, tracker, index=0):
        write_part(table.slice(index, 1), output / "dropped", 7)
        write_part(table.slice(index, 1), output, 7)
        (output / ".part.tmp-0123").write_bytes(b"half")
        raise OSError("No space left on device")

    with pytest.raises(OSError):
        execute("clean", fails_after_writing, params, None, out, tmp_path / "m.json")
    assert not out.exists()
    commit_parts(out, [write_part(table, out, 0)], 2)
    committed = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(OSError):
        execute("clean", lambda *a: fails_after_writing(*a, index=1), params, None, out, tmp_path / "m.json")
    assert sorted(p.name for p in out.rglob("*")) == sorted(committed + ["dropped"])  # an empty folder stays
    assert read_table(out).column("id").to_pylist() == ["a", "b"]


def test_conservation_violation_is_an_error():
    with pytest.raises(ConservationError, match="rows_in=3"):
        check_conservation("clean", {"rows_in": 3, "rows_kept": 1, "rows_dropped": 1})
    with pytest.raises(ConservationError, match="dropped_by_reason"):
        check_conservation("clean", {"rows_in": 2, "rows_kept": 1, "rows_dropped": 1, "dropped_by_reason": {"a": 2}})
