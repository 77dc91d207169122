"""Training benchmarks: multi-process correctness, packed attention, model-init memory, exact resume after
kill -9, CPU thread scaling, and GPU throughput / MFU.

    python benchmarks/train.py            # CPU parts always; the GPU part where CUDA is available
    python benchmarks/train.py --gpu-only --gpu-micro-batch 2   # only the GPU part, another micro-batch
    python benchmarks/train.py --gpu-only --gpu-attention document --gpu-ray   # packed documents; also via Ray Train

0. Scale figures (issue #17). `cpu_two_process_loss_diff`: the micro preset, document attention, 20 steps,
   global batch 8: the largest absolute loss difference between 2 gloo processes under ZeRO-3 (model built
   partitioned by zero.Init) and 1 process (peer), same global batch. `packed_sdpa_loss_diff`: the tiny preset's
   loss on a packed micro-batch (8 x 256 tokens of real code, EOS-delimited documents) with `packed_sdpa`
   (no mask) minus the dense block-diagonal mask through SDPA (peer), and the forward+backward time ratio of
   the two. `host_rss_gb_init_1p5b`: the peak resident memory of either of 2 CPU processes building
   OpenCoder-1.5B in bf16 under ZeRO-3 (peer: the 7.1 GiB a full fp32 copy per rank takes, computed from the
   parameter count, which is what the previous construction allocated on every rank).

1. Resume: a micro Llama is trained 40 steps straight, and again in a subprocess that is killed with
   SIGKILL once its step-20 checkpoint is complete, then resumed; the figure is the largest absolute
   loss difference over steps 21-40 (peer: the straight run).
2. CPU speedup: median tokens/s over steps 3-16 of the tiny preset (DeepSpeed ZeRO-2, fp32) with 2 threads
   over 1 thread (peer: the 1-thread run), measured on this machine now (noisy if it is shared).
3. GPU (CUDA only): OpenCoder-1.5B, bf16, seq 4096, ZeRO-2, one process; tokens/s and MFU with
   6N + 12 L d T FLOPs per token against the GPU's dense bf16 peak. Without Ray (a plain process group).
   By default micro-batch 4 and global batch 32 (8 accumulation steps), so the once-per-step optimizer and
   ZeRO work is spread over several micro-batches as in real training (OpenCoder-1.5B takes 1,024
   sequences per step). On one H200 (2026-12-04): micro-batch 4 x 8 gave 41.6% MFU (32,226 tokens/s,
   84 GiB peak), micro-batch 2 x 16 39.3%; with global batch 8, micro-batch 2 x 4 gave 37.6%, 4 x 2 39.4%.

4. With `--gpu-ray` (CUDA only): the same GPU job through Ray Train (one GPU worker), its tokens/s and MFU from
   the phase summary (all steps, warm-up included).

The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.train.job import DataSpec, Engine, ModelInit, Phase, ScheduleSpec, TrainJob, to_plain  # noqa: E402

ENV = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29561"}
MICRO = dict(name="micro", num_layers=2, hidden_size=64, num_heads=2, num_kv_heads=2, intermediate_size=128,
             vocab_size=None, max_position_embeddings=256, rope_theta=10_000.0)


def engine(zero: int, threads: int, precision: str = "fp32", ckpt: bool = False) -> Engine:
    return Engine(zero_stage=zero, precision=precision, weight_decay=0.1, adam_beta1=0.9, adam_beta2=0.95, adam_eps=1e-8,
                  gradient_clipping=1.0, gradient_checkpointing=ckpt, num_threads=threads, peak_tflops=None)


def job(data: Path, root: Path, preset: dict, *, steps: int, batch: int, micro: int, threads: int, ckpt_every: int) -> TrainJob:
    phase = Phase(name="bench", model=ModelInit(preset=preset), data=DataSpec(kind="packed", sources={str(data): 1.0}),
                  schedule=ScheduleSpec(kind="wsd", peak_lr=3e-3, warmup_steps=5, total_steps=steps),
                  global_batch_size=batch, micro_batch_size=micro, checkpoint_dir=str(root / "ckpt"), export_dir=str(root / "model"))
    return TrainJob(stage="bench", tokenizer_dir=str(data / "tokenizer"), phases=(phase,), engine=engine(2, threads),
                    seed=0, log_every=10, checkpoint_every=ckpt_every, keep_checkpoints=None, plot_csv=str(root / "loss.csv"))


def run_job_subprocess(j: TrainJob, path: Path) -> subprocess.Popen:
    path.write_text(json.dumps(to_plain(j)))
    code = f"import json; from tasks.train.loop import train_loop; train_loop(json.load(open({str(path)!r})))"
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def losses(path: Path) -> dict[int, float]:
    with open(path) as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}


def resume_after_kill(data: Path, tmp: Path) -> tuple[float, int]:
    straight = job(data, tmp / "straight", MICRO, steps=40, batch=4, micro=2, threads=1, ckpt_every=10)
    assert run_job_subprocess(straight, tmp / "straight.json").wait() == 0
    killed = job(data, tmp / "killed", MICRO, steps=40, batch=4, micro=2, threads=1, ckpt_every=10)
    proc = run_job_subprocess(killed, tmp / "killed.json")
    latest = tmp / "killed" / "ckpt" / "latest"
    while proc.poll() is None and not (latest.exists() and latest.read_text().strip() >= "step_00000020"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(losses(tmp / "killed" / "loss.csv"))
    assert run_job_subprocess(killed, tmp / "killed.json").wait() == 0
    a, b = losses(tmp / "straight" / "loss.csv"), losses(tmp / "killed" / "loss.csv")
    return max(abs(a[s] - b[s]) for s in range(21, 41)), killed_at


def cpu_tokens_per_s(data: Path, tmp: Path, threads: int) -> float:
    from tasks.train.presets import PRESETS, preset_dict

    j = job(data, tmp / f"threads{threads}", preset_dict(PRESETS["tiny"]), steps=16, batch=8, micro=8, threads=threads, ckpt_every=10**6)
    assert run_job_subprocess(j, tmp / f"threads{threads}.json").wait() == 0
    with open(tmp / f"threads{threads}" / "loss.csv") as f:
        rows = list(csv.DictReader(f))[2:]  # skip warm-up steps
    return statistics.median(float(r["tokens_per_s"]) for r in rows)  # median: robust to a busy neighbour's bursts


def two_process_loss_diff(data: Path, tmp: Path) -> float:
    """Max |loss(2 processes, ZeRO-3) - loss(1 process, ZeRO-2)| over 20 steps, the same global batch."""
    from dataclasses import replace

    from tasks.train.local_launch import start_ranks, wait_all

    runs = {"one": (1, 2), "two": (2, 3)}
    procs = {}
    for name, (world, zero) in runs.items():
        root = tmp / f"dist-{name}"
        root.mkdir()
        j = job(data, root, MICRO, steps=20, batch=8, micro=2, threads=1, ckpt_every=10**6)
        j = replace(j, engine=engine(zero, 1), phases=(replace(j.phases[0], data=replace(j.phases[0].data, attention="document")),))
        procs[name] = start_ranks(j, world, root / "job.json", log_dir=root)
    for name, ps in procs.items():
        assert wait_all(ps, timeout=1800) == [0] * len(ps), (tmp / f"dist-{name}" / "rank0.log").read_text()[-2000:]
    one, two = losses(tmp / "dist-one" / "loss.csv"), losses(tmp / "dist-two" / "loss.csv")
    return max(abs(one[s] - two[s]) for s in one)


def packed_attention_figures(data: Path, repeats: int = 3) -> tuple[float, float]:
    """(|packed_sdpa loss - dense-mask SDPA loss|, dense time / packed time) on one tiny-preset micro-batch."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from tasks.train import attention
    from tasks.train.data import PackedMix, causal_lm_batch
    from tasks.train.presets import PRESETS, llama_config

    tok = AutoTokenizer.from_pretrained(data / "tokenizer")
    ids, _ = PackedMix({str(data): 1.0}, 8, seed=0).batch(0, np.zeros(1, dtype=np.int64))
    packed = causal_lm_batch(ids, attention="document", eos_id=tok.eos_token_id)
    dense = dense_document_batch(ids, tok.eos_token_id)
    attention.register()
    config = llama_config(PRESETS["tiny"], len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    results = {}
    for name, impl, batch in (("dense", "sdpa", dense), ("packed", attention.PACKED_SDPA, packed)):
        model.config._attn_implementation = impl
        times = []
        for _ in range(repeats):
            model.zero_grad()
            t0 = time.perf_counter()
            loss = model(**batch).loss
            loss.backward()
            times.append(time.perf_counter() - t0)
        results[name] = (float(loss.detach()), min(times))
    return abs(results["packed"][0] - results["dense"][0]), results["dense"][1] / results["packed"][1]


def dense_document_batch(ids, eos_id: int) -> dict:
    """The dense reference: (rows, L) with a (rows, 1, L, L) block-diagonal causal mask (the previous implementation)."""
    import torch

    input_ids = torch.from_numpy(ids)
    labels = input_ids.clone()
    is_eos = input_ids == eos_id
    labels[:, 1:][is_eos[:, :-1]] = -100
    doc = torch.cumsum(torch.nn.functional.pad(is_eos[:, :-1].long(), (1, 0)), dim=1)
    position_ids = torch.arange(ids.shape[1]).expand_as(doc) - torch.searchsorted(doc, doc, right=False)
    mask = (doc[:, :, None] == doc[:, None, :]) & torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool).tril()
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "attention_mask": mask[:, None]}


