"""The `recall` stage: code-related web and text recall between `ingest` and `clean` (spec §5, Appendix C).

    cookbook recall                                          # data/ingest + the shipped web corpus -> data/recall
    cookbook recall --set recall.web_path=fineweb.parquet    # your own web pages (url/text columns)
    cookbook recall --set recall.enabled=false               # the ablation "web recall off"

Output = every input row, kept unchanged plus a `code_related_text` column (True/False for repository
text files, scored by the final classifier or named by the Appendix C.2 heuristic; null for other files),
plus the recalled web pages as new document rows (doc_type "text", source "web", repo = domain,
path = URL), sampled so recalled web text is at most `web_share` of the output bytes. Web pages that
are not recalled go to `dropped/` with their reason. `output/rounds/<i>/` holds each round's seeds,
tokenizer, model, scores and recalled ids; the rounds are computed in `checkpoints/recall/<key>/`.

What runs where. On the workers (through `tasks/common/runner.py`): reading the web files (`web.read_web`, one
task per file, the ingest reader), the scan of the input for Appendix C.2 seed files and bytes
(`repo_text_rows`), every round's scoring (`loop.ray_scorer`) and the final pass over the input, where each
task flags its rows and writes its own kept part (`write_output` with `runner.write_slice`), returning counts.
On the driver: the recall loop's state, which is bounded by the web input and the seed budget, never by the
code corpus -- the usable web pages (`loop.Pages`: ids, texts, URLs, domains), their scores per round, the
seeds (heuristic, labelled files, at most `max_repo_seeds` repository files) and the fastText training on
them -- and the web rows' decisions, written as the last part with the common writer (`shards.write_part`).
The folder is committed once, by its manifest (`runner.commit_outputs`), written last.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from tasks.common.progress import Progress, output_label
from tasks.common.runner import commit_outputs, map_items, plan_slices, read_slice, write_empty_outputs, write_slice
from tasks.common.shards import (DROPPED, absolute, commit_parts, filesystem, join, list_shards, open_parquet, prepare_output,
                                 staged_output, upload_folder, write_part)
from tasks.common.stage import DROP_REASON, add_counts, finish_counts, split_counts, split_kept_dropped
from tasks.recall.classify import score_texts
from tasks.recall.config import RecallConfig
from tasks.recall.loop import SEED_SCHEMA, Pages, RoundResult, heuristic_seeds, ray_scorer, run_rounds, work_key
from tasks.recall.text import code_related_filename, is_text_file
from tasks.recall.web import read_web

log = logging.getLogger(__name__)

DATA = Path(__file__).parent / "data"
DEFAULT_WEB = DATA / "web_pages.jsonl.gz"
DEFAULT_HELDOUT = DATA / "heldout.jsonl.gz"
FLAG = "code_related_text"


def labelled_table(path: Path, compute=None) -> pa.Table:
    """`text` + `label` (1/0, or code/other strings) of a labelled Parquet/JSONL file as a seed table."""
    web = read_web(path, with_labels=True, **workers(compute))
    raw = web["label"].to_pylist()
    keep = [i for i, r in enumerate(web[DROP_REASON].to_pylist()) if r is None or r == "missing_url"]
    texts = web["text"].to_pylist()
    rows = [(f"seed-{i}", texts[i], raw[i], "seed_path") for i in keep if texts[i] and raw[i] is not None]
    cols = list(zip(*rows)) if rows else [[], [], [], []]
    return pa.table([pa.array(list(c), f.type) for c, f in zip(cols, SEED_SCHEMA)], schema=SEED_SCHEMA)


def workers(compute) -> dict[str, Any]:
    """The runner's settings of `params.compute` (defaults without one)."""
    return {"num_workers": compute.num_workers, "ray_address": compute.ray_address} if compute is not None else {}


def heldout_table(cfg: RecallConfig, compute=None) -> pa.Table:
    if cfg.heldout_path == "":
        return pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int8())})
    return labelled_table(Path(cfg.heldout_path) if cfg.heldout_path else DEFAULT_HELDOUT, compute).select(["text", "label"])


def extra_seeds(cfg: RecallConfig, compute=None) -> pa.Table:
    tables = [labelled_table(Path(p), compute) for p in cfg.seed_paths]
    return pa.concat_tables(tables) if tables else SEED_SCHEMA.empty_table()


