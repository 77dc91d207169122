"""Fixtures: a small tokenizer and packed-token folder built without Ray (fast), from installed sources."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tasks.common.shards import write_json
from tasks.tokenize.packing import META_FILE, TOKENIZER_DIR, TOKENS_FILE, encode_batch, token_dtype
from tasks.tokenize.stage import pack_to_file
from tasks.tokenize.tokenizer import SPECIAL_TOKENS, save_tokenizer, train_bpe
from tasks.train.job import DataSpec, Engine, ModelInit, Phase, ScheduleSpec, TrainJob

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


@pytest.fixture(scope="module")
def single_process_group():
    """The environment of a one-process group (as a single Ray Train worker has), for `train_loop` in this process."""
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29533"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def micro_job(data: Path, root: Path, *, stop_after: int | None, precision: str = "fp32", steps: int = 40) -> TrainJob:
    """The micro preset on packed data, ZeRO-2, a checkpoint every 10 steps, the loss CSV at root/loss.csv."""
    phase = Phase(name="pretrain", model=ModelInit(preset=MICRO_PRESET),
                  data=DataSpec(kind="packed", sources={str(data): 1.0}),
                  schedule=ScheduleSpec(kind="wsd", peak_lr=3e-3, warmup_steps=5, total_steps=steps),
                  global_batch_size=4, micro_batch_size=2, checkpoint_dir=str(root / "ckpt"), export_dir=str(root / "model"))
    engine = Engine(zero_stage=2, precision=precision, weight_decay=0.1, adam_beta1=0.9, adam_beta2=0.95, adam_eps=1e-8,
                    gradient_clipping=1.0, gradient_checkpointing=False, num_threads=1, peak_tflops=None)
    return TrainJob(stage="pretrain", tokenizer_dir=str(data / "tokenizer"), phases=(phase,), engine=engine, seed=0,
                    log_every=10, checkpoint_every=10, stop_after_steps=stop_after, plot_csv=str(root / "loss.csv"))


def loss_rows(csv_path: Path) -> dict[int, float]:
    """Step -> loss of a loss CSV."""
    import csv

    with open(csv_path) as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}


@pytest.fixture(scope="session")
def packed_dir(tmp_path_factory) -> Path:
    return make_packed(tmp_path_factory.mktemp("packed") / "tokenize", python_sources("requests", 12))
