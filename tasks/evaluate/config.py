"""Configuration of the `evaluate` stage."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    benchmarks: tuple[str, ...] = ("humaneval", "mbpp")
    """Benchmarks to run."""
    backend: str = "hf"
    """Generation backend: hf, vllm or openai."""
    max_new_tokens: int = 128
    """Generation length limit."""
    limit: int | None = None
    """Evaluate only the first N problems of each benchmark (null = all)."""
    samples: str | None = None
    """Score pre-generated completions from this JSONL (task_id, completion) instead of a model."""
