"""The iterative recall loop (spec §5): seeds -> BPE + fastText -> score -> domains -> URL rules -> seeds.

Round 0's seeds come from heuristics (code-line share, include URL patterns, Appendix C.2 file names of
repository text files) plus labelled `seed_paths`. Each round trains the classifier on its seeds (a
`heldout_share` slice held out for precision/recall), scores every usable web page on Ray through the
runner, recalls pages over `threshold`, groups pages by domain and marks a domain code-related when
more than `domain_share` of its pages were recalled. Inside those domains the include patterns recall
pages the classifier missed (and make them positive seeds of the next round); exclude patterns
un-recall pages (and make them negative seeds). Every round writes `rounds/<i>/` in the work folder
(seeds, tokenizer, model, scores, round.json); a round whose `round.json` exists is reused, so an
interrupted or repeated run with the same inputs and params resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.shards import write_json
from tasks.recall.classify import TrainSettings, precision_recall, score_batch, score_texts, train
from tasks.recall.config import RecallConfig
from tasks.recall.domains import code_domains, domain_stats, matches_any
from tasks.recall.text import code_line_share

log = logging.getLogger(__name__)

SEED_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.int8()), ("origin", pa.string())])
"""A seed: its document id, text, label (1 code-related, 0 not) and where the label came from."""

Scorer = Callable[[Path, Path, Path], pa.Table]
"""(web shard folder, model path, tokenizer path) -> table of `id`, `score` in web order."""


@dataclass(frozen=True)
class Pages:
    """The usable web pages the loop works on (same order as the shard folder scored on Ray)."""

    ids: list[str]
    texts: list[str]
    urls: list[str]
    domains: list[str]


@dataclass(frozen=True)
class RoundResult:
    index: int
    folder: Path
    metrics: dict[str, Any]
    recalled: np.ndarray
    """Final recall decision per page (classifier + include patterns in code domains - exclude patterns)."""
    scores: np.ndarray


def work_key(pages: Pages, repo_seed_texts: list[str], extra_seeds: pa.Table, heldout: pa.Table, cfg: RecallConfig) -> str:
    """Hash of everything a round depends on: pages, seeds, held-out set, recall params, fastText version."""
    import importlib.metadata as md

    h = hashlib.sha256()
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("checkpoint_dir", "enabled", "web_share", "score_repo_text")}
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for dist in ("fasttext-community", "tokenizers"):
        try:
            h.update(md.version(dist).encode())
        except md.PackageNotFoundError:
            h.update(dist.encode())
    for part in (pages.ids, pages.urls, pages.texts, repo_seed_texts, extra_seeds["text"].to_pylist(),
                 [str(x) for x in extra_seeds["label"].to_pylist()], heldout["text"].to_pylist(),
                 [str(x) for x in heldout["label"].to_pylist()]):
        for item in part:
            h.update(item.encode("utf-8", "surrogateescape"))
            h.update(b"\0")
        h.update(b"\1")
    return h.hexdigest()[:16]


def heuristic_seeds(pages: Pages, repo_seed_texts: list[str], cfg: RecallConfig) -> pa.Table:
    """Round-0 seeds: dense-code or include-pattern pages and repo text files as positives; prose as negatives."""
    share = np.array([code_line_share(t) for t in pages.texts])
    include = np.array([matches_any(u, cfg.include_patterns) for u in pages.urls], dtype=bool)
    exclude = np.array([matches_any(u, cfg.exclude_patterns) for u in pages.urls], dtype=bool)
    dense = share >= cfg.min_code_density
    positive = (dense | (include & cfg.seed_url_patterns)) & ~exclude
    negative_pool = np.flatnonzero(((share <= cfg.max_negative_density) & ~include) | exclude)
    rng = np.random.default_rng(cfg.seed)
    num_neg = min(len(negative_pool), max(1, round(cfg.negatives_per_positive * (positive.sum() + len(repo_seed_texts)))))
    negative = np.sort(rng.choice(negative_pool, size=num_neg, replace=False)) if num_neg else np.array([], int)
    rows = [(pages.ids[i], pages.texts[i], 1, "code_density" if dense[i] else "url_pattern") for i in np.flatnonzero(positive)]
    rows += [(pages.ids[i], pages.texts[i], 0, "exclude_pattern" if exclude[i] else "prose") for i in negative]
    rows += [(f"repo-text-{k}", t, 1, "repo_filename") for k, t in enumerate(repo_seed_texts)]
    return _seed_table(rows)


def _seed_table(rows: list[tuple[str, str, int, str]]) -> pa.Table:
    cols = list(zip(*rows)) if rows else [[], [], [], []]
    return pa.table([pa.array(list(c), f.type) for c, f in zip(cols, SEED_SCHEMA)], schema=SEED_SCHEMA)


def split_holdout(seeds: pa.Table, share: float, seed: int) -> tuple[pa.Table, pa.Table]:
    """(train, held-out) split of the seeds, stratified by label, deterministic."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(seeds["label"].to_pylist())
    held = np.zeros(len(labels), dtype=bool)
    for label in (0, 1):
        idx = np.flatnonzero(labels == label)
        num = int(round(share * len(idx))) if len(idx) > 2 else 0
        held[rng.choice(idx, size=num, replace=False)] = True
    return seeds.filter(pa.array(~held)), seeds.filter(pa.array(held))


