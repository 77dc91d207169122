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

Lineage of a lifecycle: `cookbook run` (the Prefect flow) opens one parent run (`open_lifecycle_run`) and hands
its id, and the Prefect flow run's id and UI link, to the stages through environment variables
(`LIFECYCLE_ENV`); a stage run started by `dvc repro` or `dvc exp run` outside the flow finds (or opens) the
parent of the DVC process that runs it. `stage_run` opens a stage's run as a child of that parent, logs its
input paths as params and its inputs as MLflow datasets (source URI, DVC hash as digest);
`log_stage_outputs` does the same for its outputs. A stage run outside any lifecycle is tagged
`run_kind=one-off`.

A tracking server that stops mid-run never hangs a stage: MLflow's HTTP retries are bounded (`HTTP_LIMITS`), and
the first failed call to the server marks the tracker lost: it says so once and the stage goes on untracked.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

MLFLOW_DB = "mlflow.db"
MAX_PARAM_LEN = 6000
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
"""MLflow's HTTP settings unless the user set them: its defaults (7 retries, backoff factor 2, 120 s timeout) keep
a stage waiting for minutes per call on a stopped server; these give up within about 10 s on a refused connection."""

log = logging.getLogger("cookbook")


def project_root(project_dir: str | Path = ".") -> Path:
    """The project folder whose store a run belongs to.

    DVC sets `DVC_ROOT` for every stage it runs; for a queued or temporary experiment (`dvc exp run`)
    it is the user's repository, not the temporary copy under `.dvc/tmp/exps/` the stage runs in, so the
    runs of experiments land in the same store as everything else.
    """
    return Path(os.environ.get("DVC_ROOT") or project_dir).resolve()


def tracking_uri(project_dir: str | Path = ".") -> str:
    """`MLFLOW_TRACKING_URI` if set (then MLflow's HTTP retries bounded by `HTTP_LIMITS`), else a SQLite file in
    the project folder."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        for key, value in HTTP_LIMITS.items():
            os.environ.setdefault(key, value)
    return uri or f"sqlite:///{project_root(project_dir) / MLFLOW_DB}"


def is_server_unreachable(exc: BaseException) -> bool:
    """True for a failed request to a tracking server (refused, reset, timed out, retries exhausted)."""
    import requests

    return isinstance(exc, (requests.exceptions.RequestException, ConnectionError, TimeoutError)) or (
        type(exc).__name__ == "MlflowException" and "API request to" in str(exc))


def _tolerant(method):
    """A tracker method that, once the server is unreachable, warns once and does nothing from then on."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if self.lost:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if not is_server_unreachable(exc):
                raise
            self.lost = True
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            log.warning("MLflow tracking lost (%s: %s): the stage goes on without tracking", self.uri, first_line)
            return None

    return call


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: `mlruns/` next to a SQLite store (an absolute path, so a run
    started in a temporary experiment folder does not write there); a server decides for itself."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlruns").resolve().as_uri()
    return None


def _git(args: list[str], cwd: Path, strip: bool = True) -> str | None:
    import subprocess

    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() if strip else proc.stdout


def dvc_owned_paths(project_dir: str | Path = ".") -> set[str]:
    """Paths the pipeline itself writes (every out, metric and plot of `dvc.yaml`, and `dvc.lock`): changes
    there are the pipeline's doing, not the user's, so they do not make a run's tree dirty."""
    owned = {"dvc.lock"}
    dvc_yaml = Path(project_dir) / "dvc.yaml"
    if not dvc_yaml.exists():
        return owned
    data = yaml.safe_load(dvc_yaml.read_text()) or {}
    for stage in (data.get("stages") or {}).values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind) or []:
                owned.add(os.path.normpath(next(iter(entry)) if isinstance(entry, dict) else entry))
    return owned


def changed_files(porcelain: str) -> list[str]:
    """Paths of `git status --porcelain` lines (the new path of a rename)."""
    return [line[3:].split(" -> ")[-1].strip('"') for line in porcelain.splitlines() if len(line) > 3]


def is_dirty(changed: list[str], owned: set[str]) -> bool:
    """Whether any changed path lies outside the DVC-owned paths."""
    def owned_by_dvc(path: str) -> bool:
        path = os.path.normpath(path)
        return any(path == o or path.startswith(o + os.sep) for o in owned)

    return any(not owned_by_dvc(p) for p in changed)


LIFECYCLE_ENV = "COOKBOOK_LIFECYCLE_RUN_ID"
"""Set by the lifecycle flow for the stages it runs: the MLflow parent run of this lifecycle."""
PREFECT_RUN_ENV = "COOKBOOK_PREFECT_FLOW_RUN_ID"
PREFECT_URL_ENV = "COOKBOOK_PREFECT_FLOW_RUN_URL"


