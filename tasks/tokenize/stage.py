"""The `tokenize` stage: train the BPE tokenizer on the pretraining data, then tokenize and pack every training part.

    cookbook tokenize --input data/decontaminate --output data/tokenize [--set tokenize.seq_len=512]

Input: a decontaminate output, whose `pretrain_part` folder is the pretraining mix and whose `anneal_parts`
(algorithmic, synthetic) are the annealing high-quality sources; or any folder of document shards (pretraining
data alone). Steps: (1) a seeded sample of about `train_sample_bytes` of the pretraining documents trains the
byte-level BPE (`tokenizer.py`), saved in HF format under `<output>/tokenizer/`; (2) the Ray runner maps
`encode_batch` over all shards in parallel; (3) the driver streams the ids, in input order, into `tokens.bin`
and cuts it into `seq_len` sequences (`packing.py`); (4) `meta.json` records what a training stage must check
before it trusts the data (vocab size, dtype, seq_len, tokenizer hash, part) and the counts.

Layout: `<output>/` is the packed pretraining data (what `pretrain` reads and `anneal` replays), and
`<output>/<part>/` each annealing part packed with the same tokenizer (with its own copy of `tokenizer/`), so
`anneal.sources` can mix them by weight. An empty part gets a folder with zero sequences. The output folder
is written atomically.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from tasks.common.runner import map_batches
from tasks.common.shards import MissingInputError, atomic_dir, count_rows, iter_batches, list_shards, write_json
from tasks.tokenize.config import TokenizeConfig
from tasks.tokenize.packing import META_FILE, TOKENIZER_DIR, TOKENS_FILE, encode_batch, flat_ids, token_dtype
from tasks.tokenize.tokenizer import SPECIAL_TOKENS, save_tokenizer, train_bpe

log = logging.getLogger(__name__)


def corpus_bytes(input_dir: Path) -> int:
    total = 0
    for batch in iter_batches(input_dir, batch_size=4096, columns=["text"]):
        total += int(pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0)
    return total


def training_sample(input_dir: Path, cfg: TokenizeConfig) -> Iterator[str]:
    """Seeded uniform sample of documents totalling about `train_sample_bytes`."""
    keep = min(1.0, cfg.train_sample_bytes / max(1, corpus_bytes(input_dir)))
    rng = np.random.default_rng(cfg.seed)
    for batch in iter_batches(input_dir, batch_size=1024, columns=["text"]):
        texts = batch.column("text").to_pylist()
        for text, draw in zip(texts, rng.random(len(texts))):
            if text and draw < keep:
                yield text[: cfg.max_doc_chars_for_training]


def pack_to_file(tables, path: Path, dtype: np.dtype, seq_len: int) -> dict:
    """Append every batch's ids to `path`, then cut the tail that does not fill a sequence.

    `num_documents` counts the documents packed (at least one id), `num_empty` those `encode_batch` gave no ids
    (no text): both are counted from the encoded rows, so the stage's rows in = kept + dropped is a check.
    """
    num_docs = num_empty = num_tokens = 0
    with open(path, "wb") as f:
        for table in tables:
            ids = flat_ids(table, dtype)
            f.write(ids.tobytes())
            empty = int(pc.sum(pc.equal(table["num_tokens"], 0)).as_py() or 0)
            num_docs += table.num_rows - empty
            num_empty += empty
            num_tokens += ids.size
        num_sequences = num_tokens // seq_len
        f.truncate(num_sequences * seq_len * dtype.itemsize)
    return {"num_documents": num_docs, "num_empty": num_empty, "num_tokens": num_tokens, "num_sequences": num_sequences,
            "num_tokens_packed": num_sequences * seq_len, "num_tokens_dropped_tail": num_tokens - num_sequences * seq_len}


def input_parts(input: Path, cfg: TokenizeConfig) -> tuple[Path, dict[str, Path]]:
    """(pretraining documents, {annealing part: documents}): a decontaminate output holds parts as sub-folders
    (`pretrain_part`, `anneal_parts`); a folder of shards is pretraining data alone."""
    if list_shards(input):
        return input, {}
    missing = [p for p in (cfg.pretrain_part, *cfg.anneal_parts) if not (input / p).is_dir()]
    if missing:
        raise MissingInputError(f"{input}: no shards and no part folder(s) {', '.join(missing)}: run `cookbook decontaminate` "
                                f"first, or pass --input a folder of document shards")
    return input / cfg.pretrain_part, {p: input / p for p in cfg.anneal_parts}


def pack_folder(params, docs: Path, folder: Path, tokenizer_dir: Path, meta: dict) -> dict:
    """Tokenize and pack one folder of documents into `folder` (tokens.bin + meta.json); return its counts."""
    cfg: TokenizeConfig = params.tokenize
    tables = [] if count_rows(docs) == 0 else map_batches(  # an empty part costs no Ray dataset
        encode_batch, docs, fn_kwargs={"tokenizer_dir": str(tokenizer_dir.resolve())}, num_workers=params.compute.num_workers,
        batch_size=cfg.batch_size, ray_address=params.compute.ray_address, columns=["text"])
    folder.mkdir(parents=True, exist_ok=True)
    counts = pack_to_file(tables, folder / TOKENS_FILE, np.dtype(meta["dtype"]), cfg.seq_len)
    write_json(folder / META_FILE, {**meta, **counts})
    return counts


def run(params, input: Path | None, output: Path, tracker) -> dict:
    cfg: TokenizeConfig = params.tokenize
    pretrain_docs, anneal_docs = input_parts(Path(input), cfg)
    rows_in = count_rows(pretrain_docs) + sum(count_rows(p) for p in anneal_docs.values())
    with atomic_dir(output) as tmp:
        started = time.monotonic()
        tok = train_bpe(training_sample(pretrain_docs, cfg), cfg.vocab_size, cfg.min_frequency)
        tok_hash = save_tokenizer(tok, tmp / TOKENIZER_DIR, cfg.seq_len)
        train_s = time.monotonic() - started
        vocab_size = tok.get_vocab_size()
        log.info("tokenizer trained in %.1fs: %d tokens, hash %s", train_s, vocab_size, tok_hash[:12])
        meta = {"vocab_size": vocab_size, "dtype": token_dtype(vocab_size).name, "seq_len": cfg.seq_len, "tokenizer_hash": tok_hash,
                "special_tokens": list(SPECIAL_TOKENS), "eos_token_id": SPECIAL_TOKENS.index("</s>")}
        counts = pack_folder(params, pretrain_docs, tmp, tmp / TOKENIZER_DIR, {**meta, "part": cfg.pretrain_part, "high_quality": False})
        parts = {}
        for part, docs in anneal_docs.items():
            shutil.copytree(tmp / TOKENIZER_DIR, tmp / part / TOKENIZER_DIR)
            parts[part] = pack_folder(params, docs, tmp / part, tmp / TOKENIZER_DIR, {**meta, "part": part, "high_quality": True})
    num_documents = counts["num_documents"] + sum(c["num_documents"] for c in parts.values())
    num_empty = counts["num_empty"] + sum(c["num_empty"] for c in parts.values())
    # rows_in comes from the input shards' metadata, kept and dropped from the encoded rows: a lost batch fails
    # the conservation check instead of passing as an identity.
    metrics = {"rows_in": rows_in, "rows_kept": num_documents, "rows_dropped": num_empty,
               "dropped_by_reason": {"empty_text": num_empty} if num_empty else {},
               "tokenizer_train_seconds": round(train_s, 3), "tokens_bin_bytes": os.path.getsize(output / TOKENS_FILE),
               **meta, **counts, "anneal_parts": parts}
    tracker.log_artifact(output / META_FILE)
    return metrics
