"""What dedup removed, and whether that looks wrong: clusters, removal per language and level, the guardrail.

`summarize` turns a plan into plain JSON-able tables (cluster-size histogram, the largest clusters with
example paths, rows/bytes removed per language and per reason, unit counts of the level);
`guardrail` lists the sources and repos that would lose more than `guardrail_share` of their rows;
`write_report` writes `dedup_report.json` and two PNGs (cluster sizes, removal per language) into the
report folder.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tasks.common.shards import write_json
from tasks.dedup.config import DedupConfig
from tasks.dedup.plan import KEPT, Plan

NUM_EXAMPLE_PATHS = 5


class GuardrailError(RuntimeError):
    """Dedup would remove more than `dedup.guardrail_share` of a source or repo (guardrail_action: fail)."""


def _unit_label(plan: Plan, i: int, meta: dict[str, dict], level: str) -> str:
    if level == "repo":
        return plan.units.names[i]
    doc = meta.get(plan.units.members[i][0], {})
    return f"{doc.get('repo')}/{doc.get('path')}" + (f"#{plan.units.names[i].rsplit('#', 1)[1]}" if level == "chunk" else "")


def clusters(plan: Plan, meta: dict[str, dict], cfg: DedupConfig) -> dict[str, Any]:
    """Cluster-size histogram and the largest clusters (kept unit first, then removed examples)."""
    dropped = np.flatnonzero(plan.unit_status != KEPT)
    members: dict[int, list[int]] = defaultdict(list)
    for i in dropped:
        members[int(plan.unit_keeper[i])].append(int(i))
    sizes = Counter(len(m) + 1 for m in members.values())
    largest = sorted(members.items(), key=lambda kv: (-len(kv[1]), plan.units.rank[kv[0]]))[: cfg.report_top_clusters]
    return {
        "num_clusters": len(members),
        "size_histogram": {str(k): v for k, v in sorted(sizes.items())},
        "largest": [
            {
                "size": len(m) + 1,
                "kept": _unit_label(plan, k, meta, cfg.level),
                "removed_examples": [_unit_label(plan, i, meta, cfg.level) for i in sorted(m, key=lambda i: plan.units.rank[i])[:NUM_EXAMPLE_PATHS]],
            }
            for k, m in largest
        ],
    }


def removal_by_language(meta: dict[str, dict], decisions: dict[str, tuple[str, str]]) -> dict[str, dict[str, int]]:
    """{lang: {rows_in, rows_<reason>, bytes_in, bytes_<reason>}} over all documents."""
    table: dict[str, Counter] = defaultdict(Counter)
    for doc_id, doc in meta.items():
        lang = doc.get("lang") or "unknown"
        size = doc.get("size_bytes") or 0
        table[lang]["rows_in"] += 1
        table[lang]["bytes_in"] += size
        if doc_id in decisions:
            reason = decisions[doc_id][0]
            table[lang][f"rows_{reason}"] += 1
            table[lang][f"bytes_{reason}"] += size
    return {lang: dict(c) for lang, c in sorted(table.items())}


def guardrail(meta: dict[str, dict], decisions: dict[str, tuple[str, str]], cfg: DedupConfig) -> list[dict[str, Any]]:
    """Sources (and repos, except at repo level where whole repos go by design) losing too much."""
    groups = ("source",) if cfg.level == "repo" else ("source", "repo")
    flagged = []
    for key in groups:
        rows, removed = Counter(), Counter()
        for doc_id, doc in meta.items():
            name = doc.get(key) or "unknown"
            rows[name] += 1
            removed[name] += doc_id in decisions
        for name in sorted(rows):
            share = removed[name] / rows[name]
            if rows[name] >= cfg.guardrail_min_rows and share > cfg.guardrail_share:
                flagged.append({"group": key, "name": name, "rows": rows[name], "removed": removed[name], "share": round(share, 4)})
    return flagged


def summarize(plan: Plan, meta: dict[str, dict], cfg: DedupConfig, flagged: list[dict]) -> dict[str, Any]:
    """The report's JSON content."""
    return {
        "level": cfg.level,
        "lsh_threshold": cfg.lsh_threshold,
        "candidate_bands": list(cfg.candidate_bands),
        "per_level": {cfg.level: {k: v for k, v in plan.stats.items() if k.startswith("units_")}},
        "pairs": {k: v for k, v in plan.stats.items() if k.endswith("_pairs")},
        "clusters": clusters(plan, meta, cfg),
        "removal_by_language": removal_by_language(meta, plan.decisions),
        "guardrail": flagged,
    }


def _plot_clusters(histogram: dict[str, int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    sizes = [int(k) for k in histogram]
    ax.bar([str(s) for s in sizes], list(histogram.values()), color="#4c72b0")
    ax.set_xlabel("cluster size (units, kept one included)")
    ax.set_ylabel("clusters")
    ax.set_yscale("log")
    ax.set_title("dedup: duplicate cluster sizes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_languages(by_lang: dict[str, dict[str, int]], level: str, path: Path) -> None:
    """Per language, the share of its rows removed as exact and as near duplicates (a language losing 14 of 3,660
    rows shows as 0.4%, not as an invisible sliver of a row-count bar), labelled with the counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted(by_lang, key=lambda lang: -by_lang[lang]["rows_in"])[:20]
    rows = np.array([max(by_lang[lang]["rows_in"], 1) for lang in langs])
    exact = np.array([by_lang[lang].get("rows_exact_duplicate", 0) for lang in langs])
    near = np.array([by_lang[lang].get("rows_near_duplicate", 0) for lang in langs])
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(langs) + 1.5))
    labels = ["unknown_language" if lang == "unknown" else lang for lang in langs]
    ax.barh(labels, 100 * exact / rows, color="#c44e52", label="exact_duplicate")
    ax.barh(labels, 100 * near / rows, left=100 * exact / rows, color="#dd8452", label="near_duplicate")
    for y, (removed, n) in enumerate(zip(exact + near, rows)):
        ax.text(100 * removed / n, y, f" {removed} of {n}", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max(5.0, float((100 * (exact + near) / rows).max(initial=0)) * 1.3))
    ax.set_xlabel("% of the language's rows removed")
    ax.set_title(f"dedup ({level} level): share of rows removed per language")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(summary: dict[str, Any], report_dir: Path) -> list[Path]:
    """Write the JSON summary and the PNG plots; return the files written."""
    report_dir.mkdir(parents=True, exist_ok=True)
    files = [report_dir / "dedup_report.json", report_dir / "cluster_sizes.png", report_dir / "removal_by_language.png"]
    write_json(files[0], summary)
    _plot_clusters(summary["clusters"]["size_histogram"], files[1])
    _plot_languages(summary["removal_by_language"], summary["level"], files[2])
    return files


def meta_dict(meta: pa.Table) -> dict[str, dict]:
    """{id: metadata row} of the document metadata table."""
    return {row["id"]: row for row in meta.to_pylist()}
