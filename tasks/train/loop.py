"""The training loop every training stage runs, once per worker: `train_loop(job_dict)`.

Read top to bottom: rebuild the job, set up the process (threads, device, process group, tracker),
then for each phase: build the model (in the training dtype, partitioned at construction under ZeRO-3:
`modeling.py`; packed attention without masks: `attention.py`), the data and the DeepSpeed engine; resume
from the newest checkpoint of this job if there is one; loop over optimizer steps (LR from the schedule,
this rank's micro-batches prepared by a background thread, gradient accumulation, log, checkpoint); export
an HF folder. Ray Train's TorchTrainer calls it (`launcher.py`); it also runs as N plain torch.distributed
processes (`local_launch.py`: multi-process tests, benchmarks).

Exact resume: the LR and the data are pure functions of the step (`schedule.py`, `data.py`); the
DeepSpeed checkpoint restores weights, optimizer moments and the engine's step counter, and its client
state the data position (per-source counts of a weighted mix).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from tasks.train import checkpoint as ckpt
from tasks.train.data import PackedMix, Prefetcher, SftExamples, causal_lm_batch, micro_slices
from tasks.train.ds_config import deepspeed_config, grad_accum_steps
from tasks.train.flops import flops_per_token, peak_flops
from tasks.train.job import Phase, TrainJob, fingerprint, from_plain
from tasks.train.schedule import lr_at

log = logging.getLogger(__name__)
CSV_COLUMNS = ("step", "loss", "lr", "tokens_per_s")


@dataclass
class Worker:
    rank: int
    world_size: int
    device: torch.device
    tracker: object
    num_threads: int


def train_loop(config: dict) -> None:
    job = from_plain(config)
    worker = setup_worker(job)
    for phase in job.phases:
        summary = run_phase(job, phase, worker)
        if summary["stopped"]:
            break


def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory instead of returning it to the kernel after every step.

    Each CPU step allocates and frees the same large tensors (logits, activations, gradient buckets); by
    default glibc serves them with fresh mmap()s, and the page faults of first touch serialise the threads
    in the kernel: with 2 threads, fill_ and log_softmax ran 3x slower than with 1, and the step scaled
    1.18x instead of 1.6x (tiny preset, benchmarks/train.py). Returns False where malloc is not glibc's."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    return all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, 32 << 20),  # glibc's largest allowed: blocks up to 32 MiB come from the heap
        (M_TRIM_THRESHOLD, 1 << 30),  # keep up to 1 GiB of free heap top
        (M_TOP_PAD, 256 << 20),
    ))


def setup_worker(job: TrainJob) -> Worker:
    import deepspeed

    from tasks.common.tracking import MlflowTracker, NullTracker

    torch.set_num_threads(job.engine.num_threads)
    if not torch.cuda.is_available():
        retain_freed_memory()
    if not dist.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    tracker = MlflowTracker.attach(job.tracker_uri, job.tracker_run_id) if rank == 0 and job.tracker_run_id else NullTracker()
    return Worker(rank, world, device, tracker, job.engine.num_threads)


def half_precision(job: TrainJob, worker: Worker) -> bool:
    """bf16 training (asked for, or `auto` on a GPU)."""
    return job.engine.precision == "bf16" or (job.engine.precision == "auto" and worker.device.type == "cuda")


def engine_config(job: TrainJob, phase: Phase, worker: Worker) -> dict:
    eng = job.engine
    return deepspeed_config(
        micro_batch_size=phase.micro_batch_size, world_size=worker.world_size, zero_stage=eng.zero_stage,
        bf16=half_precision(job, worker), gradient_clipping=eng.gradient_clipping,
        grad_accum_steps=grad_accum_steps(phase.global_batch_size, phase.micro_batch_size, worker.world_size))


def build_model(job: TrainJob, phase: Phase, tokenizer, worker: Worker, ds_config: dict):
    """The phase's model in the training dtype, partitioned at construction under ZeRO-3 (`modeling.py`): fresh
    weights from a preset, an HF folder, or a DeepSpeed checkpoint tag; with the attention implementation set."""
    from tasks.train import attention, modeling
    from tasks.train.presets import ModelPreset, llama_config

    init = phase.model
    dtype = torch.bfloat16 if half_precision(job, worker) else torch.float32
    where = dict(dtype=dtype, device=worker.device, ds_config=ds_config)
    if init.from_pretrained:
        model = modeling.pretrained_model(init.from_pretrained, **where)
    elif init.from_checkpoint:
        model = modeling.checkpoint_model(init.from_checkpoint, rank=worker.rank, **where)
    else:
        config = llama_config(ModelPreset(**init.preset), len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        model = modeling.fresh_model(config, seed=job.seed, rank=worker.rank, **where)
    attention.register()
    model.config._attn_implementation = attention.choose_implementation(
        job.engine.attention_implementation, cuda=worker.device.type == "cuda", half_precision=dtype == torch.bfloat16)
    model.config.use_cache = False
    return model


def build_engine(job: TrainJob, phase: Phase, model, worker: Worker, ds_config: dict):
    import deepspeed

    eng = job.engine
    if eng.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    decay = [p for p in model.parameters() if full_ndim(p) >= 2]
    no_decay = [p for p in model.parameters() if full_ndim(p) < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": eng.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=phase.schedule.peak_lr, betas=(eng.adam_beta1, eng.adam_beta2), eps=eng.adam_eps,
        fused=worker.device.type == "cuda",
    )
    engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
    return engine, optimizer


def full_ndim(param: torch.nn.Parameter) -> int:
    """Dimensions of a parameter, also when ZeRO-3 holds it as a flat shard."""
    return len(param.ds_shape) if hasattr(param, "ds_shape") else param.ndim


def make_data(job: TrainJob, phase: Phase):
    if phase.data.kind == "packed":
        return PackedMix(dict(phase.data.sources), phase.global_batch_size, job.seed)
    return SftExamples(phase.data.sft_path, phase.global_batch_size, phase.data.epochs, job.seed)


def rank_micro_batches(data, step: int, counts, phase: Phase, worker: Worker, eos_id: int):
    """This rank's micro-batches of `step` (CPU tensors; pinned for a GPU), and the data position after it.
    Only this rank's sequences / examples are read."""
    slices = micro_slices(phase.global_batch_size, phase.micro_batch_size, worker.world_size, worker.rank)
    if isinstance(data, PackedMix):
        rows, counts = data.rank_batch(step, counts, slices)
        batches = [causal_lm_batch(r, attention=phase.data.attention, eos_id=eos_id) for r in rows]
    else:
        indices = data.batch(step)
        batches = [data.collate(indices[s]) for s in slices]
    if worker.device.type == "cuda":
        batches = [{k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in b.items()} for b in batches]
    return batches, counts


