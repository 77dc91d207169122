"""The task bodies of distributed dedup: pure functions of Arrow tables, one per pass, run as Ray tasks by
`tasks.dedup.stage` (or in process by the tests). Each returns its rows cut into partitions for the next pass
(`tasks.common.shuffle`) and at most small counts, so no pass needs a table of the whole corpus.

Partitions: a unit's member rows by hash of the unit id (`string_partitions(unit)`); everything keyed by a
unit's keep-policy key (`keys.rank_key`) by hash of the key bytes (`string_partitions(key)`); LSH band rows
by hash of the band value; decisions by input slice.

1. `hash_slice` (per input slice): the slice's units (`units.unit_batch`: content hash, shingle count, LSH
   band keys or a partial repo signature) with their documents' metadata and input positions -> by unit.
2. `reduce_units` (per unit partition): the first row of every (unit, document) (a repeated id is planned
   once, at its first input position), unit rows with their rank key (repo: members' max stars, latest
   commit, hash of the members' hashes, union signature -> band keys) -> by content hash; the member rows
   stay (a join side of passes 6 and 12); input counts per language and per guardrail group.
3. `exact_and_bands` (per content-hash partition): the exact keeper of each unit (min key of its hash
   group) -> by keeper key; the band values of the surviving units with shingles -> by band value.
4. `lsh_edges` (per band partition): each (band, value) bucket gives star edges from its min-key member to
   the others -> by the head's key.
5. `unique_edges`: the candidate pairs, without repeats; with verification, the units they need -> by unit.
6. `needed_members`: the documents of the needed units -> by slice.
7. `slice_shingles` (per input slice): exact shingle sets of the needed units, from the slice's own texts.
8. `attach_a_side`: union of each unit's shingles; pairs with the a-side set -> by the b-side key.
9. `verify_pairs`: exact Jaccard on the worker; passing pairs in both directions -> by first node.
10. `start_labels` / `propagate_labels`: min-label propagation rounds (each node takes the smallest label
    among itself and its neighbours) until no label changes; the label is the component's min key.
11. `final_status`: exact keeper's component label (exact copies follow a near-dropped keeper to the kept
    unit), near status from the own label; dropped units -> by unit.
12. `dropped_members`: the dropped units' documents -> by keeper unit.
13. `clusters_and_decisions`: per keeper, the cluster aggregates (sizes, the top clusters with labels) and
    each dropped document's `duplicate_of` (repo level: the kept repo's file with the same path, else its
    first file) -> by slice.
14. `slice_decisions` (per slice): chunk level, a document goes when all its chunks go; writes the slice's
    decisions file for the marking pass; removal counts per language and per guardrail group.
15. `guardrail_partition`: groups losing more than `guardrail_share` of their rows.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.common.runner import read_slice, slice_positions
from tasks.common.shards import filesystem
from tasks.common.shuffle import concat, hash_partitions, partition_table, string_partitions
from tasks.dedup import minhash as mh
from tasks.dedup.config import DedupConfig
from tasks.dedup.keys import key_name, rank_keys
from tasks.dedup.units import chunk_values, unit_batch

EXACT, NEAR = "exact_duplicate", "near_duplicate"
KEPT, DROP_EXACT, DROP_NEAR = 0, 1, 2
REASONS = {DROP_EXACT: EXACT, DROP_NEAR: NEAR}
META_COLUMNS = ["repo", "path", "lang", "source", "stars", "commit_date", "size_bytes"]
META_TYPES = {"repo": pa.string(), "path": pa.string(), "lang": pa.string(), "source": pa.string(),
              "stars": pa.int64(), "commit_date": pa.string(), "size_bytes": pa.int64()}
NUM_EXAMPLE_PATHS = 5
DECISION_SCHEMA = pa.schema([("id", pa.string()), ("drop_reason", pa.string()), ("duplicate_of", pa.string())])


def _strings(table: pa.Table, name: str) -> np.ndarray:
    return np.array(table.column(name).to_pylist(), dtype=object)


def _run_starts(*columns: np.ndarray) -> np.ndarray:
    """True where a row starts a new run of equal values of the (sorted) columns."""
    n = len(columns[0])
    start = np.zeros(n, dtype=bool)
    if n:
        start[0] = True
        for values in columns:
            start[1:] |= values[1:] != values[:-1]
    return start


def _sorted(table: pa.Table, *names: str) -> pa.Table:
    return table.sort_by([(n, "ascending") for n in names]) if table.num_rows else table


def group_counts(groups: tuple[str, ...], docs: pa.Table, value: str, num_partitions: int) -> list[pa.Table]:
    """(group, name, `value`) counts of documents per guardrail group (null name = `unknown`) -> by name."""
    rows: Counter = Counter()
    for group in groups:
        rows.update((group, name or "unknown") for name in docs.column(group).to_pylist())
    table = pa.table({"group": [g for g, _ in rows], "name": [n for _, n in rows], value: pa.array(list(rows.values()), pa.int64())})
    return partition_table(table, string_partitions(table.column("name").to_pylist(), num_partitions), num_partitions)


def guardrail_groups(cfg: DedupConfig) -> tuple[str, ...]:
    """Sources (and repos, except at repo level where whole repos go by design)."""
    return ("source",) if cfg.level == "repo" else ("source", "repo")


# 1. hash ---------------------------------------------------------------------------------------------------

def member_schema(cfg: DedupConfig) -> pa.Schema:
    return pa.schema([("unit", pa.string()), ("doc_id", pa.string()), ("position", pa.int64()), ("slice", pa.int32()),
                      ("chunk", pa.int32()), ("num_chunks", pa.int32()), *[(c, t) for c, t in META_TYPES.items()],
                      ("content_hash", pa.string()), ("num_shingles", pa.int64()),
                      ("band_keys", pa.list_(pa.uint64(), cfg.candidate_bands[0])), ("signature", pa.list_(pa.uint32()))])


def hash_slice(spec: list, index: int, shard_index: dict[str, int], columns: list[str], cfg: DedupConfig,
               num_partitions: int) -> tuple[pa.Table, ...]:
    """Pass 1: the unit rows of one input slice with their documents' metadata -> by unit."""
    rows = read_slice(spec, columns)
    positions = slice_positions(spec, shard_index)
    units = unit_batch(rows, cfg)
    if cfg.level == "chunk":
        chunk = np.array([int(u.rsplit("#", 1)[1]) for u in units.column("unit").to_pylist()], dtype=np.int32)
        doc = np.cumsum(chunk == 0) - 1
    else:
        chunk = np.zeros(units.num_rows, dtype=np.int32)
        doc = np.arange(units.num_rows)
    num_chunks = np.bincount(doc, minlength=rows.num_rows).astype(np.int32)[doc]
    take = pa.array(doc, pa.int64())
    columns_out = {"unit": units.column("unit"), "doc_id": units.column("doc_id"),
                   "position": pa.array(positions[doc], pa.int64()), "slice": pa.array(np.full(len(doc), index, dtype=np.int32)),
                   "chunk": pa.array(chunk), "num_chunks": pa.array(num_chunks)}
    for name, dtype in META_TYPES.items():
        columns_out[name] = rows.column(name).take(take).cast(dtype) if name in rows.column_names else pa.nulls(len(doc), dtype)
    for name in ("content_hash", "num_shingles", "band_keys", "signature"):
        columns_out[name] = units.column(name)
    table = pa.table(columns_out, schema=member_schema(cfg))
    return tuple(partition_table(table, string_partitions(table.column("unit").to_pylist(), num_partitions), num_partitions))


