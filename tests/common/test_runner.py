"""The Ray runner maps a pure batch function over shards on a real local Ray, in input order."""

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.runner import map_batches, map_items


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
