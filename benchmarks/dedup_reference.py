"""The single-process reference of the dedup stage: the implementation `tasks.dedup` had before its passes were
distributed (issue #14), kept next to the benchmarks the way datasketch serves for signatures.

Everything runs in one process on per-unit arrays: keep-policy ranks (`keep_rank`), exact groups, LSH
candidate pairs (`candidate_pairs`), exact-Jaccard verification, scipy connected components and a dict of
every dropped document (`build_plan`), about 1-2 KB per document. `reference_decisions` runs it over a shard
folder: {id: (drop_reason, duplicate_of)} of every dropped document, for the distributed stage to be compared
with (`tests/dedup/test_dedup_distributed.py`, `benchmarks/scale.py`'s `kept_identical_300k`).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tasks.common.shards import filesystem, list_shards, read_table
from tasks.dedup import minhash as mh
from tasks.dedup.config import DedupConfig
from tasks.dedup.units import chunk_values, unit_batch, unit_schema

NUM_EXAMPLE_PATHS = 5

def keep_rank(stars: Sequence[int | None], commit_dates: Sequence[str | None], ids: Sequence[str]) -> np.ndarray:
    """Rank of each unit under the keep policy (0 = the best to keep); a total order, so deterministic.

    ISO-8601 commit dates compare as strings; a null date is the oldest and null stars count as -1.
    """
    n = len(ids)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    star_key = -np.array([-1 if s is None else s for s in stars], dtype=np.int64)
    dates = np.array(["" if d is None else d for d in commit_dates], dtype=object)
    date_order = np.unique(dates, return_inverse=True)[1]
    id_order = np.unique(np.array(list(ids), dtype=object), return_inverse=True)[1]
    order = np.lexsort((id_order, -date_order, star_key))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def exact_groups(content_hash: Sequence[str], rank: np.ndarray) -> np.ndarray:
    """For each unit, the index of the best-ranked unit with the same content hash (itself if kept)."""
    n = len(content_hash)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    group = np.unique(np.array(list(content_hash), dtype=object), return_inverse=True)[1]
    return _keeper_by_group(group, rank)


def candidate_pairs(keys: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """(m, 2) unique index pairs (best-ranked bucket member, other member) sharing a band key."""
    n, bands = keys.shape
    found = []
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    for band in range(bands):
        order = np.lexsort((rank, keys[:, band]))
        sorted_keys = keys[order, band]
        first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
        head = order[np.maximum.accumulate(np.where(first, np.arange(n), 0))]
        members = ~first
        found.append(np.stack([head[members], order[members]], axis=1))
    pairs = np.concatenate(found)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2).astype(np.int64)


def components(n: int, pairs: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each of `n` units, the index of the best-ranked unit of its connected component."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if len(pairs) == 0:
        return np.arange(n)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return _keeper_by_group(label, rank)


def lsh_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard shares at least one band (the LSH S-curve)."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


def _keeper_by_group(group: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For every row, the index of the best-ranked (lowest `rank`) row of its group."""
    n = len(group)
    order = np.lexsort((rank, group))
    first = np.r_[True, group[order][1:] != group[order][:-1]]
    head = order[np.maximum.accumulate(np.where(first, np.arange(n), 0))]
    keeper = np.empty(n, dtype=np.int64)
    keeper[order] = head
    return keeper


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
    rank = keep_rank(stars, dates, names)
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
    pairs = candidate_pairs(units.keys[idx], units.rank[idx])
    stats["candidate_pairs"] = len(pairs)
    if cfg.verify and len(pairs):
        ok = verify(pair_table(units, idx[pairs]))
        stats["false_positive_pairs"] = int((~ok).sum())
        pairs = pairs[ok]
    stats["merged_pairs"] = len(pairs)
    keeper[idx] = idx[components(len(idx), pairs, units.rank[idx])]
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
    keeper = exact_groups(units.content_hash, units.rank) if cfg.exact else np.arange(n)
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


def _unit_label(plan: Plan, i: int, meta: dict[str, dict], level: str) -> str:
    if level == "repo":
        return plan.units.names[i]
    doc = meta.get(plan.units.members[i][0], {})
    return f"{doc.get('repo')}/{doc.get('path')}" + (f"#{plan.units.names[i].rsplit('#', 1)[1]}" if level == "chunk" else "")


def clusters(plan: Plan, meta: dict[str, dict], cfg: DedupConfig) -> dict[str, Any]:
    """Cluster-size histogram and the largest clusters (kept unit first, then removed examples)."""
    dropped = np.flatnonzero(plan.unit_status != KEPT)
    members: dict[int, list[int]] = defaultdict(list)
    for i in dropped:
        members[int(plan.unit_keeper[i])].append(int(i))
    sizes = Counter(len(m) + 1 for m in members.values())
    largest = sorted(members.items(), key=lambda kv: (-len(kv[1]), plan.units.rank[kv[0]]))[: cfg.report_top_clusters]
    return {
        "num_clusters": len(members),
        "size_histogram": {str(k): v for k, v in sorted(sizes.items())},
        "largest": [
            {
                "size": len(m) + 1,
                "kept": _unit_label(plan, k, meta, cfg.level),
                "removed_examples": [_unit_label(plan, i, meta, cfg.level) for i in sorted(m, key=lambda i: plan.units.rank[i])[:NUM_EXAMPLE_PATHS]],
            }
            for k, m in largest
        ],
    }


