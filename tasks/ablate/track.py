"""An ablation in MLflow: one parent run `ablation:<name>`, one child run per variant.

Each child carries the variant's whole params tree flattened (the same keys in every child, so the MLflow
UI's compare view lines the variants up and highlights what differs), the headline metrics of every
stage and the seconds the variant computed (`ablation.computed_seconds`), the training loss curves as
stepped metrics, and as tags which stages ran and which DVC restored (`stages.ran`, `stages.restored`) and
its lineage: the DVC experiment name and commit, the baseline commit, and the DVC hash of every output in
the experiment's `dvc.lock`. The parent carries the comparison report and its plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.ablate.experiments import RAN, RESTORED, VariantResult
from tasks.ablate.spec import Ablation, yaml_flow
from tasks.common.config import ConfigError, build, flatten
from tasks.common.tracking import MlflowTracker


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
    tags.update({f"output.{path}": md5 for path, md5 in result.outputs.items()})
    return tags


def log_ablation(ablation: Ablation, results: dict[str, VariantResult], files: dict[str, Path], *, uri: str,
                 experiment: str, baseline: str) -> str:
    """Log the parent and child runs; return the parent run id."""
    with MlflowTracker.start(experiment, f"ablation:{ablation.name}", uri=uri,
                             tags={"ablation": ablation.name, "kind": "ablation", "dvc.exp_baseline_rev": baseline,
                                   "mlflow.note.content": ablation.description}) as parent:
        parent.log_params({"ablation": ablation.name, "variants": ",".join(ablation.variants),
                           **{f"base.{k}": yaml_flow(v) for k, v in ablation.base.items()}})
        for result in results.values():
            with parent.child(f"{ablation.name}:{result.variant}") as child:
                child.set_tags(variant_tags(ablation, result, baseline))
                if not result.rev:
                    child.set_tags({"error": (result.error or "")[-4000:]})
                    continue
                child.log_params(flat_params(result.params))
                child.log_metrics({**headline(result.metrics), "ablation.computed_seconds": result.ran_seconds})
                for stage, curve in result.losses.items():
                    child.log_series(f"{stage}.loss", curve)
        for path in files.values():
            parent.log_artifact(path)
        return parent.run_id
