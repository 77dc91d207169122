"""Configuration of the `clean` stage."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class CleanConfig:
    seed: int = 0
    """Seed of the probabilistic (p=0.8) rules: the draw depends on the document id and this seed."""