def run_kind(env: Mapping[str, str] = os.environ) -> str:
    """`lifecycle-stage` for a stage run by the flow, `dvc repro` or `dvc exp run`; `one-off` otherwise."""
    return "lifecycle-stage" if env.get(LIFECYCLE_ENV) or env.get("DVC_STAGE") else "one-off"


def lifecycle_tags(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The lifecycle a stage run belongs to: its kind, and the Prefect flow run that started it (id, UI link)."""
    tags = {"run_kind": run_kind(env)}
    if env.get(PREFECT_RUN_ENV):
        tags["prefect.flow_run_id"] = env[PREFECT_RUN_ENV]
    if env.get(PREFECT_URL_ENV):
        tags["prefect.flow_run_url"] = env[PREFECT_URL_ENV]
    return tags


def revision_tags(project_dir: str | Path = ".") -> dict[str, str]:
    """Lineage of a run: the git commit it ran from (and whether the tree had changes other than the files DVC
    writes), the DVC experiment it belongs to and that experiment's baseline commit (set by `dvc exp run`), and
    the lifecycle it belongs to (`lifecycle_tags`; its MLflow parent run when the flow started it)."""
    cwd = Path(project_dir).resolve()
    tags: dict[str, str] = {}
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git.commit"] = commit
        porcelain = _git(["status", "--porcelain", "--untracked-files=no"], cwd, strip=False) or ""
        tags["git.dirty"] = str(is_dirty(changed_files(porcelain), dvc_owned_paths(cwd)))
    for env, tag in (("DVC_EXP_NAME", "dvc.exp_name"), ("DVC_EXP_BASELINE_REV", "dvc.exp_baseline_rev"),
                     ("DVC_STAGE", "dvc.stage")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    tags.update(lifecycle_tags())
    if os.environ.get(LIFECYCLE_ENV):
        tags["mlflow.parentRunId"] = os.environ[LIFECYCLE_ENV]
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
    def log_datasets(self, paths: list[str | Path], context: str) -> None: ...

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
        if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri),
                                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except MlflowException:  # created meanwhile by a concurrent run (parallel experiments)
        return client.get_experiment_by_name(name).experiment_id


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
"""MLflow 3's UI opens an experiment of this kind on its "Training runs" table (not the empty GenAI overview)."""


def default_tags() -> dict[str, str]:
    """What MLflow's UI shows as "Created by" and "Source": the user, and the command (`cookbook clean`,
    `cookbook run`) that opened the run."""
    import getpass
    import sys

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    command = " ".join([Path(sys.argv[0]).name, *[a for a in sys.argv[1:2] if not a.startswith("-")]]) if sys.argv else ""
    return {"mlflow.user": user, "mlflow.source.type": "LOCAL", "mlflow.source.name": command or "python"}


BREAKDOWN_ENTRIES = 12
"""A nested metric with more entries than this (rows removed per rule, per language, per repository) is a
breakdown: it stays in the stage's metrics JSON (an artifact of its run) instead of becoming a metric column per
entry in the runs table."""


def metric_items(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of `metrics` as MLflow metrics (nested keys joined with `.`), breakdowns left out."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            if len(value) <= BREAKDOWN_ENTRIES:
                out.update(metric_items(value, f"{prefix}{key}."))
        else:
            out.update(numeric_items({key: value}, prefix))
    return out


class MlflowTracker:
    """Logs to one MLflow run through `MlflowClient` (no global active-run state)."""

    def __init__(self, client, run_id: str, uri: str):
        self.client, self.run_id, self.uri = client, run_id, uri
        self.lost = False

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
        all_tags = {**default_tags(), **{k: str(v) for k, v in (tags or {}).items()}}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        try:
            run = client.create_run(experiment_id(client, experiment, uri), run_name=run_name, tags=all_tags)
        except Exception as exc:
            if not is_server_unreachable(exc):
                raise
            from tasks.common.config import ConfigError

            raise ConfigError(f"the MLflow tracking server {uri} does not answer: start it, unset MLFLOW_TRACKING_URI "
                              "to use the project's SQLite store, or set tracking.enabled=false") from exc
        tracker = cls(client, run.info.run_id, uri)
        try:
            yield tracker
        except BaseException:
            tracker.terminate("FAILED")
            raise
        tracker.terminate("FINISHED")

    @_tolerant
    def terminate(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status)

    @_tolerant
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(_clean_key(k), str(v)[:MAX_PARAM_LEN]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    @_tolerant
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_clean_key(k), v, now, step or 0) for k, v in metric_items(metrics).items()]
        for i in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[i : i + 500])

    @_tolerant
    def log_series(self, key: str, points: list[tuple[int, float]]) -> None:
        """One metric at many steps (a loss curve), in batches."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_clean_key(key), float(v), now, int(step)) for step, v in points if math.isfinite(v)]
        for i in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[i : i + 500])

    @_tolerant
    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(_clean_key(k), str(v)) for k, v in tags.items()]
        if items:
            self.client.log_batch(self.run_id, tags=items)

    @_tolerant
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.exists():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    @_tolerant
    def log_dict(self, obj: Any, name: str) -> None:
        self.client.log_dict(self.run_id, obj, name)

    @_tolerant
    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

    @_tolerant
    def log_datasets(self, paths: list[str | Path], context: str) -> None:
        """Each existing path as an MLflow dataset of this run (`context`: input or output), with DVC's hash as
        digest: the runs table's Dataset column and the lineage between stages."""
        from mlflow.entities import DatasetInput, InputTag

        datasets = [DatasetInput(d, [InputTag("mlflow.data.context", context)]) for d in dataset_entities(paths)]
        if datasets:
            self.client.log_inputs(self.run_id, datasets=datasets)

    @_tolerant
    def _create_child(self, name: str) -> "MlflowTracker":
        exp_id = self.client.get_run(self.run_id).info.experiment_id
        run = self.client.create_run(exp_id, run_name=name, tags={"mlflow.parentRunId": self.run_id})
        return MlflowTracker(self.client, run.info.run_id, self.uri)

    @contextlib.contextmanager
    def child(self, name: str) -> Iterator["Tracker"]:
        child = self._create_child(name)
        if child is None:  # tracking lost
            yield NullTracker()
            return
        try:
            yield child
        except BaseException:
            child.terminate("FAILED")
            raise
        child.terminate("FINISHED")


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
    """`{"input.<path>": hash}` for each input: DVC's recorded md5 if `dvc.lock` has it, else our own.
    (Superseded by `stage_run`, which logs inputs as one param and as datasets instead of one tag key per path.)"""
    recorded = recorded_hashes(lock_file)
    tags = {}
    for p in map(Path, paths):
        if not p.exists():
            continue
        key = os.path.normpath(str(p))
        tags[f"input.{key}"] = recorded.get(key) or _dir_md5(p)
    return tags


