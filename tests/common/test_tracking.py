"""MLflow tracking against a real local SQLite store: stage runs, params, input hashes, metrics."""

from mlflow.tracking import MlflowClient

from tasks.common.tracking import MlflowTracker, NullTracker, input_hashes, numeric_items


def test_stage_run_records_params_tags_and_metrics(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
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


def test_failed_stage_marks_run_failed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
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
