"""The `report` stage: one markdown report of every stage's counts, the scores and every chart, and one MLflow
summary run.

Input is the metrics folder (`metrics/<stage>.json` of every stage) and the training loss CSVs (`plots/`); output
is `reports/report.md`, next to it the loss of pretrain, anneal and SFT on one step axis (`loss.png`, `loss.csv`),
and the report embeds that and every stage's chart (`reports/<stage>/*.png`). The summary run (a child of the
lifecycle's parent run, like the stage runs) carries the whole params tree (flattened, identical keys across
runs so the MLflow UI compares pipelines and ablation variants side by side), the headline metrics of every
stage, the joined loss curve as the metric `loss` and the charts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tasks.common.config import flatten
from tasks.common.shards import MissingInputError
from tasks.common.tracking import MlflowTracker, metric_items
from tasks.report.charts import chart_files, joined_loss_curve, read_loss_csv, write_loss_chart, write_loss_csv
from tasks.stages import ORDER

DATA_STAGES = ("ingest", "recall", "clean", "dedup", "sample", "curate", "decontaminate")
TRAIN_STAGES = ("pretrain", "anneal", "sft")
PAPER_SCORES = Path(__file__).resolve().parents[1] / "evaluate" / "paper_scores.yaml"


def load_metrics(metrics_dir: Path) -> dict[str, dict]:
    """{stage: metrics} for every stage before `report` that has a metrics file."""
    if not metrics_dir.is_dir():
        raise MissingInputError(f"metrics folder '{metrics_dir}' does not exist: run the pipeline first (cookbook run)")
    found = {}
    for stage in ORDER:
        path = metrics_dir / f"{stage}.json"
        if stage != "report" and path.exists():
            found[stage] = json.loads(path.read_text())
    return found


def _teacher(curate: dict) -> str:
    teacher = (curate.get("synthetic") or {}).get("teacher")
    return f"teacher {teacher}" if teacher else "no teacher model configured"


def _n(value: Any) -> str:
    """A count with thousands separators (`-` when missing)."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _mb(n: Any) -> str:
    return f"{n / 1e6:.1f}" if isinstance(n, (int, float)) else "-"


def _top_reasons(by_reason: dict[str, int], n: int = 4) -> str:
    top = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{k} {v}" for k, v in top) or "-"


def data_table(metrics: dict[str, dict]) -> list[str]:
    lines = ["| stage | rows in | kept | dropped | conserved | top drop reasons | MB in | MB kept | seconds |",
             "|---|---:|---:|---:|:---:|---|---:|---:|---:|"]
    for stage in DATA_STAGES:
        m = metrics.get(stage)
        if not m:
            continue
        ok = m.get("rows_in") == m.get("rows_kept", 0) + m.get("rows_dropped", 0)
        lines.append(
            f"| {stage} | {_n(m.get('rows_in', '-'))} | {_n(m.get('rows_kept', '-'))} | {_n(m.get('rows_dropped', '-'))} | "
            f"{'yes' if ok else 'NO'} | {_top_reasons(m.get('dropped_by_reason', {}))} | {_mb(m.get('bytes_in'))} | "
            f"{_mb(m.get('bytes_kept'))} | {round(m['seconds'], 1) if isinstance(m.get('seconds'), (int, float)) else '-'} |"
        )
    return lines


def curation_table(metrics: dict[str, dict]) -> list[str]:
    """What curation made and what decontamination took out of each training part."""
    cur, dec, ann = metrics.get("curate"), metrics.get("decontaminate"), metrics.get("anneal")
    lines = []
    if cur:
        lines += ["| curated | rows |", "|---|---:|",
                  f"| algorithmic corpus files | {cur.get('algorithmic_files', '-')} |",
                  f"| mined pairs (doctest-validated) | {cur.get('mined_pairs', '-')} ({cur.get('mined_doctest_validated', '-')}) |",
                  f"| MBPP-train pairs (tests pass) | {cur.get('mbpp_train_pairs', '-')} |",
                  f"| annealing snippets: synthetic ({_teacher(cur)}) + mined | "
                  f"{cur.get('synthetic_docs', 0) - cur.get('mined_snippet_docs', 0)} + {cur.get('mined_snippet_docs', 0)} |"]
        lines += [f"| {name} rows (duplicates dropped) | {cur[name]['rows']} ({cur[name]['duplicates_dropped']}) |"
                  for name in ("sft_stage1", "sft_stage2") if isinstance(cur.get(name), dict)]
        lines.append("")
    if dec and isinstance(dec.get("parts"), dict):
        lines += ["| decontaminated part | rows in | kept | dropped | hits by benchmark |", "|---|---:|---:|---:|---|"]
        lines += [f"| {part} | {m['rows_in']} | {m['rows_kept']} | {m['rows_dropped']} | "
                  f"{', '.join(f'{b} {n}' for b, n in m['hits_by_benchmark'].items()) or '-'} |" for part, m in dec["parts"].items()]
        lines.append("")
    if ann and "sources_used" in ann:
        used = ", ".join(f"{s} {w:.3f}" for s, w in ann["sources_used"].items())
        skipped = ", ".join(f"{s} ({why})" for s, why in ann.get("sources_skipped", {}).items()) or "none"
        lines += [f"Annealing mix (high_quality={ann.get('high_quality')}): {used}; left out: {skipped}.", ""]
    return lines


def _scalars(m: dict) -> dict[str, Any]:
    return {k: v for k, v in m.items() if isinstance(v, (int, float, str)) and k != "stage"}


