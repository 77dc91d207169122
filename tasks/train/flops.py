"""Model FLOPs per token and MFU (model FLOPs utilisation).

FLOPs per trained token = 6 N + 12 L d T (PaLM, Appendix B): N parameters excluding the input
embedding (its lookup is not a matmul; the output head is), L layers, d model width, T the sequence
length (the attention score and value matmuls, forward and backward). MFU = achieved model FLOP/s
over the devices' peak.
"""

from __future__ import annotations

import os

GPU_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "H800": 989.4, "A100": 312.0, "A800": 312.0, "L40S": 362.1, "A10": 125.0}
"""Dense bf16 tensor-core peaks from the vendors' data sheets (SXM parts)."""

CPU_GHZ, CPU_FLOP_PER_CYCLE = 3.0, 32
"""CPU estimate: 3 GHz x 32 fp32 FLOP/cycle/core (AVX2, two 256-bit FMA units). An assumption."""


def flops_per_token(config, seq_len: int) -> float:
    d, L, V = config.hidden_size, config.num_hidden_layers, config.vocab_size
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    kv = config.num_key_value_heads * head_dim
    per_layer = d * (config.num_attention_heads * head_dim) * 2 + d * kv * 2 + 3 * d * config.intermediate_size + 2 * d
    n = L * per_layer + d + (0 if config.tie_word_embeddings else d * V)
    return 6.0 * n + 12.0 * L * d * seq_len


def peak_flops(peak_tflops: float | None, *, cuda: bool, num_threads: int) -> float | None:
    """Per-device peak FLOP/s: the configured one, a known GPU's, or the CPU estimate."""
    if peak_tflops is not None:
        return peak_tflops * 1e12
    if cuda:
        import torch

        name = torch.cuda.get_device_name()
        return next((v * 1e12 for k, v in GPU_PEAK_TFLOPS.items() if k in name), None)
    return num_threads * CPU_GHZ * 1e9 * CPU_FLOP_PER_CYCLE


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
