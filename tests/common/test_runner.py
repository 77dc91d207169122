"""The Ray runner maps a pure batch function over shards on a real local Ray, in input order."""

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.runner import map_batches, map_items, plan_slices, read_slice, split_rows
from tasks.common.shards import list_shards


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
    pq.write_table(pa.table({"x": list(range(1000))}), tmp_path / "part-0.parquet", row_group_size=100)
    pq.write_table(pa.table({"x": list(range(1000, 1050))}), tmp_path / "part-1.parquet", row_group_size=100)
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), tmp_path / "part-2.parquet")
    slices = plan_slices(list_shards(tmp_path), num_workers=2)
    assert len(slices) >= 8, "one shard of 10 row groups feeds 2 workers x 4 tasks"
    flat = [(path.rsplit("/", 1)[1], g, start, stop) for s in slices for path, g, start, stop in s]
    assert flat == [("part-0.parquet", g, 0, 100) for g in range(10)] + [("part-1.parquet", 0, 0, 50)]
    out = pa.concat_tables(list(map_batches(square, tmp_path, fn_kwargs={"offset": 0}, num_workers=2, batch_size=30)))
    assert out.column("x").to_pylist() == list(range(1050))
    assert plan_slices(list_shards(tmp_path), num_workers=1) and len(plan_slices(list_shards(tmp_path), 1)) < len(slices)


def test_one_row_group_is_split_by_row_ranges_over_every_worker(tmp_path):
    pq.write_table(pa.table({"x": list(range(1001))}), tmp_path / "part-0.parquet")  # one row group
    slices = plan_slices(list_shards(tmp_path), num_workers=2)
    ranges = [(g, start, stop) for s in slices for _, g, start, stop in s]
    assert len(slices) == 8 and len(ranges) == 8, "2 workers x 4 tasks, one row range each"
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