# 2. units --------------------------------------------------------------------------------------------------

UNIT_SCHEMA = pa.schema([("unit", pa.string()), ("key", pa.binary()), ("content_hash", pa.string()),
                         ("num_shingles", pa.int64()), ("band_keys", pa.list_(pa.uint64()))])
MEMBER_COLUMNS = ["unit", "doc_id", "slice", "chunk", "num_chunks", "path", "lang", "source", "repo", "size_bytes", "label"]


def first_occurrences(members: pa.Table) -> pa.Table:
    """The first input row of every (unit, document), sorted by unit then document."""
    members = _sorted(members, "unit", "doc_id", "position")
    first = _run_starts(_strings(members, "unit"), _strings(members, "doc_id"))
    return members.filter(pa.array(first))


def unit_labels(members: pa.Table, level: str) -> list[str]:
    """The report's name of each member row's unit: `repo/path` (file), `repo/path#k` (chunk), the repo (repo)."""
    if level == "repo":
        return members.column("unit").to_pylist()
    labels = [f"{r}/{p}" for r, p in zip(members.column("repo").to_pylist(), members.column("path").to_pylist())]
    if level == "chunk":
        labels = [f"{label}#{k}" for label, k in zip(labels, members.column("chunk").to_pylist())]
    return labels


def repo_signatures(rows: pa.Table) -> dict[str, np.ndarray]:
    """{repo: element-wise minimum of its partial signatures} (one per repo and slice; MinHash of the union).
    All rows count: a repeated id's later rows, which `first_occurrences` leaves out, share their slice's partial."""
    sigs: dict[str, np.ndarray] = {}
    present = rows.filter(pc.is_valid(rows.column("signature")))
    for unit, sig in zip(present.column("unit").to_pylist(), present.column("signature").to_numpy(zero_copy_only=False)):
        sig = np.asarray(sig, dtype=np.uint32)
        sigs[unit] = np.minimum(sigs[unit], sig) if unit in sigs else sig
    return sigs


