"""Configuration of the `evaluate` stage. The defaults are OpenCodeEval's settings for a real model (spec §10;
OpenCoder-llm/OpenCoder-llm 6131c47, `OpenCodeEval/src/args.py`); the embedded tiny model gets its short
generation from `model_presets`, keyed by the preset its export records, not from these defaults."""

from dataclasses import dataclass, field

from tasks.common.config import ConfigError

PRESET_KEYS = frozenset({"max_new_tokens", "max_total_tokens", "batch_size"})


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    benchmarks: tuple[str, ...] = ("humaneval", "mbpp")
    """Benchmarks to run, by registry name (the paper's names): humaneval, humaneval_plus, mbpp (EvalPlus's MBPP,
    base tests), mbpp_plus, mbpp_3shot (OpenCodeEval's 3-shot MBPP); also mbpp_500 (0-shot, task_ids 11-510)."""
    backend: str = "hf"
    """Generation backend: hf (transformers, CPU or GPU), vllm (offline engine) or openai (HTTP server)."""
    model_type: str = "auto"
    """Prompting: base (raw completion prompts + completion stop strings), chat (chat template; completion
    tasks wrapped in the 'self-contained Python script in a markdown code block' instruction) or auto: by what
    the model is (its export's `cookbook.json`: sft = chat, pretrain/anneal = base; another model: chat when
    its name says instruct/chat). The choice and its reason are printed and logged."""
    max_new_tokens: int = 2048
    """Generated tokens at most (OpenCodeEval: `--max_tokens 2048`)."""
    max_total_tokens: int | None = 2048
    """Prompt + generated tokens at most (OpenCodeEval passes the same 2048 as vLLM's `max_model_len`);
    null = the model's context."""
    model_presets: dict[str, dict[str, int]] = field(default_factory=lambda: {"tiny": {"max_new_tokens": 128, "max_total_tokens": 1024}})
    """Settings applied to a model whose export records that preset (`cookbook.json` `preset`): the embedded
    tiny model generates 128 tokens (~2 minutes for the embedded run on 2 cores) instead of 2048."""
    batch_size: int = 32
    """Prompts per generate call of the HF backend (sorted by length to limit padding)."""
    num_samples: int = 1
    """Completions per problem (n). Greedy decoding needs 1; pass@k for k > 1 needs n >= k and temperature > 0."""
    data_parallel: int = 1
    """Generation engines, each given a contiguous share of the prompts (results merged in prompt order): HF
    processes (one per GPU when there are GPUs, else CPU processes) or vLLM engines (one per GPU group of
    `tensor_parallel_size`)."""
    concurrent_requests: int = 16
    """Requests in flight at once to an OpenAI-compatible server (backend=openai)."""
    temperature: float = 0.0
    """0 = greedy decoding, as reported by the paper (issue #7)."""
    top_p: float = 1.0
    """Nucleus sampling mass (OpenCodeEval: 1.0)."""
    pass_k: tuple[int, ...] = (1,)
    """k values of the unbiased pass@k estimator; only k <= num_samples are reported."""
    limit: int | None = None
    """Evaluate only the first N problems of each benchmark (null = all)."""
    samples: str | None = None
    """Score pre-generated completions from this JSONL (task_id, completion) instead of a model."""
    timeout_s: dict[str, float] = field(default_factory=lambda: {"humaneval": 3.0, "humaneval_plus": 3.0, "mbpp": 3.0,
                                                                  "mbpp_plus": 3.0, "mbpp_3shot": 3.0, "mbpp_500": 3.0})
    """Per-benchmark execution time limit per program (OpenCodeEval: 3 s; 3 s for an unlisted one). The EvalPlus
    benchmarks (humaneval_plus, mbpp, mbpp_plus) use max(this, 4 x the canonical solution's time)."""
    memory_mb: int = 1024
    """Address-space limit of one sandboxed program (NOT FOUND in the paper; numpy + tests fit in 1 GiB)."""
    num_workers: int | None = None
    """Sandboxed programs run in parallel on this machine (null = one per CPU core); with `execution: ray`,
    the programs running at once in each Ray worker."""
    execution: str = "local"
    """Where sandboxed programs run: local (this machine) or ray (Ray workers on the cluster that `RAY_ADDRESS`
    or `compute.ray_address` names, a private local Ray otherwise; each worker runs each program through the
    same sandbox)."""
    ray_workers: int | None = None
    """Ray workers (tasks of 1 CPU) executing programs at once with `execution: ray` (null = the cluster's CPUs)."""
    num_threads: int | None = 1
    """CPU threads of the HF backend (null = torch's default). 1 by default: on 2 busy cores, measured 4.6 s vs
    66 s for the same 32 prompts with 2 threads (OpenMP threads spinning against each other)."""
    tensor_parallel_size: int = 1
    """vLLM tensor parallelism (GPUs per model)."""
    dtype: str = "auto"
    """Model weights dtype: auto (float32 on CPU, bfloat16 on GPU, as OpenCodeEval), float32, bfloat16, float16."""
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    """OpenAI-compatible server (for example `vllm serve MODEL`), used by backend=openai."""
    openai_model: str | None = None
    """Model name sent to the server (null = the model path given as input)."""
    openai_api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (an empty key is sent when it is unset)."""

    def __post_init__(self):
        if self.backend not in ("hf", "vllm", "openai"):
            raise ConfigError(f"evaluate.backend: expected hf, vllm or openai, got {self.backend!r}")
        if self.model_type not in ("auto", "base", "chat"):
            raise ConfigError(f"evaluate.model_type: expected auto, base or chat, got {self.model_type!r}")
        if self.num_samples < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ConfigError("evaluate.num_samples, batch_size and max_new_tokens must be >= 1")
        if self.data_parallel < 1 or self.concurrent_requests < 1:
            raise ConfigError("evaluate.data_parallel and evaluate.concurrent_requests must be >= 1")
        if self.execution not in ("local", "ray"):
            raise ConfigError(f"evaluate.execution: expected local or ray, got {self.execution!r}")
        for preset, values in self.model_presets.items():
            unknown = set(values) - PRESET_KEYS
            if unknown:
                raise ConfigError(f"evaluate.model_presets.{preset}: unknown key(s) {sorted(unknown)}; allowed: {sorted(PRESET_KEYS)}")
