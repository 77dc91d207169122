"""The DeepSpeed engine config, generated from the job (never maintained as a separate JSON file).

We always hand DeepSpeed a torch AdamW as the client optimizer (fused on CUDA), so no DeepSpeed op
has to be JIT-compiled; `zero_allow_untested_optimizer` lets ZeRO wrap it. The LR is set on the
optimizer's param groups every step from `schedule.py`, so the config carries no scheduler.
"""

from __future__ import annotations


def deepspeed_config(*, micro_batch_size: int, grad_accum_steps: int, world_size: int, zero_stage: int,
                     bf16: bool, gradient_clipping: float) -> dict:
    zero: dict = {"stage": zero_stage}
    if zero_stage >= 2:
        zero.update(overlap_comm=True, contiguous_gradients=True, reduce_bucket_size=5e7, allgather_bucket_size=5e7)
    if zero_stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=True)
    return {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": grad_accum_steps,
        "train_batch_size": micro_batch_size * grad_accum_steps * world_size,
        "gradient_clipping": gradient_clipping,
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def grad_accum_steps(global_batch_size: int, micro_batch_size: int, world_size: int) -> int:
    per_pass = micro_batch_size * world_size
    if global_batch_size % per_pass:
        raise ValueError(f"global_batch_size={global_batch_size} is not a multiple of micro_batch_size x workers = {per_pass}")
    return global_batch_size // per_pass
