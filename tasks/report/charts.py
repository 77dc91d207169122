"""The lifecycle report's charts: the training loss of pretrain, anneal and SFT on one step axis, and the list of
every chart the stages drew (for `reports/report.md` and the MLflow summary run).

Each training stage counts its steps from 1 (`plots/<stage>.csv`); the joined curve continues each stage's steps
after the last step of the one before, so the three phases read left to right as the model saw them.
"""

from __future__ import annotations

import csv
from pathlib import Path

TRAIN_STAGES = ("pretrain", "anneal", "sft")
COLORS = {"pretrain": "#4c72b0", "anneal": "#dd8452", "sft": "#55a868"}


def read_loss_csv(path: Path) -> list[tuple[int, float]]:
    """(step, loss) rows of a training stage's loss CSV (`step,loss,...`); none when the file is missing."""
    if not path.exists():
        return []
    with path.open() as f:
        return [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(f) if row.get("loss")]


def joined_loss_curve(curves: dict[str, list[tuple[int, float]]]) -> list[tuple[int, float, str]]:
    """(global step, loss, stage): each stage's steps shifted past the last global step of the stages before."""
    rows: list[tuple[int, float, str]] = []
    offset = 0
    for stage in TRAIN_STAGES:
        points = sorted(curves.get(stage) or [])
        rows += [(offset + step, loss, stage) for step, loss in points]
        if points:
            offset += points[-1][0]
    return rows


def write_loss_csv(rows: list[tuple[int, float, str]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "loss", "stage"])
        writer.writerows((step, round(loss, 6), stage) for step, loss, stage in rows)
    return path


def write_loss_chart(rows: list[tuple[int, float, str]], path: Path) -> Path:
    """One line per stage on the shared step axis, a dashed line where each later stage starts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for stage in TRAIN_STAGES:
        points = [(s, loss) for s, loss, st in rows if st == stage]
        if not points:
            continue
        steps, losses = zip(*points)
        ax.plot(steps, losses, label=stage, color=COLORS[stage], marker="o" if len(points) < 40 else None, markersize=3)
        if stage != TRAIN_STAGES[0] and steps[0] > 1:
            ax.axvline(steps[0] - 0.5, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("step (pretrain, then anneal, then sft)")
    ax.set_ylabel("training loss")
    ax.set_title("training loss over the lifecycle")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def chart_files(reports_dir: Path) -> list[Path]:
    """Every PNG chart of the lifecycle's stages under `reports_dir` (ablation comparisons have their own
    report), in pipeline order of their folders."""
    from tasks.stages import ORDER

    def order(path: Path) -> tuple[int, str]:
        folder = path.parent.name if path.parent != reports_dir else "report"
        return (ORDER.index(folder) if folder in ORDER else len(ORDER), path.as_posix())

    found = [p for p in reports_dir.rglob("*.png") if "ablations" not in p.relative_to(reports_dir).parts]
    return sorted(found, key=order)
