"""Configuration of the curation stages (decontamination, ...)."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class DecontaminateConfig:
    benchmarks: tuple[str, ...] = ("humaneval", "mbpp")
    """Benchmarks whose prompts and solutions must not appear in training data."""
    ngram: int = 10
    """Overlap length (paper §4.4: 10-grams)."""