INIT_RSS_CODE = """
import json, resource, sys, torch, deepspeed
from tasks.train import modeling
from tasks.train.ds_config import deepspeed_config
from tasks.train.presets import PRESETS, llama_config
deepspeed.init_distributed(dist_backend="gloo")
rank = torch.distributed.get_rank()
ds = deepspeed_config(micro_batch_size=1, grad_accum_steps=1, world_size=2, zero_stage=3, bf16=True, gradient_clipping=1.0)
config = llama_config(PRESETS["opencoder-1.5b"], 96640, bos_token_id=1, eos_token_id=2, pad_token_id=0)
model = modeling.fresh_model(config, seed=0, dtype=torch.bfloat16, device=torch.device("cpu"), ds_config=ds, rank=rank)
shard = sum(p.ds_tensor.numel() for p in model.parameters())
out = {"rank": rank, "max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "shard_params": shard,
       "params": modeling.parameter_count(model), "dtype": str(next(model.parameters()).ds_tensor.dtype)}
open(sys.argv[1] + f".rank{rank}", "w").write(json.dumps(out))
"""


def init_rss_1p5b(tmp: Path) -> dict:
    """Peak RSS of 2 processes building OpenCoder-1.5B under ZeRO-3 in bf16 (each reports its own)."""
    from tasks.train.local_launch import start_ranks, wait_all

    out = tmp / "init-rss.json"
    procs = start_ranks({}, 2, out, code=INIT_RSS_CODE, log_dir=tmp)
    assert wait_all(procs, timeout=1800) == [0, 0], (tmp / "rank0.log").read_text()[-3000:]
    ranks = [json.loads(Path(f"{out}.rank{r}").read_text()) for r in (0, 1)]
    params = ranks[0]["params"]
    return {"max_rss_gb": max(r["max_rss_gb"] for r in ranks), "params": params, "shard_params": [r["shard_params"] for r in ranks],
            "dtype": ranks[0]["dtype"], "full_fp32_gb": params * 4 / 2**30}