def repo_seed_slices(items: pa.Table, *, limit: int) -> pa.Table:
    """Task body: per slice of the input, the texts of its first `limit` Appendix C.2-named text files and its
    bytes (one row per slice, never a document row)."""
    rows = []
    for index, spec in zip(items["index"].to_pylist(), map(json.loads, items["slice"].to_pylist())):
        table = read_slice(spec, ["path", "text", "size_bytes"])
        seeds = [t for p, t in zip(table["path"].to_pylist(), table["text"].to_pylist())
                 if t and is_text_file(p) and code_related_filename(p)][:limit]
        rows.append({"index": index, "seeds": json.dumps(seeds), "bytes": int(pc.sum(table["size_bytes"]).as_py() or 0)})
    return pa.Table.from_pylist(rows)


def repo_text_rows(input_dir: str | Path, compute, limit: int) -> tuple[list[str], int]:
    """(texts of the first `limit` Appendix C.2-named text files in input order, total input bytes), scanned on
    the workers: the driver keeps at most `limit` texts."""
    items = [{"index": i, "slice": json.dumps(s)} for i, s in enumerate(plan_slices(list_shards(input_dir), compute.num_workers))]
    seeds, total = [], 0
    for table in map_items(repo_seed_slices, items, fn_kwargs={"limit": limit}, num_workers=compute.num_workers, batch_size=1,
                           ray_address=compute.ray_address):
        for row in table.to_pylist():
            seeds = (seeds + json.loads(row["seeds"]))[:limit]
            total += row["bytes"]
    return seeds, total


def flag_text_files(batch: pa.Table, model_path: str | None, tok_path: str | None, threshold: float, max_chars: int) -> pa.Table:
    """Runner function: add `code_related_text` (text files only) and a null `drop_reason` to input rows."""
    paths, texts = batch["path"].to_pylist(), batch["text"].to_pylist()
    is_text = [is_text_file(p) and bool(t) for p, t in zip(paths, texts)]
    flags: list[bool | None] = [None] * len(paths)
    todo = [i for i, t in enumerate(is_text) if t]
    if todo:
        scores = score_texts([texts[i] for i in todo], model_path, tok_path, max_chars) if model_path else np.zeros(len(todo))
        for i, s in zip(todo, scores):
            flags[i] = bool(code_related_filename(paths[i]) or s >= threshold)
    return batch.append_column(FLAG, pa.array(flags, pa.bool_())).append_column(DROP_REASON, pa.nulls(batch.num_rows, pa.string()))


def pass_through(batch: pa.Table) -> pa.Table:
    """Input rows unchanged (recall disabled), with a null flag and drop reason."""
    return batch.append_column(FLAG, pa.nulls(batch.num_rows, pa.bool_())).append_column(DROP_REASON, pa.nulls(batch.num_rows, pa.string()))


def web_budget(repo_bytes: int, share: float) -> int:
    """Most web bytes so that web / (repo + web) <= share."""
    return int(share / (1.0 - share) * repo_bytes) if share > 0 else 0


def web_decisions(web: pa.Table, pages: Pages, final: RoundResult | None, budget: int, cfg: RecallConfig) -> pa.Table:
    """Web rows with their final drop reason: recalled pages within the byte budget are kept."""
    reasons = web[DROP_REASON].to_pylist()
    position = {doc_id: k for k, doc_id in enumerate(pages.ids)}
    sizes = web["size_bytes"].to_pylist()
    ids = web["id"].to_pylist()
    urls = web["url"].to_pylist()
    from tasks.recall.domains import matches_any

    recalled_rows = []
    for row, (doc_id, reason) in enumerate(zip(ids, reasons)):
        if reason is not None:
            continue
        k = position[doc_id]
        if final is not None and final.recalled[k]:
            recalled_rows.append(row)
        else:
            reasons[row] = "excluded_url_pattern" if matches_any(urls[row], cfg.exclude_patterns) else "not_code_related"
    order = sorted(recalled_rows, key=lambda r: hashlib.sha256(f"{cfg.seed}|{ids[r]}".encode()).hexdigest())
    used = 0
    for row in order:
        if used + sizes[row] > budget:
            reasons[row] = "over_web_share"
        else:
            used += sizes[row]
    flags = [True if r is None else None for r in reasons]
    out = web.drop_columns(["url", DROP_REASON])
    return out.append_column(FLAG, pa.array(flags, pa.bool_())).append_column(DROP_REASON, pa.array(reasons, pa.string()))


