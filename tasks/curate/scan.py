"""The curate stage's one pass over the corpus, run on the workers: algorithmic files and validated mined pairs.

`scan_corpus` cuts the input into the runner's slices (`runner.plan_slices`) and maps `scan_slices` over them
(`runner.map_items`, so Ray, or the cluster of `RAY_ADDRESS`). Each task reads its rows and, for them:
- keeps the documents containing a keyword (`algorithmic_rows`) and writes them as its part of `algorithmic/`;
- mines docstring functions (`mine.mine_batch`), runs the doctest programs in the evaluation sandbox on that
  worker (`validate`), writes the validated pairs as its part of `instructions/`, the rejected ones (with
  `drop_reason`, `detail`) as its part of `dropped/`, and with `mined_snippets` the doctest-validated functions
  as annealing documents, its part of `synthetic/`.
A task returns one row: the part names and the counts, plus at most `num_seeds` teacher seeds of each kind (the
first algorithmic files, the best-ranked mined pairs) when a teacher runs: the driver's state is bounded by
`curate.teacher.max_seeds`, never by the corpus. The driver commits the folders by their manifests
(`shards.commit_parts`), in slice order, so outputs are in input order as one pass over the corpus would give.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tasks.common.runner import map_items, plan_slices, read_slice
from tasks.common.shards import DOC_SCHEMA, absolute, join, list_shards, write_part
from tasks.curate.config import CurateConfig
from tasks.curate.execution import run_programs
from tasks.curate.mine import mine_batch
from tasks.curate.sets import PAIR_COLUMNS

PAIR_SCHEMA = pa.schema([(c, pa.string()) for c in PAIR_COLUMNS])
DROPPED_SCHEMA = pa.schema([*PAIR_SCHEMA, ("drop_reason", pa.string()), ("detail", pa.string())])
ALGORITHMIC_SCHEMA = DOC_SCHEMA.append(pa.field("keyword", pa.string()))
SYNTHETIC_SCHEMA = DOC_SCHEMA.append(pa.field("kind", pa.string())).append(pa.field("prompt_version", pa.string())) \
    .append(pa.field("teacher", pa.string())).append(pa.field("gen_seed", pa.int64())).append(pa.field("seed_id", pa.string()))
MINED_COLUMNS = ["id", "text", "repo", "path", "lang"]
FOLDERS = ("algorithmic", "instructions", "dropped", "synthetic")
"""The output folders a scan task writes a part of (`dropped/` is the stage's rejected candidates)."""


def algorithmic_rows(table: pa.Table, keywords: tuple[str, ...]) -> pa.Table:
    """Documents containing a keyword (case-insensitive), with the first keyword found in `keyword`."""
    pattern = "|".join(re.escape(k) for k in keywords)
    finder = re.compile(pattern, re.IGNORECASE)
    table = table.select(DOC_SCHEMA.names)
    hits = table.filter(pc.fill_null(pc.match_substring_regex(table["text"], pattern, ignore_case=True), False))
    found = [finder.search(t).group(0).lower() for t in hits["text"].to_pylist()]
    return hits.append_column("keyword", pa.array(found, pa.string()))


def validate(rows: list[dict], *, kind: str, timeout_s: float, memory_mb: int, num_workers: int | None) -> Counter:
    """Run the `program` of every undecided row in the sandbox: passed -> `validation` = kind, else dropped
    with `<kind>_<status>`. Returns the verdict counts."""
    todo = [r for r in rows if r["drop_reason"] is None and r["program"] is not None]
    verdicts = run_programs([r["program"] for r in todo], timeout_s=timeout_s, memory_mb=memory_mb, num_workers=num_workers)
    for row, v in zip(todo, verdicts):
        if v.passed:
            row["validation"] = kind
        else:
            row["drop_reason"], row["detail"] = f"{kind}_{v.status}", v.detail
    return Counter(v.status for v in verdicts)


def pair(row: dict) -> dict:
    return {c: row.get(c) for c in PAIR_COLUMNS}


def mined_snippet(row: dict) -> dict:
    """A doctest-validated mined function as an annealing document (the function with its passing doctests)."""
    repo, _, path = row["origin"].partition("/")
    data = row["output"].encode("utf-8", "surrogateescape")
    return {"id": row["id"], "text": row["output"], "repo": repo, "path": path, "lang": "python", "doc_type": "code",
            "source": "mined-snippet", "stars": 0, "commit_date": "", "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "kind": "snippet", "prompt_version": None, "teacher": None,
            "gen_seed": None, "seed_id": None}


def seed_rank(row: dict) -> tuple[bool, str]:
    """Order of mined pairs as teacher seeds: doctest-validated first, then by id."""
    return row["validation"] != "doctest", row["id"]


def scan_rows(docs: pa.Table, cfg: CurateConfig, limits: dict, num_seeds: int) -> tuple[dict[str, pa.Table], dict, dict]:
    """Tables to write (by folder), counts and teacher seeds of one slice of documents."""
    algorithmic = algorithmic_rows(docs, cfg.keywords)
    mined = [{**r, "detail": None} for r in mine_batch(docs.select(MINED_COLUMNS), cfg=cfg).to_pylist()] if cfg.mine else []
    doctests = validate(mined, kind="doctest", **limits)
    kept = [pair(r) for r in mined if r["drop_reason"] is None]
    rejected = [{**pair(r), "drop_reason": r["drop_reason"], "detail": r["detail"]} for r in mined if r["drop_reason"]]
    snippets = [mined_snippet(r) for r in kept if r["validation"] == "doctest"] if cfg.mined_snippets else []
    tables = {"algorithmic": algorithmic, "instructions": pa.Table.from_pylist(kept, schema=PAIR_SCHEMA),
              "dropped": pa.Table.from_pylist(rejected, schema=DROPPED_SCHEMA),
              "synthetic": pa.Table.from_pylist(snippets, schema=SYNTHETIC_SCHEMA)}
    counts = {"algorithmic_files": algorithmic.num_rows, "algorithmic_bytes": int(pc.sum(algorithmic["size_bytes"]).as_py() or 0),
              "algorithmic_by_keyword": dict(Counter(algorithmic["keyword"].to_pylist())), "files_scanned": docs.num_rows,
              "mined_candidates": len(mined), "mined_pairs": len(kept),
              "mined_doctest_validated": sum(r["validation"] == "doctest" for r in kept),
              "doctests_run": sum(doctests.values()), "doctests_passed": doctests["passed"],
              "mined_rejected_by_reason": dict(Counter(r["drop_reason"] for r in rejected))}
    seeds = {"algorithmic": algorithmic.select(["id", "text", "repo", "path"]).slice(0, num_seeds).to_pylist(),
             "mined": sorted(kept, key=seed_rank)[:num_seeds]}
    return tables, counts, seeds


def scan_slices(items: pa.Table, *, cfg: CurateConfig, output: str, limits: dict, num_seeds: int) -> pa.Table:
    """Task body: scan each slice, write its parts, return one row per slice (part names, counts, seeds)."""
    rows = []
    for index, spec in zip(items["index"].to_pylist(), map(json.loads, items["slice"].to_pylist())):
        tables, counts, seeds = scan_rows(read_slice(spec, None), cfg, limits, num_seeds)
        parts = {folder: write_part(table, join(output, folder), index) for folder, table in tables.items()}
        rows.append({"index": index, "parts": json.dumps(parts), "rows": json.dumps({k: t.num_rows for k, t in tables.items()}),
                     "counts": json.dumps(counts), "seeds": json.dumps(seeds)})
    return pa.Table.from_pylist(rows)


def merge_seeds(seeds: dict[str, list[dict]], more: dict[str, list[dict]], max_seeds: int) -> dict[str, list[dict]]:
    """The first `max_seeds` algorithmic files (input order) and best-ranked `max_seeds` mined pairs so far."""
    return {"algorithmic": (seeds["algorithmic"] + more["algorithmic"])[:max_seeds],
            "mined": sorted(seeds["mined"] + more["mined"], key=seed_rank)[:max_seeds]}


def scan_corpus(params, input: str | Path, output: str | Path, with_seeds: bool) -> tuple[list[dict], dict[str, list[dict]]]:
    """(one dict per slice in input order: `index`, `parts`, `rows`, `counts`; the teacher seeds, when asked)."""
    cfg: CurateConfig = params.curate
    compute = params.compute
    slices = plan_slices(list_shards(input), compute.num_workers)
    items = [{"index": i, "slice": json.dumps(s)} for i, s in enumerate(slices)]
    # one sandbox process per Ray task: the tasks themselves spread over the workers
    limits = dict(timeout_s=cfg.doctest_timeout_s, memory_mb=cfg.doctest_memory_mb, num_workers=1)
    num_seeds = cfg.teacher.max_seeds if with_seeds else 0
    kwargs = {"cfg": cfg, "output": absolute(output), "limits": limits, "num_seeds": num_seeds}
    results, seeds = [], {"algorithmic": [], "mined": []}
    for table in map_items(scan_slices, items, fn_kwargs=kwargs, num_workers=compute.num_workers, batch_size=1,
                           ray_address=compute.ray_address):
        for row in table.to_pylist():
            results.append({"index": row["index"], **{k: json.loads(row[k]) for k in ("parts", "rows", "counts")}})
            seeds = merge_seeds(seeds, json.loads(row["seeds"]), num_seeds)
    return sorted(results, key=lambda r: r["index"]), seeds
