"""Configuration of the `curate` stage (spec §6, §8); `sample`'s is in `tasks/sample/config.py`, `decontaminate`'s
in `tasks/decontaminate/config.py`."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.common.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class TeacherConfig:
    backend: str | None = None
    """Generation backend of the teacher: null (no synthetic data: the teacher-free default), hf, vllm or openai
    (the evaluation backends, tasks/evaluate/backends.py)."""
    model: str | None = None
    """Model folder (hf, vllm) or served model name (openai; the server is `evaluate.openai_base_url`)."""
    kinds: tuple[str, ...] = ("snippet", "textbook", "educational")
    """What to generate (prompts in tasks/curate/prompts/<kind>.txt): snippet (self-contained function + tests
    for annealing, spec §6), textbook (code explanation / Q&A for annealing, §6), educational (problem,
    solution, several tests for SFT stage 2, §8 Educational-Instruct)."""
    max_seeds: int = 1000
    """Seeds per kind: algorithmic-corpus files first, then mined functions (high-quality seed code)."""
    max_seed_chars: int = 3000
    """Seed code is cut to this many characters in the prompt."""
    samples_per_seed: int = 1
    """Generations per seed (n)."""
    batch_size: int = 32
    """Prompts per generate call; finished batches are stored, so a restart resumes after the last one."""
    max_new_tokens: int = 1024
    """Generation length limit."""
    temperature: float = 0.7
    """Sampling temperature (NOT FOUND in the paper for these sets; Diverse-Instruct uses T=1.0 for questions)."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    seed: int = 0
    """Generation seed (recorded with every sample and in MLflow)."""
    min_tests: dict[str, int] = field(default_factory=lambda: {"snippet": 1, "educational": 3})
    """Asserts a sample's tests must contain (educational: 'several test cases', §8)."""
    timeout_s: float = 5.0
    """Sandbox wall-clock limit per sample program."""
    memory_mb: int = 1024
    """Sandbox address-space limit per sample program."""
    cache_dir: str = "checkpoints/curate"
    """Persistent store of finished samples (kept or not), keyed by (kind, prompt version, teacher, seed, seed
    document); a restart generates only what is missing there."""

    def __post_init__(self):
        if self.backend not in (None, "hf", "vllm", "openai"):
            raise ConfigError(f"curate.teacher.backend: expected null, hf, vllm or openai, got {self.backend!r}")
        if self.backend is not None and not self.model:
            raise ConfigError("curate.teacher.model: required when curate.teacher.backend is set")
        unknown = set(self.kinds) - {"snippet", "textbook", "educational"}
        if unknown:
            raise ConfigError(f"curate.teacher.kinds: unknown {sorted(unknown)} (known: snippet, textbook, educational)")


@dataclass(frozen=True, kw_only=True)
class SftSetConfig:
    sources: dict[str, float] = field(default_factory=lambda: {"mined": 1.0})
    """Instruction pools and their shares of `size`: mined (docstring functions of the corpus), mbpp-train,
    educational (teacher). With `size` null every row of each listed pool is taken."""
    size: int | None = None
    """Rows in the set before dedup (null: all rows of the listed pools). A pool with fewer rows than its share
    gives all it has; the shortfall is reported, not filled from other pools."""


@dataclass(frozen=True, kw_only=True)
class CurateConfig:
    keywords: tuple[str, ...] = ("leetcode", "def solution", "class solution")
    """Algorithmic corpus (spec §6): pretraining files containing any of these (case-insensitive)."""
    mine: bool = True
    """Mine instruction pairs from module-level Python functions with docstrings (teacher-free)."""
    min_summary_words: int = 4
    """A docstring's first paragraph needs at least this many words to become an instruction."""
    min_body_lines: int = 2
    """Lines of code after the docstring (one-liners teach little)."""
    max_function_lines: int = 80
    """Longer functions are not mined (they rarely fit an SFT context)."""
    max_free_names: int = 0
    """Names a function uses that are neither its own, builtins nor imported by its module. 0 = self-contained:
    the output is the function plus the import lines it needs."""
    max_instruction_chars: int = 2000
    """Docstring details beyond this are cut from the instruction."""
    doctest_timeout_s: float = 5.0
    """Sandbox limit per doctest program (imports of the file included)."""
    doctest_memory_mb: int = 1024
    """Sandbox address-space limit per doctest program."""
    mined_snippets: bool = True
    """Teacher-free high-quality snippets: doctest-validated mined functions (a self-contained function and the
    tests it passed, the paper's definition of a high-quality snippet, but written by people) join the synthetic
    annealing part as `source: mined-snippet`, so annealing has high-quality data without a teacher."""
    mbpp_train: bool = True
    """Add MBPP's train split (task_ids 601-974), kept only where its reference passes its tests."""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    """Synthetic generation (null backend: none)."""
    sft_stage1: SftSetConfig = field(default_factory=SftSetConfig)
    """SFT stage 1 ('theory and breadth', §8): by default every mined pair."""
    sft_stage2: SftSetConfig = field(default_factory=lambda: SftSetConfig(sources={"mbpp-train": 1.0, "educational": 1.0}))
    """SFT stage 2 ('practical coding', §8): MBPP-train and the test-validated educational instructions."""
    seed: int = 0
    """Seed of the per-pool selection when a set has a `size`."""
