"""From hashed units to one decision per document: kept, `exact_duplicate` or `near_duplicate` of a kept row.

`build_plan` takes the document metadata (id, repo, path, stars, commit_date, ...), the unit rows of
`units.unit_batch` and a `PairVerifier` (exact Jaccard of LSH candidate pairs, which reads their texts), and runs:
1. units with their keep-policy attributes (repo units: max stars, latest commit, union signature);
2. exact dedup by content hash (the best-ranked unit of each hash stays);
3. LSH candidates over the remaining units with a non-empty shingle set, each pair optionally
   verified by exact Jaccard (failures counted as false positives), connected components, the
   best-ranked unit of each component stays;
4. unit decisions mapped to documents. Every `duplicate_of` names a document that is kept.

`mark_batch` is the pure batch function that adds `drop_reason` and `duplicate_of` to documents.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tasks.dedup import cluster, minhash as mh
from tasks.dedup.config import DedupConfig
from tasks.dedup.units import chunk_values

EXACT, NEAR = "exact_duplicate", "near_duplicate"
KEPT, DROP_EXACT, DROP_NEAR = 0, 1, 2
META_COLUMNS = ["id", "repo", "path", "lang", "source", "stars", "commit_date", "size_bytes"]

TextLoader = Callable[[set[str]], dict[str, str]]
PairVerifier = Callable[[pa.Table], np.ndarray]
"""Candidate pairs (`pair_table`: `a_unit`, `a_members`, `b_unit`, `b_members`) -> which of them reach the
Jaccard threshold; `text_verifier` in process, the stage's on the Ray workers."""


@dataclass
class Units:
    """Per-unit arrays; index i is one unit."""

    names: list[str]
    members: list[list[str]]
    """Document ids of each unit (one for file and chunk units)."""
    rank: np.ndarray
    content_hash: list[str]
    num_shingles: np.ndarray
    keys: np.ndarray
    """(n, bands) uint64 LSH band keys."""


@dataclass
class Plan:
    """The stage's decisions and what the report needs."""

    decisions: dict[str, tuple[str, str]]
    """Dropped document id -> (drop_reason, id of the kept document it duplicates)."""
    units: Units
    unit_status: np.ndarray
    unit_keeper: np.ndarray
    stats: dict[str, int] = field(default_factory=dict)


def _meta_lookup(meta: pa.Table) -> dict[str, dict]:
    return {row["id"]: row for row in meta.select([c for c in META_COLUMNS if c in meta.column_names]).to_pylist()}


def _repo_units(rows: pa.Table, cfg: DedupConfig) -> tuple[list, list, list, np.ndarray, list]:
    by_repo: dict[str, dict] = {}
    for doc_id, unit, digest, count, sig in zip(*(rows.column(c).to_pylist() for c in ("doc_id", "unit", "content_hash", "num_shingles")), rows.column("signature").to_pylist()):
        entry = by_repo.setdefault(unit, {"members": [], "hashes": [], "count": 0, "sig": None})
        entry["members"].append(doc_id)
        entry["hashes"].append(digest)
        entry["count"] += count
        if sig is not None:
            sig = np.asarray(sig, dtype=np.uint32)
            entry["sig"] = sig if entry["sig"] is None else np.minimum(entry["sig"], sig)
    names = sorted(by_repo)
    members = [sorted(by_repo[r]["members"]) for r in names]
    hashes = [hashlib.sha256("\n".join(sorted(by_repo[r]["hashes"])).encode()).hexdigest() for r in names]
    counts = np.array([by_repo[r]["count"] for r in names], dtype=np.int64)
    sigs = np.stack([by_repo[r]["sig"] for r in names]) if names else np.empty((0, cfg.num_perm), dtype=np.uint32)
    bands, rows = cfg.candidate_bands
    keys = mh.band_keys(sigs, bands, rows, cfg.seed) if names else np.empty((0, bands), dtype=np.uint64)
    return names, members, hashes, counts, keys


