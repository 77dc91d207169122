"""The `lifecycle` Prefect flow: every stage of the OpenCoder recipe, in order, as a Prefect task.

Each task runs its DVC stage (`dvc repro --single-item <stage>`), so a Prefect run and `dvc repro` share
one cache and one `dvc.lock`: a stage whose code, params and inputs did not change is skipped by DVC.
After the stage, the task publishes its counts as a markdown artifact (visible in the Prefect UI). A failed
stage raises with the tail of its output (the error the UI shows) and is retried twice, unless it rejected its
params or inputs (`cookbook` exits 2), which no retry can fix.
With no `PREFECT_API_URL` the flow runs on Prefect's temporary local server.

    cookbook run                                  # from the project folder
    cookbook run --set pretrain.steps=200         # overrides are written into params.yaml first
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from tasks.stages import ORDER, STAGES

DVC_TAIL_LINES = 40


def _dvc_command() -> list[str]:
    """`dvc` from the same environment as this interpreter."""
    local = Path(sys.executable).with_name("dvc")
    return [str(local) if local.exists() else "dvc"]


def _env() -> dict[str, str]:
    """Child environment with this interpreter's bin folder first, so DVC finds `cookbook`."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def metrics_markdown(stage: str, metrics: dict) -> str:
    """A stage's metrics as a small markdown table (nested values shown as JSON)."""
    lines = [f"# {stage}", "", "| metric | value |", "|---|---|"]
    for key, value in metrics.items():
        shown = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
        lines.append(f"| {key} | {shown} |")
    return "\n".join(lines)


class StageInputError(RuntimeError):
    """The stage rejected its params or inputs (`cookbook` exits 2 with one `error:` line): a retry cannot help."""


INPUT_ERROR = re.compile(r"exited with 2\b")


def is_transient(task, task_run, state) -> bool:
    """Retry condition: every failure except a rejected config or input (a held DVC lock, a crashed worker,
    a killed process, a full disk cleared meanwhile are worth another try)."""
    return not isinstance(state.result(raise_on_failure=False), StageInputError)


def stage_error(stage: str, returncode: int, tail: list[str]) -> RuntimeError:
    """The error a failed stage raises: its exit code and the tail of its output (what the UI shows)."""
    text = f"stage '{stage}' failed (exit {returncode}):\n" + "\n".join(tail)
    return StageInputError(text) if any(INPUT_ERROR.search(line) for line in tail) else RuntimeError(text)


@task(retries=2, retry_delay_seconds=[10, 30], retry_condition_fn=is_transient)
def run_stage(stage: str, project_dir: str, force: bool = False) -> dict:
    """Run one DVC stage and return its metrics."""
    logger = get_run_logger()
    cmd = [*_dvc_command(), "repro", "--single-item", stage] + (["--force"] if force else [])
    logger.info("running %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, cwd=project_dir, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    for line in proc.stdout:
        logger.info(line.rstrip())
        tail = (tail + [line.rstrip()])[-DVC_TAIL_LINES:]
    if proc.wait() != 0:
        raise stage_error(stage, proc.returncode, tail)
    metrics = json.loads((Path(project_dir) / STAGES[stage].metrics).read_text())
    create_markdown_artifact(markdown=metrics_markdown(stage, metrics), key=f"{stage}-metrics",
                             description=f"counts of the {stage} stage")
    return metrics


def write_overrides(params_path: Path, overrides: list[str]) -> None:
    """Apply `section.key=value` overrides to params.yaml in place, keeping its comments."""
    from ruamel.yaml import YAML

    from tasks.common.config import parse_override
    from tasks.config import load_params

    load_params(params_path, overrides)  # validate before touching the file
    yaml = YAML()
    data = yaml.load(params_path.read_text())
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    with params_path.open("w") as f:
        yaml.dump(data, f)


@flow(name="lifecycle", log_prints=True)
def lifecycle(params_path: str = "params.yaml", overrides: list[str] | None = None, force: bool = False,
              stages: list[str] | None = None) -> dict:
    """Run the stages (all by default) in DAG order; return {stage: metrics}."""
    params_file = Path(params_path).resolve()
    project_dir = str(params_file.parent)
    if overrides:
        write_overrides(params_file, overrides)
    results = {}
    for stage in stages or ORDER:
        results[stage] = run_stage.with_options(name=stage)(stage, project_dir, force)
    return results