def repo_units(members: pa.Table, signatures: dict[str, np.ndarray], cfg: DedupConfig) -> pa.Table:
    """One row per repository of (first-occurrence, unit-sorted) member rows: max stars, latest commit, the
    hash of its files' sorted hashes, summed shingle counts, band keys of the union signature."""
    names, stars, dates, hashes, counts, sigs = [], [], [], [], [], []
    units = members.column("unit").to_pylist()
    starts = list(np.flatnonzero(_run_starts(np.array(units, dtype=object)))) + [len(units)]
    cols = {c: members.column(c).to_pylist() for c in ("stars", "commit_date", "content_hash", "num_shingles")}
    for a, b in zip(starts[:-1], starts[1:]):
        names.append(units[a])
        stars.append(max((s for s in cols["stars"][a:b] if s is not None), default=None))
        dates.append(max((d for d in cols["commit_date"][a:b] if d), default=None))
        hashes.append(hashlib.sha256("\n".join(sorted(cols["content_hash"][a:b])).encode()).hexdigest())
        counts.append(sum(cols["num_shingles"][a:b]))
        sigs.append(signatures[units[a]])
    bands, rows = cfg.candidate_bands
    keys = mh.band_keys(np.stack(sigs), bands, rows, cfg.seed) if names else np.empty((0, bands), dtype=np.uint64)
    return pa.table({"unit": names, "key": pa.array(rank_keys(stars, dates, names), pa.binary()), "content_hash": hashes,
                     "num_shingles": pa.array(counts, pa.int64()), "band_keys": pa.array(list(keys), pa.list_(pa.uint64()))},
                    schema=UNIT_SCHEMA)


def language_counts(docs: pa.Table, prefix: str, reasons: list[str] | None = None) -> dict[str, dict[str, int]]:
    """{lang: {rows_<x>, bytes_<x>}} of document rows (x = `prefix`, or each row's reason)."""
    table: dict[str, Counter] = defaultdict(Counter)
    langs, sizes = docs.column("lang").to_pylist(), docs.column("size_bytes").to_pylist()
    for i, (lang, size) in enumerate(zip(langs, sizes)):
        label = prefix if reasons is None else reasons[i]
        table[lang or "unknown"][f"rows_{label}"] += 1
        table[lang or "unknown"][f"bytes_{label}"] += size or 0
    return {lang: dict(c) for lang, c in table.items()}


def reduce_units(cfg: DedupConfig, num_partitions: int, *parts: pa.Table) -> tuple:
    """Pass 2: (members kept for joins, *units by content hash, *guardrail input counts by name, stats)."""
    rows = concat(parts, member_schema(cfg))
    members = first_occurrences(rows)
    docs = members.filter(pc.equal(members.column("chunk"), 0))
    if cfg.level == "repo":
        units = repo_units(members, repo_signatures(rows), cfg)
    else:
        names = members.column("unit").to_pylist()
        keys = rank_keys(members.column("stars").to_pylist(), members.column("commit_date").to_pylist(), names)
        units = pa.table({"unit": members.column("unit"), "key": pa.array(keys, pa.binary()),
                          "content_hash": members.column("content_hash"), "num_shingles": members.column("num_shingles"),
                          "band_keys": members.column("band_keys").cast(pa.list_(pa.uint64()))}, schema=UNIT_SCHEMA)
    by_hash = partition_table(units, string_partitions(units.column("content_hash").to_pylist(), num_partitions), num_partitions)
    kept = members.append_column("label", pa.array(unit_labels(members, cfg.level), pa.string())).select(MEMBER_COLUMNS)
    counts = group_counts(guardrail_groups(cfg), docs, "rows", num_partitions)
    stats = {"units_in": units.num_rows, "by_lang": language_counts(docs, "in")}
    return (kept, *by_hash, *counts, stats)


