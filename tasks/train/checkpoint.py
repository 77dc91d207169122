"""DeepSpeed checkpoints for exact resume, and where a training stage keeps them.

A phase's checkpoint folder holds `job.json` (the fingerprint of the job it belongs to), DeepSpeed tag
folders `step_NNNNNNNN/` (model, optimizer and `client_state`: the step, the data position and the
last loss), the `latest` pointer DeepSpeed writes after a tag is complete (so a kill -9 during a save
falls back to the previous tag), `model_config.json` (so a tag can seed another stage, e.g. annealing
branches) and `summary.json` after the phase ends. A folder whose fingerprint differs (params
changed) is wiped rather than resumed.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
MODEL_CONFIG = "model_config.json"
SUMMARY = "summary.json"
LOSS_ROWS = "loss.csv"
"""The phase's loss CSV rows, kept with its checkpoints (`loop.LossLog`)."""
RAY_DIR = "ray"
"""Ray Train's storage folder inside a stage's checkpoint folder (never wiped by `prepare`)."""


def tag(step: int) -> str:
    return f"step_{step:08d}"


def stage_paths(stage: str, output: Path, default_output: str) -> tuple[Path, Path]:
    """(checkpoint folder, loss CSV): checkpoints/<stage>/ and plots/<stage>.csv for the pipeline's
    default output, else siblings of the output (`<output>.checkpoints/`, `<output>.loss.csv`)."""
    output = Path(output)
    if output.resolve() == Path(default_output).resolve():
        return Path("checkpoints") / stage, Path("plots") / f"{stage}.csv"
    return output.with_name(output.name + ".checkpoints"), output.with_name(output.name + ".loss.csv")


def prepare(folder: str | Path, fingerprint: str) -> bool:
    """Make `folder` hold checkpoints of this job; return whether an existing one can be resumed."""
    folder = Path(folder)
    job_file = folder / JOB_FILE
    if job_file.exists() and json.loads(job_file.read_text()).get("fingerprint") == fingerprint:
        return (folder / "latest").exists()
    if folder.exists() and any(p.name != RAY_DIR for p in folder.iterdir()):
        log.warning("%s belongs to a different job (params changed): starting from scratch", folder)
        for p in folder.iterdir():
            if p.name != RAY_DIR:  # Ray Train's run folder of the current launch lives here too
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps({"fingerprint": fingerprint}))
    return False


def prune(folder: str | Path, keep: int | None) -> None:
    if keep is None:
        return
    tags = sorted(p for p in Path(folder).glob("step_*") if p.is_dir())
    for old in tags[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def load_module_weights(tag_dir: str | Path) -> dict[str, torch.Tensor]:
    """Full model weights of a ZeRO 0-2 checkpoint tag (ZeRO-3 tags hold shards only)."""
    tag_dir = Path(tag_dir)
    files = sorted(tag_dir.glob("mp_rank_*_model_states.pt"))
    if not files:
        raise FileNotFoundError(f"{tag_dir}: not a DeepSpeed checkpoint tag (no mp_rank_*_model_states.pt)")
    state = torch.load(files[0], map_location="cpu", weights_only=False)
    module = state["module"]
    if state.get("ds_config", {}).get("zero_optimization", {}).get("stage") == 3 or not module:
        raise ValueError(f"{tag_dir}: a ZeRO-3 checkpoint holds only shards; export it as an HF model first")
    return {k: v.float() for k, v in module.items()}
