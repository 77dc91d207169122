"""Data-plane scaling: driver memory per document, time growth, and a 2-node local cluster against one node.

    python benchmarks/scale.py                                  # 4k and 16k documents (~10 min on 2 busy cores)
    python benchmarks/scale.py --sizes 100000,300000 --stages dedup

The corpus is `benchmarks/dedup.py`'s: 40-line windows of real installed Python files, ~20% exact and ~10%
one-edit copies of earlier documents. Each (stage, size) runs in a fresh subprocess that starts Ray first,
then runs the stage once on 256 of the rows (`warm_up`: imports, worker processes), then runs the stage's `run`
in process under `tracemalloc`, so the driver's Python heap is measured apart from Ray's start-up, first-use
imports and from the workers (other processes):
- `driver_bytes_per_doc_<stage>`: (peak traced driver heap at the larger size - at the smaller) / (the
  difference in documents). Below 1 means the driver holds no per-document state; issue #14's bar.
- `driver_rss_ratio_<stage>`: driver peak RSS at the larger size over the smaller.
- `time_exponent_<stage>`: k in seconds ~ documents^k between the two sizes (1 = linear).
- `cluster_vs_local_<stage>`: documents/s of the stage on a 2-node cluster on this machine
  (`infra/ray/local_cluster.py`, 1 CPU per node, 2 workers) over documents/s on a local single-node Ray with
  the same 2 cores, at the larger size; the peer is the local run. Issue #14's bar: at least 0.9.
- `kept_identical_<n>k` (dedup): the distributed stage's kept ids, drop reasons and `duplicate_of` at `n` documents
  (`--reference-size`, default the larger size) are those of the single-process reference
  (`benchmarks/dedup_reference.py`, the implementation the distributed passes replaced) on the same corpus;
  the issue's `kept_identical_300k` with `--reference-size 300000`.
- the issue's names for `benchmarks/run_all.py`: `driver_bytes_per_doc` and `cluster_vs_local` (the worst
  stage), `time_exponent` (dedup's), `driver_rss_ratio_1m_vs_100k` (dedup's, only at sizes 100000,1000000).
The issue asks for 100k, 300k and 1M documents; on this shared 2-core machine the default sizes are smaller
(say so when quoting the figures). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_corpus(folder: Path, num_docs: int) -> None:
    """`benchmarks/dedup.py`'s corpus of real snippets with planted exact and near duplicates."""
    spec = importlib.util.spec_from_file_location("bench_dedup", ROOT / "benchmarks" / "dedup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build_corpus(folder, num_docs)


def warm_up(run, params, input_dir: str, output_dir: str) -> None:
    """Run the stage once on the input's first 256 rows, unmeasured: the modules it imports on first use (Ray
    Data's, ~5 MB of traced heap) and Ray's worker processes are then in place at every size, so the measured
    run's traced heap and seconds are its own work's."""
    import pyarrow.parquet as pq

    from tasks.common.shards import list_shards, open_parquet
    from tasks.common.tracking import NullTracker

    folder = Path(output_dir + ".warmup-input")
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(open_parquet(list_shards(input_dir)[0]).read_row_group(0).slice(0, 256), folder / "part-00000.parquet")
    run(params, folder, Path(output_dir + ".warmup"), NullTracker())


def run_child(stage: str, input_dir: str, output_dir: str) -> None:
    """In a fresh process: start (or join) Ray, then run the stage under tracemalloc; print one JSON line."""
    from tasks.common.runner import ensure_ray
    from tasks.common.tracking import NullTracker
    from tasks.config import ComputeConfig, Params, TrackingConfig
    from tasks.stages import STAGES

    params = Params(compute=ComputeConfig(num_workers=2), tracking=TrackingConfig(enabled=False))
    run = STAGES[stage].load()  # imports are not per-document state
    ensure_ray()
    warm_up(run, params, input_dir, output_dir)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    metrics = run(params, Path(input_dir), Path(output_dir), NullTracker())
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"seconds": seconds, "traced_peak_bytes": peak, "rows_in": metrics["rows_in"],
                      "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "rss_before_kb": rss_before}))


def reference_child(input_dir: str, output_dir: str) -> None:
    """In a fresh process: whether the dedup output in `output_dir` decides every document as the single-process
    reference does on `input_dir`; print one JSON line."""
    import importlib.util

    from tasks.common.shards import read_table
    from tasks.config import Params

    spec = importlib.util.spec_from_file_location("dedup_reference", ROOT / "benchmarks" / "dedup_reference.py")
    reference = sys.modules.setdefault("dedup_reference", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(reference)
    started = time.perf_counter()
    expected = reference.reference_decisions(Path(input_dir), Params().dedup)
    seconds = time.perf_counter() - started
    dropped = read_table(Path(output_dir) / "dropped", columns=["id", "drop_reason", "duplicate_of"])
    got = {i: (r, d) for i, r, d in zip(*(dropped.column(c).to_pylist() for c in ("id", "drop_reason", "duplicate_of")))
           if r != "duplicate_id"}
    kept = read_table(Path(output_dir), columns=["id"]).column("id").to_pylist()
    print(json.dumps({"identical": got == expected and not set(kept) & set(expected), "reference_seconds": seconds,
                      "dropped": len(got), "reference_dropped": len(expected)}))


def measure(stage: str, input_dir: Path, work: Path, env_extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(env_extra or {})
    out = work / f"{stage}-{input_dir.name}-{len(env_extra or {})}"
    proc = subprocess.run([sys.executable, __file__, "--child", stage, str(input_dir), str(out)], env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise RuntimeError(f"{stage} on {input_dir} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare_with_reference(work: Path, size: int, small: int, large: int) -> dict:
    """`kept_identical_<size/1000>k`: the dedup output at `size` documents against the single-process reference."""
    docs = work / f"docs{size}"
    if size not in (small, large):
        build_corpus(docs, size)
        measure("dedup", docs, work)
    proc = subprocess.run([sys.executable, __file__, "--reference-child", str(docs), str(work / f"dedup-{docs.name}-0")],
                          capture_output=True, text=True, timeout=7200)
    if proc.returncode:
        raise RuntimeError(f"the dedup reference on {docs} failed:\n{proc.stderr[-3000:]}")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"dedup reference at {size} docs: {json.dumps(found)}", flush=True)
    return {f"kept_identical_{size // 1000}k": found["identical"], f"reference_seconds_{size // 1000}k": round(found["reference_seconds"], 1)}


def start_cluster(folder: Path) -> str:
    cmd = [sys.executable, str(ROOT / "infra" / "ray" / "local_cluster.py"), "start", "--dir", str(folder), "--nodes", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout.split()[-1]


def stop_cluster(folder: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "infra" / "ray" / "local_cluster.py"), "stop", "--dir", str(folder)], timeout=120)


def figures(stage: str, small: int, large: int, runs: dict) -> dict:
    a, b = runs[small], runs[large]
    return {
        f"driver_bytes_per_doc_{stage}": round((b["traced_peak_bytes"] - a["traced_peak_bytes"]) / (large - small), 2),
        f"driver_rss_ratio_{stage}": round(b["rss_peak_kb"] / a["rss_peak_kb"], 3),
        f"time_exponent_{stage}": round(math.log(b["seconds"] / a["seconds"]) / math.log(large / small), 3),
        f"seconds_{stage}_{large}": round(b["seconds"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="4000,16000", help="two document counts")
    parser.add_argument("--stages", default="clean,dedup")
    parser.add_argument("--no-cluster", action="store_true", help="skip the 2-node cluster comparison")
    parser.add_argument("--reference-size", type=int, help="documents of the dedup comparison with the single-process "
                        "reference (default: the larger size; 0: none)")
    parser.add_argument("--child", nargs=3, metavar=("STAGE", "INPUT", "OUTPUT"), help=argparse.SUPPRESS)
    parser.add_argument("--reference-child", nargs=2, metavar=("INPUT", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(*args.child)
        return
    if args.reference_child:
        reference_child(*args.reference_child)
        return
    small, large = sorted(int(s) for s in args.sizes.split(","))
    compare = large if args.reference_size is None else args.reference_size
    stages = args.stages.split(",")
    result: dict = {"sizes": [small, large]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in (small, large):
            build_corpus(work / f"docs{n}", n)
        for stage in stages:
            runs = {n: measure(stage, work / f"docs{n}", work) for n in (small, large)}
            print(f"{stage}: " + ", ".join(f"{n} docs {r['seconds']:.1f}s traced peak {r['traced_peak_bytes'] / 1e6:.1f} MB "
                                           f"RSS {r['rss_peak_kb'] / 1e3:.0f} MB" for n, r in runs.items()), flush=True)
            result.update(figures(stage, small, large, runs))
            result[f"local_docs_per_s_{stage}"] = round(large / runs[large]["seconds"], 1)
            if stage == "dedup" and compare:
                result.update(compare_with_reference(work, compare, small, large))
        if not args.no_cluster:
            cluster = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Unix socket paths
            try:
                address = start_cluster(cluster)
                for stage in stages:
                    run = measure(stage, work / f"docs{large}", work, {"RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"})
                    rate = large / run["seconds"]
                    result[f"cluster_docs_per_s_{stage}"] = round(rate, 1)
                    result[f"cluster_vs_local_{stage}"] = round(rate / result[f"local_docs_per_s_{stage}"], 3)
            finally:
                stop_cluster(cluster)
    result.update(headline(result, stages, small, large))
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


def headline(result: dict, stages: list[str], small: int, large: int) -> dict:
    """The issue's figure names (`benchmarks/run_all.py` checks them): the worst stage for driver bytes per
    document and for the cluster ratio, dedup's time exponent, and dedup's RSS ratio only when the sizes are
    the issue's 100k and 1M."""
    out = {"driver_bytes_per_doc": max(result[f"driver_bytes_per_doc_{s}"] for s in stages),
           "time_exponent": result.get("time_exponent_dedup", max(result[f"time_exponent_{s}"] for s in stages))}
    ratios = [result[f"cluster_vs_local_{s}"] for s in stages if f"cluster_vs_local_{s}" in result]
    if ratios:
        out["cluster_vs_local"] = min(ratios)
    if (small, large) == (100_000, 1_000_000) and "driver_rss_ratio_dedup" in result:
        out["driver_rss_ratio_1m_vs_100k"] = result["driver_rss_ratio_dedup"]
    return out


if __name__ == "__main__":
    main()
