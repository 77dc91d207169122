"""The comparison of an ablation's variants: one markdown table and three PNG plots.

    reports/ablations/<name>/comparison.md   what each variant changed, which stages it ran and which DVC
                                             restored (with their seconds), rows kept per data stage,
                                             final training losses, eval scores (pass@1)
    reports/ablations/<name>/counts.png      rows kept per data stage, one bar per variant
    reports/ablations/<name>/loss.png        training loss curves per training stage
    reports/ablations/<name>/scores.png      pass@1 per benchmark
    reports/ablations/<name>/results.json    all of it, machine-readable

Pure functions over `VariantResult`s (from `dvc exp show`); stages are taken in `tasks.stages.ORDER`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tasks.ablate.experiments import RAN, RESTORED, VariantResult
from tasks.ablate.spec import Ablation, yaml_flow
from tasks.stages import ORDER

LINE_STYLES = ("-", "--", ":", "-.")


def data_counts(metrics: dict[str, dict]) -> dict[str, int]:
    """{stage: rows kept} of the stages that keep/drop rows, in pipeline order."""
    return {s: metrics[s]["rows_kept"] for s in ORDER if isinstance(metrics.get(s, {}).get("rows_kept"), int)}


def final_losses(metrics: dict[str, dict]) -> dict[str, float]:
    return {s: metrics[s]["final_loss"] for s in ORDER if isinstance(metrics.get(s, {}).get("final_loss"), (int, float))}


def scores(metrics: dict[str, dict]) -> dict[str, float]:
    """{benchmark: pass@1} of the evaluate stage."""
    evaluation = metrics.get("evaluate", {})
    return {b: m["pass@1"] for b, m in evaluation.items() if isinstance(m, dict) and isinstance(m.get("pass@1"), (int, float))}


def _union(dicts: list[dict]) -> list[str]:
    keys: list[str] = []
    for d in dicts:
        keys += [k for k in d if k not in keys]
    return keys


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def stage_work(result: VariantResult) -> list[str]:
    """One row of the "Stages ran / restored" table: ran stages with their seconds, restored stages with the
    seconds their cached run took (the time saved), and the variant's computed seconds."""
    def listed(kind: str) -> str:
        names = [s for s, what in result.stages.items() if what == kind]
        return ", ".join(f"{s} ({result.seconds[s]:.1f}s)" if s in result.seconds else s for s in names) or "-"

    return [result.variant, listed(RAN), listed(RESTORED), f"{result.ran_seconds:.1f}"]


def render(ablation: Ablation, results: dict[str, VariantResult], plots: dict[str, str],
           shared: list[str] | tuple[str, ...] = ()) -> str:
    """The comparison markdown; `shared`: stages computed once before the variants (experiment
    `<ablation>-shared`, with --jobs > 1)."""
    ok = [r for r in results.values() if r.rev]
    lines = [f"# Ablation `{ablation.name}`", "", ablation.description, ""]
    varied = _union([ablation.variants[r.variant] for r in results.values()])
    lines += ["## Variants", ""]
    lines += table(["variant", "DVC experiment", "commit", *varied],
                   [[r.variant, r.experiment, (r.rev or "FAILED")[:10], *[yaml_flow(ablation.variants[r.variant].get(k)) for k in varied]]
                    for r in results.values()])
    if any(r.stages for r in ok):
        lines += ["", "## Stages ran / restored from DVC's cache", ""]
        lines += table(["variant", "ran (seconds)", "restored (seconds of the cached run)", "computed seconds"],
                       [stage_work(r) for r in ok])
        if shared:
            lines += ["", f"Computed once before the variants, as the experiment `{ablation.name}-shared` (removed "
                          f"afterwards, its outputs cached): {', '.join(shared)}."]
    sections = [("Rows kept per data stage", data_counts), ("Final training loss", final_losses),
                ("Evaluation (pass@1)", scores)]
    for title, fn in sections:
        per_variant = {r.variant: fn(r.metrics) for r in ok}
        columns = _union(list(per_variant.values()))
        if columns:
            lines += ["", f"## {title}", ""]
            lines += table(["variant", *columns], [[v, *[vals.get(c) for c in columns]] for v, vals in per_variant.items()])
    failed = [r for r in results.values() if not r.rev]
    if failed:
        lines += ["", "## Failed variants", ""]
        for r in failed:
            lines += [f"### {r.variant}", "", "```", r.error or "", "```", ""]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({Path(path).name})" for name, path in plots.items()]
    lines += ["", f"Compare in the terminal with `dvc exp show`, in MLflow under the run `ablation:{ablation.name}`."]
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def grouped_bars(values: dict[str, dict[str, float]], path: Path, title: str, ylabel: str) -> Path | None:
    """One group per key (stage or benchmark), one bar per variant."""
    groups = _union(list(values.values()))
    if not groups:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) * max(1, len(values)) / 2), 4))
    width = 0.8 / max(1, len(values))
    for i, (variant, vals) in enumerate(values.items()):
        xs = [g + i * width for g in range(len(groups))]
        ax.bar(xs, [vals.get(g, 0) for g in groups], width, label=variant)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, rotation=20)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loss_curves(results: dict[str, VariantResult], path: Path, title: str) -> Path | None:
    stages = [s for s in ORDER if any(r.losses.get(s) for r in results.values())]
    if not stages:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(stages), figsize=(4.5 * len(stages), 3.6), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        for i, r in enumerate(results.values()):
            if r.losses.get(stage):  # markers and line styles keep identical curves (shared stages) visible
                steps, losses = zip(*r.losses[stage])
                ax.plot(steps, losses, label=r.variant, marker="o", markersize=3, linestyle=LINE_STYLES[i % len(LINE_STYLES)])
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(ablation: Ablation, results: dict[str, VariantResult], folder: str | Path,
                 shared: list[str] | tuple[str, ...] = ()) -> dict[str, Path]:
    """Write comparison.md, the PNGs and results.json into `folder`; return {kind: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ok = {v: r for v, r in results.items() if r.rev}
    plots = {
        "counts": grouped_bars({v: data_counts(r.metrics) for v, r in ok.items()}, folder / "counts.png",
                               f"{ablation.name}: rows kept per data stage", "rows kept"),
        "loss": loss_curves(ok, folder / "loss.png", f"{ablation.name}: training loss"),
        "scores": grouped_bars({v: scores(r.metrics) for v, r in ok.items()}, folder / "scores.png",
                               f"{ablation.name}: evaluation", "pass@1"),
    }
    plots = {k: p for k, p in plots.items() if p is not None}
    written = {"comparison": folder / "comparison.md", "results": folder / "results.json", **plots}
    written["comparison"].write_text(render(ablation, results, {k: str(p) for k, p in plots.items()}, shared))
    written["results"].write_text(json.dumps({"ablation": asdict(ablation), "variants": {v: asdict(r) for v, r in results.items()}},
                                             indent=2, default=str))
    return written