def synthetic_job(tmp: Path, preset: dict, *, seq_len: int, num: int, micro_batch: int, global_batch: int, attention: str,
                  zero: int, precision: str, steps: int = 10) -> TrainJob:
    """A preset on synthetic tokens at `seq_len` (EOS about every 1,000 tokens, for document attention)."""
    import numpy as np

    from tasks.common.shards import write_json
    from tests.train.conftest import make_packed, python_sources

    data = make_packed(tmp / "synthetic-data", python_sources("requests", 6), vocab_size=512, seq_len=64)
    vocab = preset["vocab_size"] or 512
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, vocab, size=num * seq_len, dtype=np.uint32)
    tokens[rng.random(tokens.size) < 1e-3] = 2
    tokens.tofile(data / "tokens.bin")
    write_json(data / "meta.json", {"vocab_size": vocab, "dtype": "uint32", "seq_len": seq_len, "num_sequences": num, "tokenizer_hash": "synthetic"})
    phase = Phase(name="throughput", model=ModelInit(preset=preset), data=DataSpec(kind="packed", sources={str(data): 1.0}, attention=attention),
                  schedule=ScheduleSpec(kind="wsd", peak_lr=3e-4, warmup_steps=2000, total_steps=steps),
                  global_batch_size=global_batch, micro_batch_size=micro_batch, checkpoint_dir=str(tmp / "synthetic-ckpt"),
                  export_dir=str(tmp / "synthetic-model"))
    return TrainJob(stage="bench", tokenizer_dir=str(data / "tokenizer"), phases=(phase,), engine=engine(zero, 8, precision),
                    seed=0, checkpoint_every=10**6, stop_after_steps=steps - 1)


