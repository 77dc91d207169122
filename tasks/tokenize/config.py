"""Configuration of the `tokenize` stage."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class TokenizeConfig:
    vocab_size: int = 8192
    """BPE vocabulary size (OpenCoder: 96,640; tiny preset: 8,192)."""
    seq_len: int = 256
    """Packed sequence length (tokens)."""
