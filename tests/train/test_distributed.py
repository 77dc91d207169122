"""Multi-process correctness on CPU: 2 gloo processes (ZeRO-2 and ZeRO-3: model partitioned at construction by
zero.Init) give the loss curve of 1 process with the same global batch (40 steps); and an elastic restart on Ray Train (one
of two workers killed mid-run) finishes with the uninterrupted curve from the restore step on.

Real processes, real DeepSpeed, real Ray Train; the micro preset with document attention (packed rows).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tasks.train.job import DataSpec, Engine, ModelInit, Phase, ScheduleSpec, TrainJob
from tasks.train.local_launch import start_ranks, wait_all

from .conftest import MICRO_PRESET, loss_rows

STEPS = 40


def job_for(data: Path, root: Path, *, zero_stage: int, checkpoint_every: int = 10**6) -> TrainJob:
    phase = Phase(name="pretrain", model=ModelInit(preset=MICRO_PRESET),
                  data=DataSpec(kind="packed", sources={str(data): 1.0}, attention="document"),
                  schedule=ScheduleSpec(kind="wsd", peak_lr=3e-3, warmup_steps=5, total_steps=STEPS),
                  global_batch_size=8, micro_batch_size=2, checkpoint_dir=str(root / "ckpt"), export_dir=str(root / "model"))
    engine = Engine(zero_stage=zero_stage, precision="fp32", weight_decay=0.1, adam_beta1=0.9, adam_beta2=0.95,
                    adam_eps=1e-8, gradient_clipping=1.0, gradient_checkpointing=False, num_threads=1, peak_tflops=None)
    return TrainJob(stage="pretrain", tokenizer_dir=str(data / "tokenizer"), phases=(phase,), engine=engine, seed=0,
                    log_every=10, checkpoint_every=checkpoint_every, keep_checkpoints=None, plot_csv=str(root / "loss.csv"))


@pytest.fixture(scope="module")
def curves(packed_dir, tmp_path_factory) -> dict[str, dict[int, float]]:
    """Loss curves of 1 process (ZeRO-2) and 2 processes (ZeRO-2, ZeRO-3), run side by side."""
    root = tmp_path_factory.mktemp("dist")
    runs = {"1p_zero2": (1, 2), "2p_zero2": (2, 2), "2p_zero3": (2, 3)}
    procs = {}
    for name, (world, zero) in runs.items():
        (root / name).mkdir()
        procs[name] = start_ranks(job_for(packed_dir, root / name, zero_stage=zero), world, root / f"{name}.json",
                                  log_dir=root / name)
    for name, ps in procs.items():
        codes = wait_all(ps, timeout=900)
        assert codes == [0] * len(ps), (name, codes, (root / name / "rank0.log").read_text()[-3000:])
    return {name: loss_rows(root / name / "loss.csv") for name in runs}


@pytest.mark.parametrize("run", ["2p_zero2", "2p_zero3"])
def test_two_processes_give_the_one_process_loss_curve(curves, run):
    one, two = curves["1p_zero2"], curves[run]
    assert sorted(two) == sorted(one) == list(range(1, STEPS + 1))
    diffs = [abs(one[s] - two[s]) for s in one]
    assert max(diffs) <= 1e-3, diffs
    assert one[STEPS] < one[1] - 0.5  # it trains


def worker_pids() -> list[int]:
    """Process ids of the live Ray Train worker actors of this test's own Ray instance (descendants of this
    process; Ray titles an actor's process `ray::<Class>...`): never another run's workers on the machine."""
    import psutil

    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if " ".join(proc.cmdline()).startswith("ray::RayTrainWorker"):
                pids.append(proc.pid)
        except psutil.Error:
            continue
    return sorted(pids)


def test_a_killed_worker_restarts_from_the_latest_checkpoint_and_continues_the_curve(packed_dir, tmp_path, curves):
    import ray

    from tasks.train.launcher import launch

    job = replace(job_for(packed_dir, tmp_path, zero_stage=2, checkpoint_every=5), log_every=1)
    errors = []
    run = threading.Thread(target=lambda: _fit(launch, job, tmp_path, errors), daemon=True)
    run.start()
    killed, pids = None, []
    deadline = time.monotonic() + 900
    while run.is_alive() and time.monotonic() < deadline and killed is None:
        pids = pids if len(pids) == 2 else worker_pids()
        if len(pids) == 2 and (tmp_path / "ckpt" / "latest").exists():
            os.kill(pids[1], signal.SIGKILL)  # one of the two workers, mid-run (after its first checkpoint)
            time.sleep(0.5)
            killed = max(loss_rows(tmp_path / "loss.csv"))
        time.sleep(0.02)
    run.join(timeout=max(1.0, deadline - time.monotonic()))
    ray.shutdown()
    assert not errors, errors
    assert killed is not None and killed < STEPS, "the worker was not killed mid-run"
    resumed = loss_rows(tmp_path / "loss.csv")
    reference = curves["2p_zero2"]
    assert sorted(resumed) == list(range(1, STEPS + 1))
    assert max(abs(resumed[s] - reference[s]) for s in range(1, STEPS + 1)) <= 1e-5
    resumed_from = json.loads((tmp_path / "ckpt" / "summary.json").read_text())["resumed_from"]
    assert resumed_from is not None and resumed_from % 5 == 0 and resumed_from < STEPS, resumed_from


def _fit(launch, job, root, errors):
    try:
        launch(job, num_workers=2, use_gpu=False, cpus_per_worker=1, storage_path=root / "ray", max_failures=2)
    except Exception as error:  # reported by the test
        errors.append(repr(error))
