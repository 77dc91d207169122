"""Recall benchmark: the iterative loop on the shipped web corpus, its held-out F1, and scoring speed.

    python benchmarks/recall.py

Runs the rounds (in-process scoring) on `tasks/recall/data/web_pages.jsonl.gz` with the default
`RecallConfig`, reports each round's seeds, recall counts and held-out precision/recall/F1 on the shipped
labelled set (`tasks/recall/data/heldout.jsonl.gz`), then times scoring of the same documents on one core:
ours (BPE + fastText) against a scikit-learn TF-IDF + LogisticRegression baseline trained on the same
final-round seeds. The last line is one JSON object of figures.

Timing, made fair: the process is pinned to one CPU and every thread pool (Rayon, OpenMP, BLAS) has one
thread; both sides start from raw text (both normalise; sklearn's time includes its own tokenisation,
`TfidfVectorizer.transform`, as ours includes BPE); times are CPU seconds of this process (`time.process_time`,
so waiting for a core another process holds does not count), the repetitions alternate ours/sklearn
so cache pressure from other processes hits both alike, and each figure is the best of `REPEATS`. Ours is timed cold: the BPE
encoder's caches (word and piece dicts, the numba word/piece table, the tokenizer model's own piece cache)
are emptied back to the vocabulary before every repetition, so no repetition reuses work of an earlier one
(the steady state of a long run, where most words are already cached, is estimated as `warm`: the scorer
first scores one half of the documents, then is timed on the other half, against sklearn on that half).
Ours is also split into its two phases (raw text -> BPE ids, `BpeEncoder.text_ids`; ids -> probabilities,
`FastTextScorer`), timed cold in separate repetitions after the others.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

for var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from tasks.recall.classify import load, precision_recall, score_texts  # noqa: E402
from tasks.recall.config import RecallConfig  # noqa: E402
from tasks.recall.loop import heuristic_seeds, local_scorer, run_rounds  # noqa: E402
from tasks.recall.stage import DEFAULT_HELDOUT, DEFAULT_WEB, heldout_table, usable_pages, write_pages  # noqa: E402
from tasks.recall.text import normalize  # noqa: E402
from tasks.recall.web import read_web  # noqa: E402


REPEATS = 5


def timed(fn) -> float:
    """CPU seconds of `fn` (this process, one thread): not inflated while other processes hold the core."""
    started = time.process_time()
    fn()
    return time.process_time() - started


def scoring_seconds(docs: list[str], model: str, tok: str, baseline, max_chars: int) -> dict[str, float]:
    """Best-of-REPEATS seconds, interleaved: ours cold and the sklearn pipeline on all `docs`; and on one half
    of them, ours after scoring the other half (warm on unseen documents) and sklearn on that half."""
    encoder = load(model, tok)[1]
    seen, unseen = docs[0::2], docs[1::2]
    sk_score = lambda texts: baseline.predict_proba([normalize(t, max_chars) for t in texts])
    cold, warm, sk, sk_half = [], [], [], []
    for _ in range(REPEATS):
        encoder.clear()
        cold.append(timed(lambda: score_texts(docs, model, tok, max_chars)))
        sk.append(timed(lambda: sk_score(docs)))
        encoder.clear()
        score_texts(seen, model, tok, max_chars)
        warm.append(timed(lambda: score_texts(unseen, model, tok, max_chars)))
        sk_half.append(timed(lambda: sk_score(unseen)))
    scorer, ids_s, model_s = load(model, tok)[0], [], []
    for _ in range(REPEATS):
        encoder.clear()
        ids_s.append(timed(lambda: encoder.text_ids(docs, max_chars)))
        ids, lengths = encoder.text_ids(docs, max_chars)
        model_s.append(timed(lambda: scorer.code_probability(ids, lengths)))
    return {"ours": min(cold), "sklearn": min(sk), "ours_warm_half": min(warm), "sklearn_half": min(sk_half),
            "ours_ids": min(ids_s), "ours_model": min(model_s)}


def family_accuracy(scores, threshold: float) -> dict[str, float]:
    """Share of each held-out family's documents on the right side of `threshold` (families as shipped)."""
    import gzip

    with gzip.open(DEFAULT_HELDOUT, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    hits: dict[str, list[bool]] = {}
    for row, score in zip(rows, scores):
        hits.setdefault(row["family"], []).append((score >= threshold) == bool(row["label"]))
    return {family: round(sum(h) / len(h), 3) for family, h in sorted(hits.items())}


def main() -> None:
    cfg = RecallConfig()
    pages, _ = usable_pages(read_web(DEFAULT_WEB))
    heldout = heldout_table(cfg)
    import ray

    ray.shutdown()  # the files were read on Ray workers (the ingest reader); nothing of Ray runs while scorers are timed
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_pages(pages, work / "web")
        started = time.perf_counter()
        results = run_rounds(pages, heuristic_seeds(pages, [], cfg), work / "web", heldout, work, cfg,
                             local_scorer(cfg.max_seed_chars))
        loop_s = time.perf_counter() - started
        for r in results:
            m = r.metrics
            print(f"round {m['round']}: seeds {m['num_seeds']} (+{m['num_new_positive_seeds']} missed-pattern), "
                  f"recalled {m['num_recalled']}/{m['num_pages']}, code domains {m['num_code_domains']}, "
                  f"held-out P/R/F1 {m['heldout']['precision']:.3f}/{m['heldout']['recall']:.3f}/{m['heldout']['f1']:.3f}")
        final = results[-1].folder
        seeds = pq.read_table(final / "seeds.parquet")
        model, tok = str(final / "model.bin"), str(final / "tokenizer.json")
        docs = heldout["text"].to_pylist() + pages.texts
        labels = heldout["label"].to_pylist()

        per_family = family_accuracy(score_texts(heldout["text"].to_pylist(), model, tok, cfg.max_seed_chars),
                                     cfg.threshold) if cfg.heldout_path is None else {}
        baseline = make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=1), LogisticRegression(max_iter=1000))
        baseline.fit([normalize(t, cfg.max_seed_chars) for t in seeds["text"].to_pylist()], seeds["label"].to_pylist())
        sk_heldout = baseline.predict_proba([normalize(t, cfg.max_seed_chars) for t in heldout["text"].to_pylist()])[:, 1]
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        secs = scoring_seconds(docs, model, tok, baseline, cfg.max_seed_chars)
    ours_s, sk_s = secs["ours"], secs["sklearn"]
    mb = sum(len(t.encode("utf-8")) for t in docs) / 1e6
    sk_f1 = precision_recall(labels, sk_heldout, cfg.threshold)["f1"]
    print(f"loop: {len(results)} rounds in {loop_s:.1f}s; scoring {len(docs)} docs ({mb:.2f} MB) on one core: "
          f"ours {ours_s:.3f}s cold, sklearn {sk_s:.3f}s; half of them after the other half: ours {secs['ours_warm_half']:.3f}s, "
          f"sklearn {secs['sklearn_half']:.3f}s; ours cold = ids {secs['ours_ids']:.3f}s + fastText {secs['ours_model']:.3f}s; "
          f"sklearn held-out F1 {sk_f1:.3f}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(json.dumps({
        "f1": round(results[-1].metrics["heldout"]["f1"], 4),
        "heldout_docs": heldout.num_rows,
        "recall_per_round_pages": [r.metrics["num_recalled"] for r in results],
        "heldout_recall_per_round": [round(r.metrics["heldout"]["recall"], 4) for r in results],
        "heldout_precision_per_round": [round(r.metrics["heldout"]["precision"], 4) for r in results],
        "heldout_f1_per_round": [round(r.metrics["heldout"]["f1"], 4) for r in results],
        "heldout_accuracy_by_family": per_family,
        "sklearn_f1": round(sk_f1, 4),
        "loop_s": round(loop_s, 2),
        "docs_per_s_per_core": round(len(docs) / ours_s, 1),
        "mb_per_s_per_core": round(mb / ours_s, 3),
        "warm_docs_per_s_per_core": round(len(docs[1::2]) / secs["ours_warm_half"], 1),
        "warm_speedup_vs_sklearn": round(secs["sklearn_half"] / secs["ours_warm_half"], 3),
        "sklearn_docs_per_s_per_core": round(len(docs) / sk_s, 1),
        "sklearn_mb_per_s_per_core": round(mb / sk_s, 3),
        "ours_ids_s": round(secs["ours_ids"], 4),
        "ours_fasttext_s": round(secs["ours_model"], 4),
        "speedup_vs_sklearn": round(sk_s / ours_s, 3),
    }))


if __name__ == "__main__":
    main()
