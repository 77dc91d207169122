"""The `tokenize` stage: train the BPE tokenizer on a sample of the pretraining data, then tokenize every
training part into per-slice token shards with an index that the training loader reads.

    cookbook tokenize --input data/decontaminate --output data/tokenize [--set tokenize.seq_len=512]

Input: a decontaminate output, whose `pretrain_part` folder is the pretraining mix and whose `anneal_parts`
(algorithmic, synthetic) are the annealing high-quality sources; or any folder of document shards (pretraining
data alone). Steps, all on the Ray workers through `tasks/common/runner.py` (the driver holds counts per slice,
never a text or a row per document):
(1) a seeded sample by id of about `train_sample_bytes` of the pretraining documents trains the byte-level BPE
    in one task (`training_sample.py`), saved in HF format under `<output>/tokenizer/` and each part's folder;
(2) `map_to_shards` gives each slice of documents to a task that encodes it, writes its token shard and
    returns a row per document (`packing.encode_slice`): kept documents, with their shard and offset, are the
    folder's Parquet rows, documents without text go to `dropped/` as `empty_text`, a repeated id as
    `duplicate_id`;
(3) `meta.json`, written last, is the index the loader reads: the shards in slice order with their token and
    document counts, and what a training stage must check before it trusts the data (vocab size, dtype,
    seq_len, tokenizer hash, part). The stream of ids (and so every packed sequence) is the one the former
    single-file layout had, shard after shard.

Layout: `<output>/` is the packed pretraining data (what `pretrain` reads and `anneal` replays), and
`<output>/<part>/` each annealing part packed with the same tokenizer (with its own copy of `tokenizer/`), so
`anneal.sources` can mix them by weight. An empty part gets a folder with zero sequences. A local output is
built in a hidden sibling folder that replaces it in one rename, so a reader or a kill sees the previous output
or the new one, never a mix. On an object store (no renames) a run first removes the old `meta.json` files,
so a killed run leaves no output that a reader would take; token shards are content-addressed, and those no
index lists are deleted once the new index is written.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from tasks.common.runner import map_batches, map_items, map_to_shards
from tasks.common.shards import (MissingInputError, _put, absolute, commit_parts, count_rows, filesystem, is_uri, join,
                                 list_shards, prepare_output, staged_output)
from tasks.tokenize.config import TokenizeConfig
from tasks.tokenize.packing import (META_FILE, TOKENIZER_DIR, TOKENS_DIR, encode_slice, flat_ids, packed_counts, shard_summary,
                                    token_dtype)
from tasks.tokenize.tokenizer import SPECIAL_TOKENS
from tasks.tokenize.training_sample import SAMPLE_DIR, text_bytes, train_on_sample, write_training_sample

log = logging.getLogger(__name__)

WHOLE_SLICE = 1 << 40
"""`batch_size` handed to the runner: one call of the task body per slice (one token shard, one sample part)."""


def write_meta(folder: str | Path, meta: dict) -> None:
    """Write a folder's `meta.json` whole or not at all (the commit of that folder)."""
    fs, path = filesystem(folder)
    _put(fs, f"{path}/{META_FILE}", (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())


def remove_meta(folder: str | Path) -> None:
    """Un-commit a folder before it is rewritten: without `meta.json` no reader takes it for data."""
    fs, path = filesystem(folder)
    if fs.get_file_info(f"{path}/{META_FILE}").type == pafs.FileType.File:
        fs.delete_file(f"{path}/{META_FILE}")


def delete_unlisted_shards(folder: str | Path, shards: list[dict]) -> None:
    """Delete the token shards of `folder` that its index does not list (left by an earlier or killed run)."""
    fs, path = filesystem(join(folder, TOKENS_DIR))
    listed = {Path(s["file"]).name for s in shards}
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return
    for entry in fs.get_file_info(pafs.FileSelector(path)):
        if entry.type == pafs.FileType.File and entry.base_name not in listed:
            fs.delete_file(entry.path)


def input_parts(input: str | Path, cfg: TokenizeConfig) -> tuple[str | Path, dict[str, str]]:
    """(pretraining documents, {annealing part: documents}): a decontaminate output holds parts as sub-folders
    (`pretrain_part`, `anneal_parts`); a folder of shards is pretraining data alone."""
    if list_shards(input):
        return input, {}
    fs, path = filesystem(input)
    missing = [p for p in (cfg.pretrain_part, *cfg.anneal_parts) if fs.get_file_info(f"{path}/{p}").type != pafs.FileType.Directory]
    if missing:
        raise MissingInputError(f"{input}: no shards and no part folder(s) {', '.join(missing)}: run `cookbook decontaminate` "
                                f"first, or pass --input a folder of document shards")
    return join(input, cfg.pretrain_part), {p: join(input, p) for p in cfg.anneal_parts}


def train_tokenizer(params, docs: str | Path, output: str | Path, targets: list[str]) -> dict:
    """Train the BPE on the seeded sample of `docs` (steps in `training_sample.py`); save it into `targets`;
    return its hash, vocabulary size, sample size and training seconds."""
    cfg: TokenizeConfig = params.tokenize
    compute = params.compute
    kwargs = dict(num_workers=compute.num_workers, batch_size=WHOLE_SLICE, ray_address=compute.ray_address)
    total = sum(int(t["bytes"][0].as_py()) for t in map_batches(text_bytes, docs, columns=["text"], **kwargs))
    keep = min(1.0, cfg.train_sample_bytes / max(1, total))
    folder = join(absolute(output), SAMPLE_DIR)
    targets = [absolute(t) for t in targets]
    written = list(map_batches(write_training_sample, docs, columns=["id", "text"], fn_kwargs={
        "seed": cfg.seed, "keep": keep, "max_chars": cfg.max_doc_chars_for_training, "folder": folder}, **kwargs))
    parts = [p for t in written for p in t["part"].to_pylist()]
    sample_rows = sum(int(pc.sum(t["rows"]).as_py()) for t in written)
    commit_parts(folder, parts, sample_rows)
    item = {"folder": folder, "parts": json.dumps(parts), "targets": json.dumps(targets)}
    (result,) = map_items(train_on_sample, [item], fn_kwargs={"vocab_size": cfg.vocab_size, "min_frequency": cfg.min_frequency,
                                                             "seq_len": cfg.seq_len}, num_workers=1, batch_size=1,
                          ray_address=compute.ray_address)
    row = result.to_pylist()[0]
    return {**row, "sample_documents": sample_rows, "sample_keep": keep}


def pack_folder(params, docs: str | Path, folder: str | Path, meta: dict) -> dict:
    """Tokenize `docs` into `folder` (token shards, kept and dropped document rows), then commit its index
    (`meta.json`, written last); return the stage counts of the part and its index counts."""
    cfg: TokenizeConfig = params.tokenize
    compute = params.compute
    tokenizer = join(absolute(folder), TOKENIZER_DIR)
    counts = map_to_shards(encode_slice, docs, folder, fn_kwargs={
        "tokenizer_dir": tokenizer, "tokenizer_hash": meta["tokenizer_hash"], "output": absolute(folder), "dtype": meta["dtype"],
        "encode_rows": cfg.batch_size}, num_workers=compute.num_workers, batch_size=WHOLE_SLICE,
        ray_address=compute.ray_address, summarize=shard_summary)
    shards = [{"file": name, **c} for name, c in counts.pop("summary").get("shards", {}).items()]
    index = packed_counts(shards, cfg.seq_len)
    if index["num_documents"] != counts["rows_kept"]:
        raise RuntimeError(f"{folder}: the token shards hold {index['num_documents']} documents, the kept rows {counts['rows_kept']}")
    write_meta(folder, {**meta, **index, "num_empty": counts["dropped_by_reason"].get("empty_text", 0), "shards": shards})
    delete_unlisted_shards(folder, shards)
    return {**counts, **index}


def run(params, input: str | Path | None, output: str | Path, tracker) -> dict:
    """The stage. A local output is built in a hidden sibling folder that replaces it in one rename at the end,
    so a reader (or a kill at any point) sees the previous output or the new one, never a mix of the two; on an
    object store, where nothing renames, each folder is rewritten in place and committed by its `meta.json`,
    removed first and written last."""
    with staged_output(output) as target:
        metrics = tokenize_into(params, input, target)
    if not is_uri(output):
        tracker.log_artifact(Path(output) / META_FILE)
    return metrics


def tokenize_into(params, input: str | Path | None, output: str | Path) -> dict:
    """Train the tokenizer and pack every part into `output`; return the stage metrics."""
    cfg: TokenizeConfig = params.tokenize
    pretrain_docs, anneal_docs = input_parts(input, cfg)
    rows_in = count_rows(pretrain_docs) + sum(count_rows(p) for p in anneal_docs.values())
    prepare_output(output)
    for folder in [output, *(join(output, part) for part in anneal_docs)]:
        remove_meta(folder)
    folders = {cfg.pretrain_part: str(output), **{part: join(output, part) for part in anneal_docs}}
    tok = train_tokenizer(params, pretrain_docs, output, [join(f, TOKENIZER_DIR) for f in folders.values()])
    log.info("tokenizer trained in %.1fs on %d documents: %d tokens, hash %s", tok["seconds"], tok["sample_documents"],
             tok["vocab_size"], tok["tokenizer_hash"][:12])
    meta = {"vocab_size": tok["vocab_size"], "dtype": token_dtype(tok["vocab_size"]).name, "seq_len": cfg.seq_len,
            "tokenizer_hash": tok["tokenizer_hash"], "special_tokens": list(SPECIAL_TOKENS), "eos_token_id": SPECIAL_TOKENS.index("</s>")}
    parts = {part: pack_folder(params, docs, folders[part], {**meta, "part": part, "high_quality": True})
             for part, docs in anneal_docs.items()}
    counts = pack_folder(params, pretrain_docs, output, {**meta, "part": cfg.pretrain_part, "high_quality": False})
    every = [counts, *parts.values()]
    dropped_by_reason: dict[str, int] = {}
    for part in every:
        for reason, n in part["dropped_by_reason"].items():
            dropped_by_reason[reason] = dropped_by_reason.get(reason, 0) + n
    # rows_in comes from the input shards' metadata, kept and dropped from the workers' rows: a lost slice fails
    # the conservation check instead of passing as an identity.
    metrics = {"rows_in": rows_in, "rows_kept": sum(p["rows_kept"] for p in every), "rows_dropped": sum(p["rows_dropped"] for p in every),
               "dropped_by_reason": dict(sorted(dropped_by_reason.items())), "tokenizer_train_seconds": round(tok["seconds"], 3),
               "tokenizer_sample_documents": tok["sample_documents"], "token_bytes": counts["num_tokens"] * np.dtype(meta["dtype"]).itemsize,
               **meta, **{k: v for k, v in counts.items() if k.startswith("num_")}, "num_empty": dropped_by_reason.get("empty_text", 0),
               "anneal_parts": {part: {k: v for k, v in c.items() if k.startswith("num_") or k.startswith("rows_")} for part, c in parts.items()}}
    return metrics


def pack_to_file(tables, path: Path, dtype: np.dtype, seq_len: int) -> dict:
    """One process packs `encode_batch` results into a single `tokens.bin` of whole sequences (the one-file layout
    `PackedTokens` still reads; tests and benchmarks build small token folders with it, the stage does not).

    `num_documents` counts the documents packed (at least one id), `num_empty` those without ids."""
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