def recorded_hashes(lock_file: str | Path = "dvc.lock") -> dict[str, str]:
    """{path: md5} of every stage output DVC recorded in `dvc.lock`."""
    recorded: dict[str, str] = {}
    lock = Path(lock_file)
    if lock.exists():
        data = yaml.safe_load(lock.read_text()) or {}
        for stage in (data.get("stages") or {}).values():
            for out in stage.get("outs") or []:
                recorded[os.path.normpath(out["path"])] = out.get("md5") or out.get("hash", "")
    return recorded


def dataset_entities(paths: list[str | Path], lock_file: str | Path = "dvc.lock") -> list:
    """MLflow dataset entities for the existing local paths: name = the path as given, source = its absolute
    location, digest = DVC's md5 from `dvc.lock` or, where DVC has none yet, the same hash computed here."""
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.entities import Dataset

    recorded = recorded_hashes(lock_file)
    out = []
    for p in map(Path, paths):
        if not p.exists():
            continue
        key = os.path.normpath(str(p))
        source = LocalArtifactDatasetSource(str(p.resolve()))
        out.append(Dataset(name=key, digest=recorded.get(key) or _dir_md5(p), source_type="local",
                           source=source.to_json()))
    return out


def io_params(paths: list[str | Path], kind: str) -> dict[str, str]:
    """`{"<kind>_path": "a, b"}`: a stage's input or output paths as one param (the same key in every run)."""
    return {f"{kind}_path": ", ".join(os.path.normpath(str(p)) for p in paths)} if paths else {}


def dvc_process_key() -> str | None:
    """Identity of the `dvc repro` / `dvc exp run` process running this stage (pid and start time of the
    nearest ancestor whose command is DVC), so the stages of one DVC invocation share one lifecycle parent."""
    import psutil

    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process().parents():
            cmd = " ".join(proc.cmdline()[:3])
            if "dvc" in Path(cmd.split(" ")[0]).name or "/dvc " in f"{cmd} " or " -m dvc" in cmd:
                return f"{proc.pid}-{int(proc.create_time())}"
    return None


