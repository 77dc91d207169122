"""Tokenizer training, chat template, packing and the tokenize stage on local Ray."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pyarrow as pa

from tasks.common.tracking import NullTracker
from tasks.config import load_params
from tasks.tokenize.packing import PackedTokens, encode_batch, token_dtype
from tasks.tokenize.stage import pack_to_file, run
from tasks.tokenize.tokenizer import EOS_ID, SPECIAL_TOKENS, save_tokenizer, tokenizer_hash, train_bpe

CODE = ["def add(a, b):\n    return a + b\n", "import os\nprint(os.getcwd())\n", "class A:\n    pass\n"] * 30


def test_special_tokens_fixed_ids_and_roundtrip(tmp_path):
    from transformers import AutoTokenizer

    save_tokenizer(train_bpe(CODE, 400), tmp_path, 128)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    text = "def f(x):\n\treturn x  # ünïcode\n"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_chat_template_is_opencoders(tmp_path):
    from transformers import AutoTokenizer

    save_tokenizer(train_bpe(CODE, 400), tmp_path, 128)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert rendered == ("<|im_start|>system\nYou are OpenCoder, created by OpenCoder Team.<|im_end|>\n"
                        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_hash_changes_with_vocabulary(tmp_path):
    h1 = save_tokenizer(train_bpe(CODE, 400), tmp_path / "a", 128)
    h2 = save_tokenizer(train_bpe(CODE, 300), tmp_path / "b", 128)
    assert h1 == tokenizer_hash(tmp_path / "a") and h1 != h2


def test_encode_batch_appends_eos_and_packing_cuts_tail(tmp_path):
    save_tokenizer(train_bpe(CODE, 400), tmp_path / "tok", 128)
    table = encode_batch(pa.table({"text": ["x = 1\n", "", "y = 2\n"]}), str(tmp_path / "tok"))
    ids = table.column("ids").to_pylist()
    assert ids[0][-1] == ids[2][-1] == EOS_ID and ids[1] == []  # a document without text packs nothing
    counts = pack_to_file([table, table], tmp_path / "tokens.bin", np.dtype(np.uint16), 4)
    total = 2 * sum(map(len, ids))
    assert counts["num_tokens"] == total and counts["num_sequences"] == total // 4
    assert (counts["num_documents"], counts["num_empty"]) == (4, 2)
    assert (tmp_path / "tokens.bin").stat().st_size == counts["num_sequences"] * 4 * 2


def test_token_dtype():
    assert token_dtype(65536) == np.uint16 and token_dtype(96_640) == np.uint32


def test_stage_on_local_ray(small_corpus, tmp_path):
    params = load_params("params.yaml", ["tracking.enabled=false", "tokenize.vocab_size=1024", "tokenize.seq_len=64",
                                         "tokenize.train_sample_bytes=300000"])
    out = tmp_path / "tok"
    metrics = run(params, small_corpus, out, NullTracker())
    meta = json.loads((out / "meta.json").read_text())
    assert meta["vocab_size"] == 1024 and meta["dtype"] == "uint16" and meta["seq_len"] == 64
    assert meta["tokenizer_hash"] == tokenizer_hash(out / "tokenizer")
    assert metrics["rows_in"] == metrics["rows_kept"] + metrics["rows_dropped"] and metrics["rows_kept"] > 0
    assert metrics["rows_dropped"] == meta["num_empty"]  # empty files (package __init__.py): no text, nothing packed
    packed = PackedTokens(out)
    assert len(packed) == meta["num_sequences"] > 100 and packed[3].shape == (64,)
    flat = np.concatenate([np.fromfile(out / s["file"], dtype=np.uint16) for s in meta["shards"]])
    assert (flat[3 * 64 : 4 * 64] == packed[3]).all()
    assert int((flat == EOS_ID).sum()) == metrics["rows_kept"]  # every packed document ends with EOS
