"""The `evaluate` Prefect flow: score any model (an HF folder, or a served one) on the code benchmarks.

The same code as `cookbook evaluate` and the pipeline's evaluate stage, with the model, benchmarks,
backend and limit as flow parameters (editable in the Prefect UI when started from the `evaluate`
deployment). Results go to `output` (`<benchmark>.jsonl` per benchmark, `<output>.metrics.json`), to an
MLflow run, and to a markdown artifact `evaluate-scores` with pass@k per benchmark.

    prefect deployment run evaluate/evaluate -p model=models/sft -p limit=20
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact


def overrides_for(benchmarks: list[str] | None, backend: str | None, limit: int | None,
                  overrides: list[str] | None) -> list[str]:
    """The flow's parameters as `section.key=value` overrides of params.yaml."""
    out = list(overrides or [])
    if benchmarks:
        out.append(f"evaluate.benchmarks=[{','.join(benchmarks)}]")
    if backend:
        out.append(f"evaluate.backend={backend}")
    if limit is not None:
        out.append(f"evaluate.limit={limit}")
    return out


def scores_markdown(model: str, metrics: dict) -> str:
    lines = [f"# evaluate: {model}", "", "| benchmark | pass@k | passed / total |", "|---|---|---|"]
    for bench, m in metrics.items():
        if isinstance(m, dict) and "total" in m:
            ks = ", ".join(f"{k} {100 * v:.1f}" for k, v in m.items() if k.startswith("pass@"))
            lines.append(f"| {bench} | {ks} | {m.get('passed', '-')} / {m['total']} |")
    return "\n".join(lines)


@task(name="evaluate", task_run_name="evaluate", retries=1, retry_delay_seconds=10)
def evaluate_model(model: str, output: str, params_path: str, overrides: list[str]) -> dict:
    from tasks.common.stage import execute
    from tasks.config import load_params
    from tasks.stages import STAGES

    spec = STAGES["evaluate"]
    params = load_params(params_path, overrides)
    out = Path(output)
    get_run_logger().info("evaluating %s with %s", model, overrides)
    return execute("evaluate", spec.load(), params, Path(model), out, out.with_name(out.name + ".metrics.json"))


@flow(name="evaluate", log_prints=True)
def evaluate(model: str = "models/sft", benchmarks: list[str] | None = None, backend: str | None = None,
             limit: int | None = None, output: str = "reports/evaluations/latest", params_path: str = "params.yaml",
             overrides: list[str] | None = None) -> dict:
    """Evaluate `model` (an HF folder, or the model name for `backend=openai`); None = the params.yaml value."""
    metrics = evaluate_model(model, output, params_path, overrides_for(benchmarks, backend, limit, overrides))
    create_markdown_artifact(markdown=scores_markdown(model, metrics), key="evaluate-scores",
                             description=f"pass@k of {model}")
    return metrics
