"""The contract between tokenized data and a model, checked before any training starts.

Data from `tokenize` carries `meta.json` (vocab size, dtype, seq_len, tokenizer hash); a model carries
its config and the hash of the tokenizer it was trained with (`cookbook.json`). Training refuses,
with one line naming the mismatch and the fix, when: the tokenizer folder no longer matches the hash
the data was packed with; the data was made with another tokenizer than the model; the vocabulary
does not fit the embedding; the stored dtype cannot hold the vocabulary, or a token file `meta.json` lists
is missing or has the wrong size; the sequences are longer than the model's context.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.common.config import ConfigError
from tasks.common.shards import MissingInputError
from tasks.tokenize.packing import META_FILE, TOKENIZER_DIR, shard_file_problem, token_dtype
from tasks.tokenize.tokenizer import tokenizer_hash


class ContractError(ConfigError):
    """Data and model (or tokenizer) do not belong together."""


def read_data_meta(data_dir: str | Path) -> dict:
    path = Path(data_dir) / META_FILE
    if not path.exists():
        raise MissingInputError(f"'{path}' not found: '{data_dir}' is not a tokenize output; run `cookbook tokenize` first")
    return json.loads(path.read_text())


def check_data(data_dir: str | Path, *, vocab_size: int | None, max_positions: int, tokenizer_hash_expected: str | None = None) -> dict:
    """Validate a tokenize output folder against a model; return its meta."""
    data_dir = Path(data_dir)
    meta = read_data_meta(data_dir)
    tok_dir = data_dir / TOKENIZER_DIR
    if tok_dir.exists() and tokenizer_hash(tok_dir) != meta["tokenizer_hash"]:
        raise ContractError(f"{tok_dir}: tokenizer hash differs from the one {data_dir} was packed with; re-run tokenize")
    if tokenizer_hash_expected is not None and meta["tokenizer_hash"] != tokenizer_hash_expected:
        raise ContractError(
            f"{data_dir} was tokenized with tokenizer {meta['tokenizer_hash'][:12]} but the model was trained with "
            f"{tokenizer_hash_expected[:12]}: re-tokenize with the model's tokenizer or train from scratch")
    if vocab_size is not None and meta["vocab_size"] > vocab_size:
        raise ContractError(f"{data_dir}: tokenizer has {meta['vocab_size']} tokens but the model's vocabulary is {vocab_size}: "
                            f"set tokenize.vocab_size <= {vocab_size} or use a preset with a larger vocabulary")
    if token_dtype(meta["vocab_size"]).name != meta["dtype"]:
        raise ContractError(f"{data_dir}: dtype {meta['dtype']} does not match vocab size {meta['vocab_size']}")
    problem = shard_file_problem(data_dir, meta)
    if problem:
        raise ContractError(f"{problem}; the folder is corrupt, re-run tokenize")
    if meta["seq_len"] > max_positions:
        raise ContractError(f"{data_dir}: seq_len {meta['seq_len']} exceeds the model context {max_positions}: "
                            f"set tokenize.seq_len <= {max_positions}")
    if meta["num_sequences"] == 0:
        raise ContractError(f"{data_dir}: no packed sequences (corpus smaller than one seq_len)")
    return meta