def removal_by_language(meta: dict[str, dict], decisions: dict[str, tuple[str, str]]) -> dict[str, dict[str, int]]:
    """{lang: {rows_in, rows_<reason>, bytes_in, bytes_<reason>}} over all documents."""
    table: dict[str, Counter] = defaultdict(Counter)
    for doc_id, doc in meta.items():
        lang = doc.get("lang") or "unknown"
        size = doc.get("size_bytes") or 0
        table[lang]["rows_in"] += 1
        table[lang]["bytes_in"] += size
        if doc_id in decisions:
            reason = decisions[doc_id][0]
            table[lang][f"rows_{reason}"] += 1
            table[lang][f"bytes_{reason}"] += size
    return {lang: dict(c) for lang, c in sorted(table.items())}


def guardrail(meta: dict[str, dict], decisions: dict[str, tuple[str, str]], cfg: DedupConfig) -> list[dict[str, Any]]:
    """Sources (and repos, except at repo level where whole repos go by design) losing too much."""
    groups = ("source",) if cfg.level == "repo" else ("source", "repo")
    flagged = []
    for key in groups:
        rows, removed = Counter(), Counter()
        for doc_id, doc in meta.items():
            name = doc.get(key) or "unknown"
            rows[name] += 1
            removed[name] += doc_id in decisions
        for name in sorted(rows):
            share = removed[name] / rows[name]
            if rows[name] >= cfg.guardrail_min_rows and share > cfg.guardrail_share:
                flagged.append({"group": key, "name": name, "rows": rows[name], "removed": removed[name], "share": round(share, 4)})
    return flagged


def summarize(plan: Plan, meta: dict[str, dict], cfg: DedupConfig, flagged: list[dict]) -> dict[str, Any]:
    """The report's JSON content."""
    return {
        "level": cfg.level,
        "lsh_threshold": cfg.lsh_threshold,
        "candidate_bands": list(cfg.candidate_bands),
        "per_level": {cfg.level: {k: v for k, v in plan.stats.items() if k.startswith("units_")}},
        "pairs": {k: v for k, v in plan.stats.items() if k.endswith("_pairs")},
        "clusters": clusters(plan, meta, cfg),
        "removal_by_language": removal_by_language(meta, plan.decisions),
        "guardrail": flagged,
    }


def meta_dict(meta: pa.Table) -> dict[str, dict]:
    """{id: metadata row} of the document metadata table."""
    return {row["id"]: row for row in meta.to_pylist()}


def shard_dataset(input_dir: str | Path) -> pads.Dataset:
    """The input's shards as one pyarrow dataset, on the folder's filesystem (local or object store)."""
    fs, _ = filesystem(input_dir)
    return pads.dataset([filesystem(p)[1] for p in list_shards(input_dir)], format="parquet", filesystem=fs)


def shard_text_loader(input_dir: Path):
    """Load the texts of a set of document ids from the input shards (only the rows asked for)."""

    def load(ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        dataset = shard_dataset(input_dir)
        table = dataset.to_table(columns=["id", "text"], filter=pads.field("id").isin(pa.array(sorted(ids))))
        return dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))

    return load


def first_occurrences(table: pa.Table, keys: list[str]) -> pa.Table:
    """The rows whose `keys` no earlier row has, in order: a repeated document id is planned once, as its
    first row (the marking pass drops the later ones as `duplicate_id`)."""
    rows = table.select(keys).append_column("row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    first = rows.group_by(keys, use_threads=False).aggregate([("row", "min")]).column("row_min").to_numpy()
    return table if len(first) == table.num_rows else table.take(np.sort(first))


def read_meta(input_dir: Path) -> pa.Table:
    """The metadata columns of every document (no texts)."""
    names = shard_dataset(input_dir).schema.names if list_shards(input_dir) else []
    return first_occurrences(read_table(input_dir, columns=[c for c in META_COLUMNS if c in names] or None), ["id"])


def hash_units(input_dir: Path, cfg: DedupConfig, batch_size: int = 256) -> pa.Table:
    """Unit rows of the whole input, in this process (first occurrence of every (document, unit))."""
    columns = ["id", "text", "repo"] if cfg.level == "repo" else ["id", "text"]
    table = read_table(input_dir, columns=[c for c in columns if c in shard_dataset(input_dir).schema.names])
    parts = [unit_batch(table.slice(s, batch_size), cfg).cast(unit_schema(cfg)) for s in range(0, table.num_rows, batch_size)]
    units = pa.concat_tables(parts) if parts else unit_schema(cfg).empty_table()
    return first_occurrences(units, ["doc_id", "unit"])


def reference_plan(input_dir: Path, cfg: DedupConfig) -> Plan:
    """`build_plan` over a shard folder, texts for the verification read by `shard_text_loader`."""
    return build_plan(read_meta(input_dir), hash_units(input_dir, cfg), cfg, text_verifier(shard_text_loader(input_dir), cfg))


def reference_decisions(input_dir: Path, cfg: DedupConfig) -> dict[str, tuple[str, str]]:
    """{dropped id: (drop_reason, duplicate_of)} of the single-process reference."""
    return reference_plan(input_dir, cfg).decisions
