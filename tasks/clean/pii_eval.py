"""Precision and recall of `find_pii` on a labelled set of code snippets (tests/clean/data/pii_cases.jsonl).

Each case is one JSON line: `text`, `pii` (a list of `{kind, value}`: the exact substrings that must be
redacted, by kind), `lang`, `split` (`tune`: cases the regexes were developed against; `holdout`: never
tuned on) and an optional `note` on the decision a hard negative documents. A detection counts as a
true positive when its kind and its exact text match an expected item of the same case (multiset).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tasks.clean.transform import PLACEHOLDERS, find_pii

KINDS = tuple(PLACEHOLDERS)


def load_cases(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def score(cases: list[dict]) -> dict[str, dict[str, float]]:
    """Per kind and `overall`: tp, fp, fn, precision, recall (1.0 when nothing was expected or found)."""
    counts = {k: Counter() for k in (*KINDS, "overall")}
    for case in cases:
        expected = Counter((p["kind"], p["value"]) for p in case["pii"])
        found = Counter((s.kind, case["text"][s.start:s.end]) for s in find_pii(case["text"]))
        for (kind, _), n in (expected & found).items():
            counts[kind]["tp"] += n
        for (kind, _), n in (found - expected).items():
            counts[kind]["fp"] += n
        for (kind, _), n in (expected - found).items():
            counts[kind]["fn"] += n
    for kind in KINDS:
        counts["overall"].update(counts[kind])
    return {kind: _rates(c) for kind, c in counts.items()}


def errors(cases: list[dict]) -> list[tuple[str, str, str]]:
    """(case text, 'FP'/'FN', kind:value) for every mistake, for reading."""
    out = []
    for case in cases:
        expected = Counter((p["kind"], p["value"]) for p in case["pii"])
        found = Counter((s.kind, case["text"][s.start:s.end]) for s in find_pii(case["text"]))
        out += [(case["text"], "FP", f"{k}:{v}") for (k, v) in (found - expected)]
        out += [(case["text"], "FN", f"{k}:{v}") for (k, v) in (expected - found)]
    return out


def _rates(c: Counter) -> dict[str, float]:
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    return dict(tp=tp, fp=fp, fn=fn, precision=tp / (tp + fp) if tp + fp else 1.0, recall=tp / (tp + fn) if tp + fn else 1.0)
