"""Exact resume: a run interrupted at step 20 and resumed matches a straight run (steps 21-40).

Runs `train_loop` in this process (a one-process gloo group, as a single Ray Train worker would),
with real DeepSpeed (ZeRO-2, torch AdamW client optimizer) on CPU.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from tasks.train.job import DataSpec, Engine, ModelInit, Phase, ScheduleSpec, TrainJob, to_plain
from tasks.train.loop import train_loop

from .conftest import MICRO_PRESET


@pytest.fixture(scope="module", autouse=True)
def single_process_group():
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29533"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def make_job(data: Path, root: Path, *, stop_after: int | None) -> TrainJob:
    phase = Phase(name="pretrain", model=ModelInit(preset=MICRO_PRESET),
                  data=DataSpec(kind="packed", sources={str(data): 1.0}),
                  schedule=ScheduleSpec(kind="wsd", peak_lr=3e-3, warmup_steps=5, total_steps=40),
                  global_batch_size=4, micro_batch_size=2, checkpoint_dir=str(root / "ckpt"), export_dir=str(root / "model"))
    engine = Engine(zero_stage=2, precision="fp32", weight_decay=0.1, adam_beta1=0.9, adam_beta2=0.95, adam_eps=1e-8,
                    gradient_clipping=1.0, gradient_checkpointing=False, num_threads=1, peak_tflops=None)
    return TrainJob(stage="pretrain", tokenizer_dir=str(data / "tokenizer"), phases=(phase,), engine=engine, seed=0,
                    log_every=10, checkpoint_every=10, stop_after_steps=stop_after, plot_csv=str(root / "loss.csv"))


def losses(csv_path: Path) -> dict[int, float]:
    with open(csv_path) as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}


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
