"""The `sft` stage: supervised fine-tuning with the chat template and response-only loss (spec §8).

    cookbook sft --input models/anneal --output models/sft [--set sft.variant=stage1-only]

Variants (Table 10): `two-stage` (stage 1, then stage 2 from stage 1's weights: the paper's recipe),
`mix` (both stages' sets shuffled together, stage 1's hyper-parameters), `stage1-only`. Each phase:
linear warmup then cosine; examples encoded by `chat.py` (labels -100 on the prompt), stored flat
(`sft_store.py`) and packed without padding per micro-batch (`attention.py`).
Both phases run in one Ray Train job; each has a checkpoint folder under checkpoints/sft/.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from tasks.curate.sft_sets import load_sets
from tasks.train import driver
from tasks.train.chat import encode_example
from tasks.train.config import SftConfig, SftStageConfig
from tasks.train.export import read_meta
from tasks.train.job import DataSpec, ModelInit, Phase, ScheduleSpec
from tasks.train.sft_store import OFFSETS, write_store


def stage_plan(cfg: SftConfig) -> list[tuple[str, SftStageConfig]]:
    if cfg.variant == "stage1-only":
        return [("stage1", cfg.stage1)]
    if cfg.variant == "mix":
        return [("mix", replace(cfg.stage1, sets=cfg.stage1.sets + cfg.stage2.sets))]
    return [("stage1", cfg.stage1), ("stage2", cfg.stage2)]


def write_examples(tokenizer, stage: SftStageConfig, folder: Path, seed: int) -> tuple[Path, int]:
    """Encode a stage's sets into a flat example store (`sft_store.py`), named by content hash so changed data
    never resumes old checkpoints."""
    rows = load_sets(stage.sets)
    if stage.max_examples is not None and len(rows) > stage.max_examples:
        keep = sorted(np.random.default_rng(seed).choice(len(rows), size=stage.max_examples, replace=False))
        rows = [rows[i] for i in keep]
    pairs = [encode_example(tokenizer, r["instruction"], r["output"], stage.max_len) for r in rows]
    digest = hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:12]
    path = folder / f"examples-{digest}"
    if not (path / OFFSETS).exists():
        write_store(path, pairs)
    return path, len(pairs)


def run(params, input: Path | None, output: Path, tracker) -> dict:
    from transformers import AutoTokenizer

    cfg: SftConfig = params.sft
    tokenizer = AutoTokenizer.from_pretrained(input)
    folder, plot_csv = driver.paths("sft", output)
    plan, counts = [], {}
    for name, stage in stage_plan(cfg):
        path, n = write_examples(tokenizer, stage, folder / "data", cfg.seed)
        steps = stage.epochs * math.ceil(n / stage.global_batch_size)
        plan.append((name, stage, path, steps))
        counts[f"examples_{name}"] = n

    def job_for(export_dir: Path):
        phases, init, offset = [], ModelInit(from_pretrained=str(Path(input).resolve())), 0
        for i, (name, stage, path, steps) in enumerate(plan):
            last = i == len(plan) - 1
            phase_export = export_dir if last else folder / name / "export"
            phases.append(Phase(
                name=name, model=init, data=DataSpec(kind="sft", sft_path=str(path), epochs=stage.epochs),
                schedule=ScheduleSpec(kind="cosine", peak_lr=stage.lr, warmup_steps=stage.warmup_steps,
                                      final_lr=stage.lr_final, total_steps=steps),
                global_batch_size=stage.global_batch_size, micro_batch_size=stage.micro_batch_size,
                checkpoint_dir=str(folder / name), export_dir=str(phase_export), step_offset=offset))
            init, offset = ModelInit(from_pretrained=str(phase_export)), offset + steps
        return driver.make_job("sft", cfg, phases, tokenizer_dir=Path(input), plot_csv=plot_csv, tracker=tracker,
                               chat_model=True, export_meta={**read_meta(input), "stage": "sft", "variant": cfg.variant})

    summaries = driver.train(job_for, cfg, params, output, folder)
    tracker.log_artifact(plot_csv)
    return driver.stage_metrics(summaries, variant=cfg.variant, **counts, checkpoint_dir=str(folder), plot_csv=str(plot_csv))
