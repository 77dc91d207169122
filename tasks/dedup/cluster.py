"""Keep policy, exact-duplicate groups, LSH candidate pairs and near-duplicate clusters.

Everything here works on small per-unit arrays (a rank, a content hash, `bands` band keys), never on
texts or full signatures, so it scales to millions of units in one process:
- `keep_rank` orders units by the paper's policy: most stars, then latest commit (null = oldest),
  then smallest id; the kept unit of any group is the one with the lowest rank.
- `exact_groups` keeps the best unit of each content hash.
- `candidate_pairs` groups units by (band, key): each bucket gives star edges from its best-ranked
  member to every other member, de-duplicated over bands.
- `components` unions the (verified) pairs with scipy's connected components; each cluster keeps its
  best-ranked unit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


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
