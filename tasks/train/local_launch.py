"""Run `train_loop` as N local processes without Ray (what `torchrun --nproc-per-node N` does): one process per
rank with RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT set, gloo on CPU, NCCL on GPUs.

Used by the multi-process correctness tests and the benchmarks (2 CPU processes vs 1 with the same global
batch), and to debug a job outside Ray. `python -m tasks.train.local_launch JOB.json N` runs a job file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tasks.train.job import TrainJob, to_plain

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, world_size: int, port: int) -> dict[str, str]:
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "LOCAL_WORLD_SIZE": str(world_size)}


def start_ranks(job: TrainJob | dict, world_size: int, job_file: Path, *, code: str | None = None,
                log_dir: Path | None = None) -> list[subprocess.Popen]:
    """Start `world_size` processes running `train_loop` on the job (or `code`, which reads the job file from
    argv[1]); stdout/stderr go to log_dir/rank<N>.log when given."""
    job_file = Path(job_file)
    job_file.write_text(json.dumps(to_plain(job) if isinstance(job, TrainJob) else job))
    port = free_port()
    code = code or "import json, sys; from tasks.train.loop import train_loop; train_loop(json.load(open(sys.argv[1])))"
    procs = []
    for rank in range(world_size):
        out = open(Path(log_dir) / f"rank{rank}.log", "w") if log_dir else subprocess.DEVNULL
        procs.append(subprocess.Popen([sys.executable, "-c", code, str(job_file)], cwd=ROOT, stdout=out,
                                      stderr=subprocess.STDOUT, env={**os.environ, **rank_env(rank, world_size, port)}))
    return procs


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    """Return codes; a rank that fails makes the others wait on a collective forever, so they are killed."""
    codes = []
    try:
        for p in procs:
            codes.append(p.wait(timeout=timeout))
            if codes[-1] != 0:
                break
    except subprocess.TimeoutExpired:
        codes.append(-9)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    return [p.returncode for p in procs]


def run_local(job: TrainJob | dict, world_size: int, job_file: Path, *, timeout: float = 1800, log_dir: Path | None = None) -> list[int]:
    return wait_all(start_ranks(job, world_size, job_file, log_dir=log_dir), timeout)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tasks.train.local_launch JOB.json NUM_PROCESSES", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    codes = run_local(job, int(argv[1]), Path(argv[0]).with_suffix(".launched.json"))
    return max(codes, key=abs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