# 3. exact dedup and LSH band values -------------------------------------------------------------------------

EXACT_SCHEMA = pa.schema([("unit", pa.string()), ("key", pa.binary()), ("exact_keeper", pa.binary())])
BAND_SCHEMA = pa.schema([("band", pa.int32()), ("value", pa.uint64()), ("key", pa.binary())])


def key_partitions(keys: list[bytes], num_partitions: int) -> np.ndarray:
    """Partition of each unit key (the partitioning of everything keyed by unit key)."""
    return string_partitions(keys, num_partitions)


def exact_and_bands(cfg: DedupConfig, num_partitions: int, *parts: pa.Table) -> tuple:
    """Pass 3: (*exact keeper rows by keeper key, *band rows of the surviving units by band value)."""
    units = _sorted(concat(parts, UNIT_SCHEMA), "content_hash", "key")
    keys = units.column("key").to_pylist()
    if cfg.exact:
        head = np.maximum.accumulate(np.where(_run_starts(_strings(units, "content_hash")), np.arange(len(keys)), 0))
        keepers = [keys[i] for i in head]
    else:
        keepers = keys
    exact = pa.table({"unit": units.column("unit"), "key": pa.array(keys, pa.binary()),
                      "exact_keeper": pa.array(keepers, pa.binary())}, schema=EXACT_SCHEMA)
    by_keeper = partition_table(exact, key_partitions(keepers, num_partitions), num_partitions)
    alive = np.array([k == e for k, e in zip(keys, keepers)], dtype=bool)
    alive &= units.column("num_shingles").to_numpy() > 0
    if not cfg.fuzzy:
        alive[:] = False
    idx = np.flatnonzero(alive)
    num_bands = cfg.candidate_bands[0]
    values = np.asarray(pc.list_flatten(units.column("band_keys").take(pa.array(idx, pa.int64()))).to_numpy(zero_copy_only=False),
                        dtype=np.uint64)
    bands = pa.table({"band": pa.array(np.tile(np.arange(num_bands, dtype=np.int32), len(idx))),
                      "value": pa.array(values, pa.uint64()),
                      "key": units.column("key").take(pa.array(np.repeat(idx, num_bands), pa.int64()))}, schema=BAND_SCHEMA)
    mixed = mh.fmix64(values ^ bands.column("band").to_numpy().astype(np.uint64))
    by_value = partition_table(bands, hash_partitions(mixed, num_partitions), num_partitions)
    return (*by_keeper, *by_value)


# 4-5. LSH candidate pairs ----------------------------------------------------------------------------------

EDGE_SCHEMA = pa.schema([("a", pa.binary()), ("b", pa.binary())])


def _edges(a: list[bytes], b: list[bytes]) -> pa.Table:
    return pa.table({"a": pa.array(a, pa.binary()), "b": pa.array(b, pa.binary())}, schema=EDGE_SCHEMA)


def lsh_edges(num_partitions: int, *parts: pa.Table) -> tuple:
    """Pass 4: star edges (bucket's min key, other member) of every (band, value) bucket -> by head key."""
    rows = _sorted(concat(parts, BAND_SCHEMA), "band", "value")
    band, value = rows.column("band").to_numpy(), rows.column("value").to_numpy()
    single = _run_starts(band, value) & np.r_[_run_starts(band, value)[1:], True]  # the only member of its bucket
    rows = _sorted(rows.filter(pa.array(~single)), "band", "value", "key")  # most rows are alone in their bucket
    keys = rows.column("key").to_pylist()
    start = _run_starts(rows.column("band").to_numpy(), rows.column("value").to_numpy())
    head = np.maximum.accumulate(np.where(start, np.arange(len(keys)), 0))
    members = np.flatnonzero(~start)
    edges = _edges([keys[head[i]] for i in members], [keys[i] for i in members])
    return tuple(partition_table(edges, key_partitions(edges.column("a").to_pylist(), num_partitions), num_partitions))


def unique_edges(verify: bool, num_partitions: int, *parts: pa.Table) -> tuple:
    """Pass 5: the distinct pairs of this head partition; with `verify`, (pairs, *needed units by unit id,
    count), else (*directed edges by first node, count)."""
    edges = _sorted(concat(parts, EDGE_SCHEMA), "a", "b")
    a, b = _strings(edges, "a"), _strings(edges, "b")
    edges = edges.filter(pa.array(_run_starts(a, b)))
    stats = {"candidate_pairs": edges.num_rows}
    if not verify:
        return (*directed_edges(edges, num_partitions), stats)
    needed = sorted(set(edges.column("a").to_pylist()) | set(edges.column("b").to_pylist()))
    names = [key_name(k) for k in needed]
    table = pa.table({"unit": pa.array(names, pa.string()), "key": pa.array(needed, pa.binary())})
    return (edges, *partition_table(table, string_partitions(names, num_partitions), num_partitions), stats)


