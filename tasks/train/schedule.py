"""Learning-rate schedules as pure functions of the optimizer step (0-based).

Because the LR is a function of the step alone, resuming from a checkpoint restores the schedule
position exactly by restoring the step.

- `wsd`: warmup-stable-decay (MiniCPM, used by OpenCoder §7): linear warmup to the peak, then constant;
  the decay part is the annealing stage (`exp_decay`).
- `exp_decay`: exponential decay from `start` at step 0 to `final` at step `total - 1` (anneal).
- `cosine`: linear warmup, then cosine to `final` (SFT, §8).
"""

from __future__ import annotations

import math


def warmup_factor(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def wsd(step: int, *, peak: float, warmup_steps: int) -> float:
    return peak * warmup_factor(step, warmup_steps)


def exp_decay(step: int, *, start: float, final: float, total_steps: int) -> float:
    frac = min(1.0, step / max(1, total_steps - 1))
    return start * (final / start) ** frac


def cosine(step: int, *, peak: float, warmup_steps: int, total_steps: int, final: float = 0.0) -> float:
    if step < warmup_steps:
        return peak * warmup_factor(step, warmup_steps)
    frac = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * frac))


def lr_at(step: int, spec) -> float:
    """LR of `step` under a `ScheduleSpec` (kind wsd / exp / cosine)."""
    if spec.kind == "wsd":
        return wsd(step, peak=spec.peak_lr, warmup_steps=spec.warmup_steps)
    if spec.kind == "exp":
        return exp_decay(step, start=spec.peak_lr, final=spec.final_lr, total_steps=spec.total_steps)
    return cosine(step, peak=spec.peak_lr, warmup_steps=spec.warmup_steps, total_steps=spec.total_steps, final=spec.final_lr)
