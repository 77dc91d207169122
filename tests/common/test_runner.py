"""The Ray runner maps a pure batch function over shards on a real local Ray, in input order."""

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.runner import TASKS_PER_WORKER, map_batches, map_items, map_to_shards, plan_slices, read_slice, split_rows
from tasks.common.shards import count_rows, list_shards, read_table


def square(batch: pa.Table, offset: int) -> pa.Table:
    xs = batch.column("x").to_pylist()
    return batch.append_column("y", pa.array([x * x + offset for x in xs]))


def test_map_batches_on_local_ray_keeps_order(tmp_path):
    for shard in range(3):
        pq.write_table(pa.table({"x": list(range(shard * 100, shard * 100 + 100))}), tmp_path / f"part-{shard}.parquet")
    out = pa.concat_tables(list(map_batches(square, tmp_path, fn_kwargs={"offset": 1}, num_workers=2, batch_size=32)))
    assert out.column("x").to_pylist() == list(range(300))
    assert out.column("y").to_pylist() == [x * x + 1 for x in range(300)]


def test_map_items_runs_every_item():
    out = pa.concat_tables(list(map_items(square, [{"x": i} for i in range(50)], fn_kwargs={"offset": 0}, num_workers=2, batch_size=8)))
    assert sorted(out.column("y").to_pylist()) == [i * i for i in range(50)]


def test_slices_are_whole_row_groups_in_order_and_split_one_big_shard(tmp_path):
    pq.write_table(pa.table({"x": list(range(1000))}), tmp_path / "part-0.parquet", row_group_size=20)
    pq.write_table(pa.table({"x": list(range(1000, 1050))}), tmp_path / "part-1.parquet", row_group_size=100)
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), tmp_path / "part-2.parquet")
    slices = plan_slices(list_shards(tmp_path), num_workers=2)
    assert len(slices) >= 2 * TASKS_PER_WORKER, "one shard of 50 small row groups feeds 2 workers x TASKS_PER_WORKER tasks"
    assert any(len(s) > 1 for s in slices), "row groups smaller than a slice are packed whole"
    flat = [(path.rsplit("/", 1)[1], g, start, stop) for s in slices for path, g, start, stop in s]
    assert flat == [("part-0.parquet", g, 0, 20) for g in range(50)] + [("part-1.parquet", 0, 0, 50)]
    out = pa.concat_tables(list(map_batches(square, tmp_path, fn_kwargs={"offset": 0}, num_workers=2, batch_size=30)))
    assert out.column("x").to_pylist() == list(range(1050))
    assert plan_slices(list_shards(tmp_path), num_workers=1) and len(plan_slices(list_shards(tmp_path), 1)) < len(slices)


def test_one_row_group_is_split_by_row_ranges_over_every_worker(tmp_path):
    pq.write_table(pa.table({"x": list(range(1001))}), tmp_path / "part-0.parquet")  # one row group
    slices = plan_slices(list_shards(tmp_path), num_workers=2)
    ranges = [(g, start, stop) for s in slices for _, g, start, stop in s]
    assert len(slices) == len(ranges) == 2 * TASKS_PER_WORKER, "2 workers x TASKS_PER_WORKER tasks, one row range each"
    assert ranges[0][1] == 0 and ranges[-1][2] == 1001 and all(a[2] == b[1] for a, b in zip(ranges, ranges[1:]))
    assert max(stop - start for _, start, stop in ranges) - min(stop - start for _, start, stop in ranges) <= 1
    assert [piece for piece in read_slice(slices[3], None)["x"].to_pylist()] == list(range(ranges[3][1], ranges[3][2]))
    out = pa.concat_tables(list(map_batches(square, tmp_path, fn_kwargs={"offset": 0}, num_workers=2, batch_size=64)))
    assert out.column("x").to_pylist() == list(range(1001))


def test_split_rows_never_makes_empty_pieces():
    assert split_rows(3, 8) == [(0, 1), (1, 2), (2, 3)]
    assert split_rows(10, 3) == [(0, 3), (3, 6), (6, 10)]


def test_map_batches_of_only_empty_shards_yields_nothing(tmp_path):
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), tmp_path / "part-0.parquet")
    assert list(map_batches(square, tmp_path, fn_kwargs={"offset": 0})) == []


def drop_odd(batch: pa.Table) -> pa.Table:
    reasons = ["odd" if x % 2 else None for x in batch.column("x").to_pylist()]
    return batch.append_column("drop_reason", pa.array(reasons, pa.string()))


def sum_x(batch: pa.Table) -> dict:
    return {"x_sum": sum(batch.column("x").to_pylist()), "rows": {"seen": batch.num_rows}}


