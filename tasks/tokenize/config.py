"""Configuration of the `tokenize` stage: tokenizer training and packing into fixed-length sequences."""

from dataclasses import dataclass

from tasks.common.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class TokenizeConfig:
    vocab_size: int = 96_640
    """BPE vocabulary size including special tokens (OpenCoder, §7: 96,640; the tiny preset uses 8,192)."""
    seq_len: int = 4096
    """Packed sequence length in tokens (OpenCoder-1.5B context, §7: 4096)."""
    train_sample_bytes: int = 8_000_000
    """Bytes of documents sampled (seeded, uniformly over documents) to train the BPE. NOT FOUND in the
    paper (how the tokenizer was trained is unknown); 8 MB trains an 8k vocabulary in seconds."""
    max_doc_chars_for_training: int = 100_000
    """Documents are cut to this many characters for BPE training only (bounds memory on huge files)."""
    min_frequency: int = 2
    """A merge must occur at least this often in the sample (HF `tokenizers` BpeTrainer)."""
    seed: int = 0
    """Seed of the tokenizer training sample."""
    batch_size: int = 256
    """Documents per batch handed to a Ray tokenization task."""
    pretrain_part: str = "pretrain"
    """Part of a decontaminate output that is the pretraining mix: it trains the tokenizer and is packed into
    the output folder itself."""
    anneal_parts: tuple[str, ...] = ("algorithmic", "synthetic")
    """Parts packed, with the same tokenizer, into `<output>/<part>/` for annealing (spec §6, Table 3)."""

    def __post_init__(self):
        if self.vocab_size < 512:
            raise ConfigError(f"tokenize.vocab_size={self.vocab_size}: must be at least 512 (256 bytes + merges + specials)")
        if self.seq_len < 8:
            raise ConfigError(f"tokenize.seq_len={self.seq_len}: must be at least 8")
