"""The tokenizer's training sample, chosen and read on the Ray workers, and the training task itself.

The BPE trains on about `train_sample_bytes` of the pretraining documents: a document with text is in the
sample when `priority(seed, id) < keep * 2**64`, `keep` = the budget over the corpus's text bytes (capped at
1: a corpus within the budget is taken whole). The choice depends on ids and the seed only. Three passes, none
of which brings a text to the driver: the workers sum the text bytes of their slices (`text_bytes`), then
write the chosen texts of each slice as one Parquet part (`write_training_sample`), and one task reads those
parts, in slice order, trains the tokenizer and saves it into every folder that needs a copy
(`train_on_sample`). Driver memory stays the same for any corpus; the training task holds the sample.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tasks.common.shards import _put, filesystem, join, open_parquet, write_part
from tasks.sample.ranking import priorities
from tasks.tokenize.tokenizer import save_tokenizer, train_bpe

SAMPLE_DIR = "tokenizer_sample"
"""Sub-folder of the output holding the texts the tokenizer was trained on (committed by its manifest)."""


def text_bytes(batch: pa.Table) -> pa.Table:
    """UTF-8 bytes of the batch's texts (null as 0), one row."""
    return pa.table({"bytes": [int(pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0)]})


def chosen(batch: pa.Table, seed: int, keep: float) -> pa.Array:
    """Which rows (columns id, text) are in the training sample: text not empty and a priority below `keep`."""
    has_text = pc.fill_null(pc.greater(pc.binary_length(batch.column("text")), 0), False).to_numpy(zero_copy_only=False)
    if keep >= 1.0:
        return pa.array(has_text)
    below = priorities(batch.column("id").to_pylist(), seed) < int(keep * 2**64)
    return pa.array(has_text & below)


def write_training_sample(batch: pa.Table, seed: int, keep: float, max_chars: int, folder: str) -> pa.Table:
    """Write the chosen texts of a batch (cut to `max_chars`) as one part of `folder`; one row: the part, its rows."""
    texts = batch.filter(chosen(batch, seed, keep)).column("text")
    table = pa.table({"text": pc.utf8_slice_codeunits(texts, 0, max_chars)})
    return pa.table({"part": [write_part(table, folder, 0)], "rows": [table.num_rows]})


def sample_texts(folder: str, parts: list[str]) -> Iterator[str]:
    """The texts of the sample's parts, in order, one row group at a time."""
    for name in parts:
        parquet = open_parquet(join(folder, name))
        for group in range(parquet.metadata.num_row_groups):
            yield from parquet.read_row_group(group, columns=["text"]).column("text").to_pylist()


def upload_folder(local: Path, target: str) -> None:
    """Copy the files of a local folder into `target` (a path or a URI), each whole or not at all."""
    fs, path = filesystem(target)
    fs.create_dir(path, recursive=True)
    for file in sorted(local.iterdir()):
        _put(fs, f"{path}/{file.name}", file.read_bytes())


def train_on_sample(items: pa.Table, vocab_size: int, min_frequency: int, seq_len: int) -> pa.Table:
    """Task body: train the BPE on the sample parts of each item (`folder`, `parts` as JSON) and save it into
    each of its `targets` (JSON list of folders); one row per item: the tokenizer's hash, vocabulary size and
    training seconds."""
    rows = []
    for item in items.to_pylist():
        started = time.monotonic()
        tok = train_bpe(sample_texts(item["folder"], json.loads(item["parts"])), vocab_size, min_frequency)
        seconds = time.monotonic() - started
        with tempfile.TemporaryDirectory() as tmp:
            tok_hash = save_tokenizer(tok, tmp, seq_len)
            for target in json.loads(item["targets"]):
                upload_folder(Path(tmp), target)
        rows.append({"tokenizer_hash": tok_hash, "vocab_size": tok.get_vocab_size(), "seconds": seconds})
    return pa.Table.from_pylist(rows)
