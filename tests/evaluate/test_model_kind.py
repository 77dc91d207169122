"""Base vs chat by what the model is, and the model's preset over OpenCodeEval's defaults."""

import json
import shutil

from tasks.common.tracking import NullTracker
from tasks.evaluate.config import EvaluateConfig
from tasks.evaluate.model_kind import apply_model_preset, choose_model_type, read_export_meta
from tasks.evaluate.stage import run
from tests.evaluate.conftest import make_params


def test_stage_recorded_in_the_export_decides_base_or_chat():
    assert choose_model_type("auto", {"stage": "sft"}, "models/sft")[0] == "chat"
    assert choose_model_type("auto", {"stage": "pretrain"}, "models/pretrain")[0] == "base"
    assert choose_model_type("auto", {"stage": "anneal"}, "models/anneal")[0] == "base"
    assert choose_model_type("auto", {}, "infly/OpenCoder-8B-Instruct")[0] == "chat"
    assert choose_model_type("auto", {}, "infly/OpenCoder-8B-Base")[0] == "base"
    model_type, reason = choose_model_type("base", {"stage": "sft"}, "models/sft")
    assert model_type == "base" and "evaluate.model_type" in reason


def test_opencodeeval_defaults_and_the_tiny_preset_for_the_tiny_model_only():
    cfg = EvaluateConfig()
    assert (cfg.max_new_tokens, cfg.max_total_tokens, cfg.temperature, cfg.top_p) == (2048, 2048, 0.0, 1.0)
    tiny, preset = apply_model_preset(cfg, {"preset": "tiny"})
    assert preset == "tiny" and tiny.max_new_tokens == 128
    assert apply_model_preset(cfg, {"preset": "1.5b"}) == (cfg, None)
    assert apply_model_preset(cfg, {}) == (cfg, None)
    explicit = EvaluateConfig(max_new_tokens=16)  # a value the user set wins over the preset
    assert apply_model_preset(explicit, {"preset": "tiny"})[0].max_new_tokens == 16


def test_a_pretrain_export_is_evaluated_as_base_and_an_sft_export_as_chat(tiny_chat_model, tmp_path):
    for stage, expected in (("pretrain", "base"), ("sft", "chat")):
        model = shutil.copytree(tiny_chat_model, tmp_path / stage)
        (model / "cookbook.json").write_text(json.dumps({"stage": stage, "preset": "tiny"}))
        assert read_export_meta(model)["stage"] == stage
        params = make_params(benchmarks=("humaneval",), limit=1, max_new_tokens=4)
        metrics = run(params, model, tmp_path / f"out-{stage}", NullTracker())
        assert metrics["model_type"] == expected and stage in metrics["model_type_reason"]
        assert metrics["max_new_tokens"] == 4  # set explicitly: the tiny preset does not override it