def scalar_table(metrics: dict[str, dict], stages: tuple[str, ...]) -> list[str]:
    lines = []
    for stage in stages:
        m = metrics.get(stage)
        if not m:
            continue
        lines += [f"**{stage}**", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {round(v, 5) if isinstance(v, float) else v} |" for k, v in _scalars(m).items()]
        lines.append("")
    return lines


def paper_reference(size: str) -> dict[str, dict[str, float]]:
    """{model variant: {benchmark: score}} of OpenCoder at this size, from the spec's Tables 6/7."""
    if not PAPER_SCORES.exists():
        return {}
    data = yaml.safe_load(PAPER_SCORES.read_text()) or {}
    out = {}
    for variant, table in data.items():
        if isinstance(table, dict) and size in table and isinstance(table[size], dict):
            out[variant] = table[size]
    return out


def score_table(evaluation: dict, paper: dict[str, dict[str, float]]) -> list[str]:
    variants = sorted(paper)
    head = "| benchmark | pass@1 (ours) | passed / total | " + " | ".join(f"paper {v}" for v in variants) + " |"
    lines = [head, "|---|---:|---:|" + "---:|" * len(variants)]
    for bench, m in evaluation.items():
        if not isinstance(m, dict) or "pass@1" not in m:
            continue
        refs = " | ".join(str(paper[v].get(bench, "-")) for v in variants)
        lines.append(f"| {bench} | {100 * m['pass@1']:.1f} | {m.get('passed', '-')} / {m.get('total', '-')} | {refs} |")
    return lines


def charts_section(charts: list[str]) -> list[str]:
    """Markdown images of the charts (paths relative to the report), each under its file name."""
    if not charts:
        return []
    lines = ["## Charts", ""]
    for chart in charts:
        lines += [f"**{chart}**", "", f"![{Path(chart).stem}]({chart})", ""]
    return lines


def render(metrics: dict[str, dict], paper: dict, paper_size: str, charts: list[str] = ()) -> str:
    lines = ["# OpenCoder Cookbook: lifecycle report", "",
             "## Data", "", *data_table(metrics), "",
             "## Curation and decontamination", "", *curation_table(metrics),
             "## Tokenize and training", "", *scalar_table(metrics, ("tokenize", *TRAIN_STAGES)),
             "## Evaluation", ""]
    if "evaluate" in metrics:
        lines += [*score_table(metrics["evaluate"], paper), "",
                  f"Paper columns: OpenCoder-{paper_size} (spec Tables 6/7, pass@1 in %), for orientation only: "
                  "the embedded run trains a tiny model for minutes on CPU.", ""]
    lines += charts_section(list(charts))
    missing = [s for s in ORDER if s != "report" and s not in metrics]
    if missing:
        lines += [f"Stages without metrics (not run yet): {', '.join(missing)}", ""]
    return "\n".join(lines)


def headline(metrics: dict[str, dict]) -> dict[str, float]:
    """Numbers worth comparing across runs: counts, losses, throughput and scores (no per-rule, per-language or
    per-repository breakdowns: those are in the metrics JSON)."""
    out = {}
    for stage, m in metrics.items():
        for key, value in metric_items(m).items():
            if key.startswith("dropped_by_reason") or key.count(".") > 2:
                continue
            out[f"{stage}.{key}"] = value
    return out


def loss_charts(plots_dir: Path, out_dir: Path) -> list[tuple[int, float, str]]:
    """The joined loss curve of the training stages' CSVs, written as `loss.csv` and `loss.png` in `out_dir`."""
    rows = joined_loss_curve({s: read_loss_csv(plots_dir / f"{s}.csv") for s in TRAIN_STAGES})
    if rows:
        write_loss_csv(rows, out_dir / "loss.csv")
        write_loss_chart(rows, out_dir / "loss.png")
    return rows


def log_summary(params, tracker, output: Path, metrics: dict, top: dict, curve: list, charts: list[Path]) -> None:
    """The `summary` run, a sibling of the report's stage run under the same lifecycle parent (if any)."""
    parent = tracker.client.get_run(tracker.run_id).data.tags.get("mlflow.parentRunId")
    tags = {"summary": "true", "report_run_id": tracker.run_id, "run_kind": "summary"}
    with MlflowTracker.start(params.tracking.experiment, "summary", uri=tracker.uri, tags=tags,
                             parent_run_id=parent) as summary:
        summary.log_params(flatten(params))
        summary.log_metrics(top)
        summary.log_series("loss", [(step, loss) for step, loss, _ in curve])
        summary.log_artifact(output)
        for chart in charts:
            summary.log_artifact(chart, "charts")
        summary.log_dict(metrics, "metrics.json")


def run(params, input: Path | None, output: Path, tracker) -> dict:
    metrics = load_metrics(Path(input or "metrics"))
    paper = paper_reference(params.report.paper_size)
    output.parent.mkdir(parents=True, exist_ok=True)
    curve = loss_charts(Path("plots"), output.parent)
    charts = chart_files(output.parent)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(render(metrics, paper, params.report.paper_size,
                          [c.relative_to(output.parent).as_posix() for c in charts]))
    tmp.replace(output)
    top = headline(metrics)
    if tracker.run_id:
        log_summary(params, tracker, output, metrics, top, curve, charts)
        tracker.log_artifact(output)
        for chart in charts:
            tracker.log_artifact(chart, "charts")
    return {"stages_reported": len(metrics), "headline_metrics": len(top), "charts": len(charts),
            "loss_points": len(curve)}
