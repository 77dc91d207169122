"""Model construction that scales (`modeling.py`): the training dtype directly, no full-size allocation before
partitioning, and the same weights whatever the construction path (meta device or ZeRO-3's zero.Init)."""

from __future__ import annotations

import pytest
import torch

from tasks.train import modeling
from tasks.train.ds_config import deepspeed_config
from tasks.train.presets import PRESETS, ModelPreset, llama_config

from .conftest import MICRO_PRESET

pytestmark = pytest.mark.usefixtures("single_process_group")


def micro_config():
    return llama_config(ModelPreset(**{**MICRO_PRESET, "num_kv_heads": 1}), 300, bos_token_id=1, eos_token_id=2, pad_token_id=0)


@pytest.fixture(scope="module")
def process_group(single_process_group):
    import deepspeed

    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend="gloo")


def test_initial_values_depend_only_on_seed_and_name():
    a = modeling.initial_value("model.layers.0.mlp.up_proj.weight", torch.Size([8, 4]), torch.float32, seed=3, std=0.02)
    b = modeling.initial_value("model.layers.0.mlp.up_proj.weight", torch.Size([8, 4]), torch.float32, seed=3, std=0.02)
    c = modeling.initial_value("model.layers.1.mlp.up_proj.weight", torch.Size([8, 4]), torch.float32, seed=3, std=0.02)
    assert torch.equal(a, b) and not torch.equal(a, c) and 0.01 < float(a.std()) < 0.03
    assert torch.equal(modeling.initial_value("model.norm.weight", torch.Size([4]), torch.float32, seed=3, std=0.02), torch.ones(4))


def test_chunked_draws_give_the_fp32_values_rounded_in_bf16(monkeypatch):
    monkeypatch.setattr(modeling, "DRAW_ELEMENTS", 8)  # 2 rows of 4 per generator
    fp32 = modeling.initial_value("lm_head.weight", torch.Size([7, 4]), torch.float32, seed=0, std=0.02)
    bf16 = modeling.initial_value("lm_head.weight", torch.Size([7, 4]), torch.bfloat16, seed=0, std=0.02)
    assert torch.equal(bf16, fp32.to(torch.bfloat16)) and not torch.equal(fp32[0:2], fp32[2:4])


def test_meta_construction_gives_bf16_weights_directly_and_working_rotary_buffers(process_group):
    model = modeling.fresh_model(micro_config(), seed=0, dtype=torch.bfloat16, device=torch.device("cpu"), ds_config=None, rank=0)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not any(p.is_meta for p in model.parameters()) and model.model.rotary_emb.inv_freq.dtype == torch.float32
    reference = llama_config(ModelPreset(**{**MICRO_PRESET, "num_kv_heads": 1}), 300, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    from transformers import LlamaForCausalLM

    assert torch.equal(model.model.rotary_emb.inv_freq, LlamaForCausalLM(reference).model.rotary_emb.inv_freq)
    out = model(input_ids=torch.tensor([[5, 6, 7]])).logits
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_zero3_construction_is_partitioned_and_holds_the_meta_path_weights(process_group):
    import deepspeed

    ds = deepspeed_config(micro_batch_size=1, grad_accum_steps=1, world_size=1, zero_stage=3, bf16=False, gradient_clipping=1.0)
    plain = modeling.fresh_model(micro_config(), seed=0, dtype=torch.float32, device=torch.device("cpu"), ds_config=None, rank=0)
    sharded = modeling.fresh_model(micro_config(), seed=0, dtype=torch.float32, device=torch.device("cpu"), ds_config=ds, rank=0)
    params = dict(sharded.named_parameters())
    assert all(modeling.is_partitioned(p) and p.numel() == 0 for p in params.values())  # no full tensor is held
    assert modeling.parameter_count(sharded) == sum(p.numel() for p in plain.parameters())
    for name, p in plain.named_parameters():
        with deepspeed.zero.GatheredParameters([params[name]]):
            assert torch.equal(params[name].data, p.data), name


def test_opencoder_presets_build_on_meta_with_the_released_shapes():
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        counts = {name: sum(p.numel() for p in LlamaForCausalLM(llama_config(PRESETS[name], 96_640, bos_token_id=1, eos_token_id=2,
                                                                               pad_token_id=0)).parameters())
                  for name in ("opencoder-1.5b", "opencoder-8b")}
    assert 1.85e9 < counts["opencoder-1.5b"] < 1.95e9 and 7.7e9 < counts["opencoder-8b"] < 7.8e9
