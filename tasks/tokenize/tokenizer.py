"""The byte-level BPE tokenizer: training with HF `tokenizers`, the OpenCoder chat template, hashing.

OpenCoder ships a SentencePiece model whose training is not documented (spec §7, NOT FOUND). We train a
byte-level BPE (GPT-2 pre-tokenization, so any byte sequence round-trips) on a seeded sample of the
corpus and wrap it as a `PreTrainedTokenizerFast`, saved in Hugging Face format with the chat template
of the OpenCoder instruct models. Special tokens come first, at fixed ids:

    0 <pad>   1 <s> (BOS)   2 </s> (EOS, joins packed documents)   3 <|im_start|>   4 <|im_end|>

`tokenizer_hash` fingerprints a saved tokenizer (its `tokenizer.json`), so data, checkpoints and
exported models can prove they were built with the same one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD, BOS, EOS, IM_START, IM_END = "<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (PAD, BOS, EOS, IM_START, IM_END)
EOS_ID = SPECIAL_TOKENS.index(EOS)

CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are OpenCoder, created by OpenCoder Team.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""The OpenCoder-Instruct chat template, verbatim (spec §8)."""


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE with the special tokens at ids 0-4."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def wrap_hf(tok: Tokenizer, model_max_length: int):
    """The trained tokenizer as a `PreTrainedTokenizerFast` with specials and the chat template."""
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens={"im_start_token": IM_START, "im_end_token": IM_END},
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def save_tokenizer(tok: Tokenizer, folder: str | Path, model_max_length: int) -> str:
    """Save in HF format (tokenizer.json, tokenizer_config.json, chat template); return its hash."""
    wrap_hf(tok, model_max_length).save_pretrained(str(folder))
    return tokenizer_hash(folder)


def tokenizer_hash(folder: str | Path) -> str:
    """sha256 of the canonical `tokenizer.json` (vocabulary, merges, specials, pre-tokenizer)."""
    data = json.loads((Path(folder) / "tokenizer.json").read_text())
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@lru_cache(maxsize=4)
def load_fast(folder: str, expected_hash: str | None = None) -> Tokenizer:
    """The raw `tokenizers.Tokenizer` of a saved folder (a local path or a URI), cached per worker process by
    (folder, hash): a worker that served an earlier run with another tokenizer in the same folder reloads."""
    from tasks.common.shards import filesystem

    fs, path = filesystem(folder)
    with fs.open_input_stream(f"{path}/tokenizer.json") as f:
        return Tokenizer.from_str(f.read().decode())
