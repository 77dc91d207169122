"""The `ingest` stage: sources -> document rows (DOC_SCHEMA) in Parquet shards.

    cookbook ingest                                         # embedded default: installed distributions -> data/ingest
    cookbook ingest --input ~/src --output data/mine        # a folder, or a folder of git repositories
    cookbook ingest --input stack.parquet --output data/s   # Parquet/JSONL with The Stack v1/v2 column names

The driver lists descriptors (`tasks/ingest/listing.py`: one per file, or per Parquet row group / JSONL
file); Ray tasks read them with a pure batch function (`tasks/ingest/read.py`) and write their own kept and
`dropped/` parts (`runner.map_items_to_shards`); the output folder is committed, in listing order, by its
manifest, and only counts and per-source / per-repository stats come back to the driver. An `--input`
overrides `ingest.source`/`ingest.path` and its kind is detected. Metrics add the number of files
listed and rows/bytes per source and per repository (the largest `max_repos_in_metrics`, rest summed).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from tasks.common.config import ConfigError
from tasks.common.runner import map_items_to_shards
from tasks.common.shards import is_uri
from tasks.common.stage import DROP_REASON
from tasks.ingest.config import IngestConfig
from tasks.ingest.listing import cap, list_installed, list_path
from tasks.ingest.read import read_files, read_tables

log = logging.getLogger(__name__)

OTHER_REPOS = "(other)"


@dataclass(frozen=True)
class Listing:
    kind: str
    """`installed`, `local`, `git` or `table`."""
    items: list[dict]
    """Descriptors handed to the reader."""
    num_files: int
    """Files listed (table files for a table source)."""


def list_sources(cfg: IngestConfig, input_path: Path | None) -> Listing:
    """What to read: `input_path` if given, else the configured source."""
    if input_path is None and cfg.source == "installed":
        items = cap(list_installed(cfg.distributions, cfg.exclude), cfg.max_files)
        return Listing("installed", items, len(items))
    root = input_path if input_path is not None else cfg.path
    if root is None:
        raise ConfigError("ingest.path: source is 'path' but no path is set; set ingest.path or pass --input PATH")
    kind, items, num_files = list_path(root if is_uri(root) else Path(root).expanduser(), cfg.exclude, cfg.max_files)
    return Listing(kind, items, num_files)


def batch_stats(batch: pa.Table, key: str) -> dict[str, dict[str, int]]:
    """rows_in / rows_kept / bytes_in / bytes_kept of one batch, grouped by column `key`."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: dict(rows_in=0, rows_kept=0, bytes_in=0, bytes_kept=0))
    for name, size, reason in zip(batch[key].to_pylist(), batch["size_bytes"].to_pylist(), batch[DROP_REASON].to_pylist()):
        stats = out[str(name)]
        stats["rows_in"] += 1
        stats["bytes_in"] += size or 0
        if reason is None:
            stats["rows_kept"] += 1
            stats["bytes_kept"] += size or 0
    return out


def merge_stats(into: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    for name, stats in more.items():
        target = into.setdefault(name, dict.fromkeys(stats, 0))
        for k, v in stats.items():
            target[k] += v


def top_groups(stats: dict[str, dict[str, int]], limit: int) -> dict[str, dict[str, int]]:
    """The `limit` largest groups by bytes in (ties by name); the rest summed under `(other)`."""
    ranked = sorted(stats.items(), key=lambda kv: (-kv[1]["bytes_in"], kv[0]))
    out = dict(ranked[:limit])
    if len(ranked) > limit:
        other: dict[str, dict[str, int]] = {}
        for _, s in ranked[limit:]:
            merge_stats(other, {OTHER_REPOS: s})
        out.update(other)
    return out


def source_stats(batch: pa.Table) -> dict[str, Any]:
    """Summary of one output batch (summed over the tasks by the runner): stats per source and per repository."""
    return {"by_source": batch_stats(batch, "source"), "by_repo": batch_stats(batch, "repo")}


def run(params, input: Path | None, output: Path, tracker) -> dict[str, Any]:
    """Ingest the configured source (or `input`) into `output`; return the stage's metrics."""
    cfg = params.ingest
    listing = list_sources(cfg, input)
    log.info("ingest: %d %s descriptors from %d files -> %s", len(listing.items), listing.kind, listing.num_files, output)
    is_table = listing.kind == "table"
    counts = map_items_to_shards(
        read_tables if is_table else read_files,
        listing.items,
        output,
        fn_kwargs={"max_file_bytes": cfg.max_file_bytes},
        num_workers=params.compute.num_workers,
        batch_size=1 if is_table else params.compute.batch_size,
        ray_address=params.compute.ray_address,
        summarize=source_stats,
    )
    summary = counts.pop("summary")
    by_repo = summary.get("by_repo", {})
    return {
        **counts,
        "input_kind": listing.kind,
        "files_listed": listing.num_files,
        "num_repos": len(by_repo),
        "by_source": summary.get("by_source", {}),
        "by_repo": top_groups(by_repo, cfg.max_repos_in_metrics),
    }
