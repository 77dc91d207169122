"""The seeded ranking of document ids and the per-language cut of `sample`, computed without collecting rows.

A capped language keeps its documents in ascending `(priority(seed, id), id)` order while the running byte
total stays within the cap. Sizes are never negative, so the kept documents are a prefix of that order: the
cut is one threshold `(priority, id)` per language, and a document is kept when its key is below its
language's threshold. The stage finds the threshold from aggregates only:

1. workers return, per language, files and bytes, and for each language that has a cap a histogram of
   bytes and files by the top `BUCKET_BITS` bits of the priority (`language_histograms`);
2. the driver walks each over-cap language's histogram to the bucket where the running total passes the cap
   (`boundary_bucket`); a bucket with more than `MAX_BOUNDARY_ROWS` files is split again by the next
   `BUCKET_BITS` bits in another pass (`Boundary.refine`);
3. the rows of that bucket alone (priority, id, size) come back (`boundary_rows`), sorted, and the first row
   that does not fit is the threshold (`threshold_in`);
4. a map task marks each document by comparing its key with the threshold (`sampled_out_mask`).

`priority` (`tasks/common/hashing.py`) is the seeded rank every stage that chooses rows by id uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.common.hashing import PRIORITY_BITS, priority

BUCKET_BITS = 16
"""Priority bits resolved per histogram pass: 65,536 buckets per capped language."""
MAX_BOUNDARY_ROWS = 100_000
"""Files of one boundary bucket fetched to the driver at most; a fuller bucket is split by another pass."""


def priorities(ids: list[str], seed: int) -> np.ndarray:
    """`priority` of every id, as uint64."""
    return np.fromiter((priority(i, seed) for i in ids), dtype=np.uint64, count=len(ids))


def row_sizes(batch: pa.Table) -> np.ndarray:
    """`size_bytes` as int64, null as 0, negative as 0 (a size is a byte count)."""
    sizes = pc.fill_null(batch.column("size_bytes").cast(pa.int64()), 0)
    return np.maximum(sizes.to_numpy(zero_copy_only=False), 0)


def in_prefix(prio: np.ndarray, prefix: int, bits: int) -> np.ndarray:
    """Which priorities start with the `bits`-bit `prefix` (every one when `bits` is 0)."""
    if bits == 0:
        return np.ones(len(prio), dtype=bool)
    return (prio >> np.uint64(PRIORITY_BITS - bits)) == np.uint64(prefix)


def bucket_of(prio: np.ndarray, bits: int) -> np.ndarray:
    """The `BUCKET_BITS` bits of each priority that follow its first `bits` bits."""
    return ((prio >> np.uint64(PRIORITY_BITS - bits - BUCKET_BITS)) & np.uint64((1 << BUCKET_BITS) - 1)).astype(np.int64)


def language_histograms(batch: pa.Table, seed: int, prefixes: dict[str, tuple[int, int]], totals: bool) -> pa.Table:
    """Aggregates of one batch (columns id, lang, size_bytes): rows (lang, bucket, files, bytes).

    `totals`: one row per language with bucket -1 (null languages left out, as they are never capped). For
    each language in `prefixes` ({lang: (prefix, bits)}), one row per non-empty bucket of the priorities
    that start with that prefix."""
    langs = batch.column("lang")
    sizes = row_sizes(batch)
    out = []
    if totals:
        grouped = pa.table({"lang": langs, "size": sizes}).group_by("lang").aggregate([("size", "count"), ("size", "sum")])
        grouped = grouped.filter(pc.is_valid(grouped["lang"]))
        out.append(pa.table({"lang": grouped["lang"], "bucket": pa.array(np.full(grouped.num_rows, -1, np.int64)),
                             "files": grouped["size_count"].cast(pa.int64()), "bytes": grouped["size_sum"].cast(pa.int64())}))
    for lang, (prefix, bits) in prefixes.items():
        mine = pc.fill_null(pc.equal(langs, lang), False).to_numpy(zero_copy_only=False)
        if not mine.any():
            continue
        prio = priorities(batch.column("id").filter(pa.array(mine)).to_pylist(), seed)
        inside = in_prefix(prio, prefix, bits)
        buckets = bucket_of(prio[inside], bits)
        files = np.bincount(buckets, minlength=1 << BUCKET_BITS)
        nbytes = np.bincount(buckets, weights=sizes[mine][inside], minlength=1 << BUCKET_BITS).astype(np.int64)
        used = np.nonzero(files)[0]
        out.append(pa.table({"lang": pa.array([lang] * len(used), pa.string()), "bucket": used.astype(np.int64),
                             "files": files[used].astype(np.int64), "bytes": nbytes[used]}))
    schema = pa.schema([("lang", pa.string()), ("bucket", pa.int64()), ("files", pa.int64()), ("bytes", pa.int64())])
    return pa.concat_tables([t.cast(schema) for t in out]) if out else schema.empty_table()


def boundary_rows(batch: pa.Table, seed: int, prefixes: dict[str, tuple[int, int]]) -> pa.Table:
    """The rows (lang, priority, id, size) of one batch whose priority starts with its language's prefix."""
    langs = batch.column("lang")
    sizes = row_sizes(batch)
    out = []
    for lang, (prefix, bits) in prefixes.items():
        mine = pc.fill_null(pc.equal(langs, lang), False).to_numpy(zero_copy_only=False)
        if not mine.any():
            continue
        ids = batch.column("id").filter(pa.array(mine))
        prio = priorities(ids.to_pylist(), seed)
        inside = in_prefix(prio, prefix, bits)
        out.append(pa.table({"lang": pa.array([lang] * int(inside.sum()), pa.string()), "priority": prio[inside],
                             "id": ids.filter(pa.array(inside)), "size": sizes[mine][inside]}))
    schema = pa.schema([("lang", pa.string()), ("priority", pa.uint64()), ("id", pa.string()), ("size", pa.int64())])
    return pa.concat_tables([t.cast(schema) for t in out]) if out else schema.empty_table()


