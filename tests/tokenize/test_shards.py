"""Per-slice token shards: the stage on local Ray writes the same id stream, tokenizer and sequences that one
process encoding every document in input order gives (the former single-file layout); documents without text
and repeated ids go to `dropped/`; the kept rows locate every document's ids; the index is the loader's; a
re-run with other settings leaves only the shards its index lists; the training sample is chosen by id."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tasks.common.shards import DOC_SCHEMA, read_table
from tasks.common.tracking import NullTracker
from tasks.config import load_params
from tasks.sample.ranking import priority
from tasks.tokenize.packing import PackedTokens, encode_batch, flat_ids
from tasks.tokenize.stage import run
from tasks.tokenize.tokenizer import save_tokenizer, tokenizer_hash, train_bpe
from tasks.train.contract import ContractError, check_data

SETTINGS = ["tracking.enabled=false", "tokenize.vocab_size=1024", "tokenize.seq_len=64", "tokenize.batch_size=64"]


def corpus_with_bad_rows(small_corpus, folder):
    """The small corpus in several shards, plus a null text, an empty text and a repeat of an earlier id."""
    shutil.copytree(small_corpus, folder)
    first = pq.read_table(sorted(folder.glob("*.parquet"))[0])
    extra = pa.Table.from_pylist([
        {**first.slice(0, 1).to_pylist()[0], "id": "nulltext", "text": None},
        {**first.slice(0, 1).to_pylist()[0], "id": "emptytext", "text": ""},
        first.slice(5, 1).to_pylist()[0],  # same id (and text) as row 5 of the first shard
    ], schema=DOC_SCHEMA)
    pq.write_table(extra, folder / "part-99999.parquet")
    return folder


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory, small_corpus):
    tmp = tmp_path_factory.mktemp("shards")
    docs = corpus_with_bad_rows(small_corpus, tmp / "docs")
    out = tmp / "tokenize"
    metrics = run(load_params("params.yaml", SETTINGS + ["tokenize.train_sample_bytes=10000000"]), docs, out, NullTracker())
    return docs, out, metrics


def test_stream_and_tokenizer_equal_one_process_encoding_in_input_order(tokenized, tmp_path):
    docs, out, metrics = tokenized
    table = read_table(docs)
    texts = table["text"].to_pylist()
    reference_tok = train_bpe([t[:100_000] for t in texts if t], 1024, 2)  # the whole corpus fits the sample budget
    assert save_tokenizer(reference_tok, tmp_path / "ref", 64) == tokenizer_hash(out / "tokenizer") == metrics["tokenizer_hash"]
    seen: set[str] = set()
    first_rows = [i for i, doc_id in enumerate(table["id"].to_pylist()) if not (doc_id in seen or seen.add(doc_id))]
    stream = flat_ids(encode_batch(table.take(first_rows), str(out / "tokenizer")), np.dtype(np.uint16))
    meta = json.loads((out / "meta.json").read_text())
    assert len(meta["shards"]) > 4  # one per slice of the input (2 workers x 4 slices)
    shards = np.concatenate([np.fromfile(out / s["file"], dtype=np.uint16) for s in meta["shards"]])
    assert np.array_equal(shards, stream)
    packed = PackedTokens(out)
    n = len(stream) // 64
    assert len(packed) == n == meta["num_sequences"] and meta["num_tokens_dropped_tail"] == len(stream) - n * 64
    assert np.array_equal(packed.take(np.arange(n)), stream[: n * 64].reshape(n, 64))


def test_empty_texts_and_repeated_ids_are_dropped_with_a_reason_and_counts_conserve(tokenized):
    docs, out, metrics = tokenized
    dropped = pq.read_table(out / "dropped").to_pylist()
    reasons = {(r["id"], r["drop_reason"]) for r in dropped}
    empty_files = {r["id"] for r in read_table(docs).to_pylist() if not r["text"]}
    repeated = pq.read_table(docs / "part-99999.parquet")["id"][2].as_py()
    assert reasons == {(i, "empty_text") for i in empty_files} | {(repeated, "duplicate_id")}
    assert {"nulltext", "emptytext"} <= empty_files
    assert metrics["dropped_by_reason"] == {"duplicate_id": 1, "empty_text": len(empty_files)}
    assert metrics["rows_in"] == read_table(docs).num_rows == metrics["rows_kept"] + metrics["rows_dropped"]
    meta = json.loads((out / "meta.json").read_text())
    assert metrics["rows_kept"] == meta["num_documents"] == sum(s["num_documents"] for s in meta["shards"])


def test_kept_rows_locate_each_documents_ids(tokenized):
    docs, out, _ = tokenized
    kept = read_table(out)
    assert "text" not in kept.column_names and kept.num_rows == json.loads((out / "meta.json").read_text())["num_documents"]
    texts = dict(zip(read_table(docs)["id"].to_pylist(), read_table(docs)["text"].to_pylist()))
    for row in kept.slice(0, 400).to_pylist()[::37]:
        ids = np.fromfile(out / row["token_file"], dtype=np.uint16)[row["token_offset"]: row["token_offset"] + row["num_tokens"]]
        expected = encode_batch(pa.table({"text": [texts[row["id"]]]}), str(out / "tokenizer"))["ids"][0].as_py()
        assert ids.tolist() == expected


def test_the_contract_checks_every_listed_shard(tokenized, tmp_path):
    _, out, _ = tokenized
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert check_data(copy, vocab_size=1024, max_positions=64)["num_sequences"] > 0
    victim = json.loads((copy / "meta.json").read_text())["shards"][2]["file"]
    (copy / victim).write_bytes((copy / victim).read_bytes()[:-2])
    with pytest.raises(ContractError, match="the folder is corrupt"):
        check_data(copy, vocab_size=1024, max_positions=64)
    (copy / victim).unlink()
    with pytest.raises(ContractError, match="is missing"):
        check_data(copy, vocab_size=1024, max_positions=64)


def test_a_rerun_with_a_sample_budget_keeps_only_its_own_shards_and_samples_by_id(tokenized, tmp_path):
    docs, first_out, _ = tokenized
    out = tmp_path / "tokenize"
    shutil.copytree(first_out, out)
    old = {s["file"] for s in json.loads((out / "meta.json").read_text())["shards"]}
    settings = SETTINGS + ["tokenize.vocab_size=700", "tokenize.train_sample_bytes=300000", "tokenize.seed=3"]
    metrics = run(load_params("params.yaml", settings), docs, out, NullTracker())
    meta = json.loads((out / "meta.json").read_text())
    listed = {s["file"] for s in meta["shards"]}
    assert meta["vocab_size"] == 700 and not listed & old
    assert {f"tokens/{p.name}" for p in (out / "tokens").iterdir()} == listed
    table = read_table(docs)
    total = int(pc.sum(pc.binary_length(table["text"])).as_py())
    keep = 300000 / total
    expected = [t[:100_000] for i, t in zip(table["id"].to_pylist(), table["text"].to_pylist()) if t and priority(i, 3) < int(keep * 2**64)]
    assert read_table(out / "tokenizer_sample")["text"].to_pylist() == expected
    assert metrics["tokenizer_sample_documents"] == len(expected) < table.num_rows / 2


def test_sequences_that_span_shards_read_like_one_stream(tmp_path):
    stream = np.arange(3 + 10 + 2 + 1 + 9, dtype=np.uint16)
    bounds = np.cumsum([0, 3, 10, 2, 1, 9])
    (tmp_path / "tokens").mkdir()
    shards = []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        stream[a:b].tofile(tmp_path / "tokens" / f"s{i}.bin")
        shards.append({"file": f"tokens/s{i}.bin", "num_tokens": int(b - a), "num_documents": 1})
    (tmp_path / "meta.json").write_text(json.dumps({"dtype": "uint16", "seq_len": 4, "num_sequences": 6, "shards": shards}))
    packed = PackedTokens(tmp_path)
    order = np.array([5, 0, 3, 1, 4, 2, 0])
    assert np.array_equal(packed.take(order), stream[:24].reshape(6, 4)[order]) and packed[3].tolist() == [12, 13, 14, 15]
    with pytest.raises(IndexError):
        packed.take(np.array([6]))
