"""`TrainJob`: everything a training worker needs, as plain typed data.

Ray Train workers are separate processes, so the stage driver resolves params, paths and the tracker
into a `TrainJob`, sends it as a plain dict (`to_dict`) and the worker rebuilds it strictly
(`from_dict`). A job has one or more `Phase`s run in order on the same workers (SFT stage 1 then 2);
each phase has its own schedule, data, checkpoint folder and export folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from tasks.common.config import build, to_dict


@dataclass(frozen=True, kw_only=True)
class ModelInit:
    preset: dict | None = None
    """A `ModelPreset` as a dict: fresh weights."""
    from_pretrained: str | None = None
    """An HF model folder."""
    from_checkpoint: str | None = None
    """A DeepSpeed checkpoint tag folder written by `checkpoint.py` (its parent holds model_config.json)."""


@dataclass(frozen=True, kw_only=True)
class ScheduleSpec:
    kind: Literal["wsd", "exp", "cosine"]
    peak_lr: float
    """Peak LR (wsd, cosine) or start LR (exp)."""
    total_steps: int
    warmup_steps: int = 0
    final_lr: float = 0.0


@dataclass(frozen=True, kw_only=True)
class DataSpec:
    kind: Literal["packed", "sft"]
    sources: dict[str, float] | None = None
    """packed: tokenize-output folders and weights."""
    sft_path: str | None = None
    """sft: a folder of tokenized examples (`sft_store.py`)."""
    epochs: int = 1
    """sft: passes over the examples (sets the step count)."""
    attention: Literal["causal", "document"] = "causal"


@dataclass(frozen=True, kw_only=True)
class Phase:
    name: str
    model: ModelInit
    data: DataSpec
    schedule: ScheduleSpec
    global_batch_size: int
    micro_batch_size: int
    checkpoint_dir: str
    export_dir: str
    step_offset: int = 0
    """Added to step numbers in the loss CSV and the tracker (phases follow one another)."""


@dataclass(frozen=True, kw_only=True)
class Engine:
    zero_stage: int
    precision: Literal["auto", "fp32", "bf16"]
    weight_decay: float
    adam_beta1: float
    adam_beta2: float
    adam_eps: float
    gradient_clipping: float
    gradient_checkpointing: bool
    num_threads: int
    peak_tflops: float | None
    attention_implementation: Literal["auto", "packed_sdpa", "flash_attention_2"] = "auto"
    """auto: FlashAttention-2 where installed (CUDA, bf16), else `packed_sdpa` (`attention.py`)."""
    prefetch_steps: int = 2
    """Steps whose micro-batches a background thread prepares ahead of the training step."""


@dataclass(frozen=True, kw_only=True)
class TrainJob:
    stage: str
    tokenizer_dir: str
    phases: tuple[Phase, ...]
    engine: Engine
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int | None = 2
    stop_after_steps: int | None = None
    plot_csv: str | None = None
    tracker_uri: str | None = None
    tracker_run_id: str | None = None
    chat_model: bool = False
    """Exported generation config stops at <|im_end|> as well as EOS."""
    export_meta: dict | None = None
    """Extra entries for the exported cookbook.json (tokenizer hash, preset, ...)."""


def to_plain(job: TrainJob) -> dict:
    return to_dict(job)


def from_plain(data: dict) -> TrainJob:
    return build(TrainJob, data)


SAMPLED_ABOVE = 64 << 20
"""Files larger than this are identified by size plus their first and last MiB (multi-GB weights, token shards)."""


def content_digest(path: str | Path) -> str:
    """Identity of a file or folder's contents (relative names, sizes, bytes); '' when it does not exist.
    Small files are hashed whole; larger ones by size and their first and last MiB, which any rewrite of
    weights or token shards changes, without reading gigabytes at every (re)start."""
    root = Path(path)
    if not root.exists():
        return ""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(root) if file != root else file.name}\0{size}\0".encode())
        with open(file, "rb") as fh:
            if size <= SAMPLED_ABOVE:
                digest.update(fh.read())
            else:
                digest.update(fh.read(1 << 20))
                fh.seek(size - (1 << 20))
                digest.update(fh.read())
    return digest.hexdigest()


def input_identity(phase: Phase) -> dict[str, str]:
    """The contents a phase starts from, so a checkpoint is never resumed on top of changed inputs (a re-run
    upstream stage writes new weights or data to the same path)."""
    inputs: dict[str, str] = {}
    if phase.model.from_pretrained:
        inputs["model"] = content_digest(phase.model.from_pretrained)
    if phase.model.from_checkpoint:
        inputs["checkpoint"] = content_digest(phase.model.from_checkpoint)
    for source in sorted(phase.data.sources or {}):
        inputs[f"data:{source}"] = content_digest(source)
    if phase.data.sft_path:
        inputs["data"] = content_digest(phase.data.sft_path)
    return inputs


def fingerprint(job: TrainJob, phase: Phase) -> str:
    """What a checkpoint must match to be resumed: the phase, the numerics-relevant job settings and the
    contents of the phase's input model and data (not just their paths)."""
    stable = replace(job, stop_after_steps=None, tracker_uri=None, tracker_run_id=None, plot_csv=None, phases=(),
                     export_meta=None, log_every=0, checkpoint_every=0, keep_checkpoints=None)
    stable_phase = replace(phase, export_dir="")
    blob = json.dumps({"job": to_dict(stable), "phase": to_dict(stable_phase), "inputs": input_identity(phase)},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
