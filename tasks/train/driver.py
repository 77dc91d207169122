"""Stage-side helpers shared by `pretrain`, `anneal` and `sft`: resolve params into a `TrainJob`,
launch it on Ray Train, and turn the workers' summaries into the stage's metrics.

The output folder is written atomically: the last phase exports into a temporary folder that
replaces the output only when training finished (a run ended by `stop_after_steps` leaves the previous
output, and its checkpoints, in place). A finished model is then logged to the stage's MLflow run as a
model with its tokenizer.

The workers run under Ray Train, whose worker logs do not reach this process; `LossLines` follows the loss CSV
that rank 0 writes (line-buffered) and logs here the loss every `log_every` steps of each phase, one line each
(`pretrain step 20/100 loss 6.1234 lr 0.0003 tok/s 2,100`), and while no step finishes (the workers starting, a
long step) a line at least every 10 s saying what it waits for.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from tasks.common.progress import PROGRESS_INTERVAL_S, format_duration
from tasks.common.shards import atomic_dir
from tasks.stages import STAGES
from tasks.train import checkpoint as ckpt
from tasks.train.config import TrainCommon
from tasks.train.export import log_model
from tasks.train.flops import default_threads
from tasks.train.job import Engine, Phase, TrainJob


log = logging.getLogger("cookbook.train")


class _Stopped(Exception):
    """Training ended early (stop_after_steps): do not replace the output."""


def paths(stage: str, output: Path) -> tuple[Path, Path]:
    folder, plot_csv = ckpt.stage_paths(stage, output, STAGES[stage].output)
    return folder.resolve(), plot_csv.resolve()


def engine_settings(cfg: TrainCommon) -> Engine:
    threads = cfg.cpus_per_worker if not cfg.use_gpu else min(cfg.cpus_per_worker, default_threads())
    return Engine(zero_stage=cfg.zero_stage, precision=cfg.precision, weight_decay=cfg.weight_decay,
                  adam_beta1=cfg.adam_beta1, adam_beta2=cfg.adam_beta2, adam_eps=cfg.adam_eps,
                  gradient_clipping=cfg.gradient_clipping, gradient_checkpointing=cfg.gradient_checkpointing,
                  num_threads=threads, peak_tflops=cfg.peak_tflops, attention_implementation=cfg.attention_implementation,
                  prefetch_steps=cfg.prefetch_steps)


def live_curve(plot_csv: str | Path) -> Path:
    """Where a running job writes its loss rows (a hidden sibling of the plot CSV, followed by the terminal):
    the plot CSV itself is replaced by it only when the stage's model is published, so a reader (or a kill)
    never finds a new curve beside the previous model."""
    plot_csv = Path(plot_csv)
    return plot_csv.with_name(f".{plot_csv.name}.live")


def publish_curve(job: TrainJob, plot_csv: str | Path) -> None:
    """The finished job's loss rows become the plot CSV, in one rename."""
    live = Path(job.plot_csv)
    if live.exists():
        os.replace(live, plot_csv)


def make_job(stage: str, cfg: TrainCommon, phases: list[Phase], *, tokenizer_dir: Path, plot_csv: Path, tracker,
             chat_model: bool = False, export_meta: dict | None = None) -> TrainJob:
    """The job of a training stage; its loss rows go to `live_curve(plot_csv)` while it runs."""
    return TrainJob(stage=stage, tokenizer_dir=str(Path(tokenizer_dir).resolve()), phases=tuple(phases),
                    engine=engine_settings(cfg), seed=cfg.seed, log_every=cfg.log_every,
                    checkpoint_every=cfg.checkpoint_every, keep_checkpoints=cfg.keep_checkpoints,
                    stop_after_steps=cfg.stop_after_steps, plot_csv=str(live_curve(plot_csv)), tracker_uri=tracker.uri,
                    tracker_run_id=tracker.run_id, chat_model=chat_model, export_meta=export_meta)


def train(job_for_export, cfg: TrainCommon, params, output: Path, checkpoint_root: Path) -> list[dict]:
    """Build the job for a temporary export folder, run it on Ray Train, return the phase summaries."""
    from tasks.train.launcher import launch

    try:
        # the curve is published while neither model is in place: a reader or a kill finds no output then,
        # never the new curve beside the previous model (a re-run after a kill resumes every phase)
        with atomic_dir(output, while_absent=lambda: publish_curve(job, paths(job.stage, output)[1])) as tmp:
            job = job_for_export(tmp.resolve())
            with LossLines(job):
                launch(job, num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, cpus_per_worker=cfg.cpus_per_worker,
                       storage_path=checkpoint_root / ckpt.RAY_DIR, ray_address=params.compute.ray_address,
                       max_failures=cfg.max_failures)
            summaries = read_summaries(job)
            if any(s["stopped"] for s in summaries) or len(summaries) < len(job.phases):
                raise _Stopped
    except _Stopped:
        return read_summaries(job)
    log_model_tolerant(output, job.stage, job.tracker_uri, job.tracker_run_id)
    return summaries


def log_model_tolerant(output: Path, stage: str, tracker_uri: str | None, run_id: str | None) -> None:
    """Log the published model to the stage's MLflow run; a tracking server that went away is a warning (the
    model is on disk), as it is for every other tracking call."""
    from tasks.common.tracking import is_server_unreachable

    try:
        log_model(output, tracker_uri, run_id, name=stage)
    except Exception as exc:
        if not is_server_unreachable(exc):
            raise
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        log.warning("MLflow tracking lost (%s: %s): the model in %s was not logged", tracker_uri, first_line, output)


