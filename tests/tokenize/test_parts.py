"""Tokenize over a decontaminate output: the pretraining part trains the tokenizer and is packed at the root,
the annealing parts beside it with the same tokenizer; the anneal stage's mix leaves empty and (on request)
high-quality parts out."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA, MissingInputError
from tasks.common.tracking import NullTracker
from tasks.config import load_params
from tasks.tokenize.stage import run
from tasks.tokenize.tokenizer import tokenizer_hash
from tasks.train.anneal import effective_sources
from tasks.train.contract import ContractError

PARAMS = ["tracking.enabled=false", "tokenize.vocab_size=1024", "tokenize.seq_len=64", "tokenize.train_sample_bytes=300000"]


def parts_folder(tmp_path, small_corpus):
    root = tmp_path / "decontaminate"
    shutil.copytree(small_corpus, root / "pretrain")
    algo = pq.read_table(next(small_corpus.glob("*.parquet"))).slice(0, 20)
    (root / "algorithmic").mkdir()
    pq.write_table(algo, root / "algorithmic" / "part-00000.parquet")
    (root / "synthetic").mkdir()
    pq.write_table(DOC_SCHEMA.empty_table(), root / "synthetic" / "part-00000.parquet")
    return root


@pytest.fixture(scope="module")
def packed(tmp_path_factory, small_corpus):
    tmp = tmp_path_factory.mktemp("parts")
    out = tmp / "tokenize"
    metrics = run(load_params("params.yaml", PARAMS), parts_folder(tmp, small_corpus), out, NullTracker())
    return out, metrics


def test_parts_are_packed_with_the_pretraining_tokenizer(packed):
    out, metrics = packed
    root, algo, synth = (json.loads((out / p / "meta.json").read_text()) for p in ("", "algorithmic", "synthetic"))
    assert root["part"] == "pretrain" and not root["high_quality"] and root["num_sequences"] > 0
    assert algo["high_quality"] and algo["num_documents"] == 20 and algo["num_sequences"] > 0
    assert synth["num_documents"] == 0 and synth["num_sequences"] == 0
    assert root["tokenizer_hash"] == algo["tokenizer_hash"] == tokenizer_hash(out / "algorithmic" / "tokenizer")
    assert metrics["rows_kept"] == root["num_documents"] + 20
    # the corpus's empty files (package __init__.py) carry no text: dropped, not packed as a lone EOS
    assert metrics["rows_in"] == metrics["rows_kept"] + metrics["rows_dropped"]
    assert metrics["rows_dropped"] == root["num_empty"] == metrics.get("dropped_by_reason", {}).get("empty_text", 0)
    assert metrics["anneal_parts"]["algorithmic"]["num_documents"] == 20


def test_anneal_mix_renormalises_without_empty_parts_and_drops_high_quality_on_request(packed):
    out, _ = packed
    sources = [f"anneal.sources={{{out}: 0.8394, {out / 'algorithmic'}: 0.1244, {out / 'synthetic'}: 0.0362}}"]
    used, skipped = effective_sources(load_params("params.yaml", PARAMS + sources).anneal)
    assert set(used) == {str(out), str(out / "algorithmic")} and abs(sum(used.values()) - 1) < 1e-5
    assert used[str(out)] == pytest.approx(0.8394 / (0.8394 + 0.1244), abs=1e-5)
    assert skipped == {str(out / "synthetic"): "no packed sequences"}
    used, skipped = effective_sources(load_params("params.yaml", PARAMS + sources + ["anneal.high_quality=false"]).anneal)
    assert used == {str(out): 1.0} and len(skipped) == 2
    with pytest.raises(ContractError):
        effective_sources(load_params("params.yaml", PARAMS + [f"anneal.sources={{{out / 'synthetic'}: 1.0}}"]).anneal)


def test_a_folder_without_shards_or_parts_fails_naming_the_parts(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingInputError, match="pretrain"):
        run(load_params("params.yaml", PARAMS), tmp_path / "empty", tmp_path / "out", NullTracker())
