"""The `pretrain` stage: a preset Llama trained from scratch on packed tokens with the WSD schedule.

    cookbook pretrain --input data/tokenize --output models/pretrain [--set pretrain.steps=200]

The data/model contract is checked first (`contract.py`); then one `TrainJob` phase runs on Ray Train
+ DeepSpeed (`loop.py`): linear warmup to `lr`, then constant (the decay is the `anneal` stage).
Checkpoints go to checkpoints/pretrain/ (resumed after a crash), the loss curve to plots/pretrain.csv,
the model to models/pretrain/ (HF format, with the tokenizer and chat template).
"""

from __future__ import annotations

from pathlib import Path

from tasks.train import driver
from tasks.train.config import PretrainConfig
from tasks.train.contract import check_data
from tasks.train.job import DataSpec, ModelInit, Phase, ScheduleSpec
from tasks.train.presets import get_preset, preset_dict


def run(params, input: Path | None, output: Path, tracker) -> dict:
    cfg: PretrainConfig = params.pretrain
    preset = get_preset(cfg.preset)
    meta = check_data(input, vocab_size=preset.vocab_size, max_positions=preset.max_position_embeddings)
    folder, plot_csv = driver.paths("pretrain", output)

    def job_for(export_dir: Path):
        phase = Phase(
            name="pretrain", model=ModelInit(preset=preset_dict(preset)),
            data=DataSpec(kind="packed", sources={str(Path(input).resolve()): 1.0}, attention=cfg.attention),
            schedule=ScheduleSpec(kind="wsd", peak_lr=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps),
            global_batch_size=cfg.global_batch_size, micro_batch_size=cfg.micro_batch_size,
            checkpoint_dir=str(folder), export_dir=str(export_dir))
        return driver.make_job("pretrain", cfg, [phase], tokenizer_dir=Path(input) / "tokenizer", plot_csv=plot_csv,
                               tracker=tracker, export_meta={"stage": "pretrain", "preset": preset.name,
                                                             "tokenizer_hash": meta["tokenizer_hash"], "seq_len": meta["seq_len"]})

    summaries = driver.train(job_for, cfg, params, output, folder)
    tracker.log_artifact(plot_csv)
    return driver.stage_metrics(summaries, preset=preset.name, tokens_per_step=cfg.global_batch_size * meta["seq_len"],
                                tokenizer_hash=meta["tokenizer_hash"], checkpoint_dir=str(folder), plot_csv=str(plot_csv))
