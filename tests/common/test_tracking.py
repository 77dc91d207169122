"""MLflow tracking against a real local SQLite store: stage runs, params, input hashes, metrics."""

from mlflow.tracking import MlflowClient

import pytest

from tasks.common.tracking import MlflowTracker, NullTracker, input_hashes, numeric_items


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """One SQLite store for the module (creating one runs MLflow's migrations, ~5-9 s); tests use their own
    experiment names."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_stage_run_records_params_tags_and_metrics(tmp_path, mlflow_uri):
    uri = mlflow_uri
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello")
    with MlflowTracker.start("exp", "clean", uri=uri, tags=input_hashes([data])) as tracker:
        tracker.log_params({"clean.seed": 0})
        tracker.log_metrics({"rows_in": 3, "nested": {"pass@1": 0.5}, "note": "text"})
        run_id = tracker.run_id
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["clean.seed"] == "0"
    assert run.data.metrics["rows_in"] == 3.0 and run.data.metrics["nested.pass_at_1"] == 0.5
    assert any(k.startswith("input.") and v.endswith(".dir") for k, v in run.data.tags.items())


def test_failed_stage_marks_run_failed(mlflow_uri):
    uri = mlflow_uri
    try:
        with MlflowTracker.start("exp", "boom", uri=uri) as tracker:
            run_id = tracker.run_id
            raise ValueError("x")
    except ValueError:
        pass
    assert MlflowClient(uri).get_run(run_id).info.status == "FAILED"


def test_input_hash_prefers_dvc_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "dvc.lock").write_text("stages:\n  ingest:\n    outs:\n    - path: data\n      md5: abc.dir\n")
    assert input_hashes(["data"]) == {"input.data": "abc.dir"}


def test_null_tracker_accepts_everything():
    t = NullTracker()
    t.log_params({"a": 1})
    t.log_metrics({"b": 2}, step=3)
    with t.child("c") as c:
        c.log_text("x", "y.txt")
    assert t.run_id is None


def test_numeric_items_skips_non_numbers():
    assert numeric_items({"a": 1, "b": "x", "c": {"d": 2.5, "e": float("nan")}, "f": True}) == {"a": 1.0, "c.d": 2.5, "f": 1.0}


def _run_git(cwd, *args):
    import subprocess

    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


def test_git_dirty_ignores_the_files_dvc_writes(tmp_path):
    from tasks.common.tracking import revision_tags

    (tmp_path / "dvc.yaml").write_text("stages:\n  clean:\n    cmd: x\n    outs: [data/clean]\n"
                                       "    metrics:\n      - metrics/clean.json:\n          cache: false\n")
    (tmp_path / "metrics").mkdir()
    for name, text in [("metrics/clean.json", "{}"), ("dvc.lock", "a"), ("code.py", "x = 1\n")]:
        (tmp_path / name).write_text(text)
    _run_git(tmp_path, "init", "-q")
    _run_git(tmp_path, "add", ".")
    _run_git(tmp_path, "commit", "-qm", "c")
    (tmp_path / "metrics" / "clean.json").write_text('{"rows_in": 1}')
    (tmp_path / "dvc.lock").write_text("b")
    assert revision_tags(tmp_path)["git.dirty"] == "False"
    (tmp_path / "code.py").write_text("x = 2\n")
    assert revision_tags(tmp_path)["git.dirty"] == "True"


def test_porcelain_paths_keep_their_first_character():
    from tasks.common.tracking import changed_files, is_dirty

    assert changed_files(" M dvc.lock\nM  src/a.py\nR  old.py -> new.py\n") == ["dvc.lock", "src/a.py", "new.py"]
    assert not is_dirty(["data/clean/part-0.parquet", "dvc.lock"], {"data/clean", "dvc.lock"})
    assert is_dirty(["data/cleaner.py"], {"data/clean"})


def _params(tmp_path, experiment="exp"):
    from dataclasses import replace

    from tasks.config import Params

    params = Params()
    return replace(params, tracking=replace(params.tracking, experiment=experiment))


def test_stage_run_logs_inputs_as_datasets_and_a_param_not_as_tag_keys(tmp_path, monkeypatch, mlflow_uri):
    from tasks.common.tracking import LIFECYCLE_ENV, log_stage_outputs, stage_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    for var in (LIFECYCLE_ENV, "DVC_STAGE", "DVC_ROOT"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "data" / "in").mkdir(parents=True)
    (tmp_path / "data" / "in" / "a.txt").write_text("hello")
    (tmp_path / "dvc.lock").write_text("stages:\n  x:\n    outs:\n    - path: data/in\n      md5: 0123456789abcdef0123456789abcdef.dir\n")
    with stage_run(_params(tmp_path, "one-off"), "clean", ["data/in"]) as tracker:
        (tmp_path / "data" / "out").mkdir()
        (tmp_path / "data" / "out" / "b.txt").write_text("kept")
        log_stage_outputs(tracker, ["data/out"])
    run = MlflowClient(mlflow_uri).get_run(tracker.run_id)
    assert run.data.params["input_path"] == "data/in" and run.data.params["output_path"] == "data/out"
    assert not [k for k in run.data.tags if k.startswith(("input.", "output."))]
    assert run.data.tags["run_kind"] == "one-off" and "mlflow.parentRunId" not in run.data.tags
    by_context = {{t.key: t.value for t in d.tags}["mlflow.data.context"]: d.dataset for d in run.inputs.dataset_inputs}
    assert by_context["input"].name == "data/in" and by_context["input"].digest == "0123456789abcdef0123456789abcdef.dir"
    assert by_context["output"].name == "data/out" and by_context["output"].digest.endswith(".dir")
    assert str(tmp_path / "data" / "in") in by_context["input"].source


def test_stage_runs_of_a_lifecycle_are_children_of_its_parent_run(tmp_path, monkeypatch, mlflow_uri):
    from tasks.common.tracking import EXPERIMENT_KIND, LIFECYCLE_ENV, open_lifecycle_run, stage_run

    uri = mlflow_uri
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    with open_lifecycle_run("exp", "lifecycle happy-fox", prefect_run_id="abc",
                            prefect_url="http://127.0.0.1:4200/runs/flow-run/abc", uri=uri) as parent:
        for stage in ("ingest", "clean"):
            with stage_run(_params(tmp_path), stage, []):
                pass
    import os

    assert LIFECYCLE_ENV not in os.environ  # restored after the lifecycle
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("exp")
    assert exp.tags["mlflow.experimentKind"] == EXPERIMENT_KIND  # the UI opens on the runs table
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.run_id}'")
    assert sorted(c.info.run_name for c in children) == ["clean", "ingest"]
    assert {c.data.tags["prefect.flow_run_id"] for c in children} == {"abc"}
    assert {c.data.tags["run_kind"] for c in children} == {"lifecycle-stage"}
    top = client.get_run(parent.run_id)
    assert top.info.status == "FINISHED" and top.data.tags["run_kind"] == "lifecycle"
    assert top.data.tags["prefect.flow_run_url"].endswith("/runs/flow-run/abc")


def test_stages_of_one_dvc_process_share_a_parent(mlflow_uri, tmp_path):
    """`dvc repro` without the flow: the stages DVC runs (its child processes) name the same DVC process, whose
    parent run the first stage opens and the next one finds."""
    import subprocess
    import sys
    from pathlib import Path

    from tasks.common.tracking import experiment_id, find_or_open_dvc_lifecycle

    root = Path(__file__).resolve().parents[2]
    stage = f"import sys; sys.path.insert(0, {str(root)!r}); from tasks.common.tracking import dvc_process_key; print(dvc_process_key())"
    dvc = tmp_path / "dvc"  # a process whose command is DVC, running two stages one after the other
    dvc.write_text(f"import subprocess, sys\nfor _ in range(2):\n    subprocess.run([sys.executable, '-c', {stage!r}], check=True)\n")
    out = subprocess.run([sys.executable, str(dvc)], capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert len(out) == 2 and out[0] == out[1] != "None"
    client = MlflowClient(mlflow_uri)
    exp = experiment_id(client, "dvc-process", mlflow_uri)
    first = find_or_open_dvc_lifecycle(client, exp, out[0])
    client.set_terminated(first, "FINISHED")
    assert find_or_open_dvc_lifecycle(client, exp, out[1]) == first
    assert client.get_run(first).data.tags["run_kind"] == "lifecycle"
    assert find_or_open_dvc_lifecycle(client, exp, "another-process") != first


def test_breakdowns_stay_out_of_the_metric_columns():
    """Rows removed per rule (~130 rules), per language, per repository: one metric column each made the runs
    table 1,197 metric columns wide. Small nested metrics (a benchmark's scores, a training phase) stay."""
    from tasks.common.tracking import BREAKDOWN_ENTRIES, default_tags, metric_items

    rules = {f"rule_{i}": i for i in range(BREAKDOWN_ENTRIES + 1)}
    items = metric_items({"rows_in": 10, "dropped_by_reason": rules, "humaneval": {"pass@1": 0.5, "total": 164},
                          "phases": {"pretrain": {"final_loss": 6.1}}})
    assert items == {"rows_in": 10.0, "humaneval.pass@1": 0.5, "humaneval.total": 164.0,
                     "phases.pretrain.final_loss": 6.1}
    tags = default_tags()
    assert tags["mlflow.user"] and tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"]


def test_links_open_the_model_training_views():
    from tasks.common.tracking import run_url, runs_url

    assert run_url("sqlite:///x/mlflow.db", "1", "abc") == "http://127.0.0.1:5000/#/experiments/1/runs/abc?workflowType=machine_learning"
    assert runs_url("http://mlflow:5000/", "3") == "http://mlflow:5000/#/experiments/3/runs?workflowType=machine_learning"
