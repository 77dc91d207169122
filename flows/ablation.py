"""The `ablation` Prefect flow: a named ablation (`ablations/<name>.yaml`) as DVC experiments, compared.

It wraps `tasks.ablate.runner.run_ablation` (the same as `cookbook ablate`): every variant is queued as a
`dvc exp run`, the queue runs `jobs` at a time, and the comparison (reports/ablations/<name>/ and the
MLflow run `ablation:<name>` with a child run per variant) is published as the markdown artifact
`ablation-<name>`. Parameters (ablation name, jobs, extra overrides) are editable in the Prefect UI when
the flow is started from the `ablation` deployment.

    prefect deployment run ablation/ablation -p name=sft_strategy -p jobs=2
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact


@task(name="experiments", task_run_name="experiments")
def run_experiments(name: str, project_dir: str, jobs: int, overrides: list[str], allow_dirty: bool) -> dict:
    from tasks.ablate.runner import run_ablation

    logger = get_run_logger()
    run = run_ablation(name, project_dir, jobs=jobs, overrides=overrides, allow_dirty=allow_dirty, on_line=logger.info)
    return {"comparison": str(run.files["comparison"]), "mlflow_run_id": run.mlflow_run_id, "seconds": run.seconds,
            "experiments": {v: r.rev for v, r in run.results.items()}}


@flow(name="ablation", log_prints=True)
def ablation(name: str = "sft_strategy", jobs: int = 1, overrides: list[str] | None = None, project_dir: str = ".",
             allow_dirty: bool = False) -> dict:
    """Run ablation `name` (dedup_level, ruleset, anneal_hq, star_filter, sft_strategy, web_recall, or any
    ablations/*.yaml) with `jobs` experiments at a time; `overrides` (section.key=value) apply to every variant."""
    from pathlib import Path

    result = run_experiments(name, project_dir, jobs, list(overrides or []), allow_dirty)
    folder = Path(result["comparison"]).parent
    comparison = "\n".join(  # image links are relative to the report folder: name the files instead
        f"- {line[2:line.index(']')]}: `{folder / line[line.index('(') + 1:-1]}`" if line.startswith("![") else line
        for line in Path(result["comparison"]).read_text().splitlines())
    create_markdown_artifact(markdown=comparison, key=f"ablation-{name.replace('_', '-')}",
                             description=f"comparison of the {name} variants")
    return result
