"""The `curate` stage (spec §6, §8): the annealing high-quality sources and the SFT sets, from the sampled corpus.

    cookbook curate --input data/sample --output data/curate
    cookbook curate --set curate.teacher.backend=vllm --set curate.teacher.model=Qwen/Qwen2.5-Coder-7B-Instruct

Steps:
1. One pass over the corpus on the workers (`scan.py`, mapped by the runner): the algorithmic corpus
   (documents containing any of `curate.keywords`: "leetcode", "def solution", "class solution";
   case-insensitive) and the mined instruction pairs (`mine.py`: module-level Python functions with
   docstrings; those with doctests are run in the evaluation sandbox on the worker and kept only when they
   pass). Each task writes its own parts; the driver gets counts and at most `teacher.max_seeds` seeds.
2. MBPP's train split (374 tasks: bounded), each reference run against its own asserts in the sandbox.
3. With a teacher (`curate.teacher.backend`): synthetic snippets, textbook sections and educational
   instructions from seeds (algorithmic files, then mined functions; at most `teacher.max_seeds`), tested in the
   sandbox, resumable (`synthetic.py`).
4. SFT sets stage 1 and stage 2 from the instruction pools by mix and size, exact-deduplicated, built on Ray Data
   from the stored pools and written by the workers (`sets.write_set`).

What runs where: the driver plans slices, merges counts, holds the bounded MBPP-train and teacher rows and
commits every folder by its manifest (`shards.commit_parts`, written last); no corpus document, mined pair or
set row passes through it, so its memory does not grow with the corpus.

Output: `algorithmic/` (document rows + `keyword`), `synthetic/` (document rows: kept teacher snippets and
textbook sections, then with `mined_snippets` the doctest-validated mined functions, `source: mined-snippet`),
`instructions/` (every validated pair, with `source` and `validation`: mined, then MBPP-train, then
educational), `sft_stage1/`, `sft_stage2/` (each with `dropped/` for in-set duplicates), and `dropped/`
(rejected candidates with `drop_reason` and `detail`). Folders are URIs. Counts: rows_in = candidates (mined
docstring functions + MBPP-train rows + finished synthetic samples) = rows_kept (validated pairs + kept
synthetic documents) + rows_dropped; `files_scanned` is the number of input documents.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from pathlib import Path

import pyarrow as pa

from tasks.common.shards import commit_parts, join, prepare_output, staged_output, write_part
from tasks.common.stage import add_counts
from tasks.curate.config import CurateConfig
from tasks.curate.scan import (ALGORITHMIC_SCHEMA, DROPPED_SCHEMA, FOLDERS, PAIR_SCHEMA, SYNTHETIC_SCHEMA, pair, scan_corpus,
                               validate)
from tasks.curate.sets import write_set
from tasks.curate.sft_sets import mbpp_train_rows
from tasks.curate.synthetic import Seed, generate_kind

log = logging.getLogger(__name__)

SCHEMAS = {"algorithmic": ALGORITHMIC_SCHEMA, "instructions": PAIR_SCHEMA, "dropped": DROPPED_SCHEMA, "synthetic": SYNTHETIC_SCHEMA}
"""The schema of each folder the stage writes besides the SFT sets."""


def make_teacher(params):
    from tasks.evaluate.backends import make_backend

    t = params.curate.teacher
    cfg = dataclasses.replace(params.evaluate, backend=t.backend, max_new_tokens=t.max_new_tokens, temperature=t.temperature,
                              top_p=t.top_p, batch_size=t.batch_size, num_samples=t.samples_per_seed, openai_model=t.model)
    return make_backend(t.model, cfg, seed=t.seed)


def teacher_seeds(algorithmic: list[dict], mined: list[dict], max_seeds: int) -> list[Seed]:
    """Algorithmic-corpus files first, then validated mined functions (doctest-validated before parsed-only)."""
    seeds = [Seed(r["id"], r["text"], f"{r['repo']}/{r['path']}") for r in sorted(algorithmic, key=lambda r: r["id"])]
    ranked = sorted(mined, key=lambda r: (r["validation"] != "doctest", r["id"]))
    seeds += [Seed(r["id"], r["output"], r["origin"]) for r in ranked]
    return seeds[:max_seeds]


def synthetic_doc(row: dict) -> dict:
    text = row["output"] if row["kind"] == "textbook" else f"{row['output']}\n\n\n{row['tests']}\n"
    repo, _, path = row["seed_origin"].partition("/")
    data = text.encode("utf-8", "surrogateescape")
    return {"id": row["key"][:16], "text": text, "repo": repo, "path": path, "lang": "markdown" if row["kind"] == "textbook" else "python",
            "doc_type": "text" if row["kind"] == "textbook" else "code", "source": f"synthetic-{row['kind']}", "stars": 0,
            "commit_date": "", "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "kind": row["kind"],
            "prompt_version": row["prompt_version"], "teacher": row["teacher"], "gen_seed": row["gen_seed"], "seed_id": row["seed_id"]}


def synthesize(params, seeds: list[Seed], backend, tracker) -> dict:
    """Generate every configured kind; rows split into annealing documents, educational pairs and rejects."""
    cfg = params.curate.teacher
    teacher = f"{cfg.backend}:{cfg.model}" if cfg.backend else type(backend).__name__
    docs, pairs, rejected, counts = [], [], [], {}
    for kind in cfg.kinds:
        res = generate_kind(kind, seeds, backend, cfg, teacher=teacher, num_workers=params.compute.num_workers)
        tracker.log_params({f"curate.prompt_version.{kind}": res["prompt_version"], "curate.teacher.id": teacher})
        status = Counter(r["status"] for r in res["rows"])
        counts[kind] = {"prompt_version": res["prompt_version"], "finished": len(res["rows"]), "generated_this_run": res["generated"],
                        "resumed": res["resumed"], "kept": status["passed"], "by_status": dict(sorted(status.items())),
                        "kept_rate": round(status["passed"] / max(1, len(res["rows"])), 4),
                        "generation_seconds": res["generation_seconds"],
                        "samples_per_s": round(res["generated"] / res["generation_seconds"], 3) if res["generation_seconds"] else None}
        for r in res["rows"]:
            if r["status"] != "passed":
                rejected.append({"id": r["key"][:16], "instruction": r["instruction"], "output": r["output"], "source": kind,
                                 "origin": r["seed_origin"], "validation": None, "drop_reason": f"synthetic_{r['status']}",
                                 "detail": r["detail"]})
            elif kind == "educational":
                pairs.append({"id": r["key"][:16], "instruction": r["instruction"], "output": r["output"], "source": "educational",
                              "origin": r["seed_origin"], "validation": "tests"})
            else:
                docs.append(synthetic_doc(r))
    return {"docs": docs, "pairs": pairs, "rejected": rejected, "counts": {"teacher": teacher, **counts}}


def mbpp_pool(params) -> tuple[list[dict], list[dict], dict]:
    """MBPP-train pairs after their sandbox checks: (pairs, rejected rows, counts). A fixed set of 374 tasks."""
    cfg: CurateConfig = params.curate
    limits = dict(timeout_s=cfg.doctest_timeout_s, memory_mb=cfg.doctest_memory_mb, num_workers=params.compute.num_workers)
    mbpp = [{**r, "detail": None} for r in mbpp_train_rows()] if cfg.mbpp_train else []
    checks = validate(mbpp, kind="tests", **limits)
    pairs = [pair(r) for r in mbpp if r["drop_reason"] is None]
    rejected = [{**pair(r), "drop_reason": r["drop_reason"], "detail": r["detail"]} for r in mbpp if r["drop_reason"]]
    return pairs, rejected, {"mbpp_train_candidates": len(mbpp), "mbpp_train_checked": sum(checks.values()), "mbpp_train_pairs": len(pairs)}


def driver_parts(output: str | Path, folder: str, tables: list[list[dict]], index: int) -> list[tuple[str, int]]:
    """Write the driver's bounded rows for one folder, one part per non-empty list: [(part, rows)]."""
    uri, schema = join(output, folder), SCHEMAS[folder]
    return [(write_part(pa.Table.from_pylist(rows, schema=schema), uri, index + k), len(rows)) for k, rows in enumerate(tables) if rows]


