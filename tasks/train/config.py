"""Configuration of the training stages: `pretrain`, `anneal`, `sft`."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    preset: str = "tiny"
    """Model preset (tiny, opencoder-1.5b, opencoder-8b)."""
    steps: int = 100
    """Optimizer steps."""
    lr: float = 3e-3
    """Peak learning rate."""
    warmup_steps: int = 10
    """Linear warmup steps of the WSD schedule."""


@dataclass(frozen=True, kw_only=True)
class AnnealConfig:
    steps: int = 30
    """Optimizer steps of the exponential decay."""
    lr_final: float = 1e-4
    """LR reached at the end of annealing."""


@dataclass(frozen=True, kw_only=True)
class SftConfig:
    steps: int = 50
    """Optimizer steps."""
    lr: float = 1e-3
    """Peak learning rate."""