def usable_pages(web: pa.Table) -> tuple[Pages, pa.Table]:
    """The scorable pages (first occurrence of each id) and the web table with duplicate ids dropped."""
    reasons = web[DROP_REASON].to_pylist()
    seen: set[str] = set()
    for row, doc_id in enumerate(web["id"].to_pylist()):
        if reasons[row] is None:
            if doc_id in seen:
                reasons[row] = "duplicate_id"
            seen.add(doc_id)
    web = web.set_column(web.schema.get_field_index(DROP_REASON), DROP_REASON, pa.array(reasons, pa.string()))
    usable = web.filter(pc.is_null(web[DROP_REASON]))
    pages = Pages(usable["id"].to_pylist(), usable["text"].to_pylist(), usable["url"].to_pylist(), usable["repo"].to_pylist())
    return pages, web


def write_pages(pages: Pages, folder: Path) -> None:
    """The usable pages (`id`, `text`) as the shard folder every round scores on the workers (the common writer)."""
    table = pa.table({"id": pa.array(pages.ids, pa.string()), "text": pa.array(pages.texts, pa.string())})
    commit_parts(folder, [write_part(table, folder, 0)], table.num_rows)


def log_round(tracker, result: RoundResult, reused: bool) -> None:
    with tracker.child(f"round-{result.index}") as child:
        child.set_tags({"round": result.index, "reused": reused})
        child.log_metrics({k: v for k, v in result.metrics.items() if k != "domain_shares"}, step=result.index)
        child.log_dict({"code_domains": result.metrics["code_domains"], "domain_shares": result.metrics["domain_shares"]},
                       "domains.json")
        child.log_artifact(result.folder / "round.json")


def flag_counts(table: pa.Table) -> dict[str, int]:
    """Text files of one mapped slice flagged code-related (True) and not (False), summed by the runner."""
    flags = table[FLAG]
    return {"flagged": int(pc.sum(pc.fill_null(flags, False)).as_py() or 0),
            "not_code_related": int(pc.sum(pc.fill_null(pc.invert(flags), False)).as_py() or 0)}


def as_input_columns(web: pa.Table, schema: pa.Schema) -> pa.Table:
    """Web output rows with the columns of the input's output rows (those the web lacks are null), so every part
    of the folder has one schema."""
    columns = [web[f.name] if f.name in web.column_names else pa.nulls(web.num_rows, f.type) for f in schema]
    extra = [n for n in web.column_names if n not in schema.names]
    return pa.table(columns + [web[n] for n in extra], schema=pa.schema(list(schema) + [web.schema.field(n) for n in extra]))


def write_output(input_dir: str | Path, output: str | Path, fn, fn_kwargs: dict, web_rows: pa.Table | None, compute) -> dict[str, Any]:
    """The stage's one commit: the input rows mapped by `fn` on the workers, which write their own parts
    (`runner.write_slice`, counts and flag counts back), then the web rows (bounded by the web input) as the last
    part; `dropped/` and the kept manifest are committed last (`runner.commit_outputs`)."""
    prepare_output(output)
    shards = list_shards(input_dir)
    slices = plan_slices(shards, compute.num_workers)
    items = [{"index": i, "slice": json.dumps(s)} for i, s in enumerate(slices)]
    kwargs = {"fn": fn, "fn_kwargs": fn_kwargs, "columns": None, "batch_size": compute.batch_size, "output": absolute(output),
              "summarize": flag_counts, "key": None, "first_of": {}, "shard_index": {str(p): i for i, p in enumerate(shards)}}
    results, counts, flags = [], {}, {"flagged": 0, "not_code_related": 0}
    progress = Progress(output_label(output), total=sum(stop - start for sl in slices for _, _, start, stop in sl))
    for table in map_items(write_slice, items, fn_kwargs=kwargs, num_workers=compute.num_workers, batch_size=1,
                           ray_address=compute.ray_address):
        for row in table.to_pylist():
            results.append(row)
            counts = add_counts(counts, json.loads(row["counts"]))
            flags = add_counts(flags, json.loads(row["summary"]))
            progress.advance(json.loads(row["counts"])["rows_in"], kept=counts["rows_kept"])
    progress.finish(kept=counts.get("rows_kept", 0))
    web_kept = web_bytes = 0
    if web_rows is not None:
        kept, dropped = split_kept_dropped(web_rows)
        if shards:
            kept = as_input_columns(kept, open_parquet(shards[0]).schema_arrow.append(pa.field(FLAG, pa.bool_())))
        web_counts = split_counts(web_rows, kept, dropped)
        counts = add_counts(counts, web_counts)
        web_kept, web_bytes = web_counts["rows_kept"], web_counts["bytes_kept"]
        index = len(slices)
        results.append({"index": index, "kept_part": write_part(kept, output, index), "counts": json.dumps(web_counts),
                        "dropped_part": write_part(dropped, join(output, DROPPED), index)})
    if results:
        commit_outputs(output, results)
    else:
        write_empty_outputs(output)
    return {**finish_counts(counts), "flags": flags, "num_web_kept": web_kept, "web_bytes_kept": web_bytes}


