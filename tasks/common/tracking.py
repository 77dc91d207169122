"""Experiment tracking behind a small interface, so library code never branches on it.

`MlflowTracker` records a stage execution as one MLflow run: the stage's params section (flattened),
the hashes of its inputs as tags (DVC's own hashes from `dvc.lock` where it has them), its metrics
and its report files. `NullTracker` has the same methods and does nothing (tests, non-zero ranks,
`tracking.enabled: false`). The default store is a SQLite file under the project; the
`MLFLOW_TRACKING_URI` environment variable points the same code at a server.

A training worker that runs in another process re-attaches to its stage's run with
`MlflowTracker.attach(uri, run_id)`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

MLFLOW_DB = "mlflow.db"
MAX_PARAM_LEN = 6000


def tracking_uri(project_dir: str | Path = ".") -> str:
    """`MLFLOW_TRACKING_URI` if set, else a SQLite file in the project folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(project_dir).resolve() / MLFLOW_DB}"


class NullTracker:
    """A tracker that records nothing."""

    run_id: str | None = None
    uri: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...
    def set_tags(self, tags: Mapping[str, Any]) -> None: ...
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...
    def log_dict(self, obj: Any, name: str) -> None: ...
    def log_text(self, text: str, name: str) -> None: ...

    @contextlib.contextmanager
    def child(self, name: str) -> Iterator["NullTracker"]:
        yield self


def numeric_items(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested metrics and keep the finite numbers (MLflow metrics are floats)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(numeric_items(value, f"{name}."))
        elif isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, (int, float)) and math.isfinite(value):
            out[name] = float(value)
    return out


def _clean_key(key: str) -> str:
    """MLflow keys allow letters, digits and `_-./ `; `pass@1` becomes `pass_at_1`."""
    key = key.replace("@", "_at_")
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)[:250]


class MlflowTracker:
    """Logs to one MLflow run through `MlflowClient` (no global active-run state)."""

    def __init__(self, client, run_id: str, uri: str):
        self.client, self.run_id, self.uri = client, run_id, uri

    @classmethod
    def attach(cls, uri: str, run_id: str) -> "MlflowTracker":
        from mlflow.tracking import MlflowClient

        return cls(MlflowClient(tracking_uri=uri), run_id, uri)

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, experiment: str, run_name: str, *, uri: str | None = None, tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> Iterator["MlflowTracker"]:
        """Open a run, yield the tracker, and close the run FINISHED (or FAILED on an exception)."""
        from mlflow.tracking import MlflowClient

        uri = uri or tracking_uri()
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = client.create_run(exp_id, run_name=run_name, tags=all_tags)
        tracker = cls(client, run.info.run_id, uri)
        try:
            yield tracker
        except BaseException:
            client.set_terminated(run.info.run_id, "FAILED")
            raise
        client.set_terminated(run.info.run_id, "FINISHED")

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(_clean_key(k), str(v)[:MAX_PARAM_LEN]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_clean_key(k), v, now, step or 0) for k, v in numeric_items(metrics).items()]
        for i in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[i : i + 500])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(_clean_key(k), str(v)) for k, v in tags.items()]
        if items:
            self.client.log_batch(self.run_id, tags=items)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.exists():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_dict(self, obj: Any, name: str) -> None:
        self.client.log_dict(self.run_id, obj, name)

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

    @contextlib.contextmanager
    def child(self, name: str) -> Iterator["MlflowTracker"]:
        exp_id = self.client.get_run(self.run_id).info.experiment_id
        run = self.client.create_run(exp_id, run_name=name, tags={"mlflow.parentRunId": self.run_id})
        child = MlflowTracker(self.client, run.info.run_id, self.uri)
        try:
            yield child
        except BaseException:
            self.client.set_terminated(run.info.run_id, "FAILED")
            raise
        self.client.set_terminated(run.info.run_id, "FINISHED")


Tracker = NullTracker | MlflowTracker


def _dir_md5(path: Path) -> str:
    """DVC-like content hash of a file or folder (md5 over sorted relative paths and file md5s)."""
    if path.is_file():
        return hashlib.md5(path.read_bytes()).hexdigest()
    entries = []
    for f in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        entries.append({"relpath": f.relative_to(path).as_posix(), "md5": hashlib.md5(f.read_bytes()).hexdigest()})
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def input_hashes(paths: list[str | Path], lock_file: str | Path = "dvc.lock") -> dict[str, str]:
    """`{"input.<path>": hash}` for each input: DVC's recorded md5 if `dvc.lock` has it, else our own."""
    recorded: dict[str, str] = {}
    lock = Path(lock_file)
    if lock.exists():
        data = yaml.safe_load(lock.read_text()) or {}
        for stage in (data.get("stages") or {}).values():
            for out in stage.get("outs") or []:
                recorded[os.path.normpath(out["path"])] = out.get("md5") or out.get("hash", "")
    tags = {}
    for p in map(Path, paths):
        if not p.exists():
            continue
        key = os.path.normpath(str(p))
        tags[f"input.{key}"] = recorded.get(key) or _dir_md5(p)
    return tags
