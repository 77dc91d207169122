"""Experiment tracking behind a small interface, so library code never branches on it.

`MlflowTracker` records a stage execution as one MLflow run: the whole params tree (flattened, so every
run has the same parameter keys and the MLflow UI lines runs and ablation variants up side by side), its
lineage as tags (git commit, DVC experiment and baseline, and the hashes of its inputs: DVC's own
from `dvc.lock` where it has them), its metrics and its report files. `NullTracker` has the same methods and does nothing (tests, non-zero ranks,
`tracking.enabled: false`). The default store is a SQLite file under the project (the user's project
also for stages DVC runs in a temporary experiment folder); the `MLFLOW_TRACKING_URI` environment
variable points the same code at a server.

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


def project_root(project_dir: str | Path = ".") -> Path:
    """The project folder whose store a run belongs to.

    DVC sets `DVC_ROOT` for every stage it runs; for a queued or temporary experiment (`dvc exp run`)
    it is the user's repository, not the temporary copy under `.dvc/tmp/exps/` the stage runs in, so the
    runs of experiments land in the same store as everything else.
    """
    return Path(os.environ.get("DVC_ROOT") or project_dir).resolve()


def tracking_uri(project_dir: str | Path = ".") -> str:
    """`MLFLOW_TRACKING_URI` if set, else a SQLite file in the project folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root(project_dir) / MLFLOW_DB}"


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: `mlruns/` next to a SQLite store (an absolute path, so a run
    started in a temporary experiment folder does not write there); a server decides for itself."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlruns").resolve().as_uri()
    return None


def _git(args: list[str], cwd: Path) -> str | None:
    import subprocess

    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def revision_tags(project_dir: str | Path = ".") -> dict[str, str]:
    """Lineage of a run: the git commit it ran from (and whether the tree had changes), the DVC
    experiment it belongs to and that experiment's baseline commit (set by `dvc exp run`)."""
    cwd = Path(project_dir).resolve()
    tags: dict[str, str] = {}
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git.commit"] = commit
        tags["git.dirty"] = str(bool(_git(["status", "--porcelain", "--untracked-files=no"], cwd)))
    for env, tag in (("DVC_EXP_NAME", "dvc.exp_name"), ("DVC_EXP_BASELINE_REV", "dvc.exp_baseline_rev"),
                     ("DVC_STAGE", "dvc.stage")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


class NullTracker:
    """A tracker that records nothing."""

    run_id: str | None = None
    uri: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...
    def log_series(self, key: str, points: list[tuple[int, float]]) -> None: ...
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


def experiment_id(client, name: str, uri: str) -> str:
    """The id of MLflow experiment `name`, created (with its artifact location) when missing."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri))
    except MlflowException:  # created meanwhile by a concurrent run (parallel experiments)
        return client.get_experiment_by_name(name).experiment_id


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
        exp_id = experiment_id(client, experiment, uri)
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

    def log_series(self, key: str, points: list[tuple[int, float]]) -> None:
        """One metric at many steps (a loss curve), in batches."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_clean_key(key), float(v), now, int(step)) for step, v in points if math.isfinite(v)]
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
