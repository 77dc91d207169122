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
