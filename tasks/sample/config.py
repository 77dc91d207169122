"""Configuration of the `sample` stage: per-language byte caps (spec §4)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.common.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class SampleConfig:
    caps: dict[str, float] = field(default_factory=lambda: {"java": 0.0621, "html": 0.0199})
    """Per-language byte caps as a share of the input corpus bytes (spec §4). The paper cuts Java to ~200 GB and
    HTML to ~64 GB of RefineCode, whose filtered total is ~3,221 GB (Table 16: html 582.4 GB = 18.08%), so Java
    keeps at most 200 / 3221 = 6.21% and HTML 64 / 3221 = 1.99% of the corpus. Other languages keep their
    original distribution. Keys are `lang` values (lower case)."""
    caps_bytes: dict[str, int] = field(default_factory=dict)
    """Absolute per-language caps in bytes (for a full-scale run, e.g. {java: 200000000000}); where a language
    has both, the smaller cap wins."""
    seed: int = 0
    """Which documents of a capped language are kept: the lowest blake2b(seed, id) first, so the choice depends
    only on document ids and the seed, never on run order or sharding."""

    def __post_init__(self):
        bad = {k: v for k, v in self.caps.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ConfigError(f"sample.caps: shares must be between 0 and 1, got {bad}")
