"""The `dedup` stage: exact SHA256 dedup, then MinHash-LSH near-dedup (spec §2), at file, repo or chunk level,
with no central table: the driver holds object refs and counts, never a row per document.

    cookbook dedup                                        # data/clean -> data/dedup, reports/dedup/
    cookbook dedup --input DIR --output OUT --set dedup.level=repo

`plan_dedup` runs the passes of `tasks.dedup.passes` as plain Ray tasks (`tasks.common.shuffle`): each pass
takes one partition from every task of the pass before and returns its rows cut into partitions for the
next one (Ray object refs, O(slices x partitions) of them in the driver):
1. hash (one task per input slice of `runner.plan_slices`): shingles, content hashes, LSH band keys of
   every unit, with its documents' metadata -> by unit; per unit: the first occurrence of every document,
   the keep-policy key (`keys.rank_key`: most stars, latest commit, smallest id, as bytes whose minimum is
   the unit to keep, so no global sort);
2. exact dedup: a group-by on the content hash, keeper = min key;
3. LSH: a group-by on (band, value) of the surviving units, star edges from each bucket's min-key member,
   repeats removed;
4. verification (`dedup.verify`): a join: the documents of the units in candidate pairs go to their input
   slices, each slice task reads its own texts and computes those units' exact shingle sets, which are
   joined with the pairs (a side, then b side); Jaccard on the workers, failures counted as false positives;
5. connected components: min-label propagation rounds until no label changes (each round returns only a
   count of changed labels); a component's label is its min key, the unit it keeps;
6. decisions: exact copies follow their keeper to its component's kept unit; dropped units' documents are
   joined with their kept unit's (repo level: `duplicate_of` = the kept repo's file with the same path, else
   its first file; chunk level: a document goes when all its chunks go), grouped by input slice and written
   to one small file per slice in a scratch folder next to the output (`<output>.scratch/<run>/`, removed at
   the end);
7. marking (`runner.map_to_shards` of `passes.mark_batch`): every slice task reads only its own slice's
   decisions, adds `drop_reason` (null, `exact_duplicate`, `near_duplicate`) and `duplicate_of` (the id of
   the kept row it duplicates) and writes kept and `dropped/` parts, committed by the folder's manifest.
The report (cluster sizes, largest clusters, removal per language and level, guardrail) is merged from
per-partition aggregates and goes to `reports/dedup/` for the default output, else to `<output>.reports/`,
and to the tracker. The single-process implementation this replaced is `benchmarks/dedup_reference.py`.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.common.runner import TASKS_PER_WORKER, ensure_ray, map_to_shards, plan_slices
from tasks.common.shards import absolute, filesystem, join, list_shards, open_parquet, report_folder
from tasks.common.shuffle import Tasks, column
from tasks.dedup import passes
from tasks.dedup.config import DedupConfig
from tasks.dedup.report import GuardrailError, merge_clusters, merge_flagged, merge_languages, summarize, write_report

log = logging.getLogger("cookbook.dedup")

DEFAULT_OUTPUT = Path("data/dedup")


def report_dir(output: str | Path) -> Path:
    """`reports/dedup` for the pipeline's default output, else `<output>.reports` (`shards.report_folder`)."""
    return report_folder(output, DEFAULT_OUTPUT, "reports/dedup")


def scratch_folder(output: str | Path) -> str:
    """Where the per-slice decisions live between planning and marking: next to the output, never in it."""
    return absolute(output).rstrip("/") + ".scratch"


def run_folder(scratch: str) -> str:
    """A folder of its own for this run's decisions (workers cache a decisions file by its path)."""
    return join(scratch, uuid.uuid4().hex)


def decisions_path(scratch: str, index: int) -> str:
    return join(scratch, f"decisions-{index:05d}.parquet")


@dataclass
class DedupPlan:
    """What the driver knows after planning: counts and bounded report aggregates."""

    stats: dict[str, int]
    clusters: dict[str, Any]
    by_lang: dict[str, dict[str, int]]
    flagged: list[dict]
    """The first `report_top_flagged` guardrail-flagged groups, in report order."""
    num_flagged: int = 0
    num_decisions: int = 0
    slices: int = 0
    rounds: int = field(default=0)


def num_partitions(num_workers: int) -> int:
    """Partitions of every shuffle: a few per worker, so unequal partitions still keep every worker busy."""
    return max(2, num_workers * TASKS_PER_WORKER)


def _sum(dicts: list[dict]) -> Counter:
    total: Counter = Counter()
    for d in dicts:
        total.update({k: v for k, v in d.items() if isinstance(v, int)})
    return total


