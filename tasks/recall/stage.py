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
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.common.runner import map_batches
from tasks.common.shards import ShardWriter, iter_batches, list_shards
from tasks.common.stage import DROP_REASON, split_and_write
from tasks.recall.classify import score_texts
from tasks.recall.config import RecallConfig
from tasks.recall.loop import SEED_SCHEMA, Pages, RoundResult, heuristic_seeds, local_scorer, ray_scorer, run_rounds, work_key
from tasks.recall.text import code_related_filename, is_text_file
from tasks.recall.web import read_web

DATA = Path(__file__).parent / "data"
DEFAULT_WEB = DATA / "web_pages.jsonl.gz"
DEFAULT_HELDOUT = DATA / "heldout.jsonl.gz"
FLAG = "code_related_text"


def labelled_table(path: Path) -> pa.Table:
    """`text` + `label` (1/0, or code/other strings) of a labelled Parquet/JSONL file as a seed table."""
    web = read_web(path)
    raw = _labels(path)
    keep = [i for i, r in enumerate(web[DROP_REASON].to_pylist()) if r is None or r == "missing_url"]
    texts = web["text"].to_pylist()
    rows = [(f"seed-{i}", texts[i], raw[i], "seed_path") for i in keep if texts[i] and raw[i] is not None]
    cols = list(zip(*rows)) if rows else [[], [], [], []]
    return pa.table([pa.array(list(c), f.type) for c, f in zip(cols, SEED_SCHEMA)], schema=SEED_SCHEMA)


def _labels(path: Path) -> list[int | None]:
    """Labels in record order (the same order `read_web` reads)."""
    import gzip
    import json

    import pyarrow.parquet as pq

    from tasks.recall.web import web_files

    def as_label(value: Any) -> int | None:
        if value in (1, True, "1", "code", "code_related", "__label__code"):
            return 1
        if value in (0, False, "0", "other", "not_code", "__label__other"):
            return 0
        return None

    out: list[int | None] = []
    for file in web_files(path):
        if file.suffix == ".parquet":
            table = pq.read_table(file)
            out += [as_label(v) for v in (table["label"].to_pylist() if "label" in table.column_names else [None] * table.num_rows)]
            continue
        opener = gzip.open if file.name.endswith(".gz") else open
        with opener(file, "rb") as f:
            for line in f:
                if line.strip():
                    try:
                        record = json.loads(line.decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        record = None
                    out.append(as_label(record.get("label")) if isinstance(record, dict) else None)
    return out


def heldout_table(cfg: RecallConfig) -> pa.Table:
    if cfg.heldout_path == "":
        return pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int8())})
    return labelled_table(Path(cfg.heldout_path) if cfg.heldout_path else DEFAULT_HELDOUT).select(["text", "label"])


def extra_seeds(cfg: RecallConfig) -> pa.Table:
    tables = [labelled_table(Path(p)) for p in cfg.seed_paths]
    return pa.concat_tables(tables) if tables else SEED_SCHEMA.empty_table()


def repo_text_rows(input_dir: Path) -> tuple[list[str], list[str], int]:
    """(texts of Appendix C.2-named text files, texts of all text files' ids, total input bytes)."""
    seed_texts, text_ids, total_bytes = [], [], 0
    for batch in iter_batches(input_dir, columns=["id", "path", "text", "size_bytes"]):
        for doc_id, path, text, size in zip(*(batch.column(c).to_pylist() for c in range(4))):
            total_bytes += size or 0
            if is_text_file(path) and text:
                text_ids.append(doc_id)
                if code_related_filename(path):
                    seed_texts.append(text)
    return seed_texts, text_ids, total_bytes


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
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": pages.ids, "text": pages.texts}), folder / "part-00000.parquet")


def log_round(tracker, result: RoundResult, reused: bool) -> None:
    with tracker.child(f"round-{result.index}") as child:
        child.set_tags({"round": result.index, "reused": reused})
        child.log_metrics({k: v for k, v in result.metrics.items() if k != "domain_shares"}, step=result.index)
        child.log_dict({"code_domains": result.metrics["code_domains"], "domain_shares": result.metrics["domain_shares"]},
                       "domains.json")
        child.log_artifact(result.folder / "round.json")


