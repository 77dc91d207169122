"""An ablation in MLflow: one parent run `ablation:<name>`, one child run per variant, the variant's stage runs
under it: ablation -> variant -> stages, one tree a user expands in the runs table.

The stages of a variant ran under `dvc exp run`, where each opened its MLflow run as a child of the experiment's
lifecycle run (`tasks.common.tracking.stage_run`, named after the DVC experiment). That lifecycle run becomes the
variant's run: it is moved under the ablation's parent (and renamed `<ablation>:<variant>`); a variant whose
stages were all restored from DVC's cache ran nothing, so its run is opened here. The experiment that computed
the stages the variants share (`<name>-shared`, with --jobs > 1) goes under the parent too.

Each variant run carries the variant's whole params tree flattened (the same keys in every child, so the MLflow
UI's compare view lines the variants up and highlights what differs), the headline metrics of every
stage and the seconds the variant computed (`ablation.computed_seconds`), the training loss curves as
stepped metrics, and as tags which stages ran and which DVC restored (`stages.ran`, `stages.restored`) and
its lineage: the DVC experiment name and commit, the baseline commit, and every output of the experiment's
`dvc.lock` as an MLflow dataset (its DVC hash as digest; one tag key per path would be a column per path in the
runs table). The parent carries the comparison report and its plots.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks.ablate.cache_plan import PREFIX_VARIANT
from tasks.ablate.experiments import RAN, RESTORED, VariantResult
from tasks.ablate.spec import Ablation, yaml_flow
from tasks.common.config import ConfigError, build, flatten
from tasks.common.tracking import MlflowTracker, Tracker


def flat_params(raw: dict[str, Any]) -> dict[str, Any]:
    """The full params tree of a variant, defaults included (so every variant has the same keys)."""
    from tasks.config import Params

    try:
        return flatten(build(Params, raw))
    except (ConfigError, ValueError):  # params of an older commit this code no longer reads
        return flatten(raw)


def headline(metrics: dict[str, dict]) -> dict[str, float]:
    from tasks.report.stage import headline as report_headline

    return report_headline(metrics)


def variant_tags(ablation: Ablation, result: VariantResult, baseline: str) -> dict[str, str]:
    tags = {"ablation": ablation.name, "variant": result.variant, "dvc.exp_name": result.experiment,
            "dvc.exp_rev": result.rev or "", "dvc.exp_baseline_rev": baseline,
            "mlflow.source.git.commit": result.rev or baseline,
            "overrides": ", ".join(f"{k}={yaml_flow(v)}" for k, v in ablation.variants[result.variant].items())}
    tags.update({f"stages.{what}": ",".join(s for s, w in result.stages.items() if w == what)
                 for what in (RAN, RESTORED) if result.stages})
    return tags


def output_datasets(outputs: dict[str, str]) -> list:
    """The experiment's outputs (path -> DVC hash) as MLflow dataset inputs with context `output`."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return [DatasetInput(Dataset(name=path, digest=md5[:36] or "-", source_type="dvc", source=json.dumps({"path": path})),
                         [InputTag("mlflow.data.context", "output")]) for path, md5 in sorted(outputs.items())]


def experiment_lifecycle_run(parent: MlflowTracker, experiment_name: str) -> str | None:
    """The newest lifecycle run opened by the stages of DVC experiment `experiment_name` that no ablation has
    claimed yet (None when no stage of it ran)."""
    exp_id = parent.client.get_run(parent.run_id).info.experiment_id
    found = parent.client.search_runs(
        [exp_id], f"tags.run_kind = 'lifecycle' and tags.`dvc.exp_name` = '{experiment_name}'",
        order_by=["attributes.start_time DESC"], max_results=20)
    return next((r.info.run_id for r in found if "ablation" not in r.data.tags), None)


def adopt(parent: MlflowTracker, run_id: str, name: str) -> MlflowTracker:
    """Move run `run_id` under `parent`, named `name`."""
    parent.client.set_tag(run_id, "mlflow.parentRunId", parent.run_id)
    parent.client.update_run(run_id, name=name)
    return MlflowTracker(parent.client, run_id, parent.uri)


def log_variant(run: Tracker, ablation: Ablation, result: VariantResult, baseline: str) -> None:
    run.set_tags(variant_tags(ablation, result, baseline))
    if not result.rev:
        run.set_tags({"error": (result.error or "")[-4000:]})
        return
    run.log_params(flat_params(result.params))
    run.log_metrics({**headline(result.metrics), "ablation.computed_seconds": result.ran_seconds})
    for stage, curve in result.losses.items():
        run.log_series(f"{stage}.loss", curve)
    if result.outputs and isinstance(run, MlflowTracker):
        run.client.log_inputs(run.run_id, datasets=output_datasets(result.outputs))


def log_ablation(ablation: Ablation, results: dict[str, VariantResult], files: dict[str, Path], *, uri: str,
                 experiment: str, baseline: str) -> str:
    """Log the parent run, a run per variant under it (the variant's own lifecycle run when its stages ran, with
    their stage runs), and the shared stages' lifecycle run; return the parent run id."""
    with MlflowTracker.start(experiment, f"ablation:{ablation.name}", uri=uri,
                             tags={"ablation": ablation.name, "kind": "ablation", "run_kind": "ablation",
                                   "dvc.exp_baseline_rev": baseline,
                                   "mlflow.note.content": ablation.description}) as parent:
        parent.log_params({"ablation": ablation.name, "variants": ",".join(ablation.variants),
                           **{f"base.{k}": yaml_flow(v) for k, v in ablation.base.items()}})
        shared = experiment_lifecycle_run(parent, ablation.experiment_name(PREFIX_VARIANT))
        if shared:
            adopt(parent, shared, f"{ablation.name}:shared stages").set_tags(
                {"ablation": ablation.name, "variant": PREFIX_VARIANT})
        for result in results.values():
            name = f"{ablation.name}:{result.variant}"
            own = experiment_lifecycle_run(parent, result.experiment)
            if own:
                log_variant(adopt(parent, own, name), ablation, result, baseline)
            else:
                with parent.child(name) as child:
                    log_variant(child, ablation, result, baseline)
        for path in files.values():
            parent.log_artifact(path)
        return parent.run_id
