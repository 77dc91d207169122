"""The training stages end to end on real Ray Train + DeepSpeed (one CPU worker, gloo), with MLflow.

pretrain (tiny preset, few steps) -> anneal branched from a pretrain checkpoint tag -> sft (stage1-only
on a small JSONL set) -> the exported model loads with AutoModelForCausalLM / AutoTokenizer and generates.
"""

from __future__ import annotations

import csv
import json

import pytest

from tasks.common.tracking import MlflowTracker, NullTracker
from tasks.config import load_params
from tasks.train import anneal, pretrain, sft
from tasks.train.contract import ContractError

from .conftest import make_packed, python_sources


def params_for(tmp_path, *extra):
    return load_params("params.yaml", [
        "tracking.enabled=false",
        "pretrain.steps=6", "pretrain.warmup_steps=2", "pretrain.global_batch_size=4", "pretrain.micro_batch_size=2",
        "pretrain.checkpoint_every=3", "pretrain.keep_checkpoints=null", "pretrain.log_every=2", "pretrain.cpus_per_worker=1",
        "anneal.steps=4", "anneal.global_batch_size=4", "anneal.micro_batch_size=4", "anneal.cpus_per_worker=1",
        "sft.variant=stage1-only", f"sft.stage1.sets=[jsonl:{tmp_path / 'sft.jsonl'}]", "sft.stage1.global_batch_size=4",
        "sft.stage1.micro_batch_size=2", "sft.stage1.warmup_steps=1", "sft.stage1.epochs=2", "sft.stage1.max_len=96",
        "sft.cpus_per_worker=1", *extra])


@pytest.fixture(scope="module")
def trained(packed_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stages")
    rows = [{"instruction": f"Write a function that returns {i}.", "output": f"def f():\n    return {i}"} for i in range(8)]
    (tmp / "sft.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    params = params_for(tmp, f"anneal.sources={{{packed_dir}: 1.0}}",
                        f"anneal.init_from={tmp / 'models' / 'pretrain.checkpoints' / 'step_00000003'}")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with MlflowTracker.start("test-train", "pretrain", uri=uri) as tracker:
        pre = pretrain.run(params, packed_dir, tmp / "models" / "pretrain", tracker)
    ann = anneal.run(params, tmp / "models" / "pretrain", tmp / "models" / "anneal", NullTracker())
    tuned = sft.run(params, tmp / "models" / "anneal", tmp / "models" / "sft", NullTracker())
    return tmp, tracker, pre, ann, tuned, params


def test_pretrain_on_ray_train_logs_and_writes_curve(trained):
    tmp, tracker, pre, *_ = trained
    assert pre["steps"] == 6 and pre["loss_decreased"]
    with open(tmp / "models" / "pretrain.loss.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "loss", "lr", "tokens_per_s"] and [int(r["step"]) for r in rows] == list(range(1, 7))
    history = tracker.client.get_metric_history(tracker.run_id, "loss")
    assert sorted(m.step for m in history) == [2, 4, 6]  # logged by the rank-0 worker, re-attached to the run
    assert tracker.client.get_metric_history(tracker.run_id, "mfu")
    assert sorted(p.name for p in (tmp / "models" / "pretrain.checkpoints").glob("step_*")) == ["step_00000003", "step_00000006"]


def test_anneal_branches_from_checkpoint_with_exponential_decay(trained):
    tmp, _, _, ann, _, params = trained
    assert ann["steps"] == 4 and ann["init_from"].endswith("step_00000003")
    with open(tmp / "models" / "anneal.loss.csv") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert lrs[0] == pytest.approx(params.anneal.lr_start) and lrs[-1] == pytest.approx(params.anneal.lr_final, rel=1e-4)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_sft_export_loads_and_generates(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp, *_, tuned, _ = trained
    assert tuned["examples_stage1"] == 8 and tuned["steps"] == 4
    model = AutoModelForCausalLM.from_pretrained(tmp / "models" / "sft")
    tok = AutoTokenizer.from_pretrained(tmp / "models" / "sft")
    assert type(model).__name__ == "LlamaForCausalLM" and "<|im_start|>" in tok.chat_template
    prompt = tok.apply_chat_template([{"role": "user", "content": "Write f."}], add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids.shape[1]
    assert isinstance(tok.decode(out[0, ids.shape[1]:]), str)
    assert json.loads((tmp / "models" / "sft" / "cookbook.json").read_text())["stage"] == "sft"


def test_anneal_refuses_data_from_another_tokenizer(trained, tmp_path):
    tmp, *_ = trained
    other = make_packed(tmp_path / "other", python_sources("idna", 6), vocab_size=400)
    params = params_for(tmp, f"anneal.sources={{{other}: 1.0}}")
    with pytest.raises(ContractError, match="tokenized with tokenizer"):
        anneal.run(params, tmp / "models" / "pretrain", tmp_path / "anneal", NullTracker())
