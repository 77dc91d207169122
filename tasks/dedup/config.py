"""Configuration of the `dedup` stage."""

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, kw_only=True)
class DedupConfig:
    exact: bool = True
    """Exact dedup by SHA256 of the content (paper §2.1.1)."""
    fuzzy: bool = True
    """MinHash-LSH near-duplicate removal after exact dedup."""
    level: Literal["file", "repo", "chunk"] = "file"
    """Dedup unit (paper default: file)."""
    ngram: int = 5
    """Shingle size (paper: 5-grams)."""
    num_perm: int = 2048
    """MinHash permutations (paper: 2048)."""
    bands: int = 16
    """LSH bands (paper: 16)."""
    rows: int = 128
    """Rows per band (paper: 128)."""
    seed: int = 1
    """MinHash permutation seed."""
