"""The unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), averaged over problems."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) passes."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(num_samples: Sequence[int], num_correct: Sequence[int], k: int) -> float:
    """pass@k averaged over problems; problems with fewer than k samples are not allowed."""
    if any(n < k for n in num_samples):
        raise ValueError(f"pass@{k} needs at least {k} samples per problem")
    return float(np.mean([pass_at_k(n, c, k) for n, c in zip(num_samples, num_correct)])) if num_samples else 0.0
