"""SFT sets from instruction pools: a seeded, id-based selection by mix and size, then strict exact dedup.

A set is `{pool: share}` plus an optional `size` (`curate.sft_stage1`, `curate.sft_stage2`). Without a size
every row of each listed pool is taken; with one, pool p gives `round(share_p / sum(shares) * size)` rows,
chosen by the lowest `blake2b(seed, id)` (so the choice depends on ids, not order), or all it has when it
is smaller (the shortfall is reported, not filled from other pools). Inside the set, rows whose normalised
instruction and output (whitespace collapsed) are identical to an earlier row are dropped
(`duplicate_in_set`, `duplicate_of` = the kept row's id): the paper's "strict deduplication" of SFT data.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter

import pyarrow as pa

from tasks.common.hashing import priority
from tasks.common.runner import ensure_ray
from tasks.common.shards import DROPPED, commit_parts, join, open_parquet, write_part
from tasks.curate.config import SftSetConfig

PAIR_COLUMNS = ["id", "instruction", "output", "source", "origin", "validation"]


def pair_key(instruction: str, output: str) -> str:
    """sha256 of the whitespace-normalised instruction and output."""
    norm = " ".join(instruction.split()) + "\x00" + " ".join(output.split())
    return hashlib.sha256(norm.encode("utf-8", "surrogateescape")).hexdigest()


def select(pools: dict[str, list[dict]], spec: SftSetConfig, seed: int) -> tuple[list[dict], dict[str, int]]:
    """Rows of the set (pool by pool, in rank order) and the shortfall of each pool that had too few."""
    listed = {name: share for name, share in spec.sources.items() if share > 0}
    total = sum(listed.values())
    rows, shortfall = [], {}
    for name, share in listed.items():
        pool = sorted(pools.get(name, []), key=lambda r: (priority(r["id"], seed), r["id"]))
        if spec.size is not None:
            want = round(share / total * spec.size)
            if len(pool) < want:
                shortfall[name] = want - len(pool)
            pool = pool[:want]
        rows += pool
    return rows, shortfall


def dedup_exact(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(kept, dropped): the first row of each normalised (instruction, output) pair is kept."""
    first: dict[str, str] = {}
    kept, dropped = [], []
    for row in rows:
        key = pair_key(row["instruction"], row["output"])
        if key in first:
            dropped.append({**row, "drop_reason": "duplicate_in_set", "duplicate_of": first[key]})
        else:
            first[key] = row["id"]
            kept.append(row)
    return kept, dropped


def build_set(pools: dict[str, list[dict]], spec: SftSetConfig, seed: int) -> dict:
    """kept rows, dropped duplicates and counts of one SFT set."""
    selected, shortfall = select(pools, spec, seed)
    kept, dropped = dedup_exact(selected)
    by_source: dict[str, int] = {}
    for row in kept:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
    return {"kept": kept, "dropped": dropped, "counts": {"selected": len(selected), "rows": len(kept),
            "duplicates_dropped": len(dropped), "by_source": by_source, "shortfall": shortfall}}


ORDER_COLUMNS = ["pool", "rank", "id"]
"""Where a row stands in its set: the pool's place in the set's `sources`, then `priority`, then the id."""


def ranked_part(items: pa.Table, *, pool: int, seed: int) -> pa.Table:
    """Task body: the pairs of pool parts with their place in the set (`pool`, `rank`) and dedup `key`."""
    tables = []
    for uri in items["part"].to_pylist():
        table = open_parquet(uri).read(columns=PAIR_COLUMNS)
        ids, texts = table["id"].to_pylist(), zip(table["instruction"].to_pylist(), table["output"].to_pylist())
        table = table.append_column("pool", pa.array([pool] * table.num_rows, pa.int32()))
        table = table.append_column("rank", pa.array([priority(i, seed) for i in ids], pa.uint64()))
        tables.append(table.append_column("key", pa.array([pair_key(i, o) for i, o in texts], pa.string())))
    return pa.concat_tables(tables)


def mark_duplicates(group: pa.Table) -> pa.Table:
    """One `key`'s rows: the first in set order is kept, the others are `duplicate_in_set` of its id."""
    group = group.sort_by([(c, "ascending") for c in ORDER_COLUMNS])
    first = group["id"][0].as_py()
    later = [None] + [first] * (group.num_rows - 1)
    group = group.append_column("drop_reason", pa.array([None if d is None else "duplicate_in_set" for d in later], pa.string()))
    return group.append_column("duplicate_of", pa.array(later, pa.string()))


ROWS_PER_PART = 50_000
"""Expected rows of one written part of a set: the rank range of a part is chosen for about this many rows."""


def rank_bits(num_rows: int) -> int:
    """Leading bits of the rank that name a part: 2**bits parts of equal rank ranges (ranks are uniform hashes)."""
    return max(0, math.ceil(math.log2(max(1, num_rows) / ROWS_PER_PART)))