def read_summaries(job: TrainJob) -> list[dict]:
    out = []
    for phase in job.phases:
        s = ckpt.read_json(Path(phase.checkpoint_dir) / ckpt.SUMMARY)
        if s is not None:
            out.append(s)
    return out


def stage_metrics(summaries: list[dict], **extra) -> dict:
    """The stage's metrics: per-phase summaries plus the headline numbers of the last phase."""
    last = summaries[-1]
    first_loss = summaries[0]["first_loss"]
    return {
        "steps": sum(s["steps_done"] for s in summaries),
        "first_loss": first_loss,
        "final_loss": last["final_loss"],
        "loss_decreased": bool(first_loss is not None and last["final_loss"] is not None and last["final_loss"] < first_loss),
        "stopped": any(s["stopped"] for s in summaries),
        "train_seconds": round(sum(s["seconds"] for s in summaries), 3),
        "tokens_per_s": last.get("tokens_per_s"),
        "phases": {s["phase"]: s for s in summaries},
        **{key: project_relative(value) for key, value in extra.items()},
    }


def project_relative(value):
    """An absolute path inside the project folder as a relative one (metrics are compared across clones and
    DVC experiment copies); anything else unchanged."""
    if isinstance(value, str) and Path(value).is_absolute():
        try:
            return str(Path(value).relative_to(Path.cwd()))
        except ValueError:
            return value
    return value


def write_job_file(folder: Path, job: TrainJob) -> None:
    from tasks.train.job import to_plain

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "resolved_job.json").write_text(json.dumps(to_plain(job), indent=2))


def loss_line(row: list[str], phases: tuple[Phase, ...], log_every: int) -> str | None:
    """The terminal line of a loss-CSV row (step shifted by its phase's offset, loss, lr, tokens/s), when its step
    is one the loop logs (every `log_every` steps of its phase, and the phase's last); else None."""
    try:
        shown, loss, lr, tokens_per_s = int(row[0]), float(row[1]), float(row[2]), float(row[3])
    except (ValueError, IndexError):
        return None
    for phase in phases:
        step, total = shown - phase.step_offset, phase.schedule.total_steps
        if 0 < step <= total:
            if step % log_every and step != total:
                return None
            return f"{phase.name} step {step}/{total} loss {loss:.4f} lr {lr:.3g} tok/s {tokens_per_s:,.0f}"
    return None


class LossLines:
    """While training runs (a context manager around `launch`): a thread that follows `job.plot_csv` and logs
    `loss_line` of every new row (`emit`), and a waiting line when nothing was logged for `interval` seconds.
    A phase resumed from a checkpoint rewrites the CSV: rows already shown are not shown again."""

    def __init__(self, job: TrainJob, emit=None, interval: float = PROGRESS_INTERVAL_S, poll_s: float = 0.5):
        self.csv = Path(job.plot_csv) if job.plot_csv else None
        self.phases, self.log_every, self.stage = job.phases, max(1, job.log_every), job.stage
        self.emit, self.interval, self.poll_s = emit or log.info, interval, poll_s
        self.shown_until = 0  # the highest step whose row was read
        self.offset, self.last_row = 0, b""  # bytes read so far; the last complete row among them
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._follow, name=f"{job.stage}-loss-lines", daemon=True)

    def __enter__(self) -> "LossLines":
        self.started = self.last = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _follow(self) -> None:
        while not self.stop.wait(self.poll_s):
            self.read_new_rows()
            self.heartbeat()
        self.read_new_rows()

    def read_new_rows(self) -> None:
        if self.csv is None or not self.csv.exists():
            return
        try:
            with self.csv.open("rb") as f:
                f.seek(max(0, self.offset - len(self.last_row)))
                chunk = f.read()
        except OSError:
            return
        if self.offset and not chunk.startswith(self.last_row):  # rewritten (a resumed phase): read it again,
            self.offset, chunk = 0, self.csv.read_bytes()          # skipping the steps already shown
        else:
            chunk = chunk[len(self.last_row):] if self.offset else chunk
        complete = chunk[: chunk.rfind(b"\n") + 1]
        if not complete:
            return
        self.offset += len(complete)
        self.last_row = complete[complete.rstrip(b"\n").rfind(b"\n") + 1:]
        for text in complete.decode(errors="replace").splitlines():
            row = text.split(",")
            if not row[0].strip().isdigit() or int(row[0]) <= self.shown_until:
                continue
            self.shown_until = int(row[0])
            line = loss_line(row, self.phases, self.log_every)
            if line:
                self.emit(line)
                self.last = time.monotonic()

    def heartbeat(self) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        running = format_duration(now - self.started)
        if self.shown_until == 0:
            self.emit(f"{self.stage}: starting the Ray Train workers and the first step ({running})")
        else:
            phase = next((p for p in self.phases if self.shown_until <= p.step_offset + p.schedule.total_steps),
                         self.phases[-1])
            step = self.shown_until - phase.step_offset
            self.emit(f"{self.stage}: {phase.name} at step {step}/{phase.schedule.total_steps} ({running})")
