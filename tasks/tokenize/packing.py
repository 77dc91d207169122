"""Packing: documents -> token ids joined by EOS -> fixed-length sequences in one flat memmap.

`encode_batch` is the pure per-batch function the Ray runner maps over document shards: each document
becomes its token ids followed by EOS (no BOS, as OpenCoder's tokenizer has `add_bos` false). The
driver appends the id streams, in input order, to `tokens.bin`; the tail that does not fill a whole
sequence is cut. `PackedTokens` reads sequence `i` back by index without loading the file:

    tokens.bin  = seq_0 | seq_1 | ... | seq_{n-1}      each `seq_len` ids of `dtype` (uint16 if vocab <= 65536)
    meta.json   = {vocab_size, dtype, seq_len, num_sequences, num_tokens, tokenizer_hash, ...}

Document boundaries are not stored: they are the EOS positions inside each sequence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa

from tasks.tokenize.tokenizer import EOS_ID, load_fast

TOKENS_FILE = "tokens.bin"
META_FILE = "meta.json"
TOKENIZER_DIR = "tokenizer"


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def encode_batch(batch: pa.Table, tokenizer_dir: str) -> pa.Table:
    """Document rows -> one row per document: `ids` (its tokens + EOS) and `num_tokens`.

    A document without text (null or empty) gets no ids at all (`num_tokens` 0): the stage counts it as
    dropped (`empty_text`) instead of packing a lone EOS.
    """
    tok = load_fast(tokenizer_dir)
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


@dataclass(frozen=True)
class PackedTokens:
    """Read-only view of a tokenize output folder: `len()` sequences, `[i]` -> ids of sequence i."""

    folder: Path

    @cached_property
    def meta(self) -> dict:
        return json.loads((Path(self.folder) / META_FILE).read_text())

    @cached_property
    def tokens(self) -> np.ndarray:
        meta = self.meta
        return np.memmap(Path(self.folder) / TOKENS_FILE, dtype=np.dtype(meta["dtype"]), mode="r",
                         shape=(meta["num_sequences"], meta["seq_len"]))

    def __len__(self) -> int:
        return self.meta["num_sequences"]

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.tokens[index])

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Sequences at `indices` as an int64 array (rows, seq_len)."""
        return np.asarray(self.tokens[np.asarray(indices)], dtype=np.int64)