@dataclass(frozen=True)
class Boundary:
    """Where a language's cap falls: the documents whose priority starts with `prefix` (`bits` long) hold
    the crossing; `bytes_before` is the bytes of every document of the language ranked before them."""

    prefix: int
    bits: int
    bytes_before: int

    def refine(self, bucket: int, bytes_before_bucket: int) -> Boundary:
        """The boundary narrowed to `bucket` of the next `BUCKET_BITS` bits."""
        return Boundary((self.prefix << BUCKET_BITS) | bucket, self.bits + BUCKET_BITS, self.bytes_before + bytes_before_bucket)


def boundary_bucket(files: np.ndarray, nbytes: np.ndarray, room: int) -> tuple[int, int]:
    """(bucket, bytes of the buckets before it) of the first bucket where the running byte total passes
    `room`; the total of all buckets must pass it."""
    running = np.cumsum(nbytes)
    bucket = int(np.searchsorted(running, room, side="right"))
    if bucket >= len(nbytes):
        raise ValueError(f"the buckets hold {int(running[-1]) if len(running) else 0} bytes, not more than {room}")
    return bucket, int(running[bucket - 1]) if bucket else 0


def threshold_in(rows: pa.Table, bytes_before: int, cap: int) -> tuple[int, str]:
    """The key (priority, id) of the first of `rows` (one language's boundary rows), in key order, with which
    the running total from `bytes_before` passes `cap`: that document and every later one are sampled out."""
    order = sorted(zip(rows.column("priority").to_pylist(), rows.column("id").to_pylist(), rows.column("size").to_pylist()))
    running = bytes_before
    for prio, doc_id, size in order:
        running += size
        if running > cap:
            return prio, doc_id
    raise ValueError(f"the boundary rows end at {running} bytes, within the cap {cap}")


def sampled_out_mask(batch: pa.Table, seed: int, thresholds: dict[str, tuple[int, str]]) -> np.ndarray:
    """Which rows of a batch (columns id, lang) have a key at or after their language's threshold."""
    out = np.zeros(batch.num_rows, dtype=bool)
    langs = batch.column("lang")
    for lang, (limit, limit_id) in thresholds.items():
        mine = np.nonzero(pc.fill_null(pc.equal(langs, lang), False).to_numpy(zero_copy_only=False))[0]
        if not len(mine):
            continue
        ids = batch.column("id").take(pa.array(mine)).to_pylist()
        prio = priorities(ids, seed)
        after = prio > np.uint64(limit)
        tied = np.nonzero(prio == np.uint64(limit))[0]
        after[tied] = [ids[i] >= limit_id for i in tied]
        out[mine] = after
    return out
