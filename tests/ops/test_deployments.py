"""Operations end to end on real servers: the user's path through the Prefect UI and the MLflow UI.

One tiny copy of the project (tests/test_lifecycle.py's TINY params, committed), a real `prefect server start`
and `mlflow server` on loopback, the `cookbook` process work pool, `prefect deploy --all` of prefect.yaml and a
`prefect worker`. Flow runs are created through the REST API exactly as the UI's "Run" button does
(POST /deployments/{id}/create_flow_run with the edited parameters), then read back through the API:

- the `ablation` deployment runs a two-variant ablation as DVC experiments, logs a parent run and one child per
  variant to the MLflow server (read back over HTTP: identical parameter keys, lineage tags), and a second
  run of it restores every stage from DVC's cache;
- the `lifecycle` deployment runs a stage whose first attempt meets a transient failure (DVC's lock held by
  another process): the task is retried, completes, and publishes its counts as a markdown artifact;
- a stage that rejects its input fails at once (no retry can help) with its error (the tail of the stage's
  output) on the failed task run and the flow run;
- a trained model is logged to the MLflow server with its tokenizer and loads back; the `evaluate` deployment
  scores a model named in its parameters and publishes the scores as an artifact.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.ops.servers import BIN, base_env, prefect_and_mlflow, process, sh, tiny_project

TINY_ABLATION = {
    "description": "Ingest at most 20 vs 40 files (a cheap ablation for the tests).",
    "stages": ["ingest"],
    "variants": {"few": {"ingest.max_files": 20}, "more": {"ingest.max_files": 40}},
}
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class _RetryingClient(httpx.Client):
    """Retries 429/502/503 with backoff, as Prefect's own client and the UI do: the SQLite-backed server answers
    503 while its database is busy (seen on a loaded 2-core CI machine)."""

    RETRY = {429, 502, 503}

    def request(self, method, url, **kwargs):
        for attempt in range(6):
            resp = super().request(method, url, **kwargs)
            if resp.status_code not in self.RETRY:
                return resp
            time.sleep(min(2 ** attempt, 10))
        return resp


class Api:
    """The Prefect REST API, used as the UI uses it."""

    def __init__(self, url: str):
        self.http = _RetryingClient(base_url=url, timeout=60)

    def deployment_id(self, flow: str, name: str) -> str:
        resp = self.http.get(f"/deployments/name/{flow}/{name}")
        resp.raise_for_status()
        return resp.json()["id"]

    def start(self, flow: str, name: str, parameters: dict) -> str:
        """Create a flow run of a deployment with `parameters` (the UI's "Custom run"); return its id."""
        resp = self.http.post(f"/deployments/{self.deployment_id(flow, name)}/create_flow_run",
                              json={"parameters": parameters})
        resp.raise_for_status()
        return resp.json()["id"]

    def wait(self, run_id: str, timeout: float = 900) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.http.get(f"/flow_runs/{run_id}").json()
            if run["state"]["type"] in TERMINAL:
                print(f"{run['name']} {run['parameters']}: {run['state']['type']} in {run.get('total_run_time', 0):.0f}s")
                return run
            time.sleep(2)
        raise TimeoutError(f"flow run {run_id} still {run['state']['type']} after {timeout}s")

    def run(self, flow: str, name: str, parameters: dict, timeout: float = 900) -> dict:
        return self.wait(self.start(flow, name, parameters), timeout)

    def wait_for_task_state(self, run_id: str, state_name: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for task in self.task_runs(run_id):
                if task["state"]["name"] == state_name:
                    return task
            time.sleep(0.5)
        raise TimeoutError(f"no task of flow run {run_id} reached {state_name} in {timeout}s")

    def artifacts(self, run_id: str) -> dict[str, dict]:
        resp = self.http.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}})
        return {a["key"]: a for a in resp.json() if a.get("key")}

    def task_runs(self, run_id: str) -> list[dict]:
        return self.http.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [run_id]}}}).json()

    def logs(self, run_id: str) -> str:
        lines, offset = [], 0
        while True:
            page = self.http.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}},
                                                        "limit": 200, "offset": offset, "sort": "TIMESTAMP_ASC"}).json()
            lines += [entry["message"] for entry in page]
            if len(page) < 200:
                return "\n".join(lines)
            offset += 200


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    """Servers up, project deployed, a worker polling; yields (api, project, mlflow_uri); all stopped after."""
    root = tmp_path_factory.mktemp("ops")
    project = root / "project"
    project.mkdir()
    with prefect_and_mlflow(root) as (api_url, mlflow_uri):
        tiny_project(project, files={"ablations/tiny_ingest.yaml": yaml.safe_dump(TINY_ABLATION)})
        env = {**_env(project), "PREFECT_API_URL": api_url, "MLFLOW_TRACKING_URI": mlflow_uri,
               "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_HOME": str(root / "client")}
        sh([str(BIN / "prefect"), "work-pool", "create", "cookbook", "--type", "process", "--overwrite"], project, env)
        deployed = sh([str(BIN / "prefect"), "deploy", "--all", "--no-prompt"], project, env, timeout=300)
        assert "lifecycle" in deployed.stdout + deployed.stderr
        with process([str(BIN / "prefect"), "worker", "start", "--pool", "cookbook"], root / "worker.log", env, project):
            yield Api(api_url), project, mlflow_uri, root


