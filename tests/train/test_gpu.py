"""The training loop on a CUDA GPU (marked `gpu`; skipped without one): bf16 training lowers the loss, the
export loads and generates on the GPU, and an interrupted fp32 run resumes to the straight run's losses.

Runs `train_loop` in this process (a one-process NCCL group, as a single Ray Train worker would), with real
DeepSpeed ZeRO-2 and the fused torch AdamW client optimizer.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch

from tasks.train.job import DataSpec, Engine, ModelInit, Phase, ScheduleSpec, TrainJob, to_plain
from tasks.train.loop import train_loop

from .conftest import MICRO_PRESET

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module", autouse=True)
def single_process_group():
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29534"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def make_job(data: Path, root: Path, *, precision: str, steps: int, stop_after: int | None = None) -> TrainJob:
    phase = Phase(name="pretrain", model=ModelInit(preset=MICRO_PRESET),
                  data=DataSpec(kind="packed", sources={str(data): 1.0}),
                  schedule=ScheduleSpec(kind="wsd", peak_lr=3e-3, warmup_steps=5, total_steps=steps),
                  global_batch_size=4, micro_batch_size=2, checkpoint_dir=str(root / "ckpt"), export_dir=str(root / "model"))
    engine = Engine(zero_stage=2, precision=precision, weight_decay=0.1, adam_beta1=0.9, adam_beta2=0.95, adam_eps=1e-8,
                    gradient_clipping=1.0, gradient_checkpointing=False, num_threads=1, peak_tflops=None)
    return TrainJob(stage="pretrain", tokenizer_dir=str(data / "tokenizer"), phases=(phase,), engine=engine, seed=0,
                    log_every=10, checkpoint_every=10, stop_after_steps=stop_after, plot_csv=str(root / "loss.csv"))


def losses(csv_path: Path) -> dict[int, float]:
    with open(csv_path) as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}


def test_bf16_training_on_gpu_lowers_loss_and_exports_a_model_that_generates_on_gpu(packed_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train_loop(to_plain(make_job(packed_dir, tmp_path, precision="bf16", steps=30)))
    curve = losses(tmp_path / "loss.csv")
    assert sorted(curve) == list(range(1, 31))
    first, last = sum(curve[s] for s in (1, 2, 3)) / 3, sum(curve[s] for s in (28, 29, 30)) / 3
    assert last < first - 0.3, curve
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model").to("cuda")
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    ids = tok("def add(a, b):", return_tensors="pt").input_ids.to("cuda")
    out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert out.device.type == "cuda" and out.shape[1] > ids.shape[1]


def test_interrupted_fp32_run_on_gpu_resumes_to_the_straight_losses(packed_dir, tmp_path):
    train_loop(to_plain(make_job(packed_dir, tmp_path / "straight", precision="fp32", steps=40)))
    train_loop(to_plain(make_job(packed_dir, tmp_path / "resumed", precision="fp32", steps=40, stop_after=20)))
    assert max(losses(tmp_path / "resumed" / "loss.csv")) == 20
    train_loop(to_plain(make_job(packed_dir, tmp_path / "resumed", precision="fp32", steps=40)))
    straight, resumed = losses(tmp_path / "straight" / "loss.csv"), losses(tmp_path / "resumed" / "loss.csv")
    diffs = [abs(straight[s] - resumed[s]) for s in range(21, 41)]
    print(f"GPU resume: max |loss diff| steps 21-40 = {max(diffs):.2e}")
    assert max(diffs) <= 1e-4, diffs