def settings_of(cfg: RecallConfig) -> TrainSettings:
    return TrainSettings(vocab_size=cfg.vocab_size, epoch=cfg.epoch, lr=cfg.lr, word_ngrams=cfg.word_ngrams,
                         dim=cfg.dim, bucket=cfg.bucket, seed=cfg.seed, max_chars=cfg.max_seed_chars)


def annotate(pages: Pages, scores: np.ndarray, cfg: RecallConfig) -> dict[str, Any]:
    """Domain discovery and URL rules for one round's scores."""
    classified = scores >= cfg.threshold
    stats = domain_stats(pages.domains, classified.tolist())
    domains = set(code_domains(stats, cfg.domain_share, cfg.min_domain_pages))
    in_domain = np.array([d in domains for d in pages.domains], dtype=bool)
    include = in_domain & np.array([matches_any(u, cfg.include_patterns) for u in pages.urls], dtype=bool)
    exclude = np.array([matches_any(u, cfg.exclude_patterns) for u in pages.urls], dtype=bool)
    recalled = (classified | include) & ~exclude
    return {
        "classified": classified, "recalled": recalled, "domains": sorted(domains),
        "new_positive": include & ~classified & ~exclude, "new_negative": exclude & classified, "stats": stats,
    }


def next_seeds(seeds: pa.Table, pages: Pages, found: dict[str, Any]) -> tuple[pa.Table, pa.Table]:
    """(next round's seeds, the added ones): pattern-annotated pages the classifier got wrong (spec §5 step 5)."""
    have = set(seeds["id"].to_pylist())
    rows = [(pages.ids[i], pages.texts[i], 1, "missed_url_pattern") for i in np.flatnonzero(found["new_positive"])]
    rows += [(pages.ids[i], pages.texts[i], 0, "excluded_url_pattern") for i in np.flatnonzero(found["new_negative"])]
    added = _seed_table([r for r in rows if r[0] not in have])
    return pa.concat_tables([seeds, added]), added