def build_units(meta: pa.Table, rows: pa.Table, cfg: DedupConfig) -> Units:
    """Collect unit rows into per-unit arrays with keep-policy ranks."""
    lookup = _meta_lookup(meta)
    if cfg.level == "repo":
        names, members, hashes, counts, keys = _repo_units(rows, cfg)
        stars = [max((lookup[d].get("stars") for d in m if lookup[d].get("stars") is not None), default=None) for m in members]
        dates = [max((lookup[d].get("commit_date") for d in m if lookup[d].get("commit_date")), default=None) for m in members]
    else:
        names = rows.column("unit").to_pylist()
        members = [[d] for d in rows.column("doc_id").to_pylist()]
        hashes = rows.column("content_hash").to_pylist()
        counts = np.asarray(rows.column("num_shingles").to_numpy(zero_copy_only=False), dtype=np.int64)
        flat = rows.column("band_keys").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        keys = np.asarray(flat, dtype=np.uint64).reshape(len(names), cfg.candidate_bands[0])
        stars = [lookup[m[0]].get("stars") for m in members]
        dates = [lookup[m[0]].get("commit_date") for m in members]
    rank = cluster.keep_rank(stars, dates, names)
    return Units(names, members, rank, hashes, counts, keys)


def unit_shingles(name: str, members: list[str], texts: dict[str, str], cfg: DedupConfig) -> np.ndarray:
    """Exact shingle set of one unit from its documents' texts."""
    if cfg.level == "chunk":
        doc_id, k = name.rsplit("#", 1)
        return mh.shingle_hashes(chunk_values(texts[doc_id], cfg)[int(k)], cfg.ngram)
    sets = [mh.text_shingles(texts[d] or "", cfg.shingle, cfg.ngram) for d in members]
    return np.unique(np.concatenate(sets)) if sets else np.empty(0, dtype=np.uint64)


def pair_table(units: Units, pairs: np.ndarray) -> pa.Table:
    """Candidate pairs of unit indices as the rows a `PairVerifier` takes: each side's unit and documents."""
    columns = {}
    for side, index in (("a", pairs[:, 0]), ("b", pairs[:, 1])):
        columns[f"{side}_unit"] = pa.array([units.names[i] for i in index], pa.string())
        columns[f"{side}_members"] = pa.array([units.members[i] for i in index], pa.list_(pa.string()))
    return pa.table(columns)


def verify_pair_table(pairs: pa.Table, load_texts: TextLoader, cfg: DedupConfig) -> np.ndarray:
    """Boolean mask of the pairs whose exact Jaccard reaches the threshold (texts loaded only for their
    documents, each unit's shingles computed once)."""
    members = dict(zip(pairs["a_unit"].to_pylist(), pairs["a_members"].to_pylist()))
    members.update(zip(pairs["b_unit"].to_pylist(), pairs["b_members"].to_pylist()))
    texts = load_texts({d for docs in members.values() for d in docs})
    shingles = {name: unit_shingles(name, docs, texts, cfg) for name, docs in members.items()}
    a, b = pairs["a_unit"].to_pylist(), pairs["b_unit"].to_pylist()
    return np.array([mh.jaccard(shingles[x], shingles[y]) >= cfg.jaccard_threshold for x, y in zip(a, b)], dtype=bool)


def text_verifier(load_texts: TextLoader, cfg: DedupConfig) -> PairVerifier:
    """A `PairVerifier` in this process over a text loader."""
    return lambda pairs: verify_pair_table(pairs, load_texts, cfg)