def test_map_to_shards_workers_write_parts_and_a_rerun_commits_the_same_files(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    pq.write_table(pa.table({"x": list(range(1000))}), source / "part-0.parquet")
    out.mkdir()
    pq.write_table(pa.table({"x": [7]}), out / "part-00000.parquet")  # an earlier run's shard
    metrics = map_to_shards(drop_odd, source, out, num_workers=2, batch_size=64, summarize=sum_x)
    assert {k: metrics[k] for k in ("rows_in", "rows_kept", "rows_dropped", "dropped_by_reason")} == \
        {"rows_in": 1000, "rows_kept": 500, "rows_dropped": 500, "dropped_by_reason": {"odd": 500}}
    assert metrics["summary"] == {"x_sum": sum(range(1000)), "rows": {"seen": 1000}}
    assert read_table(out).column("x").to_pylist() == list(range(0, 1000, 2))
    assert read_table(out / "dropped").column("x").to_pylist() == list(range(1, 1000, 2))
    assert len(list_shards(out)) == 2 * TASKS_PER_WORKER and not (out / "part-00000.parquet").exists(), "one part per slice; stale shard gone"
    files = sorted(p.name for p in out.rglob("*"))
    # a killed run's part (written, never committed) is invisible to readers and gone after the next commit
    pq.write_table(pa.table({"x": [9]}), out / "part-00003-0123456789abcdef.parquet")
    (out / ".part-00004-0123456789abcdef.parquet.tmp-1a2b3c4d").write_bytes(b"PAR1 half a file")  # killed mid-write
    assert read_table(out).num_rows == 500
    map_to_shards(drop_odd, source, out, num_workers=2, batch_size=64)
    assert sorted(p.name for p in out.rglob("*")) == files, "a re-run writes the same parts, never more rows"


def test_map_to_shards_of_an_empty_input_commits_readable_empty_folders(tmp_path):
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), tmp_path / "part-0.parquet")
    metrics = map_to_shards(drop_odd, tmp_path, tmp_path / "out")
    assert metrics["rows_in"] == 0 and count_rows(tmp_path / "out") == 0 and count_rows(tmp_path / "out" / "dropped") == 0
    assert "drop_reason" in read_table(tmp_path / "out" / "dropped").column_names


def keep_all(batch: pa.Table) -> pa.Table:
    return batch.append_column("y", pa.array([1] * batch.num_rows)).append_column("drop_reason", pa.nulls(batch.num_rows, pa.string()))


def sum_y(batch: pa.Table) -> dict:
    return {"y": sum(batch.column("y").to_pylist())}  # fails on a row fn never saw (y null)


def test_rows_of_a_repeated_id_after_the_first_are_dropped_as_duplicate_id(tmp_path):
    ids = [f"d{i}" for i in range(40)]
    first = pa.table({"id": ids[:20] + ["d3", "d5"], "x": list(range(22))})
    second = pa.table({"id": ["d5"] + ids[20:] + ["d3"], "x": list(range(22, 44))})
    pq.write_table(first, tmp_path / "part-0.parquet", row_group_size=7)
    pq.write_table(second, tmp_path / "part-1.parquet")
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        metrics = map_to_shards(keep_all, tmp_path, out, num_workers=workers, batch_size=5, summarize=sum_y)
        assert metrics["dropped_by_reason"] == {"duplicate_id": 4} and metrics["rows_kept"] == 40
        assert metrics["summary"] == {"y": 40} and "duplicate_of" not in read_table(out).column_names
        assert read_table(out).column("id").to_pylist() == ids and read_table(out).column("x").to_pylist()[:20] == list(range(20))
        dropped = read_table(out / "dropped").select(["id", "x", "duplicate_of"]).to_pylist()
        assert dropped == [{"id": "d3", "x": 20, "duplicate_of": "d3"}, {"id": "d5", "x": 21, "duplicate_of": "d5"},
                           {"id": "d5", "x": 22, "duplicate_of": "d5"}, {"id": "d3", "x": 43, "duplicate_of": "d3"}]


def fail_first_or_write_late(batch: pa.Table, folder: str) -> pa.Table:
    """Item 0 fails at once; every other item writes a file after a second (a part written too late)."""
    import time
    from pathlib import Path

    (x,) = batch.column("x").to_pylist()
    if x == 0:
        raise OSError(28, "No space left on device")
    time.sleep(1.0)
    Path(folder, f"late-{x}").write_text("written after the map failed")
    return batch


def test_a_failed_task_stops_the_running_ones_before_the_error_reaches_the_stage(tmp_path):
    """A stage removes what a failed map wrote; no task of that map may write after that (first run on a full
    disk: a part written by a slower task after the clean-up left a folder of parts without a manifest)."""
    import time

    import pytest

    with pytest.raises(OSError, match="No space left"):
        list(map_items(fail_first_or_write_late, [{"x": i} for i in range(4)], fn_kwargs={"folder": str(tmp_path)},
                       num_workers=2, batch_size=1))
    time.sleep(2.0)
    assert not list(tmp_path.glob("late-*")), "a task went on writing after the map had failed"