def run(params, input: Path | None, output: Path, tracker) -> dict[str, Any]:
    """Recall code-related web pages and flag repository text files; see the module docstring."""
    cfg: RecallConfig = params.recall
    compute = params.compute
    input_dir = Path(input) if input is not None else Path("data/ingest")
    list_shards(input_dir)
    if not cfg.enabled:
        batches = (pass_through(pa.Table.from_batches([b])) for b in iter_batches(input_dir, compute.batch_size))
        return {**split_and_write(batches, output), "num_web_pages": 0, "enabled": False}

    web = read_web(Path(cfg.web_path) if cfg.web_path else DEFAULT_WEB)
    pages, web = usable_pages(web)
    repo_seeds, _, repo_bytes = repo_text_rows(input_dir)
    if not cfg.repo_text_seeds:
        repo_seeds = []
    heldout, seeds_extra = heldout_table(cfg), extra_seeds(cfg)
    work = Path(cfg.checkpoint_dir) / work_key(pages, repo_seeds, seeds_extra, heldout, cfg)
    write_pages(pages, work / "web")
    seeds = pa.concat_tables([heuristic_seeds(pages, repo_seeds, cfg), seeds_extra])
    if len(pages.ids) < cfg.ray_min_rows:
        scorer = local_scorer(cfg.max_seed_chars)
    else:
        scorer = ray_scorer(compute.num_workers, compute.batch_size, compute.ray_address, cfg.max_seed_chars)
    results = run_rounds(pages, seeds, work / "web", heldout, work, cfg, scorer,
                         on_round=lambda r, reused: log_round(tracker, r, reused)) if pages.ids else []
    final = results[-1] if results else None
    model = (str((final.folder / "model.bin").resolve()), str((final.folder / "tokenizer.json").resolve())) if final else (None, None)

    def batches() -> Iterator[pa.Table]:
        kwargs = {"model_path": model[0], "tok_path": model[1], "threshold": cfg.threshold, "max_chars": cfg.max_seed_chars}
        if cfg.score_repo_text:
            yield from map_batches(flag_text_files, input_dir, fn_kwargs=kwargs, num_workers=compute.num_workers,
                                   batch_size=compute.batch_size, ray_address=compute.ray_address)
        else:
            yield from (pass_through(pa.Table.from_batches([b])) for b in iter_batches(input_dir, compute.batch_size))
        yield web_decisions(web, pages, final, web_budget(repo_bytes, cfg.web_share), cfg)

    metrics = split_and_write(batches(), output)
    copy_rounds(results, output)
    return {**metrics, **summary(results, web, repo_bytes, output)}


def copy_rounds(results: list[RoundResult], output: Path) -> None:
    """Make each round inspectable next to the stage output (`output/rounds/<i>/`)."""
    for result in results:
        target = output / "rounds" / str(result.index)
        shutil.copytree(result.folder, target, dirs_exist_ok=True)


def summary(results: list[RoundResult], web: pa.Table, repo_bytes: int, output: Path) -> dict[str, Any]:
    """Stage metrics beyond the counts: per-round figures, web rows and bytes, flagged text files."""
    from tasks.common.shards import read_table

    kept = read_table(output, columns=["source", "size_bytes", FLAG])
    is_web = pc.equal(kept["source"], "web")
    web_bytes = int(pc.sum(pc.if_else(is_web, kept["size_bytes"], 0)).as_py() or 0)
    total = int(pc.sum(kept["size_bytes"]).as_py() or 0)
    flags = kept[FLAG].to_pylist()
    rounds = [{k: v for k, v in r.metrics.items() if k != "domain_shares"} for r in results]
    return {
        "num_web_pages": web.num_rows, "num_web_kept": int(pc.sum(is_web).as_py() or 0), "web_bytes_kept": web_bytes,
        "web_share_of_bytes": round(web_bytes / total, 4) if total else 0.0, "repo_bytes": repo_bytes,
        "num_text_files_flagged": sum(1 for f in flags if f is True) - int(pc.sum(is_web).as_py() or 0),
        "num_text_files_not_code_related": sum(1 for f in flags if f is False),
        "rounds": rounds, "code_domains": results[-1].metrics["code_domains"] if results else [],
    }
