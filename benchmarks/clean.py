"""Clean-stage throughput: MB/s of source per core for the whole stage, and the Ray speed-up of 2 workers vs 1.

    python benchmarks/clean.py                      # the embedded corpus (data/recall), best of 2 runs each
    python benchmarks/clean.py --input DIR --max-mb 20 --repeat 3

Runs the stage as `cookbook clean` does (`tasks.clean.stage.run`: Ray Data read, `clean_batch` on the
workers, metrics, kept/dropped shards written to a temporary folder) with 1 and with 2 Ray workers on
the same input. Peers: the 1-worker run (the per-core rate is MB of `text` / seconds of that run, so it
includes Ray, Parquet I/O and the driver) and, for reference, `clean_batch` in this process on the
same rows, and `clean_batch` with the released code/comment split (Pygments itself instead of the fast splitters
of tasks/clean/fastlex.py: `speedup_vs_pygments_split`). Each figure is the best of `--repeat` runs (other
processes share the cores). Last line: one JSON object.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.clean import comments
from tasks.clean.stage import clean_batch, run
from tasks.common.runner import ensure_ray
from tasks.common.shards import read_table
from tasks.common.tracking import NullTracker
from tasks.config import ComputeConfig, Params, TrackingConfig


def build_input(source: Path, folder: Path, max_mb: float | None, num_shards: int) -> float:
    """Copy `source` (or its first rows up to `max_mb` of text) into `num_shards` Parquet shards; MB of text."""
    table = read_table(source)
    if max_mb:
        sizes = pc.cumulative_sum(pc.utf8_length(pc.fill_null(table["text"], ""))).to_numpy()
        table = table.slice(0, int((sizes <= max_mb * 1e6).sum()))
    step = -(-table.num_rows // num_shards)
    for i in range(num_shards):
        pq.write_table(table.slice(i * step, step), folder / f"part-{i:05d}.parquet")
    return pc.sum(pc.utf8_length(pc.fill_null(table["text"], ""))).as_py() / 1e6


def stage_seconds(folder: Path, workers: int, batch_size: int) -> float:
    params = Params(compute=ComputeConfig(num_workers=workers, batch_size=batch_size), tracking=TrackingConfig(enabled=False))
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        metrics = run(params, folder, Path(out) / "clean", NullTracker())
        seconds = time.perf_counter() - started
    assert metrics["rows_in"] == metrics["rows_kept"] + metrics["rows_dropped"]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", type=Path, default=Path("data/recall"))
    parser.add_argument("--max-mb", type=float, default=None, help="use only the first rows, up to this many MB of text")
    parser.add_argument("--shards", type=int, default=1, help="input shards (1, like data/recall: the runner splits it)")
    parser.add_argument("--batch-size", type=int, default=ComputeConfig().batch_size)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mb = build_input(args.input, folder, args.max_mb, args.shards)
        table = read_table(folder)
        local, exact = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            clean_batch(table, Params().clean)
            local.append(time.perf_counter() - started)
        comments.FORCE_PYGMENTS = True  # the peer: the released code/comment split, Pygments itself
        try:
            for _ in range(args.repeat):
                started = time.perf_counter()
                clean_batch(table, Params().clean)
                exact.append(time.perf_counter() - started)
        finally:
            comments.FORCE_PYGMENTS = False
        ensure_ray()
        stage_seconds(folder, 2, args.batch_size)  # warm-up: workers start and import the stage
        one = [stage_seconds(folder, 1, args.batch_size) for _ in range(args.repeat)]
        two = [stage_seconds(folder, 2, args.batch_size) for _ in range(args.repeat)]
    fmt = lambda xs: "/".join(f"{x:.1f}" for x in xs)
    print(f"input {mb:.1f} MB of text, {table.num_rows} rows; seconds per run: clean_batch in-process {fmt(local)}, "
          f"stage 1 worker {fmt(one)}, stage 2 workers {fmt(two)}; clean_batch with Pygments' own split {fmt(exact)}")
    print(json.dumps({"mb_per_s_per_core": round(mb / min(one), 3), "speedup_2_workers": round(min(one) / min(two), 3),
                      "clean_batch_mb_per_s_in_process": round(mb / min(local), 3),
                      "clean_batch_mb_per_s_pygments_split": round(mb / min(exact), 3),
                      "speedup_vs_pygments_split": round(min(exact) / min(local), 3), "input_mb": round(mb, 2)}))


if __name__ == "__main__":
    main()
