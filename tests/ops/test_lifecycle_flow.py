"""The lifecycle flow as a user meets it: real Prefect (a temporary server), real DVC, real MLflow (SQLite).

A small git + DVC project whose `ingest` stage is a short script (its behaviour chosen by `mode.txt`, a dependency
of the stage): it opens its MLflow run with `stage_run` as every stage does and writes metrics. Through the
`lifecycle` flow:
- a stage that exits 2 with one `error:` line fails at once (one attempt, no retry) with that line, and the
  lifecycle's MLflow parent run is FAILED;
- a stage that runs is a task named after it, its MLflow run a child of the lifecycle's parent run (tagged with the
  Prefect flow run), its artifact has nested counts as a sub-table; run again, DVC skips it and the task ends in a
  completed state named `Cached` whose artifact shows 0 work seconds;
- a stage silent for longer than the progress interval gets progress lines while it runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.testing.utilities import prefect_test_harness

from flows.lifecycle import lifecycle, run_stage

ROOT = Path(__file__).resolve().parents[2]
STAGE_SCRIPT = f"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
mode = Path("mode.txt").read_text().strip()
if mode == "bad":
    print("error: input 'raw/' does not exist: set ingest.path to a folder of code", file=sys.stderr)
    sys.exit(2)
if mode == "slow":  # silent for 3 s, without tracking
    print("ingest: started", flush=True)
    time.sleep(3)
    Path("metrics/ingest.json").write_text(json.dumps({{"stage": "ingest", "seconds": 3}}))
    Path("data/ingest").mkdir(parents=True, exist_ok=True)
    sys.exit(0)
from tasks.common.tracking import log_stage_outputs, stage_run
from tasks.config import load_params
with stage_run(load_params("params.yaml"), "ingest", ["mode.txt"]) as tracker:
    Path("data/ingest").mkdir(parents=True, exist_ok=True)
    Path("data/ingest/rows.txt").write_text(mode)
    metrics = {{"stage": "ingest", "rows_in": 3, "rows_kept": 2, "rows_dropped": 1,
               "dropped_by_reason": {{"binary": 1}}, "seconds": 0.5}}
    Path("metrics/ingest.json").write_text(json.dumps(metrics))
    log_stage_outputs(tracker, ["data/ingest"])
"""
DVC_YAML = """stages:
  ingest:
    cmd: python stage.py
    deps: [stage.py, mode.txt]
    outs: [data/ingest]
    metrics:
      - metrics/ingest.json:
          cache: false
"""