def directed_edges(edges: pa.Table, num_partitions: int) -> list[pa.Table]:
    """Both directions of every edge -> by the first node's key (the connected-components input)."""
    both = pa.table({"a": pa.concat_arrays([edges.column("a").combine_chunks(), edges.column("b").combine_chunks()]),
                     "b": pa.concat_arrays([edges.column("b").combine_chunks(), edges.column("a").combine_chunks()])}) \
        if edges.num_rows else EDGE_SCHEMA.empty_table()
    return partition_table(both, key_partitions(both.column("a").to_pylist(), num_partitions), num_partitions)


# 6-9. verification by exact Jaccard -------------------------------------------------------------------------

NEEDED_SCHEMA = pa.schema([("doc_id", pa.string()), ("key", pa.binary()), ("chunk", pa.int32())])
SHINGLE_SCHEMA = pa.schema([("key", pa.binary()), ("shingles", pa.list_(pa.uint64()))])


def needed_members(num_slices: int, members: pa.Table, *needed: pa.Table) -> tuple:
    """Pass 6: the documents (and chunk) of every unit a candidate pair needs -> by input slice."""
    wanted = concat(needed, pa.schema([("unit", pa.string()), ("key", pa.binary())]))
    joined = members.select(["unit", "doc_id", "slice", "chunk"]).join(wanted, "unit", join_type="inner")
    joined = _sorted(joined, "key", "doc_id")
    table = joined.select(["doc_id", "key", "chunk"]).cast(NEEDED_SCHEMA)
    return tuple(partition_table(table, joined.column("slice").to_numpy().astype(np.int64), num_slices))


def slice_shingles(spec: list, cfg: DedupConfig, num_partitions: int, *needed: pa.Table) -> tuple:
    """Pass 7: exact shingle sets of the needed units, from this slice's texts only (repo level: one set per
    file, united in pass 8) -> by unit key."""
    wanted = concat(needed, NEEDED_SCHEMA)
    if not wanted.num_rows:
        return tuple(SHINGLE_SCHEMA.empty_table() for _ in range(num_partitions))
    rows = read_slice(spec, ["id", "text"])
    ids = set(wanted.column("doc_id").to_pylist())
    texts = {}
    for doc_id, text in zip(rows.column("id").to_pylist(), rows.column("text").to_pylist()):
        if doc_id in ids and doc_id not in texts:  # a repeated id: its first row is the planned one
            texts[doc_id] = text or ""
    keys, sets = [], []
    for doc_id, key, chunk in zip(*(wanted.column(c).to_pylist() for c in ("doc_id", "key", "chunk"))):
        if cfg.level == "chunk":
            shingles = mh.shingle_hashes(chunk_values(texts[doc_id], cfg)[chunk], cfg.ngram)
        else:
            shingles = mh.text_shingles(texts[doc_id], cfg.shingle, cfg.ngram)
        keys.append(key)
        sets.append(shingles)
    table = pa.table({"key": pa.array(keys, pa.binary()), "shingles": pa.array(sets, pa.list_(pa.uint64()))}, schema=SHINGLE_SCHEMA)
    return tuple(partition_table(table, key_partitions(keys, num_partitions), num_partitions))


def _union_by_key(parts: tuple[pa.Table, ...]) -> dict[bytes, np.ndarray]:
    sets: dict[bytes, list[np.ndarray]] = defaultdict(list)
    for part in parts:
        for key, shingles in zip(part.column("key").to_pylist(), part.column("shingles").to_numpy(zero_copy_only=False)):
            sets[key].append(np.asarray(shingles, dtype=np.uint64))
    return {k: np.unique(np.concatenate(v)) if len(v) > 1 else v[0] for k, v in sets.items()}


def _shingle_table(sets: dict[bytes, np.ndarray], keys: list[bytes]) -> pa.Table:
    return pa.table({"key": pa.array(keys, pa.binary()), "shingles": pa.array([sets[k] for k in keys], pa.list_(pa.uint64()))},
                    schema=SHINGLE_SCHEMA)


