"""Ablation variants share work through DVC's cache: real DVC experiments on a three-stage toy pipeline.

The project copy has this repository's params.yaml and ablation code but a toy dvc.yaml (ingest -> dedup -> sft,
each stage a few lines of Python whose outputs differ on every run, as the real stages' timings do), and the
situation of a fresh machine: a committed dvc.lock whose outputs are not in the local cache.
"""

from pathlib import Path

import pytest

from tasks.ablate.cache_plan import (AblationPlan, StageNode, VariantPlan, format_plan, pipeline, pruned_lock,
                                     reached, read_lock, shared_prefix, sinks, stale_lock_stages)
from tasks.ablate.experiments import logs_by_experiment, stage_outcomes
from tasks.ablate.runner import plan, run_ablation
from tests.ops.servers import BIN, project_copy, sh

TOY_STAGE = '''import json, os, sys, uuid, yaml
name, src, out = sys.argv[1:]
section = yaml.safe_load(open("params.yaml"))[name]
text = open(os.path.join(src, "rows.txt")).read() if src != "-" else ""
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "rows.txt"), "w").write(text + f"{name} {section.get('variant', '')} {uuid.uuid4()}\\n")
os.makedirs("metrics", exist_ok=True)
json.dump({"rows_kept": text.count("\\n") + 1, "seconds": 0.5}, open(f"metrics/{name}.json", "w"))
'''


def _stage(name, src, params):
    deps = ["toy_stage.py"] + ([src] if src != "-" else [])
    return (f"  {name}:\n    cmd: python toy_stage.py {name} {src} data/{name}\n    deps: {deps}\n"
            f"    params: {params}\n    outs: [data/{name}]\n    metrics: [{{metrics/{name}.json: {{cache: false}}}}]\n")


TOY_DVC = "stages:\n" + _stage("ingest", "-", ["ingest"]) + _stage("dedup", "data/ingest", ["dedup"]) + \
    _stage("sft", "data/dedup", ["sft"])
TOY_ABLATION = ("description: SFT variants on the toy pipeline.\nvariants:\n  s1: {sft.variant: stage1-only}\n"
                "  mix: {sft.variant: mix}\n")


def fresh_machine_copy(dest: Path) -> tuple[Path, dict]:
    """The toy project with a dvc.lock committed from "another machine": its outputs are not in the cache."""
    project, env = project_copy(dest, files={"dvc.yaml": TOY_DVC, "toy_stage.py": TOY_STAGE,
                                             "ablations/toy.yaml": TOY_ABLATION})
    (project / "dvc.lock").unlink()
    sh([str(BIN / "dvc"), "repro", "-q"], project, env)
    sh(["git", "add", "dvc.lock", "metrics"], project, env)
    sh(["git", "commit", "-qm", "lock"], project, env)
    sh(["rm", "-rf", ".dvc/cache", "data"], project, env)
    return project, env