def _near_edges(tasks: Tasks, cfg: DedupConfig, by_value: list, members: list, slices: list, parts: int, stats: Counter) -> list:
    """LSH candidate pairs, verified where `cfg.verify`: per partition, both directions of the merged pairs."""
    edges = [tasks.submit(passes.lsh_edges, parts, *column(by_value, p), returns=parts) for p in range(parts)]
    by_value.clear()  # the band rows are freed once the tasks that read them are done
    if not cfg.verify:
        unique = [tasks.submit(passes.unique_edges, False, parts, *column(edges, p), returns=parts + 1) for p in range(parts)]
        stats.update(_sum(tasks.get([u[-1] for u in unique])))
        stats["merged_pairs"] = stats["candidate_pairs"]
        return [u[:parts] for u in unique]
    unique = [tasks.submit(passes.unique_edges, True, parts, *column(edges, p), returns=parts + 2) for p in range(parts)]
    del edges
    pairs, needed = [u[0] for u in unique], [u[1 : 1 + parts] for u in unique]
    stats.update(_sum(tasks.get([u[-1] for u in unique])))
    del unique
    wanted = [tasks.submit(passes.needed_members, len(slices), members[p], *column(needed, p), returns=len(slices))
              for p in range(parts)]
    del needed
    shingles = [tasks.submit(passes.slice_shingles, spec, cfg, parts, *column(wanted, s), returns=parts)
                for s, spec in enumerate(slices)]
    attached = [tasks.submit(passes.attach_a_side, parts, pairs[p], *column(shingles, p), returns=parts + 1) for p in range(parts)]
    del pairs, wanted, shingles
    verified = [tasks.submit(passes.verify_pairs, cfg.jaccard_threshold, parts, attached[p][0], *column([a[1:] for a in attached], p),
                             returns=parts + 1) for p in range(parts)]
    stats.update(_sum(tasks.get([v[-1] for v in verified])))
    return [v[:parts] for v in verified]


def _components(tasks: Tasks, directed: list, parts: int) -> tuple[list, int]:
    """Min-label propagation over the merged pairs until no label changes: (label partitions, rounds)."""
    started = [tasks.submit(passes.start_labels, parts, *column(directed, p), returns=parts + 3) for p in range(parts)]
    edges, labels, messages = [s[0] for s in started], [s[1] for s in started], [s[2 : 2 + parts] for s in started]
    changes, rounds = sum(tasks.get([s[-1] for s in started])), 0
    while changes:
        step = [tasks.submit(passes.propagate_labels, parts, edges[p], labels[p], *column(messages, p), returns=parts + 2)
                for p in range(parts)]
        labels, messages = [s[0] for s in step], [s[1 : 1 + parts] for s in step]
        changes, rounds = sum(tasks.get([s[-1] for s in step])), rounds + 1
    return labels, rounds


def plan_dedup(input_dir: str | Path, scratch: str, cfg: DedupConfig, num_workers: int, tasks: Tasks) -> DedupPlan:
    """Decide every document of `input_dir` and write each input slice's decisions under `scratch`
    (`decisions_path`); return the counts and the report's aggregates."""
    shards = list_shards(input_dir)
    slices = plan_slices(shards, num_workers)
    stats: Counter = Counter(units_in=0, candidate_pairs=0, false_positive_pairs=0, merged_pairs=0)
    if not slices:
        return DedupPlan({**stats, "units_exact_dropped": 0, "units_near_dropped": 0},
                         merge_clusters([], cfg.report_top_clusters), {}, [])
    parts = num_partitions(num_workers)
    names = open_parquet(shards[0]).schema_arrow.names
    columns = ["id", "text"] + [c for c in passes.META_COLUMNS if c in names]
    shard_index = {str(path): i for i, path in enumerate(shards)}
    hashed = [tasks.submit(passes.hash_slice, spec, i, shard_index, columns, cfg, parts, returns=parts) for i, spec in enumerate(slices)]
    reduced = [tasks.submit(passes.reduce_units, cfg, parts, *column(hashed, p), returns=2 * parts + 2) for p in range(parts)]
    del hashed
    members, counts = [r[0] for r in reduced], [r[1 + parts : 1 + 2 * parts] for r in reduced]
    unit_stats = tasks.get([r[-1] for r in reduced])
    stats["units_in"] = sum(s["units_in"] for s in unit_stats)
    exact = [tasks.submit(passes.exact_and_bands, cfg, parts, *column([r[1 : 1 + parts] for r in reduced], p), returns=2 * parts)
             for p in range(parts)]
    del reduced
    by_keeper, by_value = [e[:parts] for e in exact], [e[parts:] for e in exact]
    del exact
    labels, rounds = [None] * parts, 0
    if cfg.fuzzy:
        directed = _near_edges(tasks, cfg, by_value, members, slices, parts, stats)
        labels, rounds = _components(tasks, directed, parts)
    by_value.clear()
    final = [tasks.submit(passes.final_status, parts, labels[p], *column(by_keeper, p), returns=parts + 1) for p in range(parts)]
    del by_keeper, labels
    stats.update(_sum(tasks.get([f[-1] for f in final])))
    dropped = [tasks.submit(passes.dropped_members, parts, members[p], *column([f[:parts] for f in final], p), returns=parts)
               for p in range(parts)]
    clustered = [tasks.submit(passes.clusters_and_decisions, cfg, len(slices), members[p], *column(dropped, p),
                              returns=len(slices) + 1) for p in range(parts)]
    del final, dropped, members
    clusters = merge_clusters(tasks.get([c[-1] for c in clustered]), cfg.report_top_clusters)
    fs, path = filesystem(scratch)
    fs.create_dir(path, recursive=True)
    decided = [tasks.submit(passes.slice_decisions, cfg, decisions_path(scratch, s), parts, *column([c[:-1] for c in clustered], s),
                            returns=parts + 1) for s in range(len(slices))]
    del clustered
    slice_stats = tasks.get([d[-1] for d in decided])
    flagged = [tasks.submit(passes.guardrail_partition, cfg, parts, *column(counts, p), *column([d[:parts] for d in decided], p))
               for p in range(parts)]
    flagged, num_flagged = merge_flagged(tasks.get([f[0] for f in flagged]), passes.guardrail_groups(cfg), cfg.report_top_flagged)
    by_lang = merge_languages([s["by_lang"] for s in unit_stats] + [s["by_lang"] for s in slice_stats])
    return DedupPlan(dict(stats), clusters, by_lang, flagged, num_flagged, sum(s["decisions"] for s in slice_stats), len(slices), rounds)