def attach_a_side(num_partitions: int, edges: pa.Table, *shingle_parts: pa.Table) -> tuple:
    """Pass 8: (this partition's united shingle sets, *pairs with the a-side set -> by b key)."""
    sets = _union_by_key(shingle_parts)
    united = _shingle_table(sets, sorted(sets))
    a = edges.column("a").to_pylist()
    with_a = edges.append_column("a_shingles", pa.array([sets[k] for k in a], pa.list_(pa.uint64())))
    return (united, *partition_table(with_a, key_partitions(edges.column("b").to_pylist(), num_partitions), num_partitions))


def verify_pairs(threshold: float, num_partitions: int, united: pa.Table, *pairs: pa.Table) -> tuple:
    """Pass 9: pairs whose exact Jaccard reaches `threshold`, both directions -> by first node; and counts."""
    sets = dict(zip(united.column("key").to_pylist(), united.column("shingles").to_numpy(zero_copy_only=False)))
    pairs = [p for p in pairs if p.num_rows]
    table = concat(pairs, EDGE_SCHEMA.append(pa.field("a_shingles", pa.list_(pa.uint64()))))
    ok = np.array([mh.jaccard(np.asarray(x, dtype=np.uint64), np.asarray(sets[y], dtype=np.uint64)) >= threshold
                   for x, y in zip(table.column("a_shingles").to_numpy(zero_copy_only=False), table.column("b").to_pylist())],
                  dtype=bool)
    passed = table.select(["a", "b"]).filter(pa.array(ok))
    stats = {"false_positive_pairs": int((~ok).sum()), "merged_pairs": passed.num_rows}
    return (*directed_edges(passed, num_partitions), stats)


# 10. connected components -----------------------------------------------------------------------------------

LABEL_SCHEMA = pa.schema([("node", pa.binary()), ("label", pa.binary())])


def _label_table(labels: dict[bytes, bytes]) -> pa.Table:
    nodes = sorted(labels)
    return pa.table({"node": pa.array(nodes, pa.binary()), "label": pa.array([labels[n] for n in nodes], pa.binary())},
                    schema=LABEL_SCHEMA)


def _messages(edges: pa.Table, labels: dict[bytes, bytes], changed: set[bytes], num_partitions: int) -> list[pa.Table]:
    """(neighbour, label) of every edge from a node whose label changed -> by neighbour."""
    targets, values = [], []
    for a, b in zip(edges.column("a").to_pylist(), edges.column("b").to_pylist()):
        if a in changed:
            targets.append(b)
            values.append(labels[a])
    table = pa.table({"node": pa.array(targets, pa.binary()), "label": pa.array(values, pa.binary())}, schema=LABEL_SCHEMA)
    return partition_table(table, key_partitions(targets, num_partitions), num_partitions)


def start_labels(num_partitions: int, *parts: pa.Table) -> tuple:
    """Pass 10a: (this partition's directed edges, labels = own key, *first messages by node, changes)."""
    edges = concat(parts, EDGE_SCHEMA)
    labels = {a: a for a in edges.column("a").to_pylist()}
    return (edges, _label_table(labels), *_messages(edges, labels, set(labels), num_partitions), len(labels))


def propagate_labels(num_partitions: int, edges: pa.Table, labels: pa.Table, *messages: pa.Table) -> tuple:
    """Pass 10b, one round: every node takes the smallest label it was sent if smaller than its own and
    tells its neighbours; returns (labels, *messages by node, number of labels changed)."""
    current = dict(zip(labels.column("node").to_pylist(), labels.column("label").to_pylist()))
    changed = set()
    for part in messages:
        for node, label in zip(part.column("node").to_pylist(), part.column("label").to_pylist()):
            if label < current[node]:
                current[node] = label
                changed.add(node)
    return (_label_table(current), *_messages(edges, current, changed, num_partitions), len(changed))


# 11-13. statuses, clusters, decisions ------------------------------------------------------------------------

STATUS_SCHEMA = pa.schema([("unit", pa.string()), ("key", pa.binary()), ("status", pa.int8()), ("keeper", pa.binary()),
                           ("keeper_unit", pa.string())])