@pytest.fixture
def toy(tmp_path, monkeypatch):
    project, env = fresh_machine_copy(tmp_path / "toy")
    for key in ("PATH", "PYTHONPATH", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.chdir(project)
    yield project
    sh([str(BIN / "dvc"), "queue", "stop"], project, env, check=False)  # queue workers DVC left idling


def _ran(results):
    return {v: [s for s, what in r.stages.items() if what == "ran"] for v, r in results.items()}


def test_variants_share_stages_through_dvc_cache_sequentially_on_rerun_and_in_parallel(toy):
    dry = plan("toy", toy)
    assert set(dry.stale_lock) == {"ingest", "dedup", "sft"} and dry.prefix == ["ingest", "dedup"]
    assert {v: p.ran for v, p in dry.variants.items()} == {"s1": ["ingest", "dedup", "sft"], "mix": ["sft"]}

    first = run_ablation("toy", toy, track_mlflow=False)
    assert _ran(first.results) == {v: p.ran for v, p in dry.variants.items()}  # the dry run predicted DVC
    assert first.results["mix"].stages == {"ingest": "restored", "dedup": "restored", "sft": "ran"}
    assert len({r.outputs["data/dedup"] for r in first.results.values()}) == 1  # one dedup output, shared
    assert (toy / "dvc.lock").read_text() == sh(["git", "show", "HEAD:dvc.lock"], toy, {}).stdout  # put back
    text = (toy / "reports/ablations/toy/comparison.md").read_text()
    assert "| mix | sft (0.5s) | ingest (0.5s), dedup (0.5s) | 0.5 |" in text

    assert all(not p.ran for p in plan("toy", toy).variants.values())
    again = run_ablation("toy", toy, track_mlflow=False)
    assert _ran(again.results) == {"s1": [], "mix": []}

    # in parallel, with a dedup change: the shared dedup is computed once (as toy-shared), then each variant's sft
    wider = ["dedup.seed=2"]
    dry = plan("toy", toy, jobs=2, overrides=wider)
    assert dry.prefix_targets == ["dedup"] and dry.prefix_run.ran == ["dedup"]
    assert all(p.ran == ["sft"] for p in dry.variants.values())
    parallel = run_ablation("toy", toy, jobs=2, overrides=wider, track_mlflow=False)
    assert _ran(parallel.results) == {"s1": ["sft"], "mix": ["sft"]}
    assert "as the experiment `toy-shared` (removed afterwards, its outputs cached): dedup." in \
        (toy / "reports/ablations/toy/comparison.md").read_text()
    assert len({r.outputs["data/dedup"] for r in parallel.results.values()} | {first.results["s1"].outputs["data/dedup"]}) == 2


def test_the_real_pipeline_dag_and_what_an_sft_override_reaches():
    from dvc.repo import Repo

    repo = Repo(str(Path(__file__).resolve().parents[2]))
    try:
        nodes = pipeline(repo)
        assert stale_lock_stages(repo, {}) == [] and read_lock(repo.root_dir)
    finally:
        repo.close()
    assert list(nodes).index("ingest") < list(nodes).index("dedup") < list(nodes).index("sft")
    assert reached(nodes, {"sft.variant"}) == ["sft", "evaluate", "report"]
    assert "decontaminate" in reached(nodes, {"evaluate.benchmarks"})  # a stage on one key of a section
    variants = {"a": {"sft.variant": "mix", "pretrain.steps": 3}, "b": {"sft.variant": "two-stage", "pretrain.steps": 3}}
    prefix = shared_prefix(nodes, variants)
    assert "pretrain" in prefix and "sft" not in prefix  # pretrain.steps is the same in both: shared
    assert sinks(nodes, prefix) == ["anneal"] or set(sinks(nodes, prefix)) == {"anneal"}


def test_small_pieces():
    nodes = {"a": StageNode("a", ("x",), ()), "b": StageNode("b", ("y.z",), ("a",)), "c": StageNode("c", ("w",), ("b",))}
    assert reached(nodes, {"y"}) == ["b", "c"] and reached(nodes, {"y.z.q"}) == ["b", "c"] and reached(nodes, {"v"}) == []
    lock = "schema: '2.0'\nstages:\n  a:\n    cmd: x\n  b:\n    cmd: y\n"
    assert "b:" not in pruned_lock(lock, ["b"]) and "a:" in pruned_lock(lock, ["b"])
    log = ("Reproducing experiment 'x-a'\nStage 'ingest' is cached - skipping run, checking out outputs\n"
           "Stage 'recall' didn't change, skipping\nRunning stage 'clean':\n> cookbook clean\n")
    assert stage_outcomes(log) == {"ingest": "restored", "recall": "restored", "clean": "ran"}
    output = "Following logs\n" + log + "Reproducing experiment 'x-b'\nRunning stage 'ingest':\n\nRan experiment(s): x-a, x-b\n"
    logs = logs_by_experiment(output)
    assert list(logs) == ["x-a", "x-b"] and stage_outcomes(logs["x-a"]) == stage_outcomes(log)
    assert stage_outcomes(logs["x-b"]) == {"ingest": "ran"}
    shown = format_plan(AblationPlan({"b": VariantPlan("b", {"a": "restore", "b": "run"})}, ["a"], ["a"], ["a"],
                                     VariantPlan("shared", {"a": "run"})))
    assert shown[1:] == ["shared by every variant: a", "first, once (experiment <ablation>-shared): run a; restore -",
                         "b: run b; restore a"]
