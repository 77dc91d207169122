"""Dedup benchmark: MinHash speed vs datasketch, near-dup precision/recall, scaling, Ray speed-up.

    python benchmarks/dedup.py                          # the full run: 10k, 100k, 300k docs (~8 min on 2 cores)
    python benchmarks/dedup.py --sizes 2000,6000,20000 --worker-docs 20000    # a quick one

Figures (all peers measured in the same run):
- signature_speedup_vs_datasketch: files/s of our `text_signature` (tokenize + 5-gram shingles + 2048
  perms) over datasketch `MinHash.update_batch` on the same files' pre-built shingles, in CPU seconds
  of one core (process time), best of 3 interleaved runs, after numba's one-off compilation.
- precision / recall: a labelled pair set built from real source files with controlled token edits;
  a pair is a true near-duplicate when its exact Jaccard (5-gram word shingles) reaches the LSH
  threshold (1/16)^(1/128) ~ 0.979. Ours = the stage's default: candidates from the 16 x 128 bands
  split in two (32 x 64, a superset), then exact Jaccard verification; `lsh_only_*` = the paper's
  16 x 128 band keys alone; datasketch = MinHashLSH(params=(16, 128)); `theory_16x128_*` = what an
  ideal 16 x 128 LSH gets on the same pairs in expectation (its S-curve 1 - (1 - J^128)^16 finds a
  pair at the threshold with probability 0.64, so its recall is ~0.93 on pairs spread over [0.9, 1]).
- scaling: the whole stage (Ray started first, 2 workers) at each size on snippets of real files with
  injected exact and near duplicates, in a fresh subprocess; time, driver peak RSS (the workers hold one
  batch at a time), and the exponent of time ~ size^k (fitted on all sizes, and between the two largest). `peak_rss_mb_300k` is measured when 300000 is among the sizes, else extrapolated
  on the fitted log-log line (and `peak_rss_300k_extrapolated` says so).
- speedup_2_workers: the Ray signature pass (`hash_pass`: `units.unit_batch` through `runner.map_batches`)
  with 2 workers vs 1 on the same input (300k documents by default, after a warm-up run; best of two
  each, interleaved). Ray Data's driver-side scheduling costs about 0.5-1 s per pass on this 2-core
  machine, paid on the second core with 1 worker but taken from the workers with 2, so small inputs
  understate the speed-up: 100k documents gave 1.4-1.6x where plain Ray tasks gave 1.8x.
  `available_cores_during_worker_run` measures how much of the 2 cores other processes leave (two busy
  loops' CPU seconds per second): 2 workers cannot beat it.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
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


def bench_signatures(num_files: int, repeats: int = 3) -> dict:
    """CPU seconds of one core (process time, so other processes' load does not count), best of
    `repeats` interleaved runs; ours from the text, datasketch from pre-built shingles."""
    from datasketch import MinHash

    texts = source_files(num_files)
    shingles = [datasketch_shingles(t, CFG.ngram) for t in texts]
    mh.text_signature(texts[0], CFG.shingle, CFG.ngram, CFG.num_perm, CFG.seed)  # JIT compile (once per process)
    ours, theirs = [], []
    for _ in range(repeats):
        started = time.process_time()
        for text in texts:
            mh.text_signature(text, CFG.shingle, CFG.ngram, CFG.num_perm, CFG.seed)
        ours.append(time.process_time() - started)
        started = time.process_time()
        for sh in shingles:
            MinHash(num_perm=CFG.num_perm, seed=CFG.seed).update_batch(sh)
        theirs.append(time.process_time() - started)
    return {"files": len(texts), "shingles": sum(map(len, shingles)), "ours_files_per_s": len(texts) / min(ours),
            "datasketch_files_per_s": len(texts) / min(theirs), "signature_speedup_vs_datasketch": min(theirs) / min(ours),
            "numba_kernels": mh._KERNELS is not None}


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
    """Precision/recall against the LSH threshold on pairs of known exact Jaccard, with the theoretical
    figures of an ideal 16 x 128 LSH (its S-curve) on the same pairs."""
    from datasketch import MinHash, MinHashLSH

    from tasks.dedup.minhash import lsh_probability

    pairs = labelled_pairs(num_bases)
    threshold = CFG.lsh_threshold
    jac = np.array([j for _, _, j in pairs])
    truth = jac >= threshold
    paper_hit, candidate_hit, ds_hit = [], [], []
    for a, b, _ in pairs:
        sigs = np.stack([mh.text_signature(t, CFG.shingle, CFG.ngram, CFG.num_perm, CFG.seed) for t in (a, b)])
        paper = mh.band_keys(sigs, CFG.bands, CFG.rows, CFG.seed)
        candidate = mh.band_keys(sigs, *CFG.candidate_bands, CFG.seed)
        paper_hit.append(bool((paper[0] == paper[1]).any()))
        candidate_hit.append(bool((candidate[0] == candidate[1]).any()))
        lsh = MinHashLSH(num_perm=CFG.num_perm, params=(CFG.bands, CFG.rows))
        m = [MinHash(num_perm=CFG.num_perm, seed=CFG.seed) for _ in range(2)]
        for mm, t in zip(m, (a, b)):
            mm.update_batch(datasketch_shingles(t, CFG.ngram))
        lsh.insert("a", m[0])
        ds_hit.append("a" in lsh.query(m[1]))
    paper_hit, candidate_hit, ds_hit = np.array(paper_hit), np.array(candidate_hit), np.array(ds_hit)
    verified = candidate_hit & (jac >= CFG.jaccard_threshold)  # what the stage merges: candidate, then exact Jaccard
    p, r = precision_recall(truth, verified)
    lp, lr = precision_recall(truth, paper_hit)
    dp, dr = precision_recall(truth, ds_hit)
    prob = np.array([lsh_probability(j, CFG.bands, CFG.rows) for j in jac])
    return {"pairs": len(pairs), "positive_pairs": int(truth.sum()), "lsh_threshold": threshold,
            "jaccard_range": [round(float(jac.min()), 4), round(float(jac.max()), 4)],
            "candidate_bands": list(CFG.candidate_bands), "precision": p, "recall": r,
            "lsh_only_precision": lp, "lsh_only_recall": lr, "datasketch_precision": dp, "datasketch_recall": dr,
            "theory_16x128_precision": float(prob[truth].sum() / prob.sum()), "theory_16x128_recall": float(prob[truth].mean())}


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
    """Child process: start Ray, run the stage once; print the stage's seconds (Ray already up), Ray's
    start-up seconds and this process's (the driver's) peak RSS."""
    from tasks.common.runner import ensure_ray
    from tasks.common.tracking import NullTracker
    from tasks.config import load_params
    from tasks.dedup.stage import run

    params = load_params("params.yaml", ["tracking.enabled=false", "compute.num_workers=2", "compute.batch_size=512"])
    started = time.perf_counter()
    ensure_ray(params.compute.ray_address)
    ray_start = time.perf_counter() - started
    started = time.perf_counter()
    metrics = run(params, Path(input_dir), Path(output_dir), NullTracker())
    print(json.dumps({"seconds": time.perf_counter() - started, "ray_start_s": ray_start,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rows_kept": metrics["rows_kept"], "rows_in": metrics["rows_in"],
                      "candidate_pairs": metrics.get("candidate_pairs"), "load_average": os.getloadavg()[0]}))


def bench_scaling(sizes: list[int], work: Path) -> dict:
    points = []
    for n in sizes:
        build_corpus(work / f"in{n}", n)
        out = subprocess.run([sys.executable, __file__, "--child", str(work / f"in{n}"), str(work / f"out{n}")],
                             check=True, capture_output=True, text=True)
        points.append({"docs": n, **json.loads(out.stdout.strip().splitlines()[-1])})
        print(json.dumps(points[-1]), flush=True)
    x = np.log([p["docs"] for p in points])
    y = np.log([p["seconds"] for p in points])
    slope = float(np.polyfit(x, y, 1)[0]) if len(points) > 1 else float("nan")
    top_slope = float((y[-1] - y[-2]) / (x[-1] - x[-2])) if len(points) > 1 else float("nan")
    at_300k = next((p["peak_rss_mb"] for p in points if p["docs"] == 300_000), None)
    extrapolated = at_300k is None
    if extrapolated and len(points) > 1:
        fit = np.polyfit(x, np.log([p["peak_rss_mb"] for p in points]), 1)
        at_300k = float(np.exp(np.polyval(fit, np.log(300_000))))
    return {"points": points, "scaling_exponent": slope, "scaling_exponent_largest": top_slope,
            "peak_rss_mb_300k": at_300k, "peak_rss_300k_extrapolated": extrapolated}


def _spin(seconds: float, out) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        pass
    out.put(time.process_time() - cpu)


def available_cores(seconds: float = 2.0) -> float:
    """CPU seconds two busy processes get per wall second: how many of the 2 cores other users leave us."""
    import multiprocessing as mp

    queue = mp.Queue()
    procs = [mp.Process(target=_spin, args=(seconds, queue)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return sum(queue.get() for _ in procs) / seconds


def hash_pass(params, input_dir: Path) -> int:
    """The stage's signature work alone (`units.unit_batch` mapped over the shards on Ray); the unit rows."""
    from tasks.common.runner import map_batches
    from tasks.dedup.units import unit_batch

    return sum(t.num_rows for t in map_batches(unit_batch, input_dir, fn_kwargs={"cfg": params.dedup}, columns=["id", "text"],
                                               num_workers=params.compute.num_workers, batch_size=params.compute.batch_size))


