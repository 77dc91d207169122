"""The `anneal` stage: continue from pretraining with an exponentially decaying LR on a weighted data mix.

    cookbook anneal --input models/pretrain --output models/anneal
    cookbook anneal --input models/pretrain --output models/anneal-b \\
        --set anneal.init_from=checkpoints/pretrain/step_00000050 --set 'anneal.sources={data/tokenize: 1.0}'

LR: `lr_start * (lr_final / lr_start) ** (s / (steps - 1))` (§7: 3e-4 -> 1e-5). Data: the packed
folders of `anneal.sources`, sampled by weight: by default Table 3's mix of the replayed pretraining data
(data/tokenize), the algorithmic corpus and synthetic data (data/tokenize/algorithmic, /synthetic). Empty
sources are left out and the rest renormalised; `anneal.high_quality=false` replays the pretraining data
alone (the "without high-quality data" ablation). Several branches
can start from one checkpoint (`init_from`); each output gets its own checkpoint folder and loss CSV.
Every source must have been tokenized with the pretrain model's tokenizer (contract check).
"""

from __future__ import annotations

from pathlib import Path

from tasks.train import driver
from tasks.train.config import AnnealConfig
from tasks.train.contract import ContractError, check_data, read_data_meta
from tasks.train.export import read_meta
from tasks.train.job import DataSpec, ModelInit, Phase, ScheduleSpec


def model_init(cfg: AnnealConfig, input: Path) -> ModelInit:
    if cfg.init_from is None:
        return ModelInit(from_pretrained=str(Path(input).resolve()))
    path = Path(cfg.init_from).resolve()
    if any(path.glob("mp_rank_*_model_states.pt")):
        return ModelInit(from_checkpoint=str(path))
    if (path / "config.json").exists():
        return ModelInit(from_pretrained=str(path))
    raise ContractError(f"anneal.init_from={cfg.init_from}: neither an HF model folder nor a DeepSpeed checkpoint tag")


def effective_sources(cfg: AnnealConfig) -> tuple[dict[str, float], dict[str, str]]:
    """({source: normalised weight} actually sampled, {source: why left out}). Left out: sources with weight 0,
    with no packed sequences (an empty part, e.g. synthetic data without a teacher), and, with
    `high_quality: false`, the high-quality parts (meta.json `high_quality: true`)."""
    used, skipped = {}, {}
    for src, weight in cfg.sources.items():
        meta = read_data_meta(src)
        if weight <= 0:
            skipped[src] = "weight 0"
        elif not cfg.high_quality and meta.get("high_quality", False):
            skipped[src] = "high-quality part (anneal.high_quality: false)"
        elif meta.get("num_sequences", 0) == 0:
            skipped[src] = "no packed sequences"
        else:
            used[src] = weight
    if not used:
        raise ContractError(f"anneal.sources: none of {sorted(cfg.sources)} has data to sample ({skipped})")
    total = sum(used.values())
    return {src: round(w / total, 6) for src, w in used.items()}, skipped


def run(params, input: Path | None, output: Path, tracker) -> dict:
    from transformers import AutoConfig

    cfg: AnnealConfig = params.anneal
    model_meta = read_meta(input)
    if "tokenizer_hash" not in model_meta:
        raise ContractError(f"{input}: no cookbook.json with a tokenizer hash; is it a pretrain output?")
    config = AutoConfig.from_pretrained(input)
    sources, skipped = effective_sources(cfg)
    metas = {src: check_data(src, vocab_size=config.vocab_size, max_positions=config.max_position_embeddings,
                             tokenizer_hash_expected=model_meta["tokenizer_hash"]) for src in sources}
    seq_len = next(iter(metas.values()))["seq_len"]
    folder, plot_csv = driver.paths("anneal", output)
    init = model_init(cfg, input)

    def job_for(export_dir: Path):
        phase = Phase(
            name="anneal", model=init,
            data=DataSpec(kind="packed", sources={str(Path(s).resolve()): w for s, w in sources.items()}, attention=cfg.attention),
            schedule=ScheduleSpec(kind="exp", peak_lr=cfg.lr_start, final_lr=cfg.lr_final, total_steps=cfg.steps),
            global_batch_size=cfg.global_batch_size, micro_batch_size=cfg.micro_batch_size,
            checkpoint_dir=str(folder), export_dir=str(export_dir))
        return driver.make_job("anneal", cfg, [phase], tokenizer_dir=Path(input), plot_csv=plot_csv, tracker=tracker,
                               export_meta={**model_meta, "stage": "anneal", "init_from": cfg.init_from or str(input)})

    summaries = driver.train(job_for, cfg, params, output, folder)
    tracker.log_artifact(plot_csv)
    return driver.stage_metrics(summaries, tokens_per_step=cfg.global_batch_size * seq_len, sources=dict(cfg.sources),
                                sources_used=sources, sources_skipped=skipped, high_quality=cfg.high_quality,
                                init_from=cfg.init_from or str(input), checkpoint_dir=str(folder), plot_csv=str(plot_csv))
