"""The benchmark side of decontamination and the row matcher (pure functions; the stage maps `decontaminate_batch`).

`build_index` runs once on the driver and holds only benchmark data (bounded by the benchmarks, not the corpus):
a dict from the 64-bit hash of each informative benchmark n-gram to the first task that has it (~20k
entries), the benchmarks' vocabulary, a regex of the distinctive entry points and the reference functions keyed
by their first units. `decontaminate_batch` runs on the workers: it hashes only the windows of a row whose units
all occur in the benchmark vocabulary (one vectorised pass) and looks them up. The three rules and their order
are in `tasks/decontaminate/stage.py`'s docstring.
"""

from __future__ import annotations

import ast
import hashlib
import re
from typing import Any

import numpy as np
import pyarrow as pa

from tasks.decontaminate.config import DecontaminateConfig

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
SOLUTION_KEY_UNITS = 3
"""Reference functions are indexed by the first units after `def NAME`."""
DEFAULT_BENCHMARKS = ("humaneval", "mbpp")
SELF = "\x00"
"""Placeholder for a function's own name inside its body (word units never contain it)."""


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


def reference_function(problem) -> str:
    """The reference solution as one function definition: MBPP's code as is; for completion benchmarks
    (HumanEval) the prompt's `def` line(s) of the entry point followed by the canonical body, docstring left out."""
    if problem.reference.lstrip().startswith(("def ", "import ", "from ")) or not problem.entry_point:
        return problem.reference
    try:
        tree = ast.parse(problem.prompt + problem.reference)
    except SyntaxError:
        return problem.reference
    lines = problem.prompt.splitlines()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == problem.entry_point:
            # the def line(s): up to the docstring (or the first statement, which the reference holds)
            return "\n".join(lines[node.lineno - 1:node.body[0].lineno - 1]) + "\n" + problem.reference
    return problem.reference


def _unnamed(window: list[str], name: str) -> tuple[str, ...]:
    """The units with the function's own name (recursive calls) replaced by a placeholder."""
    return tuple(SELF if t == name else t for t in window)


def solution_sequences(code: str, cfg: DecontaminateConfig) -> set[tuple[str, tuple[str, ...]]]:
    """(mode, words) a copy of the reference code would contain after `def NAME`, for every `def` in it (a helper
    may come first); words keep their case, so only NAME itself is NAME. Mode `raw` is the words as they are,
    `self` has NAME replaced by a placeholder (renamed recursive calls). Sequences shorter than
    `solution_min_units` are left out."""
    toks = _WORD.findall(code)
    out = set()
    for i in range(len(toks) - 1):
        if toks[i] == "def" and len(toks) - i - 2 >= max(cfg.solution_min_units, SOLUTION_KEY_UNITS):
            raw = tuple(toks[i + 2:])
            out |= {("raw", raw), ("self", _unnamed(raw, toks[i + 1]))}
    return out


def build_index(cfg: DecontaminateConfig, benchmarks: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The benchmark side: n-gram hash -> task, entry point -> task (distinctive names only), and reference
    functions (units after the name) keyed by their first units."""
    from tasks.evaluate import benchmarks as registry

    grams: dict[int, str] = {}
    vocab: set[str] = set()
    entry_points: dict[str, str] = {}
    solutions: dict[tuple[str, tuple[str, ...]], list[tuple[tuple[str, ...], str]]] = {}
    benchmark_of: dict[str, str] = {}
    for name in benchmarks or cfg.benchmarks or DEFAULT_BENCHMARKS:
        bench = registry.get(name)
        benchmark_of.update({_label(bench.name, p.task_id): bench.name for p in bench.problems()})
        for task_id, text in bench.contamination_texts():
            for h in benchmark_hashes(text, cfg):
                grams.setdefault(h, _label(bench.name, task_id))
            vocab.update(units(text, cfg.ngram_unit))
        for p in bench.problems():
            if p.entry_point and distinctive(p.entry_point, cfg.entry_point_min_len):
                entry_points.setdefault(p.entry_point, _label(bench.name, p.task_id))
            references = {reference_function(p), p.prompt + p.reference if bench.kind == "completion" else p.reference}
            for mode, seq in set().union(*(solution_sequences(code, cfg) for code in references)):
                entries = solutions.setdefault((mode, seq[:SOLUTION_KEY_UNITS]), [])
                if all(s != seq for s, _ in entries):
                    entries.append((seq, _label(bench.name, p.task_id)))
    names = "|".join(sorted(map(re.escape, entry_points), key=len, reverse=True))
    pattern = r"(?m)^def[ \t]+(" + names + r")[ \t]*\(" if entry_points else None
    return {"grams": grams, "vocab": frozenset(vocab), "entry_points": entry_points, "pattern": pattern,
            "solutions": solutions, "benchmark_of": benchmark_of}


def _label(bench: str, task_id: str) -> str:
    """'HumanEval/0' stays; bare MBPP ids become 'mbpp/11'."""
    return task_id if "/" in task_id else f"{bench}/{task_id}"


def match_solution(toks: list[str], solutions: dict) -> str | None:
    """The task whose reference function the word units contain after some `def NAME`, as is or under another
    name (its recursive calls renamed alike), else None."""
    for i, tok in enumerate(toks[:-1]):
        if tok != "def":
            continue
        name = toks[i + 1]
        for mode in ("raw", "self"):
            head = toks[i + 2:i + 2 + SOLUTION_KEY_UNITS]
            for seq, task in solutions.get((mode, tuple(head) if mode == "raw" else _unnamed(head, name)), ()):
                window = toks[i + 2:i + 2 + len(seq)]
                if (tuple(window) if mode == "raw" else _unnamed(window, name)) == seq:
                    return task
    return None


def match(text: str, index: dict[str, Any], cfg: DecontaminateConfig, regex: re.Pattern | None = None) -> tuple[str, str] | None:
    """(drop_reason, task) for a contaminated text, None for a clean one."""
    regex = regex or (re.compile(index["pattern"]) if index["pattern"] else None)
    if regex is not None and (m := regex.search(text)):
        return "benchmark_entry_point", index["entry_points"][m.group(1)]
    if index["solutions"] and (task := match_solution(_WORD.findall(text), index["solutions"])):
        return "benchmark_solution", task
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


def row_texts(batch: pa.Table) -> list[str]:
    """What is checked: `text` for documents, instruction + output for SFT rows."""
    if "text" in batch.column_names:
        return [t or "" for t in batch["text"].to_pylist()]
    return [f"{i or ''}\n{o or ''}" for i, o in zip(batch["instruction"].to_pylist(), batch["output"].to_pylist())]


def decontaminate_batch(batch: pa.Table, *, index: dict[str, Any], cfg: DecontaminateConfig) -> pa.Table:
    """Add `drop_reason` and `contaminated_by` to a batch of document or SFT rows."""
    regex = re.compile(index["pattern"]) if index["pattern"] else None
    hits = [match(t, index, cfg, regex) for t in row_texts(batch)]
    batch = batch.append_column("drop_reason", pa.array([h[0] if h else None for h in hits], pa.string()))
    return batch.append_column("contaminated_by", pa.array([h[1] if h else None for h in hits], pa.string()))