def to_device(batches: list[dict], device: torch.device) -> list[dict]:
    return [{k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in b.items()} for b in batches]


def micro_batches(data, step: int, counts, phase: Phase, worker: Worker, eos_id: int, pad_id: int | None = None):
    """This rank's micro-batches of `step` on the device, and the data position after it (no prefetch)."""
    batches, counts = rank_micro_batches(data, step, counts, phase, worker, eos_id)
    return to_device(batches, worker.device), counts


def train_step(engine, batches) -> tuple[float, int]:
    """Forward/backward every micro-batch (DeepSpeed steps the optimizer at the boundary)."""
    losses, num_tokens = [], 0
    for batch in batches:
        loss = engine(**batch).loss
        engine.backward(loss)
        engine.step()
        losses.append(loss.detach().float())
        num_tokens += count_tokens(batch)
    return torch.stack(losses).mean(), num_tokens


def count_tokens(batch: dict) -> int:
    """Tokens of a micro-batch (packed rows carry no padding)."""
    return batch["input_ids"].numel()


def global_mean(value: torch.Tensor, worker: Worker) -> float:
    value = value.to(worker.device)
    if worker.world_size > 1:
        dist.all_reduce(value)
        value = value / worker.world_size
    return float(value)


def run_phase(job: TrainJob, phase: Phase, worker: Worker) -> dict:
    from transformers import AutoTokenizer

    from tasks.train.export import export_hf

    tokenizer = AutoTokenizer.from_pretrained(job.tokenizer_dir)
    folder = Path(phase.checkpoint_dir)
    if worker.rank == 0:
        ckpt.prepare(folder, fingerprint(job, phase))
    dist.barrier()
    ds_config = engine_config(job, phase, worker)
    model = build_model(job, phase, tokenizer, worker, ds_config)
    if worker.rank == 0:
        (folder / ckpt.MODEL_CONFIG).write_text(model.config.to_json_string())
    data = make_data(job, phase)
    total_steps = phase.schedule.total_steps
    engine, optimizer = build_engine(job, phase, model, worker, ds_config)
    start_step, resumed_from, first_loss, last_loss, counts = 0, None, None, None, None
    if (folder / "latest").exists():
        _, client = engine.load_checkpoint(str(folder), load_optimizer_states=True, load_lr_scheduler_states=False)
        start_step, resumed_from = client["step"], client["step"]
        first_loss, last_loss, counts = client.get("first_loss"), client.get("loss"), client.get("source_counts")
        log.info("%s: resumed from step %d", phase.name, start_step)
    if isinstance(data, PackedMix):  # the data position: kept in the checkpoint, else replayed from the draws
        counts = np.asarray(counts, dtype=np.int64) if counts is not None else data.source_counts_before(start_step)
    csv_file = (LossLog(job.plot_csv, folder / ckpt.LOSS_ROWS, phase.step_offset, start_step)
                if worker.rank == 0 and job.plot_csv else None)
    earlier = json.loads((folder / ckpt.SUMMARY).read_text()) if start_step >= total_steps and (folder / ckpt.SUMMARY).exists() else {}
    fpt = flops_per_token(model.config, data.seq_len)
    peak = peak_flops(job.engine.peak_tflops, cuda=worker.device.type == "cuda", num_threads=worker.num_threads)
    started, step, stopped, tokens_done = time.monotonic(), start_step, False, 0
    eos_id = tokenizer.eos_token_id
    prefetch = Prefetcher(lambda s, c: rank_micro_batches(data, s, c, phase, worker, eos_id), start_step, total_steps,
                          counts, depth=max(1, job.engine.prefetch_steps))
    engine.train()
    try:
        while step < total_steps:
            lr = lr_at(step, phase.schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            t0 = time.monotonic()
            _, batches, counts = prefetch.next()
            loss_t, num_tokens = train_step(engine, to_device(batches, worker.device))
            loss = global_mean(loss_t, worker)
            tokens_done += num_tokens * worker.world_size
            tokens_per_s = num_tokens * worker.world_size / max(1e-9, time.monotonic() - t0)
            step += 1
            first_loss = loss if first_loss is None else first_loss
            last_loss = loss
            shown = phase.step_offset + step
            if csv_file:
                csv_file.write([shown, f"{loss:.6f}", f"{lr:.6g}", f"{tokens_per_s:.1f}"])
            if step % job.log_every == 0 or step == total_steps:
                mfu = fpt * tokens_per_s / (peak * worker.world_size) if peak else None
                worker.tracker.log_metrics({"loss": loss, "lr": lr, "tokens_per_s": tokens_per_s, **({"mfu": mfu} if mfu else {})}, step=shown)
                log.info("%s step %d/%d loss %.4f lr %.3g tok/s %.0f", phase.name, step, total_steps, loss, lr, tokens_per_s)
            stopped = job.stop_after_steps is not None and step >= job.stop_after_steps and step < total_steps
            if step % job.checkpoint_every == 0 or step == total_steps or stopped:
                save_checkpoint(engine, folder, step, {"loss": loss, "first_loss": first_loss}, counts, job, worker)
            if stopped:
                break
    finally:
        prefetch.close()
    if not stopped:
        export_hf(engine, Path(phase.export_dir), job.tokenizer_dir, zero_stage=job.engine.zero_stage,
                  chat_model=job.chat_model, meta={**(job.export_meta or {}), "phase": phase.name, "steps": total_steps}, rank=worker.rank)
    summary = {"phase": phase.name, "steps_done": step, "total_steps": total_steps, "resumed_from": resumed_from,
               "first_loss": first_loss, "final_loss": last_loss, "stopped": stopped,
               "seconds": round(time.monotonic() - started, 3), "flops_per_token": fpt,
               "tokens_per_s": tokens_done / max(1e-9, time.monotonic() - started),
               "mfu": fpt * tokens_done / max(1e-9, time.monotonic() - started) / (peak * worker.world_size) if peak else None}
    if tokens_done == 0 and earlier:  # a finished phase resumed: its throughput is the run's that trained it
        summary.update({k: earlier.get(k) for k in ("tokens_per_s", "mfu")})
    if worker.rank == 0:
        (folder / ckpt.SUMMARY).write_text(json.dumps(summary))
    dist.barrier()
    return summary


def save_checkpoint(engine, folder: Path, step: int, losses: dict, counts, job: TrainJob, worker: Worker) -> None:
    """A DeepSpeed checkpoint whose client state carries the step, `losses` (this step's and the phase's first,
    so a resumed phase reports the whole phase) and the data position."""
    client = {"step": step, **losses, "source_counts": None if counts is None else np.asarray(counts).tolist()}
    engine.save_checkpoint(str(folder), tag=ckpt.tag(step), client_state=client)
    if worker.rank == 0:
        ckpt.prune(folder, job.keep_checkpoints)


class LossLog:
    """The loss CSV of a job (`plot_csv`, all phases, steps shifted by each phase's offset), with a copy of the
    phase's own rows in its checkpoint folder. `dvc repro` deletes the plot CSV before a stage re-runs, but
    not the checkpoints: a phase resumed from its checkpoint (a finished one too) takes its earlier rows back
    from the copy, so the curve stays whole. Rows after the resumed step are dropped (they are re-done)."""

    def __init__(self, plot_csv: str | Path, copy: Path, step_offset: int, start_step: int) -> None:
        resumed_until = step_offset + start_step
        earlier = [r for r in read_rows(plot_csv) if int(r[0]) <= step_offset]  # earlier phases of this job
        phase_rows = read_rows(copy) or read_rows(plot_csv)
        phase_rows = [r for r in phase_rows if step_offset < int(r[0]) <= resumed_until] if start_step > 0 else []
        self.files = [open_rows(plot_csv, earlier + phase_rows), open_rows(copy, phase_rows)]

    def write(self, row: list) -> None:
        for writer in self.files:
            writer.writerow(row)


def read_rows(path: str | Path) -> list[list[str]]:
    """Data rows of a loss CSV ([] when it does not exist)."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return [r for r in list(csv.reader(f))[1:] if r]


def open_rows(path: str | Path, rows: list[list[str]]):
    """A CSV writer on `path`, which now holds the header and `rows` (line-buffered, for live plots)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = csv.writer(open(path, "w", newline="", buffering=1))
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return writer
