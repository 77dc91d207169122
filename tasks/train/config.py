"""Configuration of the training stages: `pretrain`, `anneal`, `sft`.

Dataclass defaults are the paper's values for OpenCoder-1.5B (spec §7, §8) where the paper gives them;
`params.yaml` overrides them for the `tiny` preset that trains on 2 CPU cores. Values the paper leaves
open carry "NOT FOUND" and where our default comes from. `TrainCommon` holds the engine settings every
training stage shares (flat keys in each section).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tasks.common.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class TrainCommon:
    zero_stage: int = 2
    """DeepSpeed ZeRO stage 0-3. NOT FOUND (the paper used Megatron-LM DDP); ZeRO-2 is our default."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """auto: bf16 on GPU, fp32 on CPU. NOT FOUND in the paper (bf16 presumed)."""
    weight_decay: float = 0.1
    """AdamW weight decay. NOT FOUND; 0.1 as assumed by [R-NUGIE]."""
    adam_beta1: float = 0.9
    """NOT FOUND; the common LLM value."""
    adam_beta2: float = 0.95
    """NOT FOUND; the common LLM value."""
    adam_eps: float = 1e-8
    """NOT FOUND; torch default."""
    gradient_clipping: float = 1.0
    """Global gradient-norm clip. NOT FOUND; 1.0 as assumed by [R-NUGIE]."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (saves memory on big presets)."""
    num_workers: int = 1
    """Ray Train workers (one per GPU on a cluster; one CPU worker locally)."""
    use_gpu: bool = False
    """Give each Ray Train worker one GPU (NCCL); false: CPU workers (gloo)."""
    cpus_per_worker: int = 2
    """CPUs reserved per worker; also the torch thread count on CPU."""
    log_every: int = 10
    """Log loss/lr/tokens_per_s/MFU to the tracker every N optimizer steps (the CSV gets every step)."""
    checkpoint_every: int = 1000
    """Save a DeepSpeed checkpoint every N optimizer steps (and always at the end)."""
    keep_checkpoints: int | None = 2
    """Newest checkpoints kept on disk; null keeps all (needed to branch annealing from older steps)."""
    peak_tflops: float | None = None
    """Per-device peak TFLOP/s for MFU; null: a table of known GPUs (bf16 dense), or on CPU an estimate
    of cpus_per_worker x 3 GHz x 32 fp32 FLOP/cycle (AVX2, two FMA units): a rough, stated assumption."""
    stop_after_steps: int | None = None
    """End this run after this optimizer step (a time-sliced or preemptible job); re-running resumes."""
    seed: int = 0
    """Seed of model init and data order."""
    attention_implementation: Literal["auto", "packed_sdpa", "flash_attention_2"] = "auto"
    """Attention kernel: auto = FlashAttention-2 where the flash-attn package is installed (CUDA, bf16), else
    `packed_sdpa` (torch SDPA per document, no mask; `attention.py`). NOT FOUND in the paper."""
    prefetch_steps: int = 2
    """Steps of micro-batches read ahead by a background thread on each worker."""
    max_failures: int = 3
    """Ray Train FailureConfig: restarts of the worker group after a lost worker, each resuming from the latest
    checkpoint (-1: unlimited)."""

    def __post_init__(self):
        if self.zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"zero_stage={self.zero_stage}: must be 0, 1, 2 or 3")
        if self.num_workers < 1:
            raise ConfigError(f"num_workers={self.num_workers}: must be at least 1")


@dataclass(frozen=True, kw_only=True)
class PretrainConfig(TrainCommon):
    preset: str = "opencoder-1.5b"
    """Model preset: tiny, opencoder-1.5b, opencoder-8b (tasks/train/presets.py)."""
    steps: int = 484_865
    """Optimizer steps (the released 1.5B checkpoints end at pretrain_iter_0484865, about 2T tokens)."""
    lr: float = 3e-4
    """Peak LR of the WSD schedule (§7)."""
    warmup_steps: int = 2000
    """Linear warmup steps, then constant (§7: 2,000 steps, about 8B tokens)."""
    global_batch_size: int = 1024
    """Sequences per optimizer step (§7: global batch 1024 x 4096 tokens)."""
    micro_batch_size: int = 4
    """Sequences per worker per forward pass (§7: micro-batch 4 for 1.5B)."""
    attention: Literal["causal", "document"] = "causal"
    """causal: plain causal attention over packed sequences; document: tokens attend only within their
    own document (EOS-delimited) and positions restart per document. NOT FOUND in the paper."""


