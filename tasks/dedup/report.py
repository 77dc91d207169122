"""What dedup removed, and whether that looks wrong: clusters, removal per language and level, the guardrail.

The distributed passes (`tasks.dedup.passes`) compute partial aggregates per partition (cluster-size counts
and each partition's largest clusters with example names, rows/bytes in and removed per language, flagged
guardrail groups); this module merges them in the driver, where they are bounded by the number of languages,
cluster sizes and `report_top_clusters`, never by the number of documents:
`merge_clusters`, `merge_languages` and `merge_flagged`; `summarize` builds the report's JSON (cluster-size
histogram, the largest clusters with example paths, rows/bytes removed per language and per reason, unit
counts of the level, candidate pairs, the guardrail); `write_report` writes `dedup_report.json` and two PNGs
(cluster sizes, removal per language) into the report folder.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tasks.common.shards import write_json
from tasks.dedup.config import DedupConfig


class GuardrailError(RuntimeError):
    """Dedup would remove more than `dedup.guardrail_share` of a source or repo (guardrail_action: fail)."""


def merge_clusters(partials: list[dict], top: int) -> dict[str, Any]:
    """One cluster summary of the partitions' (clusters are whole within a partition: keyed by their kept unit)."""
    sizes: Counter = Counter()
    for part in partials:
        sizes.update({int(k): v for k, v in part["size_histogram"].items()})
    largest = sorted((c for part in partials for c in part["largest"]), key=lambda c: (-c["size"], c["keeper"]))[:top]
    return {
        "num_clusters": sum(part["num_clusters"] for part in partials),
        "size_histogram": {str(k): v for k, v in sorted(sizes.items())},
        "largest": [{k: v for k, v in c.items() if k != "keeper"} for c in largest],
    }


def merge_languages(partials: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """{lang: {rows_in, bytes_in, rows_<reason>, bytes_<reason>}} summed over partitions, sorted by language."""
    table: dict[str, Counter] = defaultdict(Counter)
    for part in partials:
        for lang, counts in part.items():
            table[lang].update(counts)
    return {lang: dict(c) for lang, c in sorted(table.items())}


def merge_flagged(partials: list[dict], groups: tuple[str, ...], top: int) -> tuple[list[dict], int]:
    """The first `top` flagged groups of all partitions in report order (by group, sources first, then name),
    and how many were flagged in all."""
    flagged = sorted((f for part in partials for f in part["flagged"]), key=lambda f: (groups.index(f["group"]), f["name"]))
    return flagged[:top], sum(part["count"] for part in partials)


def summarize(cfg: DedupConfig, stats: dict[str, int], clusters: dict[str, Any], by_lang: dict, flagged: list[dict],
              num_flagged: int | None = None) -> dict[str, Any]:
    """The report's JSON content; `guardrail_flagged` (how many groups were flagged) only where the list was cut."""
    cut = {"guardrail_flagged": num_flagged} if num_flagged is not None and num_flagged > len(flagged) else {}
    return {
        "level": cfg.level,
        "lsh_threshold": cfg.lsh_threshold,
        "candidate_bands": list(cfg.candidate_bands),
        "per_level": {cfg.level: {k: v for k, v in stats.items() if k.startswith("units_")}},
        "pairs": {k: v for k, v in stats.items() if k.endswith("_pairs")},
        "clusters": clusters,
        "removal_by_language": by_lang,
        "guardrail": flagged,
        **cut,
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
