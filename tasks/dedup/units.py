"""Dedup units and the pure batch function that hashes them (what the Ray runner maps over shards).

A unit is what dedup compares and removes: a file (`file`), a fixed-size token chunk of a file
(`chunk`, unit id `<doc id>#<k>`) or a repository (`repo`, unit id = the repo name). For every batch of
documents `unit_batch` returns one row per file or chunk with:
- `doc_id`, `unit`: the document and the unit it belongs to;
- `content_hash`: SHA256 of the content (the file text; a chunk's tokens joined by spaces);
- `num_shingles`: size of the unit's shingle set (0 = nothing to compare, skipped by near-dedup);
- `band_keys` (file, chunk): the unit's LSH band keys (`cfg.candidate_bands`), so only a few 64-bit
  numbers per unit leave the worker, never a signature;
- `signature` (repo): the element-wise minimum of the batch's file signatures of that repo, on the
  last row of each repo in the batch (null elsewhere, at no cost). MinHash is mergeable, so the reduce task of
  the repo (`passes.reduce_units`) takes the minimum over batches and gets the signature of the union of all
  the repo's shingles.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from tasks.dedup import minhash as mh
from tasks.dedup.config import DedupConfig


def unit_schema(cfg: DedupConfig) -> pa.Schema:
    """Schema of `unit_batch` results."""
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("unit", pa.string()),
            ("content_hash", pa.string()),
            ("num_shingles", pa.int64()),
            ("band_keys", pa.list_(pa.uint64(), cfg.candidate_bands[0])),
            ("signature", pa.list_(pa.uint32())),
        ]
    )


def chunk_values(text: str, cfg: DedupConfig) -> list[np.ndarray]:
    """The file's shingle-unit values cut into chunks of `chunk_tokens` (at least one chunk)."""
    values = mh.unit_values(text, cfg.shingle)
    if values.size == 0:
        return [values]
    return [values[i : i + cfg.chunk_tokens] for i in range(0, values.size, cfg.chunk_tokens)]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fixed_list(rows: list[np.ndarray | None], dtype: pa.DataType, size: int) -> pa.Array:
    """A FixedSizeList array from equal-length numpy rows (None = null)."""
    valid = [r is not None for r in rows]
    flat = np.zeros((len(rows), size), dtype=dtype.to_pandas_dtype())
    for i, r in enumerate(rows):
        if r is not None:
            flat[i] = r
    values = pa.array(flat.reshape(-1), type=dtype)
    mask = pa.array([not v for v in valid], type=pa.bool_())
    return pa.FixedSizeListArray.from_arrays(values, size, mask=mask)


def _optional_lists(rows: list[np.ndarray | None], dtype: pa.DataType) -> pa.Array:
    """A list array from numpy rows where None = null and costs nothing (a fixed-size list would store
    `num_perm` zeros for every null signature of the file and chunk levels)."""
    lengths = np.array([0 if r is None else len(r) for r in rows], dtype=np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    present = [r for r in rows if r is not None]
    values = np.concatenate(present) if present else np.empty(0, dtype=dtype.to_pandas_dtype())
    mask = pa.array([r is None for r in rows], type=pa.bool_())
    return pa.ListArray.from_arrays(offsets, pa.array(values, type=dtype), mask=mask)


def _file_or_chunk_rows(ids: list[str], texts: list[str], cfg: DedupConfig) -> dict[str, list]:
    out: dict[str, list] = {"doc_id": [], "unit": [], "content_hash": [], "num_shingles": [], "keys": []}
    for doc_id, text in zip(ids, texts):
        text = text or ""
        if cfg.level == "file":
            parts = [(doc_id, _sha(text.encode("utf-8", "replace")), mh.unit_values(text, cfg.shingle))]
        else:
            parts = [
                (f"{doc_id}#{k}", _sha(np.ascontiguousarray(values).tobytes()), values)
                for k, values in enumerate(chunk_values(text, cfg))
            ]
        for unit, digest, values in parts:
            shingles = mh.shingle_hashes(values, cfg.ngram)
            sig = mh.signature(shingles, cfg.num_perm, cfg.seed)
            out["doc_id"].append(doc_id)
            out["unit"].append(unit)
            out["content_hash"].append(digest)
            out["num_shingles"].append(int(shingles.size))
            out["keys"].append(mh.band_keys(sig, *cfg.candidate_bands, cfg.seed)[0])
    return out


def _repo_rows(ids: list[str], repos: list[str | None], texts: list[str], cfg: DedupConfig) -> dict[str, list]:
    out: dict[str, list] = {"doc_id": [], "unit": [], "content_hash": [], "num_shingles": [], "sigs": []}
    partial: dict[str, np.ndarray] = {}
    last_row: dict[str, int] = {}
    for i, (doc_id, repo, text) in enumerate(zip(ids, repos, texts)):
        text = text or ""
        repo = repo_unit(repo, doc_id)
        shingles = mh.text_shingles(text, cfg.shingle, cfg.ngram)
        sig = mh.signature(shingles, cfg.num_perm, cfg.seed)
        partial[repo] = np.minimum(partial[repo], sig) if repo in partial else sig
        last_row[repo] = i
        out["doc_id"].append(doc_id)
        out["unit"].append(repo)
        out["content_hash"].append(_sha(text.encode("utf-8", "replace")))
        out["num_shingles"].append(int(shingles.size))
        out["sigs"].append(None)
    for repo, i in last_row.items():
        out["sigs"][i] = partial[repo]
    return out


def repo_unit(repo: str | None, doc_id: str) -> str:
    """Unit id of a file at repo level; a file without a repo is its own repository."""
    return repo if repo else f"<no-repo>/{doc_id}"


def unit_batch(batch: pa.Table, cfg: DedupConfig) -> pa.Table:
    """Hash every unit of a document batch (columns `id`, `text`, and `repo` at repo level)."""
    ids = batch.column("id").to_pylist()
    texts = batch.column("text").to_pylist()
    schema = unit_schema(cfg)
    if cfg.level == "repo":
        repos = batch.column("repo").to_pylist() if "repo" in batch.column_names else [None] * len(ids)
        rows = _repo_rows(ids, repos, texts, cfg)
        keys = [None] * len(rows["doc_id"])
        sigs = rows.pop("sigs")
    else:
        rows = _file_or_chunk_rows(ids, texts, cfg)
        keys = rows.pop("keys")
        sigs = [None] * len(rows["doc_id"])
    columns = [pa.array(rows[name], type=schema.field(name).type) for name in ("doc_id", "unit", "content_hash", "num_shingles")]
    columns.append(_fixed_list(keys, pa.uint64(), cfg.candidate_bands[0]))
    columns.append(_optional_lists(sigs, pa.uint32()))
    return pa.Table.from_arrays(columns, schema=schema)
