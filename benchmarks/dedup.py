"""Dedup benchmark: MinHash speed vs datasketch, near-dup precision/recall, scaling, Ray speed-up.

    python benchmarks/dedup.py                                  # quick sizes (a few minutes on 2 cores)
    python benchmarks/dedup.py --sizes 10000,100000,300000      # the full scaling run

Figures (all peers measured in the same run):
- signature_speedup_vs_datasketch: files/s of our `text_signature` (tokenize + 5-gram shingles + 2048
  perms) over datasketch `MinHash.update_batch` on the same files' pre-built shingles, one core each.
- precision / recall: a labelled pair set built from real source files with controlled token edits;
  a pair is a true near-duplicate when its exact Jaccard (5-gram word shingles) reaches the LSH
  threshold (1/16)^(1/128) ~ 0.979. Ours = shares a band key and passes exact verification (the
  stage's default); `lsh_only_*` = band key alone; datasketch = MinHashLSH(params=(16, 128)).
- scaling: the whole stage (Ray, 2 workers) at each size on snippets of real files with injected
  exact and near duplicates, in a fresh subprocess; time, driver peak RSS, and the exponent of
  time ~ size^k. `peak_rss_mb_300k` is measured when 300000 is among the sizes, else extrapolated
  on the fitted log-log line (and `peak_rss_300k_extrapolated` says so).
- speedup_2_workers: the Ray signature pass (`stage.hash_units`) with 2 workers vs 1 on the same input.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.common.shards import DOC_SCHEMA
from tasks.dedup import minhash as mh
from tasks.dedup.config import DedupConfig

CFG = DedupConfig()


def source_files(max_files: int, min_tokens: int = 0) -> list[str]:
    """Texts of installed Python sources (real code), in a fixed order."""
    texts = []
    for pkg in ("pip", "setuptools", "numpy", "rich", "pygments", "mlflow"):
        for p in sorted(Path(site.getsitepackages()[0], pkg).rglob("*.py")):
            if len(texts) >= max_files:
                return texts
            text = p.read_text("utf-8", "replace")
            if 200 < len(text) < 200_000 and len(mh.tokens(text)) >= min_tokens:
                texts.append(text)
    return texts


def datasketch_shingles(text: str, n: int) -> list[bytes]:
    toks = mh.tokens(text)
    return [b" ".join(toks[i : i + n]) for i in range(max(1, len(toks) - n + 1))] if toks else []


def bench_signatures(num_files: int) -> dict:
    from datasketch import MinHash

    texts = source_files(num_files)
    shingles = [datasketch_shingles(t, CFG.ngram) for t in texts]
    started = time.perf_counter()
    for text in texts:
        mh.text_signature(text, CFG.shingle, CFG.ngram, CFG.num_perm, CFG.seed)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    for sh in shingles:
        MinHash(num_perm=CFG.num_perm, seed=CFG.seed).update_batch(sh)
    theirs = time.perf_counter() - started
    return {"files": len(texts), "ours_files_per_s": len(texts) / ours, "datasketch_files_per_s": len(texts) / theirs,
            "signature_speedup_vs_datasketch": theirs / ours}


def edit_tokens(text: str, num_edits: int, rng: np.random.Generator) -> str:
    """Replace `num_edits` random identifier tokens by a fresh one (a controlled, realistic edit)."""
    spans = [m.span() for m in mh._TOKEN.finditer(text.encode())] if text.isascii() else []
    if not spans:
        return text
    data = text.encode()
    for k, i in enumerate(sorted(rng.choice(len(spans), size=min(num_edits, len(spans)), replace=False), reverse=True)):
        s, e = spans[i]
        data = data[:s] + f"edit{k}_{int(rng.integers(1e9))}".encode() + data[e:]
    return data.decode()


def labelled_pairs(num_bases: int, seed: int = 0) -> list[tuple[str, str, float]]:
    """(base, variant, exact Jaccard): edits sized so Jaccard spreads over about [0.9, 1]."""
    rng = np.random.default_rng(seed)
    pairs = []
    for text in source_files(num_bases * 3, min_tokens=800)[:num_bases]:
        num_tokens = len(mh.tokens(text))
        for _ in range(4):
            target = rng.uniform(0.9, 1.0)  # Jaccard ~ 1 - 2 n e / N for e edits of N tokens
            num_edits = int(round((1 - target) * num_tokens / (2 * CFG.ngram)))
            variant = edit_tokens(text, num_edits, rng)
            j = mh.jaccard(mh.text_shingles(text, CFG.shingle, CFG.ngram), mh.text_shingles(variant, CFG.shingle, CFG.ngram))
            pairs.append((text, variant, j))
    return pairs


def precision_recall(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    tp = int((truth & predicted).sum())
    return tp / max(1, int(predicted.sum())), tp / max(1, int(truth.sum()))


def bench_quality(num_bases: int) -> dict:
    from datasketch import MinHash, MinHashLSH

    pairs = labelled_pairs(num_bases)
    threshold = CFG.lsh_threshold
    truth = np.array([j >= threshold for _, _, j in pairs])
    lsh_hit, ds_hit = [], []
    for k, (a, b, _) in enumerate(pairs):
        sigs = np.stack([mh.text_signature(t, CFG.shingle, CFG.ngram, CFG.num_perm, CFG.seed) for t in (a, b)])
        keys = mh.band_keys(sigs, CFG.bands, CFG.rows, CFG.seed)
        lsh_hit.append(bool((keys[0] == keys[1]).any()))
        lsh = MinHashLSH(num_perm=CFG.num_perm, params=(CFG.bands, CFG.rows))
        m = [MinHash(num_perm=CFG.num_perm, seed=CFG.seed) for _ in range(2)]
        for mm, t in zip(m, (a, b)):
            mm.update_batch(datasketch_shingles(t, CFG.ngram))
        lsh.insert("a", m[0])
        ds_hit.append("a" in lsh.query(m[1]))
    lsh_hit, ds_hit = np.array(lsh_hit), np.array(ds_hit)
    verified = lsh_hit & truth  # verification by exact Jaccard keeps exactly the true pairs among candidates
    p, r = precision_recall(truth, verified)
    lp, lr = precision_recall(truth, lsh_hit)
    dp, dr = precision_recall(truth, ds_hit)
    return {"pairs": len(pairs), "positive_pairs": int(truth.sum()), "lsh_threshold": threshold,
            "precision": p, "recall": r, "lsh_only_precision": lp, "lsh_only_recall": lr,
            "datasketch_precision": dp, "datasketch_recall": dr}


def build_corpus(folder: Path, num_docs: int, seed: int = 0) -> None:
    """`num_docs` snippets (40-line windows of real files): ~20% exact and ~10% one-edit copies of earlier docs."""
    rng = np.random.default_rng(seed)
    lines = [t.splitlines() for t in source_files(400)]
    folder.mkdir(parents=True)
    rows_per_shard, recent = 10_000, []
    made = 0
    while made < num_docs:
        rows = []
        for k in range(made, min(num_docs, made + rows_per_shard)):
            draw = rng.random()
            if recent and draw < 0.3:
                text = recent[int(rng.integers(len(recent)))]
                text = text if draw < 0.2 else edit_tokens(text, 1, rng)
            else:
                src = lines[int(rng.integers(len(lines)))]
                start = int(rng.integers(max(1, len(src) - 40)))
                text = "\n".join(src[start : start + 40]) + f"\n# doc {k}\n"
                recent = (recent + [text])[-1000:]
            rows.append(dict(id=f"d{k:08d}", text=text, repo=f"repo{k % 997}", path=f"f{k}.py", lang="python", doc_type="code",
                             source="bench", stars=int(rng.integers(100)), commit_date=None, size_bytes=len(text), sha256=None))
        pq.write_table(pa.Table.from_pylist(rows, schema=DOC_SCHEMA), folder / f"part-{made // rows_per_shard:05d}.parquet")
        made += len(rows)


def run_stage_child(input_dir: str, output_dir: str) -> None:
    """Child process: run the stage once, print seconds and this process's peak RSS."""
    from tasks.common.tracking import NullTracker
    from tasks.config import load_params
    from tasks.dedup.stage import run

    params = load_params("params.yaml", ["tracking.enabled=false", "compute.num_workers=2", "compute.batch_size=512"])
    started = time.perf_counter()
    metrics = run(params, Path(input_dir), Path(output_dir), NullTracker())
    print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rows_kept": metrics["rows_kept"], "rows_in": metrics["rows_in"]}))


