"""Configuration of the curation stages (decontamination, ...)."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class DecontaminateConfig:
    benchmarks: tuple[str, ...] = ("humaneval", "mbpp")
    """Benchmarks whose prompts and solutions must not appear in training data (evaluate registry names;
    mbpp covers the 500 test problems, 11-510)."""
    ngram: int = 10
    """Overlap length (paper §4.4: 10-grams)."""
    ngram_unit: str = "word"
    """Unit of the n-grams: word (lower-cased runs of letters, digits and underscores; NOT FOUND in the paper,
    which does not say word or token) or char (n consecutive characters of the whitespace-normalised text)."""
    ngram_min_distinct: int = 8
    """Benchmark word n-grams with fewer distinct words, or with mostly numbers and one-letter words, are not
    matched (our rule, NOT FOUND in the paper: on the embedded corpus `0 1 2 ... 9`-style n-grams from test
    data were 90% of the hits, all false)."""
    entry_point_min_len: int = 10
    """Entry points matched as a module-level `def NAME(`: only distinctive names, at least this long and containing an
    underscore (`has_close_elements`); generic names such as `add`, `fib` or `median` are never matched, so
    clean code is not wiped out (our rule: the paper only says 'contains an entry point')."""
