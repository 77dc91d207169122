"""An ablation in MLflow is one tree: ablation -> variant -> stages (real MLflow, SQLite).

The stages of a variant ran under `dvc exp run` (here: `stage_run` with DVC's environment variables), each a child
of the experiment's lifecycle run; `log_ablation` then moves that lifecycle run under the ablation's parent as the
variant's run. A variant that ran nothing (every stage restored) gets a run of its own; the `-shared` experiment's
lifecycle goes under the parent too. No run has a tag key per output path.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from mlflow.tracking import MlflowClient

from tasks.ablate.experiments import VariantResult
from tasks.ablate.spec import Ablation
from tasks.ablate.track import log_ablation


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for var in ("COOKBOOK_LIFECYCLE_RUN_ID", "DVC_ROOT", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(var, raising=False)
    return uri


def _params():
    from tasks.config import Params

    params = Params()
    return replace(params, tracking=replace(params.tracking, experiment="abl"))


def _run_stages_as_dvc_experiment(monkeypatch, experiment: str, stages: list[str]) -> None:
    """What `dvc exp run` does for the stages of one experiment: each stage a process with DVC's variables."""
    import tasks.common.tracking as tracking
    from tasks.common.tracking import stage_run

    monkeypatch.setenv("DVC_EXP_NAME", experiment)
    monkeypatch.setattr(tracking, "dvc_process_key", lambda: f"dvc-exp-run-{experiment}")  # one DVC process
    for stage in stages:
        monkeypatch.setenv("DVC_STAGE", stage)
        with stage_run(_params(), stage, []):
            pass
    for var in ("DVC_EXP_NAME", "DVC_STAGE"):
        monkeypatch.delenv(var)


def test_ablation_variant_stages_form_one_tree(store, monkeypatch, tmp_path):
    ablation = Ablation("toy", "which level", {"a": {"dedup.level": "file"}, "b": {"dedup.level": "repo"}})
    _run_stages_as_dvc_experiment(monkeypatch, "toy-shared", ["ingest"])
    _run_stages_as_dvc_experiment(monkeypatch, "toy-a", ["clean", "dedup"])
    results = {
        "a": VariantResult("a", "toy-a", rev="a" * 40, stages={"ingest": "restored", "clean": "ran", "dedup": "ran"},
                           outputs={"data/dedup": "0123456789abcdef0123456789abcdef.dir"}, seconds={"clean": 2.0}),
        "b": VariantResult("b", "toy-b", rev="b" * 40, stages={"ingest": "restored", "clean": "restored"}),
    }
    report = tmp_path / "comparison.md"
    report.write_text("# toy\n")
    parent_id = log_ablation(ablation, results, {"comparison": report}, uri=store, experiment="abl", baseline="c" * 40)

    client = MlflowClient(store)
    exp = client.get_experiment_by_name("abl").experiment_id
    runs = client.search_runs([exp])
    by_id = {r.info.run_id: r for r in runs}
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_name for r in top] == ["ablation:toy"] and top[0].info.run_id == parent_id

    def children(run_id: str) -> dict[str, str]:
        return {r.info.run_name: r.info.run_id for r in runs if r.data.tags.get("mlflow.parentRunId") == run_id}

    variants = children(parent_id)
    assert set(variants) == {"toy:a", "toy:b", "toy:shared stages"}
    assert set(children(variants["toy:a"])) == {"clean", "dedup"}  # the variant's own stage runs
    assert set(children(variants["toy:shared stages"])) == {"ingest"}
    assert children(variants["toy:b"]) == {}  # every stage restored: nothing ran
    a = by_id[variants["toy:a"]]
    assert a.data.tags["dvc.exp_name"] == "toy-a" and a.data.tags["variant"] == "a"
    assert a.data.tags["stages.ran"] == "clean,dedup" and a.data.params["dedup.level"]
    ((output,),) = [[d for d in a.inputs.dataset_inputs]]
    assert output.dataset.name == "data/dedup" and output.dataset.digest == "0123456789abcdef0123456789abcdef.dir"
    assert {t.key: t.value for t in output.tags}["mlflow.data.context"] == "output"
    assert not [k for r in runs for k in r.data.tags if k.startswith(("output.", "input."))]


def test_a_second_ablation_does_not_take_the_first_ones_variant_runs(store, monkeypatch, tmp_path):
    ablation = Ablation("toy", "again", {"a": {"dedup.level": "file"}})
    result = {"a": VariantResult("a", "toy-a", rev="a" * 40, stages={"clean": "ran"})}
    _run_stages_as_dvc_experiment(monkeypatch, "toy-a", ["clean"])
    first = log_ablation(ablation, result, {}, uri=store, experiment="abl", baseline="c" * 40)
    result = {"a": VariantResult("a", "toy-a", rev="d" * 40, stages={"clean": "restored"})}  # re-run: all cached
    second = log_ablation(ablation, result, {}, uri=store, experiment="abl", baseline="c" * 40)
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("abl").experiment_id])
    under = {p: [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p] for p in (first, second)}
    assert [r.info.run_name for r in under[first]] == ["toy:a"] and [r.info.run_name for r in under[second]] == ["toy:a"]
    assert under[first][0].info.run_id != under[second][0].info.run_id