def _env(project: Path) -> dict:
    return base_env(PYTHONPATH=str(project))


def test_ablation_deployment_runs_variants_as_experiments_and_mlflow_compares_them(ops):
    api, project, mlflow_uri, root = ops
    run = api.run("ablation", "ablation", {"name": "tiny_ingest", "jobs": 2})
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"] + (root / "worker.log").read_text()[-3000:]
    comparison = api.artifacts(run["id"])["ablation-tiny-ingest"]["data"]
    assert "| few | tiny_ingest-few |" in comparison and "| more |" in comparison
    report = project / "reports" / "ablations" / "tiny_ingest"
    assert (report / "counts.png").read_bytes()[:4] == b"\x89PNG"
    results = json.loads((report / "results.json").read_text())["variants"]
    assert results["few"]["metrics"]["ingest"]["rows_in"] == 20 and results["more"]["metrics"]["ingest"]["rows_in"] == 40

    shown = sh([str(BIN / "dvc"), "exp", "show", "--json"], project, _env(project)).stdout
    assert "tiny_ingest-few" in shown and "tiny_ingest-more" in shown

    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)  # over HTTP
    exp = client.get_experiment_by_name("opencoder-cookbook")
    parent = client.search_runs([exp.experiment_id], "tags.kind = 'ablation'")[0]
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert {c.info.run_name for c in children} - {"tiny_ingest:shared stages"} == {"tiny_ingest:few", "tiny_ingest:more"}
    few, more = sorted((c for c in children if c.data.tags.get("variant") in ("few", "more")), key=lambda c: c.info.run_name)
    assert set(few.data.params) == set(more.data.params) and len(few.data.params) > 100
    assert {k for k in few.data.params if few.data.params[k] != more.data.params[k]} == {"ingest.max_files"}
    assert few.data.metrics["ingest.rows_in"] == 20.0
    assert {d.dataset.name: d.dataset.digest for d in few.inputs.dataset_inputs}["data/ingest"].endswith(".dir")
    assert few.data.tags["dvc.exp_rev"] == results["few"]["rev"]
    stage_runs = client.search_runs([exp.experiment_id], "tags.`dvc.exp_name` = 'tiny_ingest-few' and tags.stage = 'ingest'")
    assert len(stage_runs) == 1  # the experiment's stage, run in DVC's temporary copy, logged to the server
    assert stage_runs[0].data.tags["mlflow.parentRunId"] == few.info.run_id  # ablation -> variant -> stage
    assert "ingest.max_files" in stage_runs[0].data.params and "dedup.level" in stage_runs[0].data.params
    head = sh(["git", "rev-parse", "HEAD"], project, _env(project)).stdout.strip()
    assert stage_runs[0].data.tags["dvc.exp_baseline_rev"] == head == stage_runs[0].data.tags["git.commit"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"comparison.md", "counts.png"} <= artifacts

    again = api.run("ablation", "ablation", {"name": "tiny_ingest", "jobs": 2})
    assert again["state"]["type"] == "COMPLETED", again["state"]["message"]
    logs = api.logs(again["id"])
    assert logs.count("Stage 'ingest' is cached") == 2 and "Running stage 'ingest'" not in logs, logs[-3000:]