def run(params, input: str | Path | None, output: str | Path, tracker) -> dict[str, Any]:
    """Recall code-related web pages and flag repository text files; see the module docstring."""
    cfg: RecallConfig = params.recall
    compute = params.compute
    input_dir = input if input is not None else "data/ingest"
    list_shards(input_dir)
    if not cfg.enabled:
        with staged_output(output) as target:
            metrics = write_output(input_dir, target, pass_through, {}, None, compute)
        return {**{k: v for k, v in metrics.items() if k not in ("flags", "num_web_kept", "web_bytes_kept")},
                "num_web_pages": 0, "enabled": False}

    web = read_web(Path(cfg.web_path) if cfg.web_path else DEFAULT_WEB, **workers(compute))
    pages, web = usable_pages(web)
    repo_seeds, repo_bytes = repo_text_rows(input_dir, compute, cfg.max_repo_seeds)
    if not cfg.repo_text_seeds:
        repo_seeds = []
    log.info("recall: %d web pages (%d usable), %d repository text seeds, %s bytes of repository text",
             web.num_rows, len(pages.ids), len(repo_seeds), f"{repo_bytes:,}")
    heldout, seeds_extra = heldout_table(cfg, compute), extra_seeds(cfg, compute)
    work = Path(cfg.checkpoint_dir) / work_key(pages, repo_seeds, seeds_extra, heldout, cfg)
    write_pages(pages, work / "web")
    seeds = pa.concat_tables([heuristic_seeds(pages, repo_seeds, cfg), seeds_extra])
    scorer = ray_scorer(compute.num_workers, compute.batch_size, compute.ray_address, cfg.max_seed_chars)
    results = run_rounds(pages, seeds, work / "web", heldout, work, cfg, scorer,
                         on_round=lambda r, reused: log_round(tracker, r, reused)) if pages.ids else []
    final = results[-1] if results else None
    model = (str((final.folder / "model.bin").resolve()), str((final.folder / "tokenizer.json").resolve())) if final else (None, None)
    kwargs = {"model_path": model[0], "tok_path": model[1], "threshold": cfg.threshold, "max_chars": cfg.max_seed_chars}
    web_rows = web_decisions(web, pages, final, web_budget(repo_bytes, cfg.web_share), cfg)
    with staged_output(output) as target:  # the rows and the rounds replace a previous output together
        metrics = write_output(input_dir, target, flag_text_files if cfg.score_repo_text else pass_through,
                               kwargs if cfg.score_repo_text else {}, web_rows, compute)
        copy_rounds(results, target)
    return {**{k: v for k, v in metrics.items() if k not in ("flags", "num_web_kept", "web_bytes_kept")},
            **summary(results, web, repo_bytes, metrics)}


def copy_rounds(results: list[RoundResult], output: str | Path) -> None:
    """Make each round inspectable next to the stage output (`output/rounds/<i>/`, on any filesystem); the
    rounds of a previous output go first (a file of theirs must not pass for one of this run's)."""
    fs, path = filesystem(join(output, "rounds"))
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_dir(path)
    for result in results:
        upload_folder(result.folder, join(output, f"rounds/{result.index}"))


def summary(results: list[RoundResult], web: pa.Table, repo_bytes: int, written: dict[str, Any]) -> dict[str, Any]:
    """Stage metrics beyond the counts: per-round figures, web rows and bytes, flagged text files (from the
    counts `write_output` summed, never from reading the output back)."""
    web_bytes, total = written["web_bytes_kept"], written["bytes_kept"]
    rounds = [{k: v for k, v in r.metrics.items() if k != "domain_shares"} for r in results]
    return {
        "num_web_pages": web.num_rows, "num_web_kept": written["num_web_kept"], "web_bytes_kept": web_bytes,
        "web_share_of_bytes": round(web_bytes / total, 4) if total else 0.0, "repo_bytes": repo_bytes,
        "num_text_files_flagged": written["flags"]["flagged"],
        "num_text_files_not_code_related": written["flags"]["not_code_related"],
        "rounds": rounds, "code_domains": results[-1].metrics["code_domains"] if results else [],
    }
