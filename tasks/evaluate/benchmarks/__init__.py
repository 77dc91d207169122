"""The benchmark registry: every module in this package contributes its `BENCHMARKS` list.

Adding a benchmark is one module: subclass `Benchmark` (see `base.py`), put its data under
`tasks/evaluate/data/<name>/`, and end the module with `BENCHMARKS = [MyBenchmark()]`.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from tasks.common.config import ConfigError
from tasks.evaluate.benchmarks.base import Benchmark, Problem

__all__ = ["Benchmark", "Problem", "get", "names"]

ALIASES = {"mbppplus": "mbpp_plus", "humanevalplus": "humaneval_plus"}
"""Older names still accepted (params and runs from before the paper's names)."""


@cache
def _registry() -> dict[str, Benchmark]:
    found: dict[str, Benchmark] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for bench in getattr(module, "BENCHMARKS", []):
            found[bench.name] = bench
    return found


def names() -> list[str]:
    return sorted(_registry())


def get(name: str) -> Benchmark:
    try:
        return _registry()[ALIASES.get(name, name)]
    except KeyError:
        raise ConfigError(f"evaluate.benchmarks: unknown benchmark {name!r}; known: {', '.join(names())}") from None
