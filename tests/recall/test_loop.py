"""The iterative loop on a planted corpus: code domains discovered, prose domains never marked."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tasks.recall.config import RecallConfig
from tasks.recall.domains import domain_of
from tasks.recall.loop import Pages, heuristic_seeds, local_scorer, run_rounds
from tasks.recall.stage import write_pages

PLANTED_CODE = {"devanswers.net", "pyforum.dev"}
PLANTED_PROSE = {"gardenweekly.com", "citynews-daily.com", "recipesathome.net"}


def pages_of(rows: list[dict]) -> Pages:
    return Pages([f"p{i}" for i in range(len(rows))], [r["text"] for r in rows], [r["url"] for r in rows],
                 [domain_of(r["url"]) for r in rows])


def run_planted(rows: list[dict], work: Path, **overrides) -> list:
    cfg = RecallConfig(rounds=3, include_patterns=("%pyforum.dev/q/%", "%devanswers.net/q/%"),
                       vocab_size=500, checkpoint_dir=str(work), **overrides)
    pages = pages_of(rows)
    write_pages(pages, work / "web")
    seeds = heuristic_seeds(pages, [], cfg)
    heldout = pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int8())})
    return run_rounds(pages, seeds, work / "web", heldout, work, cfg, local_scorer(cfg.max_seed_chars))


def test_planted_code_domains_found_by_round_2_and_prose_domains_never(planted, tmp_path):
    results = run_planted(planted, tmp_path / "work")
    found_by_2 = set().union(*(r.metrics["code_domains"] for r in results[:3]))
    assert PLANTED_CODE <= found_by_2
    for r in results:
        assert not PLANTED_PROSE & set(r.metrics["code_domains"])
    final = results[-1]
    urls = [p["url"] for p in planted]
    recalled_domains = {domain_of(u) for u, hit in zip(urls, final.recalled) if hit}
    assert not recalled_domains & PLANTED_PROSE
    pyforum = [hit for u, hit in zip(urls, final.recalled) if "pyforum.dev" in u]
    assert sum(pyforum) == len(pyforum), "include patterns recall every page of a discovered code domain"

    stamps = [(r.folder / "model.bin").stat().st_mtime_ns for r in results]
    again = run_planted(planted, tmp_path / "work")
    assert [(r.folder / "model.bin").stat().st_mtime_ns for r in again] == stamps, "finished rounds are reused"
    assert [r.metrics for r in again] == [r.metrics for r in results]
    for i in range(3):
        assert {"seeds.parquet", "model.bin", "tokenizer.json", "scores.parquet", "recalled_ids.txt", "round.json"} <= {
            p.name for p in (tmp_path / "work" / "rounds" / str(i)).iterdir()}


def test_pattern_pages_missed_by_the_classifier_become_next_round_seeds(planted, tmp_path):
    results = run_planted(planted, tmp_path / "work", threshold=0.7)
    first = results[0].metrics
    assert first["num_new_positive_seeds"] > 0
    assert results[1].metrics["num_positive_seeds"] == first["num_positive_seeds"] + first["num_new_positive_seeds"]
    assert results[1].metrics["seeds_by_origin"]["missed_url_pattern"] == first["num_new_positive_seeds"]
