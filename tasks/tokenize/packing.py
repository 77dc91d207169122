"""The token files of a tokenize output, what writes them and what reads them back as fixed-length sequences.

Each map task of the stage encodes its own slice of documents (`encode_slice`): every document becomes its
token ids followed by EOS (no BOS, as OpenCoder's tokenizer has `add_bos` false), the slice's ids go, in input
order, to one token shard `tokens/tokens-<sha256 prefix>.bin` (content-addressed: a re-run writes the same
name for the same bytes and never rewrites a file an older index lists), and the task returns one row per
document: kept ones with their shard and offset in it, the others with a `drop_reason`. `meta.json`, written
last, is the index:

    tokens/tokens-<sha>.bin     flat ids of one slice's documents, `dtype` (uint16 if vocab <= 65536)
    meta.json = {vocab_size, dtype, seq_len, tokenizer_hash, ...,
                 shards: [{file, num_tokens, num_documents}, ...] in slice order, num_tokens, num_sequences}

The training data is the concatenation of the shards in that order, cut into `seq_len` sequences; the tail
that does not fill a whole sequence is left out (`PackedTokens` reads sequence `i` by index, a sequence may
span shards). This is the same stream the one-file layout had (`tokens.bin`, which `PackedTokens` still reads
and `pack_to_file` writes: one shard holding whole sequences). Document boundaries inside a sequence are its
EOS positions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.common.shards import _put, filesystem, join
from tasks.common.stage import DROP_REASON
from tasks.tokenize.tokenizer import EOS_ID, load_fast

TOKENS_FILE = "tokens.bin"
"""The one-file layout (whole sequences in one file), still read; the stage writes `TOKENS_DIR` shards."""
TOKENS_DIR = "tokens"
META_FILE = "meta.json"
TOKENIZER_DIR = "tokenizer"
EMPTY_TEXT = "empty_text"
"""`drop_reason` of a document without text (null or empty): nothing to pack, not a lone EOS."""


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def encode_batch(batch: pa.Table, tokenizer_dir: str, tokenizer_hash: str | None = None) -> pa.Table:
    """Document rows -> one row per document: `ids` (its tokens + EOS) and `num_tokens`.

    A document without text (null or empty) gets no ids at all (`num_tokens` 0)."""
    tok = load_fast(tokenizer_dir, tokenizer_hash)
    texts = batch.column("text").to_pylist()
    encoded = tok.encode_batch_fast([t or "" for t in texts], add_special_tokens=False)
    ids = [e.ids + [EOS_ID] if t else [] for t, e in zip(texts, encoded)]
    return pa.table({
        "ids": pa.array(ids, type=pa.list_(pa.uint32())),
        "num_tokens": pa.array([len(x) for x in ids], type=pa.int64()),
    })


def flat_ids(table: pa.Table, dtype: np.dtype) -> np.ndarray:
    """All ids of an `encode_batch` result, concatenated in row order."""
    return table.column("ids").combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def shard_name(ids: list[str], data: bytes) -> str:
    """Content-addressed name of a token shard: its bytes and the ids of its documents."""
    digest = hashlib.sha256("\n".join(ids).encode())
    digest.update(data)
    return f"tokens-{digest.hexdigest()[:16]}.bin"


def write_shard(folder: str, name: str, data: bytes) -> None:
    """Write one token shard whole or not at all; a file already there under that name has these bytes."""
    fs, path = filesystem(folder)
    target = f"{path}/{name}"
    if fs.get_file_info(target).size == len(data):
        return
    fs.create_dir(path, recursive=True)
    _put(fs, target, data)


def encode_slice(batch: pa.Table, tokenizer_dir: str, tokenizer_hash: str, output: str, dtype: str, encode_rows: int) -> pa.Table:
    """Task body of the stage (`runner.map_to_shards`, one call per slice): encode the documents `encode_rows`
    at a time, write their ids as one token shard under `output/tokens/`, and return the rows without `text`,
    plus `num_tokens`, `token_file` and `token_offset` (where its ids start in the shard) for the kept
    documents, and `drop_reason` `empty_text` for those without text."""
    parts, counts = [], []
    for start in range(0, batch.num_rows, encode_rows):
        encoded = encode_batch(batch.slice(start, encode_rows), tokenizer_dir, tokenizer_hash)
        parts.append(flat_ids(encoded, np.dtype(dtype)))
        counts.append(encoded.column("num_tokens").to_numpy())
    num_tokens = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    kept = num_tokens > 0
    data = np.concatenate(parts).tobytes() if parts else b""
    name = None
    if kept.any():
        name = f"{TOKENS_DIR}/{shard_name(batch.column('id').filter(pa.array(kept)).to_pylist(), data)}"
        write_shard(join(output, TOKENS_DIR), name.split("/", 1)[1], data)
    offsets = np.concatenate([[0], np.cumsum(num_tokens)[:-1]]).astype(np.int64) if len(num_tokens) else num_tokens
    out = batch.drop_columns([c for c in ("text",) if c in batch.column_names])
    return (out.append_column("num_tokens", pa.array(num_tokens, pa.int64()))
            .append_column("token_file", pa.array(np.where(kept, name, None), pa.string()))
            .append_column("token_offset", pa.array(np.where(kept, offsets, 0), pa.int64()))
            .append_column(DROP_REASON, pa.array(np.where(kept, None, EMPTY_TEXT), pa.string())))


def shard_summary(table: pa.Table) -> dict:
    """{"shards": {file: {num_tokens, num_documents}}} of one `encode_slice` result (summed by the runner, whose
    results come in slice order: the order of the keys is the shards' order)."""
    kept = table.filter(pc.is_null(table[DROP_REASON]))
    shards: dict[str, dict[str, int]] = {}
    for name in pc.unique(kept["token_file"]).to_pylist():
        mine = kept.filter(pc.equal(kept["token_file"], name))
        shards[name] = {"num_tokens": int(pc.sum(mine["num_tokens"]).as_py()), "num_documents": mine.num_rows}
    return {"shards": shards}


def packed_counts(shards: list[dict], seq_len: int) -> dict:
    """The counts of an index: documents, tokens, whole sequences and the tail left out."""
    num_tokens = sum(s["num_tokens"] for s in shards)
    num_sequences = num_tokens // seq_len
    return {"num_shards": len(shards), "num_documents": sum(s["num_documents"] for s in shards), "num_tokens": num_tokens,
            "num_sequences": num_sequences, "num_tokens_packed": num_sequences * seq_len,
            "num_tokens_dropped_tail": num_tokens - num_sequences * seq_len}


def shard_file_problem(folder: str | Path, meta: dict) -> str | None:
    """Why the token files of a tokenize output do not match its `meta.json` (a missing file, a wrong size), or None."""
    itemsize = np.dtype(meta["dtype"]).itemsize
    expected = ([(s["file"], s["num_tokens"] * itemsize) for s in meta["shards"]] if "shards" in meta
                else [(TOKENS_FILE, meta["num_sequences"] * meta["seq_len"] * itemsize)])
    for name, size in expected:
        path = Path(folder) / name
        if not path.exists():
            return f"{path} is missing"
        if path.stat().st_size != size:
            return f"{path}: {path.stat().st_size} bytes, meta.json says {size}"
    return None


@dataclass(frozen=True)
class PackedTokens:
    """Read-only view of a tokenize output folder: `len()` sequences of `seq_len` ids, `[i]` and `take(indices)`.

    Reads the shards `meta.json` lists as one stream (memory-mapped, so the folder must be on a local or
    mounted filesystem), or the one-file layout (`tokens.bin`)."""

    folder: Path

    @cached_property
    def meta(self) -> dict:
        return json.loads((Path(self.folder) / META_FILE).read_text())

    @cached_property
    def shards(self) -> list[np.ndarray]:
        meta, dtype = self.meta, np.dtype(self.meta["dtype"])
        if "shards" not in meta:
            count = meta["num_sequences"] * meta["seq_len"]
            return [np.memmap(Path(self.folder) / TOKENS_FILE, dtype=dtype, mode="r", shape=(count,))] if count else []
        return [np.memmap(Path(self.folder) / s["file"], dtype=dtype, mode="r", shape=(s["num_tokens"],))
                for s in meta["shards"] if s["num_tokens"]]

    @cached_property
    def starts(self) -> np.ndarray:
        """Position of every shard's first id in the stream, and the stream's length last."""
        return np.cumsum([0] + [len(s) for s in self.shards]).astype(np.int64)

    def __len__(self) -> int:
        return self.meta["num_sequences"]

    def __getitem__(self, index: int) -> np.ndarray:
        return self.take(np.array([index]))[0]

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Sequences at `indices` as an int64 array (rows, seq_len)."""
        indices = np.asarray(indices, dtype=np.int64)
        seq_len = self.meta["seq_len"]
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"{self.folder}: sequence index out of range 0..{len(self) - 1}")
        begin = indices * seq_len
        first = np.searchsorted(self.starts, begin, side="right") - 1
        last = np.searchsorted(self.starts, begin + seq_len - 1, side="right") - 1
        out = np.empty((len(indices), seq_len), dtype=np.int64)
        for j in np.unique(first[first == last]):
            rows = np.nonzero((first == j) & (last == j))[0]
            out[rows] = self.shards[j][(begin[rows] - self.starts[j])[:, None] + np.arange(seq_len)]
        for row in np.nonzero(first != last)[0]:  # a sequence across shard boundaries
            pieces, position, stop = [], begin[row], begin[row] + seq_len
            for j in range(first[row], last[row] + 1):
                upto = min(stop, self.starts[j + 1])
                pieces.append(self.shards[j][position - self.starts[j]: upto - self.starts[j]])
                position = upto
            out[row] = np.concatenate(pieces)
        return out
