"""The `lifecycle` Prefect flow: every stage of the OpenCoder recipe, in order, as a Prefect task.

Each task (named after its stage) runs its DVC stage (`dvc repro --single-item <stage>`), so a Prefect run and
`dvc repro` share one cache and one `dvc.lock`. A stage DVC skipped (nothing changed, or restored from its
run-cache) ends in a completed state named `Cached`, its artifact showing 0 work seconds. After each stage the
task publishes its counts as a markdown artifact (nested counts as sub-tables, links to the stage's report files
and its MLflow run). A silent stage gets a progress line every 10 s. A failed stage raises with the tail of its
output and is retried twice, unless it rejected its params or inputs (`cookbook` exits 2 with one `error:` line):
then it fails at once with that line.

The flow opens one MLflow parent run for the lifecycle (`lifecycle <flow run name>`); every stage run (and the
report's summary run) is its child and carries the Prefect flow run's id and UI link. With no `PREFECT_API_URL`
the flow runs on Prefect's temporary local server, whose history (`$PREFECT_HOME/prefect.db`, by default
`~/.prefect/prefect.db`) `prefect server start` shows afterwards.

    cookbook run                                  # from the project folder
    cookbook run --set pretrain.steps=200         # overrides are written into params.yaml first
    cookbook run --stages ingest,recall           # only these stages
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed

from tasks.common.progress import PROGRESS_INTERVAL_S, SilenceWatch
from tasks.stages import ORDER, STAGES

DVC_TAIL_LINES = 40
LOCAL_PREFECT_UI = "http://127.0.0.1:4200"
"""Where `prefect server start` serves the UI (and the history of runs made on the temporary server)."""
LEADING_TIMESTAMP = re.compile(r"^\[?\d{4}[-/]\d\d[-/]\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?\]?\s*")
"""Libraries that log through their own handlers (Ray, MLflow, DeepSpeed) stamp the date and time: the flow
already does."""
CHILD_LINE = re.compile(r"^(?:(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+[\w.\-]+(?::\d+)?(?::|\s+--)"
                        r"|\[(?P<level2>DEBUG|INFO|WARNING|ERROR|CRITICAL)\]\s+\[[^\]]+\])\s+(?P<msg>.*)$")
"""A stage process's log line without its timestamp: `INFO tasks.clean.stage: message` (ours), `WARNING
worker.py:85 -- message` (Ray's), `[WARNING] [real_accelerator.py:213] message` (DeepSpeed's). The flow logs the message at that level under the stage's name: one level, one
name per terminal line."""
NOISE = re.compile(r"Progress bars disabled|Token authentication is enabled for this Ray cluster|"
                   r"Use `dvc push` to send your updates|To track the changes with git, run|"
                   r"To enable auto staging, run")
"""Lines of a stage that tell a terminal user nothing (hints about settings the project made on purpose):
logged at DEBUG."""
SHOWN_WARNINGS: set[str] = set()
"""Warnings a stage printed, shown once per process (Ray repeats its token-authentication warning in every stage)."""
SKIPPED = re.compile(r"Stage '[^']+' (didn't change, skipping|is cached - skipping run)")
INPUT_ERROR = re.compile(r"exited with 2\b")
REPORT_FILES = (".png", ".md", ".csv", ".json")


def _dvc_command() -> list[str]:
    """`dvc` from the same environment as this interpreter."""
    local = Path(sys.executable).with_name("dvc")
    return [str(local) if local.exists() else "dvc"]


def _env() -> dict[str, str]:
    """Child environment: this interpreter's bin folder first (so DVC finds `cookbook`), log lines without their
    own timestamp (the flow's logger adds one), no progress bars, and the lifecycle's MLflow parent run (already in
    os.environ)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COOKBOOK_LOG_TIMESTAMPS"] = "0"
    env.setdefault("TQDM_DISABLE", "1")  # progress bars piped into a log are a line per redraw: the flow reports
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # progress itself
    return env


def flatten_nested(value: dict, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            out.update(flatten_nested(item, f"{name}."))
        else:
            out[name] = item
    return out


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        value = str(value)
    elif isinstance(value, int):
        value = f"{value:,}"  # 79,330,064 bytes, not 79330064
    elif isinstance(value, float):
        value = round(value, 5)
    if isinstance(value, (list, dict)):
        value = ", ".join(map(str, value)) if isinstance(value, list) else "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def metrics_markdown(stage: str, metrics: dict, cached: bool = False, links: dict[str, str] | None = None) -> str:
    """A stage's metrics as markdown: the scalar values in one table, each nested value (dropped_by_reason, a
    benchmark's scores, a part's counts) in a sub-table of its own, then links to its reports and MLflow run.
    A cached stage shows 0 work seconds and the seconds of the run that made its outputs."""
    scalars = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if cached:
        scalars = {**scalars, "seconds": 0, "seconds_of_the_run_that_made_the_outputs": metrics.get("seconds", "-")}
    status = "cached: DVC skipped it (nothing changed), outputs restored" if cached else "ran"
    lines = [f"# {stage}", "", f"**{status}**", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in scalars.items()]
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows = flatten_nested(value)
            lines += ["", f"## {key}", "", "| key | value |", "|---|---:|"]
            lines += [f"| {k} | {_cell(v)} |" for k, v in rows.items()] or ["| (none) | |"]
    if links:
        lines += ["", "## Links", ""] + [f"- [{name}]({url})" for name, url in links.items()]
    return "\n".join(lines)


def artifact_description(stage: str, metrics: dict, cached: bool) -> str:
    """What an artifact's card says in the Prefect UI: the stage's headline numbers."""
    what = [f"{stage}" + (" (cached)" if cached else "")]
    if isinstance(metrics.get("rows_in"), int):
        what.append(f"rows {metrics['rows_in']:,} -> kept {metrics.get('rows_kept', 0):,}")
    for key in ("num_tokens", "final_loss"):
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            what.append(f"{key} {value:,}" if isinstance(value, int) else f"{key} {value:.4g}")
    scores = [f"{b} pass@1 {100 * v['pass@1']:.1f}%" for b, v in metrics.items() if isinstance(v, dict) and "pass@1" in v]
    return ", ".join(what + scores)


def report_links(project_dir: Path, stage: str) -> dict[str, str]:
    """file:// links to the stage's report files (reports/<stage>/, or reports/ for the report stage)."""
    folder = project_dir / "reports" / ("" if stage == "report" else stage)
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in REPORT_FILES)
    return {p.relative_to(project_dir).as_posix(): p.resolve().as_uri() for p in files}


def stage_run_link(parent, stage: str) -> dict[str, str]:
    """The MLflow UI link of the newest run of `stage` under the lifecycle's parent run (none when it was cached)."""
    if parent is None:
        return {}
    from tasks.common.tracking import run_url

    exp_id = parent.client.get_run(parent.run_id).info.experiment_id
    found = parent.client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{parent.run_id}' and tags.stage = '{stage}'",
                                      order_by=["attributes.start_time DESC"], max_results=1)
    return {f"MLflow run of {stage}": run_url(parent.uri, exp_id, found[0].info.run_id)} if found else {}


class StageInputError(RuntimeError):
    """The stage rejected its params or inputs (`cookbook` exits 2 with one `error:` line): a retry cannot help."""


def is_transient(task, task_run, state) -> bool:
    """Retry condition: every failure except a rejected config or input (a held DVC lock, a crashed worker,
    a killed process, a full disk cleared meanwhile are worth another try)."""
    return not isinstance(state.result(raise_on_failure=False), StageInputError)


def stage_error(stage: str, returncode: int, tail: list[str]) -> RuntimeError:
    """The error a failed stage raises. A rejected input (exit 2): that one `error:` line. Anything else: the
    exit code and the tail of the stage's output (what the UI shows)."""
    if any(INPUT_ERROR.search(line) for line in tail):
        errors = [line for line in tail if line.lstrip().startswith("error:")]
        return StageInputError(f"stage '{stage}' failed: {errors[-1].strip() if errors else tail[-1]}")
    return RuntimeError(f"stage '{stage}' failed (exit {returncode}):\n" + "\n".join(tail))


def stream(proc: subprocess.Popen, on_line, watch: SilenceWatch, tick_s: float = 1.0) -> None:
    """Hand every output line of `proc` to `on_line` (which tells `watch` what it showed); while nothing is
    shown, let `watch` report progress."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=tick_s)
        except queue.Empty:
            watch.tick()
            continue
        if line is None:
            return
        on_line(line.rstrip())
        watch.tick()


def is_repeated_warning(message: str) -> bool:
    """Whether the warning `message` was already shown in this process (then it is logged at DEBUG only);
    records it."""
    key = re.sub(r"\d+", "#", message)
    if key in SHOWN_WARNINGS:
        return True
    SHOWN_WARNINGS.add(key)
    return False


def split_child_line(line: str) -> tuple[int, str]:
    """(level, message) of a stage's output line: the level and text of a log record (its own level and logger
    name taken off, so the flow's line carries one of each), INFO and the line for anything else (DVC's own
    output, prints), DEBUG for known noise."""
    line = LEADING_TIMESTAMP.sub("", line).rstrip()
    found = CHILD_LINE.match(line)
    if found:
        level, message = logging.getLevelName(found["level"] or found["level2"]), found["msg"]
    else:
        level, message = logging.INFO, line
    if NOISE.search(message):
        level = logging.DEBUG
    return level, message


def run_dvc_stage(stage: str, project_dir: str, force: bool, logger, interval: float) -> tuple[list[str], bool]:
    """`dvc repro --single-item <stage>`, streamed to `logger`; returns (tail of its output, skipped by DVC)."""
    cmd = [*_dvc_command(), "repro", "--single-item", stage] + (["--force"] if force else [])
    logger.info("running dvc %s", " ".join(cmd[1:]))
    proc = subprocess.Popen(cmd, cwd=project_dir, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    skipped = False
    watch = SilenceWatch(stage, interval, emit=lambda text: logger.info(text.removeprefix(f"{stage}: ")))

    def on_line(line: str) -> None:
        nonlocal tail, skipped
        if not line.strip():
            return
        level, message = split_child_line(line)
        message = message.removeprefix(f"{stage}: ")  # a progress line names its stage: the flow's line does already
        if level >= logging.WARNING and is_repeated_warning(message):
            level = logging.DEBUG  # shown once per run (Ray repeats some in every stage)
        logger.log(level, message)
        if level >= logging.INFO:
            watch.heard(message)  # DEBUG lines are not shown: the terminal stays silent, the watch keeps counting
        tail = (tail + [line.rstrip()])[-DVC_TAIL_LINES:]
        skipped = skipped or bool(SKIPPED.search(line))

    stream(proc, on_line, watch)
    if proc.wait() != 0:
        raise stage_error(stage, proc.returncode, tail)
    return tail, skipped


@task(retries=2, retry_delay_seconds=[10, 30], retry_condition_fn=is_transient)
def run_stage(stage: str, project_dir: str, force: bool = False, interval: float = PROGRESS_INTERVAL_S,
              parent_run_id: str | None = None, tracking_uri: str | None = None):
    """Run one DVC stage and return its metrics (in a `Cached` completed state when DVC skipped it)."""
    logger = get_run_logger()
    _, skipped = run_dvc_stage(stage, project_dir, force, logger, interval)
    project = Path(project_dir)
    metrics = json.loads((project / STAGES[stage].metrics).read_text())
    parent = None
    if parent_run_id and tracking_uri:
        from tasks.common.tracking import MlflowTracker

        parent = MlflowTracker.attach(tracking_uri, parent_run_id)
    links = {**report_links(project, stage), **({} if skipped else stage_run_link(parent, stage))}
    create_markdown_artifact(markdown=metrics_markdown(stage, metrics, skipped, links), key=f"{stage}-metrics",
                             description=artifact_description(stage, metrics, skipped))
    if skipped:
        return Completed(name="Cached", data=metrics, message=f"DVC skipped '{stage}': nothing changed")
    return metrics


def write_overrides(params_path: Path, overrides: list[str]) -> None:
    """Apply `section.key=value` overrides to params.yaml in place, keeping its comments."""
    from ruamel.yaml import YAML

    from tasks.common.config import parse_override, set_dotted
    from tasks.config import load_params

    load_params(params_path, overrides)  # validate before touching the file
    yaml = YAML()  # round trip: comments, quotes, flow style, `null` and indentation as the user wrote them
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    data = yaml.load(params_path.read_text())
    for text in overrides:
        set_dotted(data, *parse_override(text), text)
    with params_path.open("w") as f:
        yaml.dump(data, f)


def prefect_run_url() -> tuple[str | None, str | None]:
    """(flow run id, its UI link): the server's own UI when `PREFECT_API_URL` names one, else where
    `prefect server start` will show it (the temporary server stores its history in the same database)."""
    from prefect.runtime import flow_run

    run_id = flow_run.id
    if not run_id:
        return None, None
    if os.environ.get("PREFECT_API_URL") and flow_run.ui_url:
        return run_id, flow_run.ui_url
    return run_id, f"{LOCAL_PREFECT_UI}/runs/flow-run/{run_id}"


def lifecycle_parent(params_file: Path):
    """The lifecycle's MLflow parent run (a null context with tracking disabled)."""
    from prefect.runtime import flow_run

    from tasks.common.tracking import open_lifecycle_run, tracking_uri
    from tasks.config import load_params

    params = load_params(params_file)
    if not params.tracking.enabled:
        return contextlib.nullcontext(None)
    run_id, url = prefect_run_url()
    return open_lifecycle_run(params.tracking.experiment, f"lifecycle {flow_run.name or ''}".strip(),
                              prefect_run_id=run_id, prefect_url=url, uri=tracking_uri(params_file.parent))


@flow(name="lifecycle", log_prints=True)
def lifecycle(params_path: str = "params.yaml", overrides: list[str] | None = None, force: bool = False,
              stages: list[str] | None = None) -> dict:
    """Run the stages (all by default) in DAG order. Returns `stages` ({stage: metrics}), `cached` (the
    stages DVC skipped), `mlflow_run_url` (the lifecycle's parent run) and `prefect_flow_run_url`."""
    params_file = Path(params_path).resolve()
    project_dir = str(params_file.parent)
    if overrides:
        write_overrides(params_file, overrides)
    results: dict[str, dict] = {}
    cached: list[str] = []
    mlflow_url = None
    with lifecycle_parent(params_file) as parent:
        if parent:  # the same keys as every stage run: lifecycles compare side by side in the runs table
            from tasks.common.config import flatten
            from tasks.config import load_params

            parent.log_params(flatten(load_params(params_file)))
        for stage in stages or ORDER:
            state = run_stage.with_options(name=stage, task_run_name=stage)(
                stage, project_dir, force, parent_run_id=parent and parent.run_id,
                tracking_uri=parent and parent.uri, return_state=True)
            results[stage] = state.result()  # a failed stage raises here and fails the flow (and the parent run)
            if state.name == "Cached":
                cached.append(stage)
        if parent:
            from tasks.common.tracking import run_url

            exp_id = parent.client.get_run(parent.run_id).info.experiment_id
            mlflow_url = run_url(parent.uri, exp_id, parent.run_id)
            describe_lifecycle(parent, results, cached, Path(project_dir), prefect_run_url()[1])
    result = {"stages": results, "cached": cached, "mlflow_run_url": mlflow_url,
              "prefect_flow_run_url": prefect_run_url()[1]}
    create_markdown_artifact(markdown="```\n" + "\n".join(summary_lines(result, Path(project_dir))).strip() + "\n```",
                             key="lifecycle-summary", description="every stage's counts, the scores, reports, links")
    return result


LIFECYCLE_OUTPUTS = ("sft", "evaluate", "report")
"""Stages whose outputs a lifecycle run lists as its datasets (the model, its scores, the report)."""


def lifecycle_metrics(results: dict[str, dict], cached: list[str]) -> dict[str, float]:
    """The numbers a lifecycle row shows in the runs table: stages run and cached, each data stage's rows kept,
    each training stage's final loss, the tokens, and every benchmark's pass@1."""
    out: dict[str, float] = {"stages_run": len(results) - len(cached), "stages_cached": len(cached)}
    for stage, m in results.items():
        for key in ("rows_kept", "final_loss", "num_tokens"):
            if isinstance(m.get(key), (int, float)) and not isinstance(m.get(key), bool):
                out[f"{stage}.{key}"] = m[key]
        if stage == "evaluate":
            out.update({f"{b}.pass_at_1": v["pass@1"] for b, v in m.items() if isinstance(v, dict) and "pass@1" in v})
    return out


def describe_lifecycle(parent, results: dict[str, dict], cached: list[str], project_dir: Path,
                       prefect_url: str | None) -> None:
    """The lifecycle run's headline metrics, its description (the run's summary, shown on its page) and the
    model, scores and report it produced as output datasets."""
    from tasks.stages import STAGES

    parent.log_metrics(lifecycle_metrics(results, cached))
    summary = "\n".join(summary_lines({"stages": results, "cached": cached}, project_dir)).strip()
    parent.set_tags({"mlflow.note.content": "```\n" + summary + "\n```" +
                     (f"\n\n[Prefect flow run]({prefect_url})" if prefect_url else "")})
    outputs = [STAGES[s].output for s in LIFECYCLE_OUTPUTS if s in results and STAGES[s].output]
    with contextlib.chdir(project_dir):  # paths and dvc.lock relative to the project
        parent.log_datasets(outputs, "output")


def summary_lines(result: dict, project_dir: Path) -> list[str]:
    """What `cookbook run` prints at the end: per stage its counts (or `cached`), the scores, the report files and
    where to look in the MLflow and Prefect UIs."""
    stages, cached = result.get("stages", {}), set(result.get("cached", []))
    lines = ["", "Lifecycle finished.", ""]
    for stage, m in stages.items():
        what = "cached" if stage in cached else f"{m.get('seconds', 0):.0f}s"
        if "rows_in" in m:
            what += f", rows {m['rows_in']:,} -> kept {m.get('rows_kept', 0):,} (dropped {m.get('rows_dropped', 0):,})"
        for key in ("num_tokens", "first_loss", "final_loss"):
            value = m.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                what += f", {key} {value:,}" if isinstance(value, int) else f", {key} {value:.4g}"
        lines.append(f"  {stage:<14} {what}")
    scores = {b: v for b, v in stages.get("evaluate", {}).items() if isinstance(v, dict) and "pass@1" in v}
    if scores:
        lines += ["", "Scores: " + ", ".join(f"{b} pass@1 {100 * v['pass@1']:.1f}% ({v.get('passed', '-')}/"
                                              f"{v.get('total', '-')})" for b, v in scores.items())]
    reports = [p for p in [project_dir / "reports" / "report.md", *sorted((project_dir / "reports").glob("*.png"))]
               if p.exists()]
    if reports:
        lines += ["", "Reports: " + ", ".join(str(p.relative_to(project_dir)) for p in reports)]
    if result.get("mlflow_run_url"):
        lines.append(f"MLflow:  {result['mlflow_run_url']}  (mlflow ui --backend-store-uri sqlite:///mlflow.db)")
        lines.append(f"         all lifecycles: {result['mlflow_run_url'].split('/runs/')[0]}/runs?workflowType=machine_learning")
    if result.get("prefect_flow_run_url"):
        lines.append(f"Prefect: {result['prefect_flow_run_url']}  (prefect server start)")
    return lines
