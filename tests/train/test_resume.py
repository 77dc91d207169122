"""Exact resume: a run interrupted at step 20 and resumed matches a straight run (steps 21-40).

Runs `train_loop` in this process (a one-process gloo group, as a single Ray Train worker would),
with real DeepSpeed (ZeRO-2, torch AdamW client optimizer) on CPU.
"""

from __future__ import annotations

import json

import pytest

from tasks.train.job import to_plain
from tasks.train.loop import train_loop

from .conftest import loss_rows as losses
from .conftest import micro_job as make_job

pytestmark = pytest.mark.usefixtures("single_process_group")


def test_interrupted_run_resumes_exactly(packed_dir, tmp_path):
    train_loop(to_plain(make_job(packed_dir, tmp_path / "straight", stop_after=None)))
    train_loop(to_plain(make_job(packed_dir, tmp_path / "resumed", stop_after=20)))
    assert not (tmp_path / "resumed" / "model").exists()
    assert max(losses(tmp_path / "resumed" / "loss.csv")) == 20
    train_loop(to_plain(make_job(packed_dir, tmp_path / "resumed", stop_after=None)))
    straight, resumed = losses(tmp_path / "straight" / "loss.csv"), losses(tmp_path / "resumed" / "loss.csv")
    assert sorted(resumed) == list(range(1, 41))
    diffs = [abs(straight[s] - resumed[s]) for s in range(21, 41)]
    assert max(diffs) <= 1e-4, diffs
    assert straight[40] < straight[1]
    summary = json.loads((tmp_path / "resumed" / "ckpt" / "summary.json").read_text())
    assert summary["resumed_from"] == 20 and summary["steps_done"] == 40
    assert summary["first_loss"] == pytest.approx(straight[1], abs=1e-5)  # the phase's first loss, kept across resumes
    assert (tmp_path / "resumed" / "model" / "model.safetensors").exists()


def test_rerun_of_a_finished_phase_keeps_its_curve_and_throughput_after_dvc_deleted_the_plot(packed_dir, tmp_path):
    job = make_job(packed_dir, tmp_path, stop_after=None)
    train_loop(to_plain(job))
    before = (tmp_path / "loss.csv").read_text()
    summary = json.loads((tmp_path / "ckpt" / "summary.json").read_text())
    (tmp_path / "loss.csv").unlink()  # `dvc repro` removes a stage's outputs before running it again
    train_loop(to_plain(job))
    assert (tmp_path / "loss.csv").read_text() == before and len(losses(tmp_path / "loss.csv")) == 40
    again = json.loads((tmp_path / "ckpt" / "summary.json").read_text())
    assert again["resumed_from"] == 40 and again["first_loss"] == summary["first_loss"]
    assert again["tokens_per_s"] == summary["tokens_per_s"] > 0