def final_status(num_partitions: int, labels: pa.Table | None, *exact_parts: pa.Table) -> tuple:
    """Pass 11 (per keeper-key partition): (*dropped units with status and final keeper -> by unit, counts)."""
    label = dict(zip(labels.column("node").to_pylist(), labels.column("label").to_pylist())) if labels is not None else {}
    rows = concat(exact_parts, EXACT_SCHEMA)
    units, status, keepers = [], [], []
    for unit, key, exact_keeper in zip(*(rows.column(c).to_pylist() for c in ("unit", "key", "exact_keeper"))):
        final = label.get(exact_keeper, exact_keeper)
        state = DROP_EXACT if key != exact_keeper else (DROP_NEAR if final != key else KEPT)
        if state != KEPT:
            units.append((unit, key))
            status.append(state)
            keepers.append(final)
    table = pa.table({"unit": [u for u, _ in units], "key": pa.array([k for _, k in units], pa.binary()),
                      "status": pa.array(status, pa.int8()), "keeper": pa.array(keepers, pa.binary()),
                      "keeper_unit": [key_name(k) for k in keepers]}, schema=STATUS_SCHEMA)
    stats = {"units_exact_dropped": status.count(DROP_EXACT), "units_near_dropped": status.count(DROP_NEAR)}
    return (*partition_table(table, string_partitions(table.column("unit").to_pylist(), num_partitions), num_partitions), stats)


def dropped_members(num_partitions: int, members: pa.Table, *status_parts: pa.Table) -> tuple:
    """Pass 12 (per unit partition): the documents of the dropped units with their status -> by keeper unit."""
    statuses = concat(status_parts, STATUS_SCHEMA)
    joined = _sorted(members.join(statuses, "unit", join_type="inner"), "keeper", "key", "doc_id")
    return tuple(partition_table(joined, string_partitions(joined.column("keeper_unit").to_pylist(), num_partitions), num_partitions))


CHUNK_ROW_COLUMNS = ["id", "status", "duplicate_of", "slice", "chunk", "num_chunks", "lang", "size_bytes", "source", "repo"]


def _keeper_targets(keeper_members: list[dict]) -> tuple[dict, str]:
    """The kept unit's {path: document} (the last of equal paths, by id) and its first document."""
    ordered = sorted(keeper_members, key=lambda m: m["doc_id"])
    return {m["path"]: m["doc_id"] for m in ordered}, ordered[0]["doc_id"]


def clusters_and_decisions(cfg: DedupConfig, num_slices: int, members: pa.Table, *dropped_parts: pa.Table) -> tuple:
    """Pass 13 (per keeper-unit partition): (*dropped document rows -> by slice, cluster aggregates)."""
    dropped = concat([p for p in dropped_parts if p.num_rows] or dropped_parts[:1])
    keeper_units = set(dropped.column("keeper_unit").to_pylist()) if dropped.num_rows else set()
    by_unit: dict[str, list[dict]] = defaultdict(list)
    for row in members.filter(pc.is_in(members.column("unit"), pa.array(sorted(keeper_units), pa.string()))).to_pylist():
        by_unit[row["unit"]].append(row)
    clusters: dict[bytes, dict] = {}
    out = {c: [] for c in CHUNK_ROW_COLUMNS}
    for row in dropped.to_pylist():
        kept = by_unit[row["keeper_unit"]]
        cluster = clusters.setdefault(row["keeper"], {"units": {}, "kept": kept[0]["label"], "targets": _keeper_targets(kept)})
        cluster["units"].setdefault(row["key"], row["label"])
        by_path, first = cluster["targets"]
        values = {"id": row["doc_id"], "status": row["status"], "duplicate_of": by_path.get(row["path"], first)}
        for c in CHUNK_ROW_COLUMNS:
            out[c].append(values[c] if c in values else row[c])
    table = pa.table(out)
    if not table.num_rows:
        table = pa.table({c: pa.array([], pa.int64() if c in ("status", "slice", "chunk", "num_chunks", "size_bytes") else pa.string())
                          for c in CHUNK_ROW_COLUMNS})
    sizes = Counter(len(c["units"]) + 1 for c in clusters.values())
    top = sorted(clusters.items(), key=lambda kv: (-len(kv[1]["units"]), kv[0]))[: cfg.report_top_clusters]
    largest = [{"size": len(c["units"]) + 1, "keeper": k, "kept": c["kept"],
                "removed_examples": [c["units"][u] for u in sorted(c["units"])[:NUM_EXAMPLE_PATHS]]} for k, c in top]
    partial = {"num_clusters": len(clusters), "size_histogram": dict(sizes), "largest": largest}
    slices = table.column("slice").to_numpy().astype(np.int64) if table.num_rows else np.empty(0, dtype=np.int64)
    return (*partition_table(table, slices, num_slices), partial)


