"""`cookbook ablate <name>`: every variant of `ablations/<name>.yaml` as a DVC experiment, then one comparison.

    cookbook ablate dedup_level                 # queue, run (1 at a time), compare
    cookbook ablate sft_strategy --jobs 2       # 2 experiments at a time
    cookbook ablate star_filter --set pretrain.steps=50   # an override on top of every variant
    cookbook ablate sft_strategy --dry-run      # per variant: the stages that will run / come from cache
    cookbook ablate --list

Steps: validate every variant's params; check the working tree is committed (experiments run from a
commit); replace the ablation's earlier experiments; plan which stages each variant runs and which DVC
restores (`cache_plan`); with --jobs > 1, compute the stages every variant shares once, as the experiment
`<name>-shared` (removed afterwards, its outputs stay cached); queue one `dvc exp run` per variant, with
`dvc.lock` pruned of entries this machine's cache lacks (so DVC uses its run-cache); run the queue; read each
experiment's params, metrics, loss curves, output hashes and ran/restored stages from `dvc exp show`, git and
its log; write reports/ablations/<name>/ (comparison.md, counts.png, loss.png, scores.png, results.json) and
log the MLflow parent run `ablation:<name>` with one child run per variant. A variant recomputes only the
stages its overrides reach; re-running an unchanged ablation restores every stage from DVC's run-cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tasks.ablate import cache_plan, compare, experiments, track
from tasks.ablate.experiments import AblationError, VariantResult
from tasks.ablate.spec import Ablation, load_ablation

log = logging.getLogger("cookbook.ablate")
REPORTS = Path("reports") / "ablations"


@dataclass
class AblationRun:
    ablation: Ablation
    results: dict[str, VariantResult]
    files: dict[str, Path]
    mlflow_run_id: str | None
    seconds: float

    @property
    def failed(self) -> list[str]:
        return [v for v, r in self.results.items() if not r.rev]


def plan(name: str, project_dir: str | Path = ".", *, jobs: int = 1,
         overrides: list[str] | tuple[str, ...] = ()) -> cache_plan.AblationPlan:
    """What `run_ablation` would run and restore, per variant (nothing is run or queued)."""
    project = Path(project_dir).resolve()
    ablation = load_ablation(name, project, overrides)
    return cache_plan.plan_ablation(project, ablation.variants, ablation.stages, jobs)


def compute_shared_prefix(ablation: Ablation, planned: cache_plan.AblationPlan, project: Path, env: dict[str, str],
                          emit: Callable[[str], None]) -> None:
    """Run the stages every variant shares once, as the experiment `<name>-shared`, so that parallel variants
    restore them instead of each computing them; the experiment is removed afterwards (its outputs and
    run-cache entries stay)."""
    name = ablation.experiment_name(cache_plan.PREFIX_VARIANT)
    targets = planned.prefix_targets
    emit(f"ablation {ablation.name}: computing the shared stages once ({', '.join(planned.prefix_run.ran)}) as {name}")
    first = next(iter(ablation.variants.values()))
    with cache_plan.queued_lock(project, planned.stale_lock):
        experiments.queue_experiment(name, first, targets, project, env)
    experiments.run_queue(project, env, 1, emit)
    experiments.remove_experiments([name], project, env)


def run_ablation(name: str, project_dir: str | Path = ".", *, jobs: int = 1, overrides: list[str] | tuple[str, ...] = (),
                 allow_dirty: bool = False, track_mlflow: bool = True,
                 on_line: Callable[[str], None] | None = None) -> AblationRun:
    """Run ablation `name` in the DVC project at `project_dir`; raise AblationError if a variant failed
    (after writing the comparison of the others)."""
    from tasks.config import load_params

    started = time.monotonic()
    project = Path(project_dir).resolve()
    emit = on_line or log.info
    ablation = load_ablation(name, project, overrides)
    if jobs < 1:
        raise AblationError(f"--jobs must be at least 1 (got {jobs})")
    if not allow_dirty:
        experiments.require_committed(project)
    env = experiments.experiment_env(project)
    baseline = experiments.head_rev(project)
    names = [ablation.experiment_name(v) for v in ablation.variants]
    emit(f"ablation {name}: {len(names)} variants ({', '.join(ablation.variants)}) on {baseline[:10]}, {jobs} at a time")
    experiments.remove_previous([*names, ablation.experiment_name(cache_plan.PREFIX_VARIANT)], project, env)
    planned = cache_plan.plan_ablation(project, ablation.variants, ablation.stages, jobs)
    for line in cache_plan.format_plan(planned):
        emit(f"  plan: {line}")
    if planned.prefix_to_compute:
        compute_shared_prefix(ablation, planned, project, env, emit)
    with cache_plan.queued_lock(project, planned.stale_lock):
        experiments.queue_variants(ablation, project, env)
    output = experiments.run_queue(project, env, jobs, emit)
    results = experiments.collect(ablation, project, env, experiments.logs_by_experiment(output))
    shared = planned.prefix_run.ran if planned.prefix_to_compute else []
    files = compare.write_report(ablation, results, project / REPORTS / name, shared)
    params = load_params(project / "params.yaml")
    run_id = None
    if track_mlflow and params.tracking.enabled:
        run_id = track.log_ablation(ablation, results, files, uri=env["MLFLOW_TRACKING_URI"],
                                    experiment=params.tracking.experiment, baseline=baseline)
    run = AblationRun(ablation, results, files, run_id, round(time.monotonic() - started, 3))
    emit(f"ablation {name}: comparison in {files['comparison']} ({run.seconds:.0f}s)")
    if run.failed:
        details = "\n\n".join(f"variant '{v}' ({results[v].experiment}):\n{results[v].error}" for v in run.failed)
        raise AblationError(f"ablation {name}: {len(run.failed)} of {len(results)} variants failed "
                            f"(comparison of the rest in {files['comparison']}):\n\n{details}")
    return run