@dataclass(frozen=True, kw_only=True)
class AnnealConfig(TrainCommon):
    init_from: str | None = None
    """Weights to start from: null = the stage input (the exported pretrain model); or another HF model
    folder; or a DeepSpeed checkpoint tag folder such as checkpoints/pretrain/step_00000080 (branches)."""
    sources: dict[str, float] = field(default_factory=lambda: {
        "data/tokenize": 0.8394, "data/tokenize/algorithmic": 0.1244, "data/tokenize/synthetic": 0.0362})
    """Tokenized (packed) folders and their sampling weights (normalised). Table 3's mix: 83.94% RefineCode in its
    original distribution (the pretraining packing, replayed), 12.44% algorithmic corpus, 3.62% synthetic (2.71
    high-quality snippets + 0.91 code textbooks). A source with no sequences (no synthetic data without a
    teacher) is left out and the others renormalised; the stage's metrics say so."""
    high_quality: bool = True
    """false: annealing without high-quality data (the ablation): only the sources tokenize marked as pretraining
    data (meta.json `high_quality: false`) are replayed, renormalised."""
    steps: int = 23_842
    """Optimizer steps (§7: 100B annealing tokens / 4.19M tokens per step)."""
    lr_start: float = 3e-4
    """LR at the first annealing step (the pretrain peak, §7)."""
    lr_final: float = 1e-5
    """LR at the last step; the decay between is exponential (§7; the exact formula is NOT FOUND:
    lr(s) = lr_start * (lr_final / lr_start) ** (s / (steps - 1)))."""
    global_batch_size: int = 1024
    """Sequences per optimizer step (as in pretraining)."""
    micro_batch_size: int = 4
    """Sequences per worker per forward pass (as in pretraining)."""
    attention: Literal["causal", "document"] = "causal"
    """As in pretrain."""


@dataclass(frozen=True, kw_only=True)
class SftStageConfig:
    sets: tuple[str, ...] = ("curated:sft_stage1",)
    """Instruction sets (tasks/curate/sft_sets.py): curated:NAME (data/decontaminate/NAME), parquet:PATH,
    mbpp-train, or jsonl:PATH with instruction/output rows."""
    max_examples: int | None = None
    """Train on a seeded sample of at most this many examples; null: all (the paper uses all)."""
    epochs: int = 1
    """Passes over the sets."""
    global_batch_size: int = 4096
    """Examples per optimizer step."""
    micro_batch_size: int = 8
    """Examples per worker per forward pass."""
    lr: float = 2e-5
    """Peak LR."""
    warmup_steps: int = 100
    """Linear warmup steps, then cosine decay to `lr_final`."""
    lr_final: float = 0.0
    """LR at the end of the cosine. NOT FOUND; 0 as in the HF cosine scheduler the paper's scripts use."""
    max_len: int = 1216
    """Truncate examples to this many tokens (model_max_length of the [R-OC] scripts)."""


@dataclass(frozen=True, kw_only=True)
class SftConfig(TrainCommon):
    variant: Literal["two-stage", "mix", "stage1-only"] = "two-stage"
    """two-stage: stage1 then stage2 (the paper); mix: stage1 + stage2 sets shuffled together, trained
    once with stage1's hyper-parameters (Table 10 "Mix"); stage1-only: Table 10 "Stage1"."""
    stage1: SftStageConfig = field(default_factory=SftStageConfig)
    """§8 stage 1: 1 epoch, batch 4096, LR 2e-5, warmup 100, cosine, max_len 1216."""
    stage2: SftStageConfig = field(default_factory=lambda: SftStageConfig(
        sets=("curated:sft_stage2",), epochs=3, global_batch_size=512, micro_batch_size=4, lr=5e-5, warmup_steps=100, max_len=1500))
    """§8 stage 2: 3 epochs, batch 512, LR 5e-5, warmup 100, cosine, max_len 1500."""