def test_lifecycle_deployment_retries_a_transient_failure_and_publishes_each_stages_counts(ops):
    """The first attempt of the stage meets DVC's repository lock held by another process (transient: the
    task is retried); once the lock is released the retry completes and publishes the stage's counts."""
    import zc.lockfile

    api, project, _, root = ops
    lock = zc.lockfile.LockFile(str(project / ".dvc" / "tmp" / "lock"))
    try:
        run_id = api.start("lifecycle", "lifecycle", {"stages": ["ingest"]})
        api.wait_for_task_state(run_id, "AwaitingRetry")
    finally:
        lock.close()
    run = api.wait(run_id)
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"] + (root / "worker.log").read_text()[-3000:]
    (task,) = api.task_runs(run_id)
    assert task["run_count"] == 2
    artifact = api.artifacts(run_id)["ingest-metrics"]
    assert artifact["type"] == "markdown" and "| rows_in |" in artifact["data"]
    assert json.loads((project / "metrics" / "ingest.json").read_text())["rows_in"] > 0


def test_a_stage_rejecting_its_input_fails_at_once_with_its_error(ops):
    api, project, _, _ = ops
    try:
        run = api.run("lifecycle", "lifecycle", {"stages": ["ingest"],
                                                 "overrides": ["ingest.source=path", "ingest.path=/no/such/folder"]})
    finally:
        sh(["git", "checkout", "params.yaml"], project, _env(project))
    assert run["state"]["type"] == "FAILED"
    assert "/no/such/folder" in run["state"]["message"]  # the flow run's state, as the UI shows it
    (task,) = api.task_runs(run["id"])
    assert task["state"]["type"] == "FAILED" and task["run_count"] == 1  # a rejected input is not retried
    assert "stage 'ingest' failed" in task["state"]["message"]
    assert "error: input '/no/such/folder' does not exist" in task["state"]["message"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 1-layer Llama with a trained BPE tokenizer, as a Hugging Face folder (what training stages export)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tasks.tokenize.tokenizer import save_tokenizer, train_bpe

    folder = tmp_path_factory.mktemp("model")
    tok = train_bpe(["def add(a, b):\n    return a + b\n"] * 20, vocab_size=280)
    save_tokenizer(tok, folder, model_max_length=256)
    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder, tok


def test_a_trained_model_is_logged_with_its_tokenizer_and_loads_back_over_http(ops, tiny_model):
    import mlflow

    from tasks.common.tracking import MlflowTracker
    from tasks.train.export import log_model

    _, _, mlflow_uri, _ = ops
    folder, tok = tiny_model
    with MlflowTracker.start("opencoder-cookbook", "sft", uri=mlflow_uri) as tracker:
        model_uri = log_model(folder, tracker.uri, tracker.run_id)
    components = mlflow.transformers.load_model(model_uri, return_type="components")
    assert components["model"].config.hidden_size == 16
    assert components["tokenizer"]("def add")["input_ids"] == tok.encode("def add").ids
    assert mlflow.get_logged_model(model_uri.rsplit("/", 1)[-1]).source_run_id == tracker.run_id
    assert mlflow.get_run(tracker.run_id).info.status == "FINISHED"


def test_evaluate_deployment_scores_a_model_given_in_the_ui(ops, tiny_model, tmp_path):
    api, _, _, root = ops
    folder, _ = tiny_model
    run = api.run("evaluate", "evaluate", {"model": str(folder), "benchmarks": ["humaneval"], "limit": 2,
                                           "output": str(tmp_path / "eval"), "overrides": ["evaluate.max_new_tokens=8"]})
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"] + (root / "worker.log").read_text()[-3000:]
    scores = api.artifacts(run["id"])["evaluate-scores"]["data"]
    assert "| humaneval |" in scores and "/ 2 |" in scores
    assert json.loads((tmp_path / "eval.metrics.json").read_text())["humaneval"]["total"] == 2