def gpu_job(tmp: Path, micro_batch: int, global_batch: int, attention: str, zero: int) -> TrainJob:
    """OpenCoder-1.5B in bf16 at sequence 4096."""
    from tasks.train.presets import PRESETS, preset_dict

    return synthetic_job(tmp, preset_dict(PRESETS["opencoder-1.5b"]), seq_len=4096, num=512, micro_batch=micro_batch,
                         global_batch=global_batch, attention=attention, zero=zero, precision="bf16")


def throughput(j: TrainJob, steps: int) -> dict:
    """Train `steps` steps of the job's phase in this process (a one-process group; the device CUDA provides, else
    the CPU), without checkpoints: tokens/s over the steps after the first 3, MFU, losses, step seconds."""
    import torch
    from transformers import AutoTokenizer

    from tasks.train.data import PackedMix
    from tasks.train.flops import flops_per_token, peak_flops
    from tasks.train.loop import build_engine, build_model, engine_config, micro_batches, setup_worker, train_step

    phase = j.phases[0]
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    worker = setup_worker(j)
    tok = AutoTokenizer.from_pretrained(j.tokenizer_dir)
    ds_config = engine_config(j, phase, worker)
    model = build_model(j, phase, tok, worker, ds_config)
    eng, _ = build_engine(j, phase, model, worker, ds_config)
    mix = PackedMix(dict(phase.data.sources), phase.global_batch_size, 0)
    counts = mix.source_counts_before(0)
    sync = torch.cuda.synchronize if worker.device.type == "cuda" else (lambda: None)
    times, step_losses = [], []
    for step in range(steps):
        sync()
        t0 = time.monotonic()
        batches, counts = micro_batches(mix, step, counts, phase, worker, tok.eos_token_id)
        step_losses.append(float(train_step(eng, batches)[0]))
        sync()
        times.append(time.monotonic() - t0)
    timed = times[3:] or times  # steps 0-2 warm up kernels and the allocator
    tps = phase.global_batch_size * mix.seq_len / (sum(timed) / len(timed))
    peak = peak_flops(j.engine.peak_tflops, cuda=worker.device.type == "cuda", num_threads=j.engine.num_threads)
    return {"tokens_per_s": tps, "mfu": flops_per_token(model.config, mix.seq_len) * tps / peak if peak else None,
            "losses": step_losses, "step_seconds": times, "attention": model.config._attn_implementation,
            "device": torch.cuda.get_device_name() if worker.device.type == "cuda" else "cpu"}


