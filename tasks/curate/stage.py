"""The `curate` stage (spec §6, §8): the annealing high-quality sources and the SFT sets, from the sampled corpus.

    cookbook curate --input data/sample --output data/curate
    cookbook curate --set curate.teacher.backend=vllm --set curate.teacher.model=Qwen/Qwen2.5-Coder-7B-Instruct

Steps:
1. Algorithmic corpus: documents containing any of `curate.keywords` ("leetcode", "def solution", "class
   solution"; case-insensitive), streamed with one vectorised regex per batch.
2. Mined instruction pairs (`mine.py`, mapped over the corpus on Ray, in process under `ray_min_rows`):
   module-level Python functions with docstrings; those with doctests are run in the evaluation sandbox and
   kept only when they pass.
3. MBPP's train split, each reference run against its own asserts in the sandbox.
4. With a teacher (`curate.teacher.backend`): synthetic snippets, textbook sections and educational
   instructions from seeds (algorithmic files, then mined functions), tested in the sandbox, resumable
   (`synthetic.py`).
5. SFT sets stage 1 and stage 2 from the instruction pools by mix and size, exact-deduplicated (`sets.py`).

Output (atomic): `algorithmic/` (document rows + `keyword`), `synthetic/` (document rows: kept snippets and
textbook sections, and with `mined_snippets` the doctest-validated mined functions, `source: mined-snippet`), `instructions/` (every validated pair, with `source` and `validation`), `sft_stage1/`,
`sft_stage2/` (each with `dropped/` for in-set duplicates), and `dropped/` (rejected candidates with
`drop_reason` and `detail`). Counts: rows_in = candidates (mined docstring functions + MBPP-train rows +
finished synthetic samples) = rows_kept (validated pairs + kept synthetic documents) + rows_dropped;
`files_scanned` is the number of input documents.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.common.shards import DOC_SCHEMA, ShardWriter, atomic_dir, count_rows, iter_batches
from tasks.curate.config import CurateConfig
from tasks.curate.execution import run_programs
from tasks.curate.mapping import map_folder
from tasks.curate.mine import mine_batch
from tasks.curate.sets import build_set
from tasks.curate.sft_sets import mbpp_train_rows
from tasks.curate.synthetic import Seed, generate_kind

log = logging.getLogger(__name__)

PAIR_COLUMNS = ["id", "instruction", "output", "source", "origin", "validation"]
PAIR_SCHEMA = pa.schema([(c, pa.string()) for c in PAIR_COLUMNS])
DROPPED_SCHEMA = pa.schema([*PAIR_SCHEMA, ("drop_reason", pa.string()), ("detail", pa.string())])
ALGORITHMIC_SCHEMA = DOC_SCHEMA.append(pa.field("keyword", pa.string()))
SYNTHETIC_SCHEMA = DOC_SCHEMA.append(pa.field("kind", pa.string())).append(pa.field("prompt_version", pa.string())) \
    .append(pa.field("teacher", pa.string())).append(pa.field("gen_seed", pa.int64())).append(pa.field("seed_id", pa.string()))


def algorithmic_batches(input_dir: Path, keywords: tuple[str, ...], batch_size: int) -> Iterator[pa.Table]:
    """Documents containing a keyword, with the first keyword found in `keyword`."""
    pattern = "|".join(re.escape(k) for k in keywords)
    finder = re.compile(pattern, re.IGNORECASE)
    for batch in iter_batches(input_dir, batch_size=batch_size):
        table = pa.Table.from_batches([batch]).select(DOC_SCHEMA.names)
        hits = table.filter(pc.fill_null(pc.match_substring_regex(table["text"], pattern, ignore_case=True), False))
        if hits.num_rows:
            found = [finder.search(t).group(0).lower() for t in hits["text"].to_pylist()]
            yield hits.append_column("keyword", pa.array(found, pa.string()))


def mine_candidates(params, input_dir: Path) -> list[dict]:
    """Mined candidate rows of the whole corpus (Ray), doctests not yet run."""
    tables = map_folder(mine_batch, input_dir, params=params, ray_min_rows=params.curate.ray_min_rows,
                        fn_kwargs={"cfg": params.curate}, columns=["id", "text", "repo", "path", "lang"])
    return [row for table in tables for row in table.to_pylist()]


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


def mined_snippet(row: dict) -> dict:
    """A doctest-validated mined function as an annealing document (the function with its passing doctests)."""
    repo, _, path = row["origin"].partition("/")
    data = row["output"].encode("utf-8", "surrogateescape")
    return {"id": row["id"], "text": row["output"], "repo": repo, "path": path, "lang": "python", "doc_type": "code",
            "source": "mined-snippet", "stars": 0, "commit_date": "", "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "kind": "snippet", "prompt_version": None, "teacher": None,
            "gen_seed": None, "seed_id": None}


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


def _write(folder: Path, rows: list[dict], schema: pa.Schema, dropped: list[dict] = (), dropped_schema: pa.Schema | None = None) -> None:
    writer = ShardWriter(folder, schema=schema)
    writer.write(pa.Table.from_pylist(rows, schema=schema))
    if dropped_schema is not None:
        writer.write_dropped(pa.Table.from_pylist(list(dropped), schema=dropped_schema))
    writer.close()


def write_algorithmic(input: Path, folder: Path, cfg: CurateConfig, batch_size: int) -> dict:
    """Stream the algorithmic corpus into `folder`; return its counts and the first `max_seeds` rows (teacher seeds)."""
    writer = ShardWriter(folder, schema=ALGORITHMIC_SCHEMA)
    seeds, by_keyword, num_bytes = [], Counter(), 0
    for table in algorithmic_batches(input, cfg.keywords, batch_size):
        writer.write(table)
        by_keyword.update(table["keyword"].to_pylist())
        num_bytes += int(pc.sum(table["size_bytes"]).as_py() or 0)
        if len(seeds) < cfg.teacher.max_seeds:
            seeds += table.select(["id", "text", "repo", "path"]).slice(0, cfg.teacher.max_seeds - len(seeds)).to_pylist()
    writer.close()
    return {"seeds": seeds, "algorithmic_files": sum(by_keyword.values()), "algorithmic_bytes": num_bytes,
            "algorithmic_by_keyword": dict(sorted(by_keyword.items()))}


def validated_pools(params, input: Path) -> tuple[dict[str, list[dict]], list[dict], dict]:
    """Mined and MBPP-train pairs after their sandbox checks: (pools, rejected rows, counts)."""
    cfg: CurateConfig = params.curate
    limits = dict(timeout_s=cfg.doctest_timeout_s, memory_mb=cfg.doctest_memory_mb, num_workers=params.compute.num_workers)
    mined = [{**r, "detail": None} for r in mine_candidates(params, input)] if cfg.mine else []
    doctests = validate(mined, kind="doctest", **limits)
    mbpp = [{**r, "detail": None} for r in mbpp_train_rows()] if cfg.mbpp_train else []
    mbpp_checks = validate(mbpp, kind="tests", **limits)
    pools = {"mined": [_pair(r) for r in mined if r["drop_reason"] is None],
             "mbpp-train": [_pair(r) for r in mbpp if r["drop_reason"] is None], "educational": []}
    rejected = [{**_pair(r), "drop_reason": r["drop_reason"], "detail": r["detail"]} for r in mined + mbpp if r["drop_reason"]]
    num_doctests = sum(doctests.values())
    counts = {"mined_candidates": len(mined), "mbpp_train_candidates": len(mbpp), "mined_pairs": len(pools["mined"]),
              "mined_doctest_validated": sum(r["validation"] == "doctest" for r in pools["mined"]),
              "doctests_run": num_doctests, "doctest_pass_rate": round(doctests["passed"] / num_doctests, 4) if num_doctests else None,
              "mbpp_train_checked": sum(mbpp_checks.values()), "mbpp_train_pairs": len(pools["mbpp-train"])}
    return pools, rejected, counts


def _pair(row: dict) -> dict:
    return {c: row.get(c) for c in PAIR_COLUMNS}


def curate(params, input: Path, output: Path, tracker, teacher_backend=None) -> dict:
    """The stage, with an optional teacher backend object (tests pass an in-process one)."""
    cfg: CurateConfig = params.curate
    Path(cfg.teacher.cache_dir).mkdir(parents=True, exist_ok=True)
    with atomic_dir(output) as tmp:
        algo = write_algorithmic(input, tmp / "algorithmic", cfg, params.compute.batch_size)
        pools, rejected, counts = validated_pools(params, input)
        synthetic = {"docs": [], "pairs": [], "rejected": [], "counts": {"teacher": None}}
        if teacher_backend is not None or cfg.teacher.backend:
            seeds = teacher_seeds(algo.pop("seeds"), pools["mined"], cfg.teacher.max_seeds)
            synthetic = synthesize(params, seeds, teacher_backend or make_teacher(params), tracker)
            pools["educational"] = synthetic["pairs"]
            rejected += synthetic["rejected"]
        algo.pop("seeds", None)
        if cfg.mined_snippets:
            synthetic["docs"] += [mined_snippet(r) for r in pools["mined"] if r["validation"] == "doctest"]
        sets = {name: build_set(pools, getattr(cfg, name), cfg.seed) for name in ("sft_stage1", "sft_stage2")}
        _write(tmp / "synthetic", synthetic["docs"], SYNTHETIC_SCHEMA)
        _write(tmp / "instructions", [r for pool in pools.values() for r in pool], PAIR_SCHEMA)
        for name, built in sets.items():
            _write(tmp / name, [_pair(r) for r in built["kept"]], PAIR_SCHEMA, built["dropped"],
                   PAIR_SCHEMA.append(pa.field("drop_reason", pa.string())).append(pa.field("duplicate_of", pa.string())))
        (tmp / "dropped").mkdir()
        pq.write_table(pa.Table.from_pylist(rejected, schema=DROPPED_SCHEMA), tmp / "dropped" / "part-00000.parquet")
    return {
        **candidate_counts(counts, synthetic, pools, rejected),
        "dropped_by_reason": dict(sorted(Counter(r["drop_reason"] for r in rejected).items())),
        "files_scanned": count_rows(input), **algo, **counts,
        "validated_pairs": sum(len(p) for p in pools.values()), "pools": {k: len(v) for k, v in pools.items()},
        "synthetic_docs": len(synthetic["docs"]), "mined_snippet_docs": sum(d["source"] == "mined-snippet" for d in synthetic["docs"]),
        "synthetic": synthetic["counts"],
        **{name: built["counts"] for name, built in sets.items()},
    }


def candidate_counts(counts: dict, synthetic: dict, pools: dict[str, list[dict]], rejected: list[dict]) -> dict:
    """rows_in / rows_kept / rows_dropped over the stage's candidates, each counted where it is made.

    In: mined candidates, MBPP-train rows and finished teacher samples. Kept: the pairs in the pools and the
    teacher's annealing documents (mined snippets are copies of kept mined pairs, reported apart as
    `mined_snippet_docs`). Dropped: the rejected rows. A candidate lost or doubled between the sandbox checks,
    the pools and the writers makes rows_in != kept + dropped.
    """
    teacher = [c["finished"] for c in synthetic["counts"].values() if isinstance(c, dict)]
    rows_in = counts["mined_candidates"] + counts["mbpp_train_candidates"] + sum(teacher)
    teacher_docs = sum(d["source"] != "mined-snippet" for d in synthetic["docs"])
    return {"rows_in": rows_in, "rows_kept": sum(len(p) for p in pools.values()) + teacher_docs,
            "rows_dropped": len(rejected)}


def run(params, input: Path | None, output: Path, tracker) -> dict:
    return curate(params, input, output, tracker)
