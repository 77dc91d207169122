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

from tasks.curate.config import SftSetConfig


def pair_key(instruction: str, output: str) -> str:
    """sha256 of the whitespace-normalised instruction and output."""
    norm = " ".join(instruction.split()) + "\x00" + " ".join(output.split())
    return hashlib.sha256(norm.encode("utf-8", "surrogateescape")).hexdigest()


def _rank(row_id: str, seed: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{row_id}".encode(), digest_size=8).digest(), "big")


def select(pools: dict[str, list[dict]], spec: SftSetConfig, seed: int) -> tuple[list[dict], dict[str, int]]:
    """Rows of the set (pool by pool, in rank order) and the shortfall of each pool that had too few."""
    listed = {name: share for name, share in spec.sources.items() if share > 0}
    total = sum(listed.values())
    rows, shortfall = [], {}
    for name, share in listed.items():
        pool = sorted(pools.get(name, []), key=lambda r: (_rank(r["id"], seed), r["id"]))
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