def gpu_figures(tmp: Path, micro_batch: int = 4, global_batch: int = 32, steps: int = 6, attention: str = "causal",
                zero: int = 2) -> tuple[float | None, float | None]:
    import torch

    if not torch.cuda.is_available():
        return None, None
    out = throughput(gpu_job(tmp, micro_batch, global_batch, attention, zero), steps)
    print(f"GPU {out['device']}: opencoder-1.5b bf16 ZeRO-{zero} seq 4096 attention {attention} ({out['attention']}), "
          f"micro-batch {micro_batch} x {global_batch // micro_batch} accumulation: step seconds "
          f"{[round(t, 3) for t in out['step_seconds']]}, losses {[round(x, 3) for x in out['losses']]}, peak memory "
          f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, {out['tokens_per_s']:.0f} tokens/s, MFU {out['mfu']}", flush=True)
    return (round(out["mfu"], 4) if out["mfu"] is not None else None), round(out["tokens_per_s"], 1)


def gpu_ray_figures(tmp: Path, micro_batch: int, global_batch: int, attention: str, zero: int) -> dict:
    """The GPU job through Ray Train (one GPU worker): the phase summary's tokens/s and MFU."""
    import torch

    if not torch.cuda.is_available():
        return {}
    from tasks.train.launcher import launch

    j = gpu_job(tmp / "ray", micro_batch, global_batch, attention, zero)
    launch(j, num_workers=1, use_gpu=True, cpus_per_worker=8, storage_path=tmp / "ray" / "storage", max_failures=0)
    summary = json.loads((Path(j.phases[0].checkpoint_dir) / "summary.json").read_text())
    return {"gpu_ray_tokens_per_s": round(summary["tokens_per_s"], 1), "gpu_ray_mfu": round(summary["mfu"], 4),
            "gpu_ray_steps": summary["steps_done"]}


def main() -> None:
    from tests.train.conftest import make_packed, python_sources

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu-only", action="store_true", help="run only the GPU part (needs CUDA)")
    parser.add_argument("--gpu-micro-batch", type=int, default=4, help="micro-batch of the GPU part")
    parser.add_argument("--gpu-global-batch", type=int, default=32, help="sequences per optimizer step of the GPU part")
    parser.add_argument("--gpu-steps", type=int, default=6, help="optimizer steps of the GPU part (the first 3 are not timed)")
    parser.add_argument("--gpu-attention", choices=["causal", "document"], default="causal", help="attention of the GPU part")
    parser.add_argument("--gpu-zero", type=int, choices=[2, 3], default=2, help="ZeRO stage of the GPU part")
    parser.add_argument("--gpu-ray", action="store_true", help="also run the GPU job through Ray Train")
    parser.add_argument("--skip-rss", action="store_true", help="skip the 1.5B init memory figure (~2 x 2 GB, minutes on 2 cores)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as t:
        tmp = Path(t)
        gpu = dict(micro_batch=args.gpu_micro_batch, global_batch=args.gpu_global_batch, attention=args.gpu_attention, zero=args.gpu_zero)
        gpu_mfu, gpu_tps = gpu_figures(tmp, steps=args.gpu_steps, **gpu)
        gpu_ray = gpu_ray_figures(tmp, **gpu) if args.gpu_ray else {}
        gpu_out = {"gpu_mfu": gpu_mfu, "gpu_tokens_per_s": gpu_tps, **gpu_ray, **{f"gpu_{k}": v for k, v in gpu.items()}}
        if args.gpu_only:
            print(json.dumps(gpu_out))
            return
        data = make_packed(tmp / "data", python_sources("requests", 12), vocab_size=512, seq_len=32)
        two_diff = two_process_loss_diff(data, tmp)
        print(f"2 processes ZeRO-3 vs 1 process: max |loss diff| over 20 steps = {two_diff:.2e}", flush=True)
        tiny_data = make_packed(tmp / "tiny-data", python_sources("requests", 18), vocab_size=2048, seq_len=256)
        packed_diff, packed_speed = packed_attention_figures(tiny_data)
        print(f"packed_sdpa vs dense mask: |loss diff| = {packed_diff:.2e}, dense/packed time {packed_speed:.2f}", flush=True)
        rss = {} if args.skip_rss else init_rss_1p5b(tmp)
        if rss:
            print(f"1.5B under ZeRO-3 on 2 CPU processes: peak RSS {rss['max_rss_gb']:.2f} GiB per process "
                  f"({rss['params']:,} parameters, shards {rss['shard_params']}, {rss['dtype']}; a full fp32 copy: "
                  f"{rss['full_fp32_gb']:.2f} GiB)", flush=True)
        diff, killed_at = resume_after_kill(data, tmp)
        print(f"resume: killed after step {killed_at}, max |loss diff| steps 21-40 = {diff:.2e}", flush=True)
        tps1 = cpu_tokens_per_s(tiny_data, tmp, 1)
        tps2 = cpu_tokens_per_s(tiny_data, tmp, 2)
        print(f"tiny preset on CPU: {tps1:.0f} tokens/s (1 thread), {tps2:.0f} tokens/s (2 threads)")
    print(json.dumps({"cpu_two_process_loss_diff": two_diff, "packed_sdpa_loss_diff": packed_diff,
                      "packed_sdpa_speedup_vs_dense_mask": round(packed_speed, 3),
                      "host_rss_gb_init_1p5b": round(rss["max_rss_gb"], 3) if rss else None,
                      "host_gb_full_fp32_copy_1p5b": round(rss["full_fp32_gb"], 3) if rss else None,
                      "resume_max_abs_loss_diff": diff, "resume_killed_after_step": killed_at,
                      "cpu_tokens_per_s_1_thread": round(tps1, 1), "cpu_tokens_per_s_2_threads": round(tps2, 1),
                      "cpu_speedup_2_threads": round(tps2 / tps1, 3), **gpu_out}))


if __name__ == "__main__":
    main()
