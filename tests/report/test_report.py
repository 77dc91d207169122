"""The lifecycle report: the loss of the three training stages on one step axis, every chart embedded."""

from __future__ import annotations

from pathlib import Path

from tasks.common.tracking import NullTracker
from tasks.config import Params
from tasks.report.charts import chart_files, joined_loss_curve
from tasks.report.stage import render, run


def test_training_stages_continue_each_others_steps():
    curves = {"sft": [(1, 2.0), (2, 1.5)], "pretrain": [(2, 8.0), (1, 9.0), (3, 7.0)], "anneal": [(1, 6.0)]}
    assert joined_loss_curve(curves) == [(1, 9.0, "pretrain"), (2, 8.0, "pretrain"), (3, 7.0, "pretrain"),
                                         (4, 6.0, "anneal"), (5, 2.0, "sft"), (6, 1.5, "sft")]
    assert joined_loss_curve({"anneal": [(1, 3.0)]}) == [(1, 3.0, "anneal")]


def test_report_embeds_every_chart():
    text = render({}, {}, "1.5B", ["loss.png", "clean/top_rules.png"])
    assert "![loss](loss.png)" in text and "![top_rules](clean/top_rules.png)" in text


def _png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, _ = plt.subplots(figsize=(1, 1))
    fig.savefig(path)
    plt.close(fig)


def test_report_stage_draws_the_joined_loss_and_links_the_stage_charts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "clean.json").write_text('{"stage": "clean", "rows_in": 3, "rows_kept": 2, "rows_dropped": 1}')
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "pretrain.csv").write_text("step,loss,lr\n1,9.0,0.1\n2,8.0,0.1\n")
    (tmp_path / "plots" / "anneal.csv").write_text("step,loss,lr\n1,7.5,0.1\n")
    _png(tmp_path / "reports" / "dedup" / "cluster_sizes.png")
    _png(tmp_path / "reports" / "clean" / "top_rules.png")
    _png(tmp_path / "reports" / "ablations" / "x" / "counts.png")  # an ablation's comparison is not the lifecycle's

    out = run(Params(), Path("metrics"), Path("reports/report.md"), NullTracker())

    assert out["loss_points"] == 3 and out["charts"] == 3
    assert (tmp_path / "reports" / "loss.csv").read_text().splitlines() == [
        "step,loss,stage", "1,9.0,pretrain", "2,8.0,pretrain", "3,7.5,anneal"]
    assert (tmp_path / "reports" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "reports" / "report.md").read_text()
    embedded = [line for line in report.splitlines() if line.startswith("![")]
    assert embedded == ["![top_rules](clean/top_rules.png)", "![cluster_sizes](dedup/cluster_sizes.png)",
                        "![loss](loss.png)"]
    assert [p.name for p in chart_files(tmp_path / "reports")] == ["top_rules.png", "cluster_sizes.png", "loss.png"]


def test_data_table_counts_read_with_separators_and_no_teacher_is_said_in_words():
    metrics = {"clean": {"rows_in": 6569, "rows_kept": 3618, "rows_dropped": 2951, "seconds": 127.556,
                         "dropped_by_reason": {"unknown_language": 606}},
               "curate": {"synthetic": {"teacher": None}, "synthetic_docs": 101, "mined_snippet_docs": 101}}
    text = render(metrics, {}, "1.5B")
    assert "| clean | 6,569 | 3,618 | 2,951 | yes | unknown_language 606 |" in text and "| 127.6 |" in text
    assert "teacher None" not in text and "no teacher model configured" in text
