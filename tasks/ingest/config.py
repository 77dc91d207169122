"""Configuration of the `ingest` stage."""

from dataclasses import dataclass
from typing import Literal

from tasks.common.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class DistributionSpec:
    name: str
    """Installed Python distribution whose files form one repository of the embedded corpus."""
    stars: int = 0
    """Approximate GitHub stars of its upstream repository (used by the dedup keep-policy)."""


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    source: Literal["installed", "path"] = "installed"
    """`installed`: the embedded default corpus (the distributions below); `path`: `path` (or --input)."""
    distributions: tuple[DistributionSpec, ...] = ()
    """The pinned list of installed distributions for the embedded corpus."""
    path: str | None = None
    """A folder of files, a folder of git repositories, or Parquet/JSONL files (The Stack column names)."""
    exclude: tuple[str, ...] = ("*.pyc", "*/__pycache__/*", "*.dist-info/*", "../*")
    """Glob patterns (on the path inside a repository) never ingested; `../*` are an installed distribution's
    console scripts outside site-packages, whose shebang names the local venv (not reproducible)."""
    max_file_bytes: int = 8 * 1024 * 1024
    """Files above this are dropped as `oversized` without being read (paper §2.1.1: 8 MB)."""
    max_files: int | None = None
    """Cap on the number of files ingested (tiny runs and tests); null = all."""
    max_repos_in_metrics: int = 50
    """Per-repository metrics list the largest repositories up to this many; the rest are summed as `(other)`."""

    def __post_init__(self) -> None:
        if self.max_file_bytes <= 0:
            raise ConfigError(f"ingest.max_file_bytes must be positive, got {self.max_file_bytes}")
        if self.max_files is not None and self.max_files < 0:
            raise ConfigError(f"ingest.max_files must be >= 0 or null, got {self.max_files}")
