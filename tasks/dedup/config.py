"""Configuration of the `dedup` stage (spec §2: exact SHA256 dedup, then MinHash-LSH near-dedup)."""

from dataclasses import dataclass
from typing import Literal

from tasks.common.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class DedupConfig:
    exact: bool = True
    """Exact dedup by SHA256 of the unit's content, before near-dedup (paper §2.1.1)."""
    fuzzy: bool = True
    """MinHash-LSH near-duplicate removal after exact dedup (paper §2.1.1)."""
    level: Literal["file", "repo", "chunk"] = "file"
    """Dedup unit. `file` (paper default); `repo`: a repository's files form one unit and a removed repo
    drops all its files; `chunk`: each file is cut into `chunk_tokens`-token chunks and a file is
    removed when every one of its chunks duplicates a chunk kept elsewhere (paper Appendix B)."""
    shingle: Literal["word", "char"] = "word"
    """Shingle unit; the paper says only "5-gram pieces" (NOT FOUND). Default `word`: n-grams of
    identifier-like tokens split on non-alphanumerics, as in BigCode's near-dedup of The Stack."""
    ngram: int = 5
    """Shingle size (paper: 5-grams)."""
    num_perm: int = 2048
    """MinHash permutations (paper: 2048)."""
    bands: int = 16
    """LSH bands (paper: 16)."""
    rows: int = 128
    """Rows per band (paper: 128); bands * rows must equal num_perm."""
    seed: int = 1
    """Seed of the MinHash permutations and band-key hashing."""
    verify: bool = True
    """Check every LSH candidate pair by exact Jaccard of the shingle sets; failing pairs are counted as
    false positives and not merged (our choice; the paper does not say)."""
    verify_split: int = 2
    """With `verify`, candidates come from every band split into this many sub-bands (16 x 128 -> 32 x 64):
    a band match is a match of all its sub-bands, so the candidates are a superset of the paper's. The
    16 x 128 S-curve finds a pair at the 0.979 threshold with probability 0.64 only (0.93 averaged over
    [0.979, 1]); 32 x 64 finds it with probability > 0.9999, and exact Jaccard then decides (our choice;
    1 = the paper's bands exactly)."""
    verify_threshold: float | None = None
    """Jaccard a candidate pair needs to be verified; null = the LSH threshold (1/bands)^(1/rows)
    (about 0.98 with the paper's 16x128, derived by [R-NUGIE])."""
    chunk_tokens: int = 4096
    """Chunk size in shingle tokens at `level: chunk` (paper Appendix B: 4096-token chunks)."""
    guardrail_share: float = 0.5
    """Flag a source or repo when more than this share of its rows would be removed (our default)."""
    guardrail_min_rows: int = 20
    """Only groups with at least this many rows are checked by the guardrail (small groups are noise)."""
    guardrail_action: Literal["warn", "fail"] = "warn"
    """`warn`: log and report the flagged groups; `fail`: stop the stage before writing output."""
    report_top_clusters: int = 20
    """How many of the largest clusters the report lists, with example paths."""
    report_top_flagged: int = 100
    """How many guardrail-flagged groups the report and the log list (sources first, then by name); the
    metric `guardrail_flagged` counts them all. Keeps the driver's report bounded however many repos there are."""

    def __post_init__(self) -> None:
        if self.bands * self.rows != self.num_perm:
            raise ConfigError(f"dedup: bands * rows ({self.bands} * {self.rows}) must equal num_perm ({self.num_perm})")
        if self.ngram < 1 or self.chunk_tokens < 1:
            raise ConfigError("dedup: ngram and chunk_tokens must be >= 1")
        if not 0.0 <= self.guardrail_share <= 1.0:
            raise ConfigError("dedup.guardrail_share must be within [0, 1]")
        if self.verify_split < 1 or self.rows % self.verify_split:
            raise ConfigError(f"dedup.verify_split must be >= 1 and divide rows ({self.rows}), got {self.verify_split}")
        if self.verify_threshold is not None and not 0.0 < self.verify_threshold <= 1.0:
            raise ConfigError("dedup.verify_threshold must be within (0, 1]")

    @property
    def lsh_threshold(self) -> float:
        """Jaccard at which a pair collides in at least one band with probability ~ 1 - 1/e."""
        return (1.0 / self.bands) ** (1.0 / self.rows)

    @property
    def candidate_bands(self) -> tuple[int, int]:
        """(bands, rows) of the LSH band keys that propose candidate pairs."""
        split = self.verify_split if self.verify else 1
        return self.bands * split, self.rows // split

    @property
    def jaccard_threshold(self) -> float:
        """Jaccard a verified candidate pair must reach."""
        return self.lsh_threshold if self.verify_threshold is None else self.verify_threshold
