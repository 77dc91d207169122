"""Fixtures for the ingest tests: params with tracking off, small sources built in tmp_path."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tasks.common.config import apply_overrides, build
from tasks.config import ComputeConfig, TrackingConfig
from tasks.ingest.config import IngestConfig

PROJECT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StageParams:
    """The sections of `Params` the ingest stage reads, built strictly from params.yaml.

    Building only these keeps the ingest tests independent of other stages' config classes.
    """

    compute: ComputeConfig
    tracking: TrackingConfig
    ingest: IngestConfig


@pytest.fixture
def params_factory():
    """params.yaml (+ `section.key=value` overrides) with tracking disabled and a small batch size."""

    def make(*overrides: str) -> StageParams:
        base = ["tracking.enabled=false", "compute.batch_size=4", "compute.num_workers=2"]
        raw = apply_overrides(yaml.safe_load((PROJECT / "params.yaml").read_text()), [*base, *overrides])
        return StageParams(**{
            name: build(cls, raw.get(name) or {}, name)
            for name, cls in (("compute", ComputeConfig), ("tracking", TrackingConfig), ("ingest", IngestConfig))
        })

    return make


def git(repo: Path, *args: str, date: str | None = None) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


@pytest.fixture
def git_repo_factory():
    """Build a git repository: {relative path: bytes} committed at a date, optionally more commits."""

    def make(repo: Path, commits: list[tuple[str, dict[str, bytes]]]) -> Path:
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q", "-b", "main")
        for date, files in commits:
            for rel, data in files.items():
                (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                (repo / rel).write_bytes(data)
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", f"at {date}", date=date)
        return repo

    return make