def _near_dedup(units: Units, alive: np.ndarray, verify: PairVerifier, cfg: DedupConfig, stats: Counter) -> np.ndarray:
    """Keeper index per unit after near-dedup of the `alive` units (itself where not merged)."""
    keeper = np.arange(len(units.names))
    idx = np.flatnonzero(alive & (units.num_shingles > 0))
    pairs = cluster.candidate_pairs(units.keys[idx], units.rank[idx])
    stats["candidate_pairs"] = len(pairs)
    if cfg.verify and len(pairs):
        ok = verify(pair_table(units, idx[pairs]))
        stats["false_positive_pairs"] = int((~ok).sum())
        pairs = pairs[ok]
    stats["merged_pairs"] = len(pairs)
    keeper[idx] = idx[cluster.components(len(idx), pairs, units.rank[idx])]
    return keeper


def _doc_decisions(units: Units, status: np.ndarray, keeper: np.ndarray, lookup: dict[str, dict], level: str) -> dict[str, tuple[str, str]]:
    reason = {DROP_EXACT: EXACT, DROP_NEAR: NEAR}
    if level == "chunk":
        return _chunk_decisions(units, status, keeper)
    decisions = {}
    for i in np.flatnonzero(status != KEPT):
        kept_members = units.members[keeper[i]]
        by_path = {lookup[d].get("path"): d for d in kept_members}
        for doc_id in units.members[i]:
            target = by_path.get(lookup[doc_id].get("path"), kept_members[0])
            decisions[doc_id] = (reason[int(status[i])], target)
    return decisions


def _chunk_decisions(units: Units, status: np.ndarray, keeper: np.ndarray) -> dict[str, tuple[str, str]]:
    """A document goes when all its chunks go; near_duplicate unless every chunk was an exact copy."""
    per_doc: dict[str, list[int]] = {}
    for i, m in enumerate(units.members):
        per_doc.setdefault(m[0], []).append(i)
    decisions = {}
    for doc_id, chunk_idx in per_doc.items():
        states = status[chunk_idx]
        if (states == KEPT).any():
            continue
        why = EXACT if (states == DROP_EXACT).all() else NEAR
        decisions[doc_id] = (why, units.members[keeper[chunk_idx[0]]][0])
    return decisions


def build_plan(meta: pa.Table, rows: pa.Table, cfg: DedupConfig, verify: PairVerifier) -> Plan:
    """Decide every document: exact dedup, then near dedup, at the configured level."""
    units = build_units(meta, rows, cfg)
    n = len(units.names)
    stats: Counter = Counter(units_in=n, candidate_pairs=0, false_positive_pairs=0, merged_pairs=0)
    keeper = cluster.exact_groups(units.content_hash, units.rank) if cfg.exact else np.arange(n)
    status = np.where(keeper != np.arange(n), DROP_EXACT, KEPT)
    if cfg.fuzzy:
        near = _near_dedup(units, status == KEPT, verify, cfg, stats)
        merged = (near != np.arange(n)) & (status == KEPT)
        status[merged] = DROP_NEAR
        keeper = near[keeper]  # exact copies of a unit removed as a near duplicate follow it to the kept one
    stats["units_exact_dropped"] = int((status == DROP_EXACT).sum())
    stats["units_near_dropped"] = int((status == DROP_NEAR).sum())
    decisions = _doc_decisions(units, status, keeper, _meta_lookup(meta), cfg.level)
    return Plan(decisions, units, status, keeper, dict(stats))


def mark_batch(batch: pa.Table, decisions: dict[str, tuple[str, str]]) -> pa.Table:
    """Add `drop_reason` and `duplicate_of` (null for kept rows) to a document batch."""
    found = [decisions.get(i) for i in batch.column("id").to_pylist()]
    reasons = pa.array([f[0] if f else None for f in found], type=pa.string())
    targets = pa.array([f[1] if f else None for f in found], type=pa.string())
    for name in ("drop_reason", "duplicate_of"):
        if name in batch.column_names:
            batch = batch.drop_columns([name])
    return batch.append_column("duplicate_of", targets).append_column("drop_reason", reasons)


def table_loader(table: pa.Table) -> TextLoader:
    """A TextLoader over an in-memory document table."""
    texts = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))
    return lambda ids: {i: texts[i] for i in ids}