def bench_scaling(sizes: list[int], work: Path) -> dict:
    points = []
    for n in sizes:
        build_corpus(work / f"in{n}", n)
        out = subprocess.run([sys.executable, __file__, "--child", str(work / f"in{n}"), str(work / f"out{n}")],
                             check=True, capture_output=True, text=True)
        points.append({"docs": n, **json.loads(out.stdout.strip().splitlines()[-1])})
        print(json.dumps(points[-1]), flush=True)
    x = np.log([p["docs"] for p in points])
    slope = float(np.polyfit(x, np.log([p["seconds"] for p in points]), 1)[0]) if len(points) > 1 else float("nan")
    at_300k = next((p["peak_rss_mb"] for p in points if p["docs"] == 300_000), None)
    extrapolated = at_300k is None
    if extrapolated and len(points) > 1:
        fit = np.polyfit(x, np.log([p["peak_rss_mb"] for p in points]), 1)
        at_300k = float(np.exp(np.polyval(fit, np.log(300_000))))
    return {"points": points, "scaling_exponent": slope, "peak_rss_mb_300k": at_300k, "peak_rss_300k_extrapolated": extrapolated}


def bench_workers(work: Path, num_docs: int) -> dict:
    from tasks.common.runner import ensure_ray
    from tasks.config import load_params
    from tasks.dedup.stage import hash_units

    build_corpus(work / "workers", num_docs, seed=1)
    ensure_ray(num_cpus=2)
    seconds = {}
    for workers in (1, 2, 1, 2):  # interleaved, best of two, to damp the noise of a shared machine
        params = load_params("params.yaml", ["tracking.enabled=false", f"compute.num_workers={workers}", "compute.batch_size=256"])
        started = time.perf_counter()
        hash_units(params, work / "workers", params.dedup)
        seconds[workers] = min(seconds.get(workers, float("inf")), time.perf_counter() - started)
    return {"seconds_1_worker": seconds[1], "seconds_2_workers": seconds[2], "speedup_2_workers": seconds[1] / seconds[2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,6000,20000", help="comma-separated corpus sizes for the scaling run")
    parser.add_argument("--signature-files", type=int, default=150)
    parser.add_argument("--pair-bases", type=int, default=60)
    parser.add_argument("--worker-docs", type=int, default=6000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_stage_child(*args.child)
    figures = {}
    sig = bench_signatures(args.signature_files)
    print(json.dumps(sig), flush=True)
    quality = bench_quality(args.pair_bases)
    print(json.dumps(quality), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        scaling = bench_scaling([int(s) for s in args.sizes.split(",")], Path(tmp))
        workers = bench_workers(Path(tmp), args.worker_docs)
    print(json.dumps(workers), flush=True)
    figures.update({k: sig[k] for k in ("signature_speedup_vs_datasketch", "ours_files_per_s", "datasketch_files_per_s")})
    figures.update({k: quality[k] for k in ("precision", "recall", "datasketch_precision", "datasketch_recall", "lsh_only_precision", "lsh_only_recall")})
    figures.update({k: scaling[k] for k in ("scaling_exponent", "peak_rss_mb_300k", "peak_rss_300k_extrapolated")})
    figures["seconds_at_largest_size"] = scaling["points"][-1]["seconds"]
    figures["largest_size_docs"] = scaling["points"][-1]["docs"]
    figures["speedup_2_workers"] = workers["speedup_2_workers"]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
