"""Unit tests of the training pieces: schedules, presets, DeepSpeed config, SFT masking, data, contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.curate.sft_sets import mbpp_train
from tasks.tokenize.tokenizer import save_tokenizer, train_bpe
from tasks.train.chat import IGNORE, encode_example
from tasks.train.contract import ContractError, check_data
from tasks.train.data import PackedMix, causal_lm_batch, micro_slices
from tasks.train.ds_config import deepspeed_config, grad_accum_steps
from tasks.train.flops import flops_per_token
from tasks.train.presets import PRESETS, llama_config
from tasks.train.schedule import cosine, exp_decay, wsd

CODE = ["def add(a, b):\n    return a + b\n", "import os\nprint(os.getcwd())\n", "class A:\n    pass\n"] * 30


def test_wsd_warmup_then_constant():
    assert wsd(0, peak=3e-4, warmup_steps=2000) == pytest.approx(3e-4 / 2000)
    assert wsd(999, peak=3e-4, warmup_steps=2000) == pytest.approx(1.5e-4)
    assert wsd(1999, peak=3e-4, warmup_steps=2000) == pytest.approx(3e-4)
    assert wsd(2000, peak=3e-4, warmup_steps=2000) == wsd(400_000, peak=3e-4, warmup_steps=2000) == 3e-4


def test_exp_decay_endpoints_and_midpoint():
    assert exp_decay(0, start=3e-4, final=1e-5, total_steps=101) == pytest.approx(3e-4)
    assert exp_decay(100, start=3e-4, final=1e-5, total_steps=101) == pytest.approx(1e-5)
    assert exp_decay(50, start=3e-4, final=1e-5, total_steps=101) == pytest.approx(math.sqrt(3e-4 * 1e-5))


def test_cosine_warmup_peak_and_end():
    assert cosine(0, peak=2e-5, warmup_steps=100, total_steps=1000) == pytest.approx(2e-7)
    assert cosine(100, peak=2e-5, warmup_steps=100, total_steps=1000) == pytest.approx(2e-5)
    assert cosine(550, peak=2e-5, warmup_steps=100, total_steps=1000) == pytest.approx(1e-5)
    assert cosine(1000, peak=2e-5, warmup_steps=100, total_steps=1000) == pytest.approx(0.0)


def test_opencoder_presets_match_the_paper():
    from transformers import LlamaForCausalLM

    p15, p8 = PRESETS["opencoder-1.5b"], PRESETS["opencoder-8b"]
    assert (p15.num_layers, p15.hidden_size, p15.num_heads, p15.head_dim, p15.num_kv_heads, p15.intermediate_size) == (24, 2240, 14, 160, 14, 6144)
    assert (p8.num_layers, p8.hidden_size, p8.num_heads, p8.num_kv_heads, p8.intermediate_size, p8.rope_theta) == (32, 4096, 32, 8, 14336, 500_000.0)
    cfg = llama_config(p15, 96_640, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.device("meta"):
        n = sum(p.numel() for p in LlamaForCausalLM(cfg).parameters())
    assert 1.85e9 < n < 1.95e9  # "about 1.9B" (spec §7)
    assert cfg.vocab_size == 96_640 and not cfg.tie_word_embeddings and not cfg.attention_bias


def test_flops_per_token_is_6n_plus_attention():
    cfg = llama_config(PRESETS["opencoder-1.5b"], 96_640, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.device("meta"):
        from transformers import LlamaForCausalLM

        n = sum(p.numel() for p in LlamaForCausalLM(cfg).parameters()) - 96_640 * 2240
    assert flops_per_token(cfg, 4096) == pytest.approx(6 * n + 12 * 24 * 2240 * 4096)


def test_deepspeed_config_generated_from_params():
    cfg = deepspeed_config(micro_batch_size=4, grad_accum_steps=32, world_size=8, zero_stage=2, bf16=True, gradient_clipping=1.0)
    assert cfg["train_batch_size"] == 1024 and cfg["zero_optimization"]["stage"] == 2 and cfg["bf16"]["enabled"]
    assert cfg["zero_allow_untested_optimizer"] is True
    assert grad_accum_steps(1024, 4, 8) == 32
    with pytest.raises(ValueError):
        grad_accum_steps(10, 4, 1)


def test_micro_slices_partition_the_batch():
    seen = sorted(i for r in range(2) for s in micro_slices(16, 4, 2, r) for i in range(16)[s])
    assert seen == list(range(16))


def test_response_only_mask_on_literal_sample(tmp_path):
    from transformers import AutoTokenizer

    save_tokenizer(train_bpe(CODE + ["<|im_start|>user\nhello<|im_end|>"], 400), tmp_path, 512)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    ids, labels = encode_example(tok, "Add two numbers.", "def add(a, b):\n    return a + b", 512)
    prompt = ("<|im_start|>system\nYou are OpenCoder, created by OpenCoder Team.<|im_end|>\n"
              "<|im_start|>user\nAdd two numbers.<|im_end|>\n<|im_start|>assistant\n")
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert tok.decode(ids) == prompt + "def add(a, b):\n    return a + b\n<|im_end|>"
    assert labels[:n_prompt] == [IGNORE] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:] and ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    short_ids, short_labels = encode_example(tok, "Add two numbers.", "x" * 50, 10)
    assert len(short_ids) == len(short_labels) == 10


def test_mbpp_train_split():
    rows = mbpp_train()
    assert len(rows) == 374
    assert "assert" in rows[0]["instruction"] and "\r" not in rows[0]["output"]


def test_document_batch_is_one_packed_row_with_restarting_positions_and_boundaries():
    ids = np.array([[5, 6, 2, 7, 8, 9, 2, 4], [3, 2, 5, 5, 5, 5, 5, 5]])
    batch = causal_lm_batch(ids, attention="document", eos_id=2)
    assert batch["input_ids"].shape == (1, 16) and "attention_mask" not in batch
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 0, 0, 1, 0, 1, 2, 3, 4, 5]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 7, 8, 10, 16] and batch["max_length_q"] == 6
    labels = batch["labels"][0].tolist()
    assert [i for i, x in enumerate(labels) if x == -100] == [0, 3, 7, 8, 10]  # every document's first token
    assert labels[4] == 8 and labels[9] == 2


def _packed(folder, tok_dir_hash=None, vocab=300, seq_len=8, num=10):
    from tasks.tokenize.packing import META_FILE, TOKENS_FILE

    folder.mkdir(parents=True)
    np.arange(num * seq_len, dtype=np.uint16).tofile(folder / TOKENS_FILE)
    (folder / META_FILE).write_text(json.dumps({"vocab_size": vocab, "dtype": "uint16", "seq_len": seq_len, "num_sequences": num,
                                                "tokenizer_hash": tok_dir_hash or "h" * 64}))
    return folder


def test_contract_rejects_mismatched_tokenizer(tmp_path):
    data = _packed(tmp_path / "d", tok_dir_hash="a" * 64)
    assert check_data(data, vocab_size=512, max_positions=64, tokenizer_hash_expected="a" * 64)["seq_len"] == 8
    with pytest.raises(ContractError, match="tokenized with tokenizer aaaaaaaaaaaa but the model was trained with bbbbbbbbbbbb"):
        check_data(data, vocab_size=512, max_positions=64, tokenizer_hash_expected="b" * 64)


def test_contract_rejects_vocab_seq_len_and_changed_tokenizer_folder(tmp_path):
    data = _packed(tmp_path / "d")
    with pytest.raises(ContractError, match="vocabulary is 256"):
        check_data(data, vocab_size=256, max_positions=64)
    with pytest.raises(ContractError, match="exceeds the model context 4"):
        check_data(data, vocab_size=None, max_positions=4)
    save_tokenizer(train_bpe(CODE, 300), data / "tokenizer", 8)  # a tokenizer whose hash differs from meta's
    with pytest.raises(ContractError, match="tokenizer hash differs"):
        check_data(data, vocab_size=None, max_positions=64)


def test_packed_mix_is_a_function_of_step(tmp_path):
    a, b = _packed(tmp_path / "a", num=10), _packed(tmp_path / "b", num=7)
    mix = PackedMix({str(a): 0.75, str(b): 0.25}, global_batch_size=4, seed=3)
    counts = mix.source_counts_before(0)
    batches = []
    for step in range(6):
        ids, counts = mix.batch(step, counts)
        batches.append(ids)
    again = PackedMix({str(a): 0.75, str(b): 0.25}, global_batch_size=4, seed=3)
    ids5, _ = again.batch(5, again.source_counts_before(5))
    assert (ids5 == batches[5]).all()
    assert counts.sum() == 24 and counts[0] > counts[1]


def test_checkpoint_and_plot_paths(tmp_path):
    from pathlib import Path

    from tasks.train.checkpoint import stage_paths

    assert stage_paths("pretrain", Path("models/pretrain"), "models/pretrain") == (Path("checkpoints/pretrain"), Path("plots/pretrain.csv"))
    assert stage_paths("anneal", tmp_path / "b", "models/anneal") == (tmp_path / "b.checkpoints", tmp_path / "b.loss.csv")


def test_params_yaml_loads_with_tiny_training_sections():
    from tasks.config import load_params

    params = load_params("params.yaml")
    assert params.pretrain.preset == "tiny" and params.sft.variant == "two-stage"
    assert params.pretrain.global_batch_size % params.pretrain.micro_batch_size == 0
    assert PRESETS["opencoder-1.5b"].max_position_embeddings == 4096


def test_fingerprint_follows_the_contents_of_input_model_and_data_not_only_their_paths(tmp_path):
    """A re-run upstream stage rewrites models/anneal or the SFT data in place: the downstream checkpoint
    must then not be resumed (its fingerprint changes); identical contents keep it."""
    from tasks.train.job import DataSpec, Engine, ModelInit, Phase, ScheduleSpec, TrainJob, fingerprint

    model, sft = tmp_path / "model", tmp_path / "sft.parquet"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights-1")
    sft.write_bytes(b"rows-1")
    phase = Phase(name="sft", model=ModelInit(from_pretrained=str(model)), data=DataSpec(kind="sft", sft_path=str(sft)),
                  schedule=ScheduleSpec(kind="wsd", peak_lr=1e-3, total_steps=4), global_batch_size=2,
                  micro_batch_size=1, checkpoint_dir=str(tmp_path / "ckpt"), export_dir=str(tmp_path / "out"))
    engine = Engine(zero_stage=0, precision="fp32", weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.95, adam_eps=1e-8,
                    gradient_clipping=1.0, gradient_checkpointing=False, num_threads=1, peak_tflops=None)
    job = TrainJob(stage="sft", tokenizer_dir=str(tmp_path), phases=(phase,), engine=engine)

    first = fingerprint(job, phase)
    assert fingerprint(job, phase) == first
    (model / "model.safetensors").write_bytes(b"weights-2")
    second = fingerprint(job, phase)
    assert second != first
    sft.write_bytes(b"rows-2")
    assert fingerprint(job, phase) not in {first, second}
    (model / "model.safetensors").write_bytes(b"weights-1")
    sft.write_bytes(b"rows-1")
    assert fingerprint(job, phase) == first


@pytest.mark.skipif(not __import__("platform").libc_ver()[0] == "glibc", reason="glibc's mallopt only")
def test_cpu_workers_keep_freed_memory_under_glibc():
    from tasks.train.loop import retain_freed_memory

    assert retain_freed_memory() is True


def test_stage_metrics_name_project_paths_relative_to_the_project(tmp_path, monkeypatch):
    from tasks.train.driver import project_relative

    monkeypatch.chdir(tmp_path)
    assert project_relative(str(tmp_path / "checkpoints" / "sft")) == "checkpoints/sft"
    assert project_relative("/elsewhere/model") == "/elsewhere/model"
    assert project_relative("models/anneal") == "models/anneal" and project_relative(3) == 3


def test_log_model_asks_the_hub_nothing_and_writes_a_local_model_card(tmp_path, monkeypatch):
    import socket

    import mlflow
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tasks.train.export import EXPORT_META, log_model

    tok = train_bpe(CODE, vocab_size=300)
    save_tokenizer(tok, tmp_path / "tok", 64)
    folder = tmp_path / "models" / "pretrain"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(AutoTokenizer.from_pretrained(tmp_path / "tok")), hidden_size=16,
                                 intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 num_key_value_heads=2)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tmp_path / "tok").save_pretrained(folder)
    (folder / EXPORT_META).write_text(json.dumps({"stage": "pretrain", "steps": 3}))
    looked_up = []
    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: looked_up.append(host) or real_getaddrinfo(host, *a, **k))
    monkeypatch.chdir(tmp_path)  # the model's name is the relative path models/pretrain, as in a stage
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    run = mlflow.MlflowClient(uri).create_run(mlflow.MlflowClient(uri).create_experiment("t", artifact_location=str(tmp_path / "art")))
    model_uri = log_model(Path("models/pretrain"), uri, run.info.run_id, name="pretrain")
    assert not [h for h in looked_up if "huggingface" in str(h)], looked_up
    location = mlflow.MlflowClient(uri).get_logged_model(model_uri.rsplit("/", 1)[1]).artifact_location
    card = (Path(location.removeprefix("file://")) / "model_card.md").read_text()
    assert "Trained by OpenCoder Cookbook" in card and "- steps: 3" in card


def test_a_training_job_that_no_cluster_node_can_hold_is_one_line_not_a_wait():
    from tasks.common.config import ConfigError
    from tasks.train.launcher import check_cluster_holds, workers_that_fit

    nodes = [{"Alive": True, "Resources": {"CPU": 1.0}}, {"Alive": True, "Resources": {"CPU": 1.0}},
             {"Alive": False, "Resources": {"CPU": 8.0}}]
    assert workers_that_fit(nodes, cpus=1, gpus=0) == 2 and workers_that_fit(nodes, cpus=2, gpus=0) == 0
    check_cluster_holds("pretrain", 2, 1, 0, nodes)
    with pytest.raises(ConfigError, match=r"pretrain: 1 worker\(s\) of 2 CPU each do not fit .*1 CPU, 1 CPU; 0 fit"):
        check_cluster_holds("pretrain", 1, 2, 0, nodes)
    gpu_nodes = [{"Alive": True, "Resources": {"CPU": 16.0, "GPU": 1.0}}]
    with pytest.raises(ConfigError, match="lower sft.cpus_per_worker or sft.num_workers"):
        check_cluster_holds("sft", 2, 4, 1, gpu_nodes)


def test_a_tracking_server_gone_before_the_model_is_logged_is_a_warning(monkeypatch, caplog, tmp_path):
    import requests

    from tasks.train import driver

    def unreachable(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(driver, "log_model", unreachable)
    driver.log_model_tolerant(tmp_path / "model", "pretrain", "http://127.0.0.1:9", "r")
    assert "MLflow tracking lost" in caplog.text and "was not logged" in caplog.text

    def broken(*args, **kwargs):
        raise ValueError("a bug, not a lost server")

    monkeypatch.setattr(driver, "log_model", broken)
    with pytest.raises(ValueError):
        driver.log_model_tolerant(tmp_path / "model", "pretrain", "http://127.0.0.1:9", "r")