def lifecycle_name(env: Mapping[str, str] = os.environ) -> str:
    """A lifecycle parent run's name: the DVC experiment's (an ablation variant's) name, else `dvc repro`."""
    return env.get("DVC_EXP_NAME") or "dvc repro"


def find_or_open_dvc_lifecycle(client, exp_id: str, key: str) -> str:
    """The parent run of the DVC process `key`, opened on its first stage."""
    found = client.search_runs([exp_id], f"tags.lifecycle_key = '{key}'", max_results=1)
    if found:
        client.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id
    tags = {"run_kind": "lifecycle", "lifecycle_key": key, **{k: v for k, v in revision_tags().items()
                                                               if k.startswith(("git.", "mlflow.source", "dvc.exp"))}}
    return client.create_run(exp_id, run_name=lifecycle_name(), tags=tags).info.run_id


@contextlib.contextmanager
def stage_run(params, stage: str, inputs: list[str | Path]) -> Iterator[Tracker]:
    """The MLflow run of one stage execution (a `NullTracker` with `tracking.enabled: false`).

    Under the lifecycle flow it is a child of the flow's parent run; under `dvc repro` / `dvc exp run` a child of
    the DVC process's parent run (opened by its first stage, FINISHED after each stage); elsewhere a `one-off`
    run. Tags: stage, git/DVC revision, run kind, Prefect flow run; params: the input paths; datasets: the inputs.
    """
    if not params.tracking.enabled:
        yield NullTracker()
        return
    from mlflow.tracking import MlflowClient

    uri = tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    tags = {"stage": stage, **revision_tags()}
    own_parent = None
    if "mlflow.parentRunId" not in tags and os.environ.get("DVC_STAGE") and (key := dvc_process_key()):
        own_parent = find_or_open_dvc_lifecycle(client, experiment_id(client, params.tracking.experiment, uri), key)
        tags["mlflow.parentRunId"] = own_parent
    status = "FAILED"
    try:
        with MlflowTracker.start(params.tracking.experiment, stage, uri=uri, tags=tags) as tracker:
            tracker.log_params(io_params(inputs, "input"))
            tracker.log_datasets(inputs, "input")
            yield tracker
        status = "FINISHED"
    finally:
        if own_parent:
            MlflowTracker(client, own_parent, uri).terminate(status)


def log_stage_outputs(tracker: Tracker, outputs: list[str | Path]) -> None:
    """A finished stage's output paths as a param and its outputs as datasets (context `output`)."""
    tracker.log_params(io_params(outputs, "output"))
    tracker.log_datasets(outputs, "output")


def mlflow_ui_base(uri: str) -> str:
    """Where a user opens the MLflow UI for this store: the server itself, or `mlflow ui`'s default address."""
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"


UI_VIEW = "workflowType=machine_learning"
"""MLflow 3's UI shows an experiment in its GenAI views (an "Evaluations" breadcrumb, no runs table) unless the link
asks for the model-training ones."""


def run_url(uri: str, experiment: str, run_id: str) -> str:
    return f"{mlflow_ui_base(uri)}/#/experiments/{experiment}/runs/{run_id}?{UI_VIEW}"


def runs_url(uri: str, experiment: str) -> str:
    """The experiment's runs table (lifecycles, expandable to their stage runs)."""
    return f"{mlflow_ui_base(uri)}/#/experiments/{experiment}/runs?{UI_VIEW}"


@contextlib.contextmanager
def open_lifecycle_run(experiment: str, name: str, prefect_run_id: str | None = None,
                       prefect_url: str | None = None, uri: str | None = None) -> Iterator[MlflowTracker]:
    """The parent run of one lifecycle (`cookbook run`): its id, and the Prefect flow run's id and link, are put
    in the environment (`LIFECYCLE_ENV`, ...) so every stage run started meanwhile becomes its child."""
    tags = {"run_kind": "lifecycle", **{k: v for k, v in revision_tags().items()
                                        if k.startswith(("git.", "mlflow.source", "dvc.exp"))}}
    prefect = {PREFECT_RUN_ENV: prefect_run_id, PREFECT_URL_ENV: prefect_url}
    tags.update({tag: v for tag, v in (("prefect.flow_run_id", prefect_run_id), ("prefect.flow_run_url", prefect_url)) if v})
    saved = {k: os.environ.get(k) for k in (LIFECYCLE_ENV, *prefect)}
    with MlflowTracker.start(experiment, name, uri=uri or tracking_uri(), tags=tags) as parent:
        os.environ[LIFECYCLE_ENV] = parent.run_id
        os.environ.update({k: v for k, v in prefect.items() if v})
        try:
            yield parent
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
