"""The typed configuration tree: one dataclass per `params.yaml` section, composed into `Params`.

Stage name = params.yaml section = config class = output folder = DVC stage = Prefect task name.
Each stage's config class lives with the stage (`tasks/<domain>/config.py`); this module composes
them and loads `params.yaml` strictly: an unknown key or a wrong type is one `ConfigError` line
that names the file and the dotted key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tasks.clean.config import CleanConfig
from tasks.common.config import ConfigError, apply_overrides, build
from tasks.curate.config import CurateConfig
from tasks.decontaminate.config import DecontaminateConfig
from tasks.dedup.config import DedupConfig
from tasks.evaluate.config import EvaluateConfig
from tasks.ingest.config import IngestConfig
from tasks.recall.config import RecallConfig
from tasks.report.config import ReportConfig
from tasks.sample.config import SampleConfig
from tasks.tokenize.config import TokenizeConfig
from tasks.train.config import AnnealConfig, PretrainConfig, SftConfig


@dataclass(frozen=True, kw_only=True)
class ComputeConfig:
    ray_address: str | None = None
    """Ray cluster to join (`RAY_ADDRESS` wins); null starts a private local instance."""
    num_workers: int = 2
    """Parallel Ray tasks for data stages (one per core locally)."""
    batch_size: int = 256
    """Rows per batch handed to a data-stage function."""


@dataclass(frozen=True, kw_only=True)
class TrackingConfig:
    enabled: bool = True
    """Record every stage execution as an MLflow run."""
    experiment: str = "opencoder-cookbook"
    """MLflow experiment name."""


@dataclass(frozen=True, kw_only=True)
class Params:
    seed: int = 1234
    """Global seed."""
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    recall: RecallConfig = field(default_factory=RecallConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    curate: CurateConfig = field(default_factory=CurateConfig)
    decontaminate: DecontaminateConfig = field(default_factory=DecontaminateConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    anneal: AnnealConfig = field(default_factory=AnnealConfig)
    sft: SftConfig = field(default_factory=SftConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)


def load_params(path: str | Path = "params.yaml", overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Load `params.yaml` (plus `section.key=value` overrides) into `Params`, strictly."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found; run from the project folder or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        return build(Params, apply_overrides(raw, list(overrides)))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