def remove_scratch(scratch: str) -> None:
    fs, path = filesystem(scratch)
    if fs.get_file_info(path).type.name != "NotFound":
        fs.delete_dir(path)


def _metrics(written: dict[str, Any], plan: DedupPlan, summary: dict[str, Any]) -> dict[str, Any]:
    clusters = summary["clusters"]
    return {
        **written,
        "level": summary["level"],
        **plan.stats,
        "num_clusters": clusters["num_clusters"],
        "largest_cluster": max((c["size"] for c in clusters["largest"]), default=1),
        "guardrail_flagged": plan.num_flagged,
    }


def run(params, input: Path | None, output: Path, tracker) -> dict[str, Any]:
    """Deduplicate `input` into `output` (kept) and `output/dropped` (duplicates); return the metrics."""
    cfg: DedupConfig = params.dedup
    workers = params.compute.num_workers
    scratch = scratch_folder(output)
    list_shards(input)  # a missing input fails here, before Ray starts
    ensure_ray(params.compute.ray_address)
    try:
        decisions = run_folder(scratch)
        plan = plan_dedup(input, decisions, cfg, workers, Tasks.on_ray())
        for item in plan.flagged:
            log.warning("dedup guardrail: %s '%s' would lose %d of %d rows (%.0f%%)", item["group"], item["name"], item["removed"], item["rows"], 100 * item["share"])
        more = f" and {plan.num_flagged - len(plan.flagged)} more" if plan.num_flagged > len(plan.flagged) else ""
        if more:
            log.warning("dedup guardrail: %s groups flagged (listed: the first %d)", plan.num_flagged, len(plan.flagged))
        if plan.flagged and cfg.guardrail_action == "fail":
            raise GuardrailError(f"dedup would remove more than {cfg.guardrail_share:.0%} of: "
                                 + ", ".join(f"{f['group']} {f['name']}" for f in plan.flagged) + more)
        written = map_to_shards(passes.mark_batch, input, output, num_workers=workers, batch_size=params.compute.batch_size * 4,
                                ray_address=params.compute.ray_address, slice_kwargs=lambda i: {"decisions": decisions_path(decisions, i)})
    finally:
        remove_scratch(scratch)
    marked = sum(n for reason, n in written["dropped_by_reason"].items() if reason in (passes.EXACT, passes.NEAR))
    if marked != plan.num_decisions:
        raise RuntimeError(f"dedup: {plan.num_decisions} documents were planned for removal but {marked} were marked "
                           f"(the marking pass's slices differ from the planning pass's)")
    log.info("dedup: %d units in %d slices, %d candidate pairs, %d merged, components in %d label rounds, %d documents dropped",
             plan.stats["units_in"], plan.slices, plan.stats["candidate_pairs"], plan.stats["merged_pairs"], plan.rounds, marked)
    summary = summarize(cfg, plan.stats, plan.clusters, plan.by_lang, plan.flagged, plan.num_flagged)
    files = write_report(summary, report_dir(output))
    tracker.log_dict(summary, "dedup/dedup_report.json")
    for path in files[1:]:
        tracker.log_artifact(path, "dedup")
    return _metrics(written, plan, summary)