def _sh(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """One MLflow store for the module (a new SQLite store runs MLflow's migrations, ~5-9 s)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def project(tmp_path, monkeypatch, mlflow_uri):
    """A git + DVC project with one stage; the environment as `cookbook run` sees it (no outside servers)."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "stage.py").write_text(STAGE_SCRIPT)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "mode.txt").write_text("ok\n")
    for var in ("DVC_STAGE", "DVC_ROOT", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for key, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@t"}.items():
        monkeypatch.setenv(key, value)
    _sh(["git", "init", "-q"], tmp_path)
    _sh([str(Path(sys.executable).with_name("dvc")), "init", "-q"], tmp_path)
    _sh(["git", "add", "."], tmp_path)
    _sh(["git", "commit", "-qm", "project"], tmp_path)
    return tmp_path


def _task_runs(flow_run_id) -> list:
    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def _artifact(flow_run_id, key: str) -> str:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return next(a.data for a in found if a.key == key)


def _runs(flow_run_id) -> list:
    """The MLflow runs a flow run made (the lifecycle parent and its stage runs carry its id)."""
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("opencoder-cookbook")
    return client.search_runs([exp.experiment_id], f"tags.`prefect.flow_run_id` = '{flow_run_id}'", max_results=100)


def test_a_stage_exiting_2_fails_once_with_its_one_error_line(prefect_server, project):
    (project / "mode.txt").write_text("bad\n")
    state = lifecycle(params_path=str(project / "params.yaml"), stages=["ingest"], return_state=True)
    assert state.is_failed()
    (task,) = _task_runs(state.state_details.flow_run_id)
    assert task.name == "ingest" and task.state.is_failed() and task.run_count == 1  # not retried
    assert task.state.message.endswith(
        "stage 'ingest' failed: error: input 'raw/' does not exist: set ingest.path to a folder of code")
    assert "\n" not in task.state.message
    (parent,) = _runs(state.state_details.flow_run_id)
    assert parent.data.tags["run_kind"] == "lifecycle" and parent.info.status == "FAILED"


def test_stages_are_children_of_the_lifecycle_run_and_a_skipped_stage_is_cached(prefect_server, project):
    first = lifecycle(params_path=str(project / "params.yaml"), stages=["ingest"], return_state=True)
    assert first.is_completed()
    result = first.result()
    assert result["stages"]["ingest"]["rows_in"] == 3 and result["cached"] == []
    flow_run_id = str(first.state_details.flow_run_id)
    (task,) = _task_runs(flow_run_id)
    assert task.name == "ingest" and task.state.name == "Completed"
    artifact = _artifact(flow_run_id, "ingest-metrics")
    assert "## dropped_by_reason" in artifact and "| binary | 1 |" in artifact and "[MLflow run of ingest](" in artifact
    assert "ingest  " in _artifact(flow_run_id, "lifecycle-summary")  # the flow run's own card: the summary

    runs = {r.info.run_name: r for r in _runs(flow_run_id)}
    parent = next(r for r in runs.values() if r.data.tags["run_kind"] == "lifecycle")
    stage = runs["ingest"]
    assert stage.data.tags["mlflow.parentRunId"] == parent.info.run_id and parent.info.status == "FINISHED"
    assert stage.data.tags["prefect.flow_run_id"] == flow_run_id == parent.data.tags["prefect.flow_run_id"]
    assert stage.data.tags["prefect.flow_run_url"].endswith(f"/runs/flow-run/{flow_run_id}")
    assert stage.data.tags["git.dirty"] == "False"  # metrics/ingest.json and dvc.lock changed: DVC's files
    assert {d.dataset.name for d in stage.inputs.dataset_inputs} == {"mode.txt", "data/ingest"}
    assert result["mlflow_run_url"].endswith(f"/runs/{parent.info.run_id}?workflowType=machine_learning")  # not GenAI
    assert parent.data.metrics["ingest.rows_kept"] == 2 and parent.data.metrics["stages_run"] == 1  # the row's numbers
    assert "ingest" in parent.data.tags["mlflow.note.content"] and flow_run_id in parent.data.tags["mlflow.note.content"]
    assert parent.data.tags["mlflow.user"] and stage.data.tags["mlflow.source.name"]  # "Created by", "Source"

    again = lifecycle(params_path=str(project / "params.yaml"), stages=["ingest"], return_state=True)
    assert again.result()["cached"] == ["ingest"]
    (task,) = _task_runs(again.state_details.flow_run_id)
    assert task.name == "ingest" and task.state.name == "Cached" and task.state.is_completed()
    cached = _artifact(again.state_details.flow_run_id, "ingest-metrics")
    assert "| seconds | 0 |" in cached and "| seconds_of_the_run_that_made_the_outputs | 0.5 |" in cached
    assert [r.data.tags["run_kind"] for r in _runs(again.state_details.flow_run_id)] == ["lifecycle"]  # no stage run


def test_a_silent_stage_reports_progress_while_it_runs(prefect_server, project):
    (project / "mode.txt").write_text("slow\n")

    @flow
    def one_stage():
        return run_stage("ingest", str(project), interval=1.0)

    state = one_stage(return_state=True)
    assert state.is_completed()
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    messages = [entry.message for entry in logs]
    # the task's lines carry the stage's name already: the message does not repeat it ("INFO ingest: running for 2s")
    assert any(m.startswith("running for ") and m.endswith("last: started") for m in messages), messages


def test_child_lines_lose_their_own_timestamp_and_repeated_warnings():
    from flows.lifecycle import LEADING_TIMESTAMP, is_repeated_warning

    line = LEADING_TIMESTAMP.sub("", "2026-12-07 03:47:51,820\tWARNING setup.py:85 -- Token authentication is enabled")
    assert line == "WARNING setup.py:85 -- Token authentication is enabled"
    assert LEADING_TIMESTAMP.sub("", "2026/12/07 03:39:43 INFO mlflow: x") == "INFO mlflow: x"
    assert LEADING_TIMESTAMP.sub("", "[2026-12-07 04:12:19,387] [WARNING] [real_accelerator.py:213]") == "[WARNING] [real_accelerator.py:213]"
    assert not is_repeated_warning("only once, 12 rows") and is_repeated_warning("only once, 13 rows")


def test_a_child_line_keeps_one_level_and_no_name_of_its_own():
    """`INFO evaluate: INFO tasks.evaluate.stage: ...` was two levels and two names on one terminal line: the flow
    logs the record's message at the record's level under the stage's name."""
    import logging

    from flows.lifecycle import split_child_line

    assert split_child_line("INFO tasks.ingest.listing: listed 500 files of pip") == (logging.INFO, "listed 500 files of pip")
    assert split_child_line("WARNING cookbook.train: loss is nan") == (logging.WARNING, "loss is nan")
    assert split_child_line("2026-12-07 03:47:51,820\tWARNING worker.py:85 -- workers busy") == (logging.WARNING, "workers busy")
    assert split_child_line("[2026-12-07 04:12:19,387] [WARNING] [real_accelerator.py:213] no cuda") == (logging.WARNING, "no cuda")
    assert split_child_line("ERROR tasks.clean.stage: shard 3 unreadable") == (logging.ERROR, "shard 3 unreadable")
    assert split_child_line("Running stage 'clean':") == (logging.INFO, "Running stage 'clean':")  # DVC's own
    assert split_child_line("INFO cookbook.train: pretrain step 20/100 loss 6.1234") == (logging.INFO, "pretrain step 20/100 loss 6.1234")
    level, _ = split_child_line("2026-12-07 06:42:13,001\tWARNING __init__.py:28 -- Progress bars disabled. To enable, set x")
    assert level == logging.DEBUG  # a hint about a setting the project made on purpose: not shown


def test_stage_lines_reach_the_terminal_with_one_level_one_name_one_timestamp(tmp_path):
    """A stage's output streamed through `run_dvc_stage`'s line handler, formatted as `cookbook run` shows it."""
    import io
    import logging
    import re

    from flows.lifecycle import split_child_line
    from tasks.common.logs import RunFormatter, log_format

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RunFormatter(log_format(True), datefmt="%H:%M:%S"))
    logger = logging.getLogger("test.flow.lines")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    adapter = logging.LoggerAdapter(logger, {"task_run_name": "pretrain"})
    for raw in ("INFO cookbook.train: pretrain step 20/100 loss 6.1234 lr 0.0003 tok/s 2,100",
                "2026-12-07 03:47:51,820\tWARNING worker.py:85 -- workers busy", "> cookbook pretrain"):
        adapter.log(*split_child_line(raw))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    for line in lines:
        assert re.match(r"^\d\d:\d\d:\d\d (INFO|WARNING) pretrain: ", line), line
        assert len(re.findall(r"\b(INFO|WARNING|DEBUG|ERROR)\b", line)) == 1, line
        assert len(re.findall(r"\d\d:\d\d:\d\d", line)) == 1, line
    assert lines[0].endswith("pretrain: pretrain step 20/100 loss 6.1234 lr 0.0003 tok/s 2,100")


def test_summary_names_counts_scores_reports_and_links(tmp_path):
    from flows.lifecycle import summary_lines

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "report.md").write_text("#")
    (tmp_path / "reports" / "loss.png").write_bytes(b"")
    result = {"stages": {"clean": {"rows_in": 6568, "rows_kept": 3660, "rows_dropped": 2908, "seconds": 65.6},
                         "tokenize": {"num_tokens": 349912, "seconds": 46},
                         "pretrain": {"first_loss": 9.04, "final_loss": 6.08, "seconds": 74.3},
                         "evaluate": {"humaneval": {"pass@1": 0.0, "passed": 0, "total": 164}, "seconds": 52}},
              "cached": ["clean"], "mlflow_run_url": "http://127.0.0.1:5000/#/experiments/1/runs/abc",
              "prefect_flow_run_url": "http://127.0.0.1:4200/runs/flow-run/xyz"}
    text = "\n".join(summary_lines(result, tmp_path))
    assert "clean          cached, rows 6,568 -> kept 3,660 (dropped 2,908)" in text
    assert "pretrain       74s, first_loss 9.04, final_loss 6.08" in text and "num_tokens 349,912" in text
    assert "Scores: humaneval pass@1 0.0% (0/164)" in text
    assert "Reports: reports/report.md, reports/loss.png" in text
    assert "MLflow:  http://127.0.0.1:5000/#/experiments/1/runs/abc" in text and "runs/flow-run/xyz" in text


def test_artifact_cards_say_the_headline_numbers():
    from flows.lifecycle import artifact_description

    assert artifact_description("clean", {"rows_in": 6569, "rows_kept": 3618}, False) == "clean, rows 6,569 -> kept 3,618"
    assert artifact_description("pretrain", {"final_loss": 6.0812, "steps": 100}, True) == "pretrain (cached), final_loss 6.081"
    assert artifact_description("evaluate", {"humaneval": {"pass@1": 0.0061}}, False) == "evaluate, humaneval pass@1 0.6%"
