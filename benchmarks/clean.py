"""Clean-stage throughput: MB/s per core of `clean_batch`, and the Ray speed-up of 2 workers vs 1.

    python benchmarks/clean.py [--files 600]

Builds a DOC_SCHEMA fixture from installed package sources (pip, numpy), times `clean_batch` in this
process (peer: nothing, a per-core rate) and the whole Ray runner with 1 and 2 workers on the same
shards (peer: the 1-worker run). Last line: one JSON object.
"""

import argparse
import hashlib
import json
import site
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.clean.config import CleanConfig
from tasks.clean.stage import clean_batch
from tasks.common.runner import map_batches
from tasks.common.shards import DOC_SCHEMA, read_table


def build_fixture(folder: Path, max_files: int) -> float:
    rows = []
    for pkg in ("pip", "numpy"):
        for p in sorted(Path(site.getsitepackages()[0], pkg).rglob("*")):
            if len(rows) >= max_files:
                break
            if p.is_file() and "__pycache__" not in p.parts and p.stat().st_size < 3_000_000:
                data = p.read_bytes()
                rows.append(dict(id=hashlib.sha256(str(p).encode()).hexdigest()[:16], text=data.decode("utf-8", "replace"),
                                 repo=pkg, path=str(p), lang=None, doc_type=None, source="bench", stars=0, commit_date=None,
                                 size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))
    for i in range(8):
        pq.write_table(pa.Table.from_pylist(rows[i::8], schema=DOC_SCHEMA), folder / f"part-{i:05d}.parquet")
    return sum(r["size_bytes"] for r in rows) / 1e6


def ray_seconds(folder: Path, workers: int, cfg: CleanConfig) -> float:
    started = time.perf_counter()
    for _ in map_batches(clean_batch, folder, fn_kwargs={"cfg": cfg}, num_workers=workers, batch_size=32):
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=600)
    args = parser.parse_args()
    cfg = CleanConfig()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mb = build_fixture(folder, args.files)
        table = read_table(folder)
        started = time.perf_counter()
        clean_batch(table, cfg)
        local_s = time.perf_counter() - started
        ray_seconds(folder, 2, cfg)  # warm-up: start Ray, import modules in workers
        one = ray_seconds(folder, 1, cfg)
        two = ray_seconds(folder, 2, cfg)
    print(f"fixture {mb:.1f} MB; in-process {local_s:.1f}s; ray 1 worker {one:.1f}s, 2 workers {two:.1f}s")
    print(json.dumps({"mb_per_s_per_core": round(mb / local_s, 3), "speedup_2_workers": round(one / two, 3), "fixture_mb": round(mb, 2)}))


if __name__ == "__main__":
    main()
