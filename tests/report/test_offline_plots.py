"""`dvc plots show` writes a page that needs no network: the project's template carries Vega inline."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tasks.report.offline_plots import TEMPLATE, offline_template

ROOT = Path(__file__).resolve().parents[2]


def test_template_keeps_dvcs_placeholders_but_not_its_cdn_scripts():
    page = offline_template("window.vegaEmbed = function () {};")
    assert "{plot_divs}" in page and "{refresh_tag}" in page and "{scripts}" not in page
    assert "(function () {\nwindow.vegaEmbed" in page  # the bundle's names stay out of the page's global scope


def test_dvc_plots_show_renders_the_projects_plots_without_network(tmp_path):
    dvc = str(Path(sys.executable).with_name("dvc"))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([dvc, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / TEMPLATE).parent.mkdir(parents=True)
    shutil.copy(ROOT / TEMPLATE, tmp_path / TEMPLATE)
    shutil.copy(ROOT / ".dvc" / "config", tmp_path / ".dvc" / "config")  # the project's config names the template
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "loss.csv").write_text("step,loss,stage\n1,9.0,pretrain\n2,8.0,pretrain\n3,7.5,anneal\n")
    (tmp_path / "reports" / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "dvc.yaml").write_text("plots:\n  - loss:\n      template: linear\n      x: step\n      y:\n"
                                       "        reports/loss.csv: loss\n  - reports/loss.png\n")
    proc = subprocess.run([dvc, "plots", "show", "-o", "out"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert not re.search(r"<script[^>]+src=", page) and "cdn.jsdelivr" not in page
    assert "window.vegaEmbed=" in page and "vegaEmbed('#" in page and '"loss"' in page
    assert '<img src="static/' in page and len(list((tmp_path / "out" / "static").glob("*.png"))) == 1