def commit_folders(output: str | Path, scanned: list[dict], before: dict[str, list[tuple[str, int]]],
                   after: dict[str, list[tuple[str, int]]]) -> None:
    """Commit every folder: the driver's parts `before` the scanned parts (in slice order), then those `after`."""
    for folder in FOLDERS:
        uri = join(output, folder)
        listed = before.get(folder, []) + [(r["parts"][folder], r["rows"][folder]) for r in scanned if r["rows"][folder]] \
            + after.get(folder, [])
        parts = [name for name, _ in listed] or [write_part(SCHEMAS[folder].empty_table(), uri, len(scanned))]
        commit_parts(uri, parts, sum(rows for _, rows in listed))


def curate(params, input: Path, output: Path, tracker, teacher_backend=None) -> dict:
    """The stage, with an optional teacher backend object (tests pass an in-process one)."""
    cfg: CurateConfig = params.curate
    Path(cfg.teacher.cache_dir).mkdir(parents=True, exist_ok=True)
    prepare_output(output)
    with_teacher = teacher_backend is not None or bool(cfg.teacher.backend)
    scanned, seeds = scan_corpus(params, input, output, with_teacher)
    scan = {"files_scanned": 0, "algorithmic_files": 0, "algorithmic_bytes": 0, "algorithmic_by_keyword": {}, "mined_candidates": 0,
            "mined_pairs": 0, "mined_doctest_validated": 0, "doctests_run": 0, "doctests_passed": 0, "mined_rejected_by_reason": {}}
    for r in scanned:
        scan = add_counts(scan, r["counts"])
    mbpp_pairs, rejected, mbpp_counts = mbpp_pool(params)
    synthetic = {"docs": [], "pairs": [], "rejected": [], "counts": {"teacher": None}}
    if with_teacher:
        chosen = teacher_seeds(seeds["algorithmic"], seeds["mined"], cfg.teacher.max_seeds)
        synthetic = synthesize(params, chosen, teacher_backend or make_teacher(params), tracker)
    rejected += synthetic["rejected"]
    first = len(scanned)
    mbpp_part = driver_parts(output, "instructions", [mbpp_pairs], first)
    educational_part = driver_parts(output, "instructions", [synthetic["pairs"]], first + 1)
    commit_folders(output, scanned, before={"synthetic": driver_parts(output, "synthetic", [synthetic["docs"]], first)},
                   after={"instructions": mbpp_part + educational_part, "dropped": driver_parts(output, "dropped", [rejected], first)})
    pool_rows = {"mined": scan["mined_pairs"], "mbpp-train": len(mbpp_pairs), "educational": len(synthetic["pairs"])}
    instructions = join(output, "instructions")
    pool_parts = {"mined": [join(instructions, r["parts"]["instructions"]) for r in scanned if r["rows"]["instructions"]],
                  "mbpp-train": [join(instructions, name) for name, _ in mbpp_part],
                  "educational": [join(instructions, name) for name, _ in educational_part]}
    sets = {name: write_set(pool_parts, pool_rows, getattr(cfg, name), cfg.seed, join(output, name),
                            ray_address=params.compute.ray_address) for name in ("sft_stage1", "sft_stage2")}
    dropped_by_reason = Counter(scan["mined_rejected_by_reason"]) + Counter(r["drop_reason"] for r in rejected)
    num_doctests = scan["doctests_run"]
    counts = {"mined_candidates": scan["mined_candidates"], "mbpp_train_candidates": mbpp_counts["mbpp_train_candidates"],
              "mined_pairs": scan["mined_pairs"], "mined_doctest_validated": scan["mined_doctest_validated"],
              "doctests_run": num_doctests,
              "doctest_pass_rate": round(scan["doctests_passed"] / num_doctests, 4) if num_doctests else None,
              "mbpp_train_checked": mbpp_counts["mbpp_train_checked"], "mbpp_train_pairs": mbpp_counts["mbpp_train_pairs"]}
    teacher_docs = len(synthetic["docs"])
    return {
        **candidate_counts(counts, synthetic, pool_rows, sum(dropped_by_reason.values())),
        "dropped_by_reason": dict(sorted(dropped_by_reason.items())),
        "files_scanned": scan["files_scanned"], "algorithmic_files": scan["algorithmic_files"],
        "algorithmic_bytes": scan["algorithmic_bytes"], "algorithmic_by_keyword": dict(sorted(scan["algorithmic_by_keyword"].items())),
        **counts, "validated_pairs": sum(pool_rows.values()), "pools": pool_rows,
        "synthetic_docs": teacher_docs + (scan["mined_doctest_validated"] if cfg.mined_snippets else 0),
        "mined_snippet_docs": scan["mined_doctest_validated"] if cfg.mined_snippets else 0,
        "synthetic": synthetic["counts"],
        **sets,
    }


def candidate_counts(counts: dict, synthetic: dict, pool_rows: dict[str, int], rows_dropped: int) -> dict:
    """rows_in / rows_kept / rows_dropped over the stage's candidates, each counted where it is made.

    In: mined candidates, MBPP-train rows and finished teacher samples. Kept: the pairs in the pools and the
    teacher's annealing documents (mined snippets are copies of kept mined pairs, reported apart as
    `mined_snippet_docs`). Dropped: the rejected rows. A candidate lost or doubled between the sandbox checks,
    the pools and the writers makes rows_in != kept + dropped.
    """
    teacher = [c["finished"] for c in synthetic["counts"].values() if isinstance(c, dict)]
    rows_in = counts["mined_candidates"] + counts["mbpp_train_candidates"] + sum(teacher)
    return {"rows_in": rows_in, "rows_kept": sum(pool_rows.values()) + len(synthetic["docs"]), "rows_dropped": rows_dropped}


def run(params, input: Path | None, output: str | Path, tracker) -> dict:
    """The stage: its folders (instructions, SFT sets, synthetic, dropped) replace a previous local output
    together (`shards.staged_output`)."""
    with staged_output(output) as target:
        return curate(params, input, target, tracker)