def bench_workers(work: Path, num_docs: int) -> dict:
    """The Ray signature pass with 1 and 2 workers on the same input, after a warm-up run that starts the
    worker processes and loads the compiled kernels; interleaved, best of two (the machine is shared)."""
    from tasks.common.runner import ensure_ray
    from tasks.config import load_params
    build_corpus(work / "workers", num_docs, seed=1)
    ensure_ray(num_cpus=2)
    seconds = {}
    for run, workers in enumerate((2, 1, 2, 1, 2)):
        params = load_params("params.yaml", ["tracking.enabled=false", f"compute.num_workers={workers}", "compute.batch_size=512"])
        started = time.perf_counter()
        hash_pass(params, work / "workers")
        if run:  # run 0 is the warm-up
            seconds[workers] = min(seconds.get(workers, float("inf")), time.perf_counter() - started)
    return {"docs": num_docs, "seconds_1_worker": seconds[1], "seconds_2_workers": seconds[2],
            "speedup_2_workers": seconds[1] / seconds[2], "load_average": os.getloadavg()[0],
            "available_cores": round(available_cores(), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,300000", help="comma-separated corpus sizes for the scaling run")
    parser.add_argument("--signature-files", type=int, default=150)
    parser.add_argument("--pair-bases", type=int, default=150)
    parser.add_argument("--worker-docs", type=int, default=300_000, help="documents of the 1 vs 2 workers run")
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
    figures.update({k: scaling[k] for k in ("scaling_exponent", "scaling_exponent_largest", "peak_rss_mb_300k",
                                            "peak_rss_300k_extrapolated")})
    figures["seconds_by_size"] = {p["docs"]: round(p["seconds"], 1) for p in scaling["points"]}
    figures["peak_rss_mb_by_size"] = {p["docs"]: round(p["peak_rss_mb"]) for p in scaling["points"]}
    figures["seconds_at_largest_size"] = scaling["points"][-1]["seconds"]
    figures["largest_size_docs"] = scaling["points"][-1]["docs"]
    figures["speedup_2_workers"] = workers["speedup_2_workers"]
    figures["available_cores_during_worker_run"] = workers["available_cores"]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