def run_round(
    index: int, seeds: pa.Table, pages: Pages, web_dir: Path, heldout: pa.Table, folder: Path,
    cfg: RecallConfig, scorer: Scorer,
) -> tuple[RoundResult, pa.Table]:
    """Train, score, discover, annotate; write the round's folder; return the result and the next seeds."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(seeds, folder / "seeds.parquet")
    train_part, held_part = split_holdout(seeds, cfg.heldout_share, cfg.seed + index)
    log.info("recall round %d: training the classifier on %d seeds", index, train_part.num_rows)
    model_path, tok_path = train(train_part["text"].to_pylist(), train_part["label"].to_pylist(), folder, settings_of(cfg))
    log.info("recall round %d: scoring %d web pages", index, len(pages.ids))
    scored = scorer(web_dir, model_path, tok_path)
    by_id = dict(zip(scored["id"].to_pylist(), scored["score"].to_pylist()))
    scores = np.array([by_id[i] for i in pages.ids], dtype=np.float64)
    found = annotate(pages, scores, cfg)
    pq.write_table(pa.table({
        "id": pages.ids, "url": pages.urls, "domain": pages.domains, "score": scores,
        "classified": found["classified"], "recalled": found["recalled"],
    }), folder / "scores.parquet")
    (folder / "recalled_ids.txt").write_text("".join(f"{pages.ids[i]}\n" for i in np.flatnonzero(found["recalled"])))
    upcoming, added = next_seeds(seeds, pages, found)
    pq.write_table(upcoming, folder / "next_seeds.parquet")
    metrics = round_metrics(index, seeds, held_part, heldout, pages, found, model_path, tok_path, cfg)
    num_added_positive = int(sum(added["label"].to_pylist()))
    metrics["num_new_positive_seeds"] = num_added_positive
    metrics["num_new_negative_seeds"] = added.num_rows - num_added_positive
    write_json(folder / "round.json", metrics)
    return RoundResult(index, folder, metrics, found["recalled"], scores), upcoming


def round_metrics(index, seeds, held_part, heldout, pages, found, model_path, tok_path, cfg) -> dict[str, Any]:
    labels = seeds["label"].to_pylist()
    origins: dict[str, int] = {}
    for origin in seeds["origin"].to_pylist():
        origins[origin] = origins.get(origin, 0) + 1
    metrics: dict[str, Any] = {
        "round": index, "num_seeds": len(labels), "num_positive_seeds": int(sum(labels)),
        "num_negative_seeds": len(labels) - int(sum(labels)), "seeds_by_origin": dict(sorted(origins.items())),
        "num_pages": len(pages.ids), "num_classified": int(found["classified"].sum()),
        "num_recalled": int(found["recalled"].sum()),
        "num_pattern_recalled_low_score": int(found["new_positive"].sum()), "code_domains": found["domains"],
        "num_code_domains": len(found["domains"]),
        "domain_shares": {d: round(s.share, 4) for d, s in sorted(found["stats"].items())},
    }
    if held_part.num_rows:
        s = score_texts(held_part["text"].to_pylist(), str(model_path), str(tok_path), cfg.max_seed_chars)
        metrics["seed_holdout"] = precision_recall(held_part["label"].to_pylist(), s, cfg.threshold)
    if heldout.num_rows:
        s = score_texts(heldout["text"].to_pylist(), str(model_path), str(tok_path), cfg.max_seed_chars)
        metrics["heldout"] = precision_recall(heldout["label"].to_pylist(), s, cfg.threshold)
    return metrics


def load_round(folder: Path, pages: Pages) -> tuple[RoundResult, pa.Table] | None:
    """A finished round from its folder (None if it did not finish)."""
    done = folder / "round.json"
    if not done.exists() or not (folder / "next_seeds.parquet").exists():
        return None
    scores = pq.read_table(folder / "scores.parquet")
    if scores["id"].to_pylist() != pages.ids:
        return None
    metrics = json.loads(done.read_text())
    result = RoundResult(metrics["round"], folder, metrics, np.asarray(scores["recalled"].to_pylist(), bool),
                         np.asarray(scores["score"].to_pylist(), np.float64))
    return result, pq.read_table(folder / "next_seeds.parquet")


def run_rounds(
    pages: Pages, seeds: pa.Table, web_dir: Path, heldout: pa.Table, work: Path, cfg: RecallConfig,
    scorer: Scorer, on_round: Callable[[RoundResult, bool], None] = lambda r, reused: None,
) -> list[RoundResult]:
    """All rounds, reusing finished ones found under `work/rounds/`."""
    results = []
    for index in range(cfg.rounds):
        folder = work / "rounds" / str(index)
        loaded = load_round(folder, pages)
        if loaded is None:
            result, seeds = run_round(index, seeds, pages, web_dir, heldout, folder, cfg, scorer)
        else:
            result, seeds = loaded
        log.info("recall round %d: %d seeds, %d recalled, %d code domains%s", index, result.metrics["num_seeds"],
                 result.metrics["num_recalled"], result.metrics["num_code_domains"], " (reused)" if loaded else "")
        on_round(result, loaded is not None)
        results.append(result)
    return results


def local_scorer(max_chars: int) -> Scorer:
    """Scores a web shard folder in this process (tests and benchmarks/recall.py; the stage scores through the
    runner, `ray_scorer`)."""
    from tasks.common.shards import read_table

    def score(web_dir: Path, model_path: Path, tok_path: Path) -> pa.Table:
        return score_batch(read_table(web_dir, columns=["id", "text"]), str(model_path), str(tok_path), max_chars)

    return score


def ray_scorer(num_workers: int, batch_size: int, ray_address: str | None, max_chars: int) -> Scorer:
    """Scores a web shard folder on Ray through the runner (input order preserved)."""
    from tasks.common.runner import map_batches

    def score(web_dir: Path, model_path: Path, tok_path: Path) -> pa.Table:
        kwargs = {"model_path": str(model_path.resolve()), "tok_path": str(tok_path.resolve()), "max_chars": max_chars}
        parts = list(map_batches(score_batch, web_dir, fn_kwargs=kwargs, num_workers=num_workers,
                                 batch_size=batch_size, ray_address=ray_address, columns=["id", "text"]))
        return pa.concat_tables(parts) if parts else pa.table({"id": pa.array([], pa.string()), "score": pa.array([], pa.float64())})

    return score