def add_bucket(batch: pa.Table, *, bits: int) -> pa.Table:
    """Task body: the part a row goes to, in set order: its pool, then the leading `bits` bits of its rank."""
    import pyarrow.compute as pc

    head = pc.shift_right(batch["rank"], 64 - bits) if bits else pa.array([0] * batch.num_rows, pa.uint64())
    bucket = pc.add(pc.multiply(pc.cast(batch["pool"], pa.int64()), 1 << bits), pc.cast(head, pa.int64()))
    return batch.append_column("bucket", bucket)


def write_bucket(group: pa.Table, *, output: str) -> pa.Table:
    """Task body: one part's rows (one pool, one rank range) sorted into set order and written as a kept part and a
    `dropped/` part; returns their names and counts. The same rows always give the same parts."""
    import pyarrow.compute as pc

    bucket = group["bucket"][0].as_py()
    group = group.sort_by([(c, "ascending") for c in ORDER_COLUMNS]).drop_columns(["pool", "rank", "key", "bucket"])
    dropped_mask = pc.is_valid(group["drop_reason"])
    kept = group.filter(pc.invert(dropped_mask)).select(PAIR_COLUMNS)
    dropped = group.filter(dropped_mask).select([*PAIR_COLUMNS, "drop_reason", "duplicate_of"])
    index = bucket % 100_000
    return pa.table({"bucket": [bucket],
                     "kept_part": [write_part(kept, output, index) if kept.num_rows else None],
                     "dropped_part": [write_part(dropped, join(output, DROPPED), index) if dropped.num_rows else None],
                     "kept": [kept.num_rows], "dropped": [dropped.num_rows],
                     "by_source": [json.dumps(dict(Counter(kept["source"].to_pylist())))]})


def pool_dataset(parts: list[str], pool: int, seed: int, want: int | None):
    """A pool's rows with their set order columns; with `want`, only the `want` best-ranked (a distributed top-k)."""
    import ray

    ds = ray.data.from_items([{"part": p} for p in parts], override_num_blocks=max(1, len(parts)))
    ds = ds.map_batches(ranked_part, batch_format="pyarrow", batch_size=1, fn_kwargs={"pool": pool, "seed": seed})
    return ds.sort(["rank", "id"]).limit(want) if want is not None else ds


def write_set(pool_parts: dict[str, list[str]], pool_rows: dict[str, int], spec: SftSetConfig, seed: int, output: str,
              *, ray_address: str | None = None) -> dict:
    """`build_set` over pools stored as parts, on Ray Data: each pool's rows ranked (and its top `want` taken when
    the set has a size), exact duplicates marked by a group-by on the pair key, then a group-by on the part a row
    belongs to (pool, rank range: fixed boundaries, so a re-run writes the same parts) whose tasks sort and write
    their rows; the driver orders the part names and commits the manifests, and holds no row. Returns the counts."""
    listed = {name: share for name, share in spec.sources.items() if share > 0}
    total = sum(listed.values())
    datasets, shortfall, selected = [], {}, 0
    for order, (name, share) in enumerate(listed.items()):
        have = pool_rows.get(name, 0)
        want = round(share / total * spec.size) if spec.size is not None else None
        if want is not None and have < want:
            shortfall[name] = want - have
        selected += have if want is None else min(have, want)
        if have and want != 0:
            datasets.append(pool_dataset(pool_parts[name], order, seed, want))
    results = []
    if datasets:
        ensure_ray(ray_address)
        ds = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
        ds = ds.groupby("key").map_groups(mark_duplicates, batch_format="pyarrow")
        ds = ds.map_batches(add_bucket, batch_format="pyarrow", fn_kwargs={"bits": rank_bits(selected)})
        ds = ds.groupby("bucket").map_groups(write_bucket, batch_format="pyarrow", fn_kwargs={"output": output})
        results = sorted((row for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None) for row in batch.to_pylist()),
                         key=lambda r: r["bucket"])
    kept_parts = [r["kept_part"] for r in results if r["kept_part"]]
    dropped_parts = [r["dropped_part"] for r in results if r["dropped_part"]]
    rows, dropped = sum(r["kept"] for r in results), sum(r["dropped"] for r in results)
    empty = pa.schema([(c, pa.string()) for c in PAIR_COLUMNS])
    commit_parts(join(output, DROPPED), dropped_parts or [write_part(empty.append(pa.field("drop_reason", pa.string()))
                 .append(pa.field("duplicate_of", pa.string())).empty_table(), join(output, DROPPED), 0)], dropped)
    commit_parts(output, kept_parts or [write_part(empty.empty_table(), output, 0)], rows)
    by_source = sum((Counter(json.loads(r["by_source"])) for r in results), Counter())
    return {"selected": selected, "rows": rows, "duplicates_dropped": dropped,
            "by_source": {name: by_source[name] for name in sorted(by_source, key=list(listed).index)} if listed else {},
            "shortfall": shortfall}
