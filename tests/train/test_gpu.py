"""The training loop on a CUDA GPU (marked `gpu`; skipped without one): bf16 training lowers the loss, the
export loads and generates on the GPU, and an interrupted fp32 run resumes to the straight run's losses.

Runs `train_loop` in this process (a one-process NCCL group, as a single Ray Train worker would), with real
DeepSpeed ZeRO-2 and the fused torch AdamW client optimizer.
"""

from __future__ import annotations

import pytest
import torch

from tasks.train.job import to_plain
from tasks.train.loop import train_loop

from .conftest import loss_rows as losses
from .conftest import micro_job as make_job

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
              pytest.mark.usefixtures("single_process_group")]


def test_bf16_training_on_gpu_lowers_loss_and_exports_a_model_that_generates_on_gpu(packed_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train_loop(to_plain(make_job(packed_dir, tmp_path, stop_after=None, precision="bf16", steps=30)))
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
    train_loop(to_plain(make_job(packed_dir, tmp_path / "straight", stop_after=None)))
    train_loop(to_plain(make_job(packed_dir, tmp_path / "resumed", stop_after=20)))
    assert max(losses(tmp_path / "resumed" / "loss.csv")) == 20
    train_loop(to_plain(make_job(packed_dir, tmp_path / "resumed", stop_after=None)))
    straight, resumed = losses(tmp_path / "straight" / "loss.csv"), losses(tmp_path / "resumed" / "loss.csv")
    diffs = [abs(straight[s] - resumed[s]) for s in range(21, 41)]
    print(f"GPU resume: max |loss diff| steps 21-40 = {max(diffs):.2e}")
    assert max(diffs) <= 1e-4, diffs


@pytest.mark.skipif(not __import__("importlib").util.find_spec("flash_attn"), reason="needs the flash-attn package")
def test_flash_attention_2_on_packed_rows_gives_the_packed_sdpa_loss():
    import numpy as np
    from transformers import LlamaForCausalLM

    from tasks.train import attention
    from tasks.train.data import causal_lm_batch
    from tasks.train.presets import ModelPreset, llama_config

    from .conftest import MICRO_PRESET

    attention.register()
    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config(ModelPreset(**MICRO_PRESET), 96, bos_token_id=1, eos_token_id=2, pad_token_id=0))
    model = model.to("cuda", torch.bfloat16)
    ids = np.random.default_rng(0).integers(5, 96, size=(4, 128))
    ids[np.random.default_rng(1).random(ids.shape) < 0.05] = 2
    batch = {k: v.to("cuda") if isinstance(v, torch.Tensor) else v for k, v in causal_lm_batch(ids, attention="document", eos_id=2).items()}
    losses = {}
    for impl in (attention.PACKED_SDPA, attention.FLASH_ATTENTION_2):
        model.config._attn_implementation = impl
        losses[impl] = float(model(**batch).loss)
    print(f"packed rows in bf16: {losses}")
    assert abs(losses[attention.PACKED_SDPA] - losses[attention.FLASH_ATTENTION_2]) <= 2e-2, losses
