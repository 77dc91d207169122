"""SFT sets: selection by pool shares and size, seeded by id, and strict exact dedup inside a set."""

from __future__ import annotations

from tasks.curate.config import SftSetConfig
from tasks.curate.sets import build_set, dedup_exact, pair_key


def pair(i: int, source: str = "mined", instruction: str | None = None, output: str | None = None) -> dict:
    return {"id": f"{source}-{i}", "instruction": instruction or f"Write {source} f{i}.", "output": output or f"def f{i}():\n    return {i}",
            "source": source, "origin": "t", "validation": "parsed"}


def test_exact_duplicates_up_to_whitespace_are_dropped_with_a_reference():
    rows = [pair(1), pair(2, instruction="Write  mined f1.", output="def f1():\n\n    return 1  "), pair(3)]
    kept, dropped = dedup_exact(rows)
    assert [r["id"] for r in kept] == ["mined-1", "mined-3"]
    assert dropped[0]["drop_reason"] == "duplicate_in_set" and dropped[0]["duplicate_of"] == "mined-1"


def test_different_outputs_for_one_instruction_are_not_duplicates():
    assert pair_key("Write f.", "return 1") != pair_key("Write f.", "return 2")


def test_without_size_every_row_of_the_listed_pools_is_taken():
    pools = {"mined": [pair(i) for i in range(5)], "mbpp-train": [pair(i, "mbpp-train") for i in range(3)]}
    built = build_set(pools, SftSetConfig(sources={"mined": 1.0}), seed=0)
    assert built["counts"]["rows"] == 5 and built["counts"]["by_source"] == {"mined": 5}


def test_size_splits_by_share_and_reports_shortfall():
    pools = {"mined": [pair(i) for i in range(100)], "educational": [pair(i, "educational") for i in range(10)]}
    built = build_set(pools, SftSetConfig(sources={"mined": 3.0, "educational": 1.0}, size=80), seed=0)
    assert built["counts"]["by_source"] == {"mined": 60, "educational": 10}
    assert built["counts"]["shortfall"] == {"educational": 10}


def test_selection_depends_on_seed_and_ids_not_on_pool_order():
    rows = [pair(i) for i in range(50)]
    spec = SftSetConfig(sources={"mined": 1.0}, size=10)
    first = {r["id"] for r in build_set({"mined": rows}, spec, seed=1)["kept"]}
    assert first == {r["id"] for r in build_set({"mined": rows[::-1]}, spec, seed=1)["kept"]}
    assert first != {r["id"] for r in build_set({"mined": rows}, spec, seed=2)["kept"]}


def write_pool(folder, rows: list[dict], per_part: int) -> list[str]:
    """A pool stored as parts of `per_part` rows, as the curate workers write it."""
    import pyarrow as pa

    from tasks.common.shards import join, write_part
    from tasks.curate.scan import PAIR_SCHEMA

    return [join(folder, write_part(pa.Table.from_pylist(rows[i:i + per_part], schema=PAIR_SCHEMA), folder, i))
            for i in range(0, len(rows), per_part)]


def test_the_set_written_on_ray_equals_the_in_memory_build(tmp_path):
    from tasks.common.shards import read_manifest, read_table
    from tasks.curate.sets import write_set

    mined = [pair(i) for i in range(40)] + [pair(100 + i, instruction=f"Write mined f{i}.", output=f"def f{i}():\n    return {i}")
                                           for i in range(0, 40, 7)]  # exact copies under other ids
    pools = {"mined": mined, "educational": [pair(i, "educational") for i in range(5)] + [pair(3)]}
    parts = {name: write_pool(str(tmp_path / "pools" / name), rows, 9) for name, rows in pools.items()}
    sizes = {name: len(rows) for name, rows in pools.items()}
    for spec in (SftSetConfig(sources={"mined": 1.0, "educational": 1.0}), SftSetConfig(sources={"educational": 1.0, "mined": 3.0}, size=24)):
        expected = build_set(pools, spec, seed=3)
        out = str(tmp_path / f"set-{spec.size}")
        counts = write_set(parts, sizes, spec, 3, out)
        assert read_table(out).to_pylist() == expected["kept"]
        assert read_table(f"{out}/dropped").to_pylist() == expected["dropped"] and expected["dropped"]
        assert counts == expected["counts"] and read_manifest(out)["num_rows"] == len(expected["kept"])
        again = write_set(parts, sizes, spec, 3, out)  # a re-run: the same parts, the same manifest
        assert again == counts and read_table(out).to_pylist() == expected["kept"]
