"""The `decontaminate` stage (paper §4.4): remove training rows that contain benchmark test data.

    cookbook decontaminate --input data/dedup --output data/decontaminate

Two rules, against exactly the benchmarks in `decontaminate.benchmarks` (evaluate registry names):
- `benchmark_entry_point`: the row defines a benchmark's entry point as a module-level function,
  `def NAME(` at the start of a line (methods are not benchmark solutions). Only distinctive names are matched (at least `entry_point_min_len` characters and containing an underscore, e.g.
  `has_close_elements`), so clean code defining generic names (`add`, `fib`, `median`) is kept.
- `benchmark_ngram`: the row shares an n-gram (`ngram`, default 10, of lower-cased words, or characters)
  with a benchmark prompt/question or reference solution. Benchmark word n-grams that carry no information
  (fewer than `ngram_min_distinct` distinct words, or mostly numbers and single letters, such as
  `0 1 2 3 4 5 6 7 8 9` from test data) are left out: on the embedded corpus they were 90% of the hits.

The benchmark side is built once on the driver: a dict from the 64-bit hash of each n-gram to the first
task that has it (~20k entries), the benchmarks' vocabulary, and a regex of the entry points. They are passed
to `map_batches` workers, which hash only the windows of a row whose units all occur in the benchmark
vocabulary (one vectorised pass) and look them up. Dropped rows carry
`drop_reason` and `contaminated_by` (the matching task, e.g. "HumanEval/0"); metrics count hits per
benchmark.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tasks.common.runner import map_batches
from tasks.common.stage import split_and_write
from tasks.curate.config import DecontaminateConfig

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


def units(text: str, unit: str) -> list[str]:
    """The n-gram units of a text: lower-cased words, or the characters of its whitespace-normalised form."""
    if unit == "char":
        return list(_SPACE.sub(" ", text.lower()).strip())
    return _WORD.findall(text.lower())


def _hash(gram: str) -> int:
    return int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little")


def ngram_hashes(text: str, n: int, unit: str = "word") -> np.ndarray:
    """64-bit hashes of every n-gram of a text (empty when it is shorter than n units)."""
    toks = units(text, unit)
    if len(toks) < n:
        return np.empty(0, dtype=np.uint64)
    sep = "" if unit == "char" else " "
    return np.fromiter((_hash(sep.join(toks[i:i + n])) for i in range(len(toks) - n + 1)), dtype=np.uint64,
                       count=len(toks) - n + 1)


def candidate_starts(toks: list[str], n: int, vocab: frozenset[str]) -> np.ndarray:
    """Start positions of the windows of n units that all occur in the benchmarks (the only ones that can match)."""
    inside = np.fromiter((t in vocab for t in toks), dtype=np.int32, count=len(toks))
    run = np.convolve(inside, np.ones(n, dtype=np.int32), mode="valid")
    return np.flatnonzero(run == n)


def informative(gram: list[str], min_distinct: int) -> bool:
    """A benchmark n-gram worth matching: enough distinct units, and (words) mostly real words, not numbers or
    single letters. Without this, `0 1 2 3 4 5 6 7 8 9` or `0 0 0 ...` from test data matches half the corpus."""
    if len(set(gram)) < min_distinct:
        return False
    return sum(len(u) > 1 and not u.isdigit() for u in gram) * 2 >= len(gram)


def benchmark_hashes(text: str, cfg: DecontaminateConfig) -> list[int]:
    """Hashes of the informative n-grams of a benchmark text."""
    toks = units(text, cfg.ngram_unit)
    sep = "" if cfg.ngram_unit == "char" else " "
    grams = (toks[i:i + cfg.ngram] for i in range(len(toks) - cfg.ngram + 1))
    return [_hash(sep.join(g)) for g in grams if cfg.ngram_unit == "char" or informative(g, cfg.ngram_min_distinct)]


def distinctive(name: str, min_len: int) -> bool:
    return len(name) >= min_len and "_" in name.strip("_")


def build_index(cfg: DecontaminateConfig) -> dict[str, Any]:
    """The benchmark side: n-gram hash -> task_id, and entry point -> task_id (distinctive names only)."""
    from tasks.evaluate import benchmarks

    grams: dict[int, str] = {}
    vocab: set[str] = set()
    entry_points: dict[str, str] = {}
    benchmark_of: dict[str, str] = {}
    for name in cfg.benchmarks:
        bench = benchmarks.get(name)
        benchmark_of.update({_label(bench.name, p.task_id): bench.name for p in bench.problems()})
        for task_id, text in bench.contamination_texts():
            for h in benchmark_hashes(text, cfg):
                grams.setdefault(h, _label(bench.name, task_id))
            vocab.update(units(text, cfg.ngram_unit))
        for p in bench.problems():
            if p.entry_point and distinctive(p.entry_point, cfg.entry_point_min_len):
                entry_points.setdefault(p.entry_point, _label(bench.name, p.task_id))
    names = "|".join(sorted(map(re.escape, entry_points), key=len, reverse=True))
    pattern = r"(?m)^def[ \t]+(" + names + r")[ \t]*\(" if entry_points else None
    return {"grams": grams, "vocab": frozenset(vocab), "entry_points": entry_points, "pattern": pattern,
            "benchmark_of": benchmark_of}


def _label(bench: str, task_id: str) -> str:
    """'HumanEval/0' stays; bare MBPP ids become 'mbpp/11'."""
    return task_id if "/" in task_id else f"{bench}/{task_id}"


def match(text: str, index: dict[str, Any], cfg: DecontaminateConfig, regex: re.Pattern | None = None) -> tuple[str, str] | None:
    """(drop_reason, task) for a contaminated text, None for a clean one."""
    regex = regex or (re.compile(index["pattern"]) if index["pattern"] else None)
    if regex is not None and (m := regex.search(text)):
        return "benchmark_entry_point", index["entry_points"][m.group(1)]
    grams, n = index["grams"], cfg.ngram
    toks = units(text, cfg.ngram_unit)
    if len(toks) < n:
        return None
    sep = "" if cfg.ngram_unit == "char" else " "
    for i in candidate_starts(toks, n, index["vocab"]).tolist():
        h = _hash(sep.join(toks[i:i + n]))
        if h in grams:
            return "benchmark_ngram", grams[h]
    return None


def decontaminate_batch(batch: pa.Table, *, index: dict[str, Any], cfg: DecontaminateConfig) -> pa.Table:
    """Add `drop_reason` and `contaminated_by` to a batch of document rows."""
    regex = re.compile(index["pattern"]) if index["pattern"] else None
    hits = [match(t or "", index, cfg, regex) for t in batch["text"].to_pylist()]
    batch = batch.append_column("drop_reason", pa.array([h[0] if h else None for h in hits], pa.string()))
    return batch.append_column("contaminated_by", pa.array([h[1] if h else None for h in hits], pa.string()))


def run(params, input: Path | None, output: Path, tracker) -> dict:
    cfg: DecontaminateConfig = params.decontaminate
    index = build_index(cfg)
    hits: Counter[str] = Counter()

    def count(batch: pa.Table) -> None:
        hits.update(index["benchmark_of"][t] for t in batch["contaminated_by"].to_pylist() if t)

    batches = map_batches(decontaminate_batch, input, fn_kwargs={"index": index, "cfg": cfg},
                          num_workers=params.compute.num_workers, batch_size=params.compute.batch_size,
                          ray_address=params.compute.ray_address)
    metrics = split_and_write(batches, output, on_batch=count)
    return {**metrics, "hits_by_benchmark": dict(sorted(hits.items())),
            "benchmark_ngrams": len(index["grams"]), "benchmark_entry_points": len(index["entry_points"])}
