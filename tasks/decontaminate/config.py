"""Configuration of the `decontaminate` stage (paper §4.4, spec §9)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.common.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class DecontaminateConfig:
    benchmarks: tuple[str, ...] | None = None
    """Benchmarks whose prompts and solutions must not appear in training data (evaluate registry names). null:
    exactly `evaluate.benchmarks` (the default). mbpp covers the 500 test problems, 11-510."""
    parts: dict[str, str] = field(default_factory=lambda: {
        "pretrain": "data/sample", "algorithmic": "data/curate/algorithmic", "synthetic": "data/curate/synthetic",
        "sft_stage1": "data/curate/sft_stage1", "sft_stage2": "data/curate/sft_stage2"})
    """Everything that trains the model, decontaminated into <output>/<part>/ (used when the stage gets no
    --input; with --input the one folder given is decontaminated). SFT rows are checked on instruction+output."""
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
    solution_min_units: int = 4
    """Reference functions too short or too uniform for an informative n-gram (`def count(lst): return sum(lst)`)
    are matched whole: a row defining a function whose parameters and body are the reference's word for word
    (any name, so renamed copies too) is dropped when that sequence has at least this many units (our rule)."""

    def __post_init__(self):
        if self.ngram_unit not in ("word", "char"):
            raise ConfigError(f"decontaminate.ngram_unit: expected word or char, got {self.ngram_unit!r}")
