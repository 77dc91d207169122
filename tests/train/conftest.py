"""Fixtures: a small tokenizer and packed-token folder built without Ray (fast), from installed sources."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tasks.common.shards import write_json
from tasks.tokenize.packing import META_FILE, TOKENIZER_DIR, TOKENS_FILE, encode_batch, token_dtype
from tasks.tokenize.stage import pack_to_file
from tasks.tokenize.tokenizer import SPECIAL_TOKENS, save_tokenizer, train_bpe

MICRO_PRESET = dict(name="micro", num_layers=2, hidden_size=64, num_heads=2, num_kv_heads=2, intermediate_size=128,
                    vocab_size=None, max_position_embeddings=256, rope_theta=10_000.0)


def python_sources(package: str, limit: int) -> list[str]:
    site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    return [f.read_text(errors="replace") for f in sorted((site / package).rglob("*.py"))][:limit]


def make_packed(folder: Path, texts: list[str], vocab_size: int = 512, seq_len: int = 32) -> Path:
    tok = train_bpe(texts, vocab_size)
    tok_hash = save_tokenizer(tok, folder / TOKENIZER_DIR, seq_len)
    table = encode_batch(pa.table({"text": texts}), str(folder / TOKENIZER_DIR))
    dtype = token_dtype(tok.get_vocab_size())
    counts = pack_to_file([table], folder / TOKENS_FILE, dtype, seq_len)
    write_json(folder / META_FILE, {"vocab_size": tok.get_vocab_size(), "dtype": dtype.name, "seq_len": seq_len,
                                    "tokenizer_hash": tok_hash, "special_tokens": list(SPECIAL_TOKENS), **counts})
    return folder


@pytest.fixture(scope="session")
def packed_dir(tmp_path_factory) -> Path:
    return make_packed(tmp_path_factory.mktemp("packed") / "tokenize", python_sources("requests", 12))
