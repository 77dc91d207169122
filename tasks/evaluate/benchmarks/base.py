"""The small task interface every benchmark implements.

A benchmark turns its data file into `Problem`s (the prompt given to the model and what is needed to test
an answer) and turns a sanitized solution into one test program (OpenCodeEval's import header, the
solution, the benchmark's tests) that passes when it exits 0 in the sandbox. Benchmark quirks live here,
never in the sandbox.
"""

from __future__ import annotations

import abc
import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    """What the model is given (before any chat wrapping)."""
    kind: str
    """completion (the model continues the prompt's code) or instruction (the model answers in code)."""
    entry_point: str | None
    """The function the tests call (sanitizing keeps what it reaches)."""
    reference: str
    """The benchmark's reference solution, in the same form as a model's completion."""
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Benchmark-specific fields for building the test program."""


class Benchmark(abc.ABC):
    """One benchmark: its problems and how a solution is tested."""

    name: str = ""
    kind: str = "instruction"
    data_version: str = ""
    """Which release of the data this is (named in every report)."""
    data_files: tuple[Path, ...] = ()
    """The files the problems are read from (their sha256 is recorded with every score)."""
    sanitize_with_entry_point: bool = True
    """OpenCodeEval keeps only the definitions reachable from the entry point for HumanEval; for MBPP it
    sanitizes without one (every import and definition kept)."""

    @abc.abstractmethod
    def problems(self) -> list[Problem]:
        """Every problem of the benchmark, in task order."""

    @abc.abstractmethod
    def program(self, problem: Problem, solution: str) -> str:
        """The complete test program for a sanitized solution (exit status 0 = passed)."""

    def timeout_s(self, problem: Problem, base_timeout_s: float) -> float:
        """Per-program time limit (benchmarks running many inputs may scale it)."""
        return base_timeout_s

    def memory_bytes(self, problem: Problem, base_memory_bytes: int) -> int:
        """Per-program memory limit (benchmarks whose reference needs more may raise it)."""
        return base_memory_bytes

    def prepare(self, problems: list[Problem], *, timeout_s: float, memory_bytes: int, num_workers: int | None) -> None:
        """One-off work before scoring (MBPP+ computes expected outputs here)."""

    def data_info(self) -> dict[str, str]:
        """{"version", "sha256"}: the data release and one sha256 over its files' bytes, in order."""
        digest = hashlib.sha256()
        for path in self.data_files:
            digest.update(Path(path).read_bytes())
        return {"version": self.data_version, "sha256": digest.hexdigest()}

    def contamination_texts(self) -> Iterator[tuple[str, str]]:
        """(task_id, text) pairs whose n-grams decontamination removes from training data."""
        for p in self.problems():
            yield p.task_id, p.data.get("question", p.prompt)
            yield p.task_id, p.reference


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
