"""Training benchmarks: exact resume after kill -9, CPU thread scaling, and GPU throughput / MFU.

    python benchmarks/train.py            # CPU parts always; the GPU part where CUDA is available
    python benchmarks/train.py --gpu-only --gpu-micro-batch 2   # only the GPU part, another micro-batch

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


def gpu_figures(tmp: Path, micro_batch: int = 4, global_batch: int = 32, steps: int = 6) -> tuple[float | None, float | None]:
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        return None, None
    from tasks.common.shards import write_json
    from tasks.train.flops import flops_per_token, peak_flops
    from tasks.train.loop import build_engine, build_model, micro_batches, setup_worker, train_step
    from tasks.train.presets import PRESETS, preset_dict
    from tests.train.conftest import make_packed, python_sources

    data = make_packed(tmp / "gpu-data", python_sources("requests", 6), vocab_size=512, seq_len=64)
    seq_len, num = 4096, 256
    np.random.default_rng(0).integers(5, 96_640, size=num * seq_len, dtype=np.uint32).tofile(data / "tokens.bin")
    write_json(data / "meta.json", {"vocab_size": 96_640, "dtype": "uint32", "seq_len": seq_len, "num_sequences": num, "tokenizer_hash": "synthetic"})
    phase = Phase(name="gpu", model=ModelInit(preset=preset_dict(PRESETS["opencoder-1.5b"])),
                  data=DataSpec(kind="packed", sources={str(data): 1.0}),
                  schedule=ScheduleSpec(kind="wsd", peak_lr=3e-4, warmup_steps=2000, total_steps=10),
                  global_batch_size=global_batch, micro_batch_size=micro_batch, checkpoint_dir=str(tmp / "gpu-ckpt"), export_dir=str(tmp / "gpu-model"))
    j = TrainJob(stage="bench", tokenizer_dir=str(data / "tokenizer"), phases=(phase,), engine=engine(2, 8, "bf16"), seed=0)
    os.environ.update(ENV)
    worker = setup_worker(j)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(j.tokenizer_dir)
    model = build_model(phase, tok)
    eng, _ = build_engine(j, phase, model, worker)
    from tasks.train.data import PackedMix

    mix = PackedMix({str(data): 1.0}, phase.global_batch_size, 0)
    counts = mix.source_counts_before(0)
    times, step_losses = [], []
    for step in range(steps):
        torch.cuda.synchronize()
        t0 = time.monotonic()
        batches, counts = micro_batches(mix, step, counts, phase, worker, tok.eos_token_id, tok.pad_token_id)
        step_losses.append(float(train_step(eng, batches)[0]))
        torch.cuda.synchronize()
        times.append(time.monotonic() - t0)
    timed = times[3:]  # steps 0-2 warm up kernels and the allocator
    tps = phase.global_batch_size * seq_len / (sum(timed) / len(timed))
    peak = peak_flops(None, cuda=True, num_threads=1)
    mfu = flops_per_token(model.config, seq_len) * tps / peak if peak else None
    print(f"GPU {torch.cuda.get_device_name()}: opencoder-1.5b bf16 ZeRO-2 seq {seq_len}, micro-batch {micro_batch} x "
          f"{phase.global_batch_size // micro_batch} accumulation: step seconds {[round(t, 3) for t in times]}, "
          f"losses {[round(x, 3) for x in step_losses]}, peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, "
          f"{tps:.0f} tokens/s, MFU {mfu} (peak {peak and peak / 1e12} TFLOP/s)", flush=True)
    return (round(mfu, 4) if mfu is not None else None), round(tps, 1)


def main() -> None:
    from tests.train.conftest import make_packed, python_sources

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu-only", action="store_true", help="run only the GPU part (needs CUDA)")
    parser.add_argument("--gpu-micro-batch", type=int, default=4, help="micro-batch of the GPU part")
    parser.add_argument("--gpu-global-batch", type=int, default=32, help="sequences per optimizer step of the GPU part")
    parser.add_argument("--gpu-steps", type=int, default=6, help="optimizer steps of the GPU part (the first 3 are not timed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as t:
        tmp = Path(t)
        gpu_mfu, gpu_tps = gpu_figures(tmp, args.gpu_micro_batch, args.gpu_global_batch, args.gpu_steps)
        if args.gpu_only:
            print(json.dumps({"gpu_mfu": gpu_mfu, "gpu_tokens_per_s": gpu_tps, "gpu_micro_batch": args.gpu_micro_batch,
                              "gpu_global_batch": args.gpu_global_batch}))
            return
        data = make_packed(tmp / "data", python_sources("requests", 12), vocab_size=512, seq_len=32)
        diff, killed_at = resume_after_kill(data, tmp)
        print(f"resume: killed after step {killed_at}, max |loss diff| steps 21-40 = {diff:.2e}")
        tiny_data = make_packed(tmp / "tiny-data", python_sources("requests", 18), vocab_size=2048, seq_len=256)
        tps1 = cpu_tokens_per_s(tiny_data, tmp, 1)
        tps2 = cpu_tokens_per_s(tiny_data, tmp, 2)
        print(f"tiny preset on CPU: {tps1:.0f} tokens/s (1 thread), {tps2:.0f} tokens/s (2 threads)")
    print(json.dumps({"resume_max_abs_loss_diff": diff, "resume_killed_after_step": killed_at,
                      "cpu_tokens_per_s_1_thread": round(tps1, 1), "cpu_tokens_per_s_2_threads": round(tps2, 1),
                      "cpu_speedup_2_threads": round(tps2 / tps1, 3), "gpu_mfu": gpu_mfu, "gpu_tokens_per_s": gpu_tps}))


if __name__ == "__main__":
    main()