# 14-15. per-slice decisions, guardrail ------------------------------------------------------------------------

def document_decisions(rows: pa.Table, level: str) -> pa.Table:
    """One row per dropped document (`id`, `status`, `duplicate_of`, metadata): at chunk level only documents
    all of whose chunks go (exact when every chunk was an exact copy; `duplicate_of` from its first chunk)."""
    rows = _sorted(rows, "id", "chunk")
    if level != "chunk" or not rows.num_rows:
        return rows
    ids = _strings(rows, "id")
    start = np.flatnonzero(_run_starts(ids))
    count = np.diff(np.append(start, len(ids)))
    status = rows.column("status").to_numpy()
    all_exact = np.minimum.reduceat(status == DROP_EXACT, start) if len(start) else np.empty(0, dtype=bool)
    whole = count == rows.column("num_chunks").to_numpy()[start]
    firsts = rows.take(pa.array(start[whole], pa.int64()))
    reasons = np.where(all_exact[whole], DROP_EXACT, DROP_NEAR).astype(np.int64)
    return firsts.set_column(firsts.schema.get_field_index("status"), "status", pa.array(reasons))


def slice_decisions(cfg: DedupConfig, path: str, num_partitions: int, *parts: pa.Table) -> tuple:
    """Pass 14 (per input slice): write the slice's decisions (id, drop_reason, duplicate_of) to `path`;
    return (*removed counts per guardrail group -> by name, {decisions, by_lang})."""
    rows = [p for p in parts if p.num_rows]
    docs = document_decisions(concat(rows or parts[:1]), cfg.level)
    reasons = [REASONS[int(s)] for s in docs.column("status").to_pylist()]
    decisions = pa.table({"id": docs.column("id"), "drop_reason": pa.array(reasons, pa.string()),
                          "duplicate_of": docs.column("duplicate_of")}, schema=DECISION_SCHEMA)
    fs, target = filesystem(path)
    pq.write_table(decisions, target, filesystem=fs)
    removed = group_counts(guardrail_groups(cfg), docs, "removed", num_partitions)
    return (*removed, {"decisions": decisions.num_rows, "by_lang": language_counts(docs, "", reasons)})


def guardrail_partition(cfg: DedupConfig, num_counts: int, *parts: pa.Table) -> dict:
    """Pass 15 (per group-name partition): how many groups of at least `guardrail_min_rows` rows lose more than
    `guardrail_share` of them, and the first `report_top_flagged` of them in report order."""
    rows: Counter = Counter()
    removed: Counter = Counter()
    for i, part in enumerate(parts):
        target = rows if i < num_counts else removed
        column = "rows" if i < num_counts else "removed"
        for group, name, n in zip(*(part.column(c).to_pylist() for c in ("group", "name", column))):
            target[(group, name)] += n
    flagged = []
    for (group, name), n in rows.items():
        share = removed[(group, name)] / n
        if n >= cfg.guardrail_min_rows and share > cfg.guardrail_share:
            flagged.append({"group": group, "name": name, "rows": n, "removed": removed[(group, name)], "share": round(share, 4)})
    groups = guardrail_groups(cfg)
    flagged.sort(key=lambda f: (groups.index(f["group"]), f["name"]))
    return {"count": len(flagged), "flagged": flagged[: cfg.report_top_flagged]}


@lru_cache(maxsize=2)
def load_decisions(path: str) -> dict[str, tuple[str, str]]:
    """A slice's decisions file as {id: (drop_reason, duplicate_of)} (cached: a slice is marked in batches)."""
    fs, target = filesystem(path)
    table = pq.read_table(target, filesystem=fs)
    return dict(zip(table.column("id").to_pylist(), zip(table.column("drop_reason").to_pylist(), table.column("duplicate_of").to_pylist())))


def mark_batch(batch: pa.Table, decisions: str) -> pa.Table:
    """Add `drop_reason` and `duplicate_of` (null for kept rows) to a document batch of one slice, from the
    slice's decisions file."""
    found = load_decisions(decisions)
    hits = [found.get(i) for i in batch.column("id").to_pylist()]
    for name in ("drop_reason", "duplicate_of"):
        if name in batch.column_names:
            batch = batch.drop_columns([name])
    return (batch.append_column("duplicate_of", pa.array([h[1] if h else None for h in hits], pa.string()))
            .append_column("drop_reason", pa.array([h[0] if h else None for h in hits], pa.string())))
