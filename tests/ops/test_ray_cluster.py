"""Data stages run on a real 2-node Ray cluster on this machine (`infra/ray/local_cluster.py`, loopback).

The cluster is two `ray start --block` nodes with 1 CPU each; `cookbook ingest` then `cookbook clean` join it
through `compute.ray_address`, both nodes start workers for the stages, and clean's kept ids and drop
reasons are those of `clean_batch` run in this process on the same rows; `cookbook dedup` on the cluster
drops the ids, with the reasons and `duplicate_of`, of the single-process reference
(`benchmarks/dedup_reference.py`). Then the worker node is killed
(its process group, SIGKILL) while a driver's `map_to_shards` runs tasks on it: Ray retries the lost tasks
on the head, and the committed rows are those of an undisturbed run.

`ray start` (Ray 2.60) turns token authentication on; a driver joining it sets `RAY_AUTH_MODE=token` and finds
the cluster's token in ~/.ray/auth_token (same machine) or `RAY_AUTH_TOKEN` (README, Scale out).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.clean.stage import clean_batch
from tasks.common.shards import read_table
from tasks.config import Params
from tests.dedup.test_dedup_distributed import corpus, write_folder
from tests.dedup.test_dedup_distributed import reference as dedup_reference
from tests.ops.servers import BIN, ROOT, base_env, sh

CLUSTER = ROOT / "infra" / "ray" / "local_cluster.py"


def nodes_with_workers(temp: Path) -> int:
    """How many of the cluster's raylets (one log each, all nodes share the head's session) started workers."""
    logs = (temp / "session_latest" / "logs").glob("raylet*.out")
    return sum("Started worker process" in p.read_text(errors="replace") for p in logs)


def slow_drop_odd(batch: pa.Table) -> pa.Table:
    time.sleep(0.5)
    reasons = ["odd" if x % 2 else None for x in batch.column("x").to_pylist()]
    return batch.append_column("drop_reason", pa.array(reasons, pa.string()))


def started_workers(log: Path) -> int:
    return log.read_text(errors="replace").count("Started worker process")


def map_losing_a_node(tmp_path: Path, address: str, temp: Path, node_pid: int) -> tuple[list[int], list[int]]:
    """`map_to_shards` on the cluster from a driver process; the worker node's process group is killed once
    it runs the driver's tasks. Returns the kept and dropped `x` the stage committed."""
    source, out = tmp_path / "numbers", tmp_path / "numbers-out"
    source.mkdir()
    pq.write_table(pa.table({"x": list(range(2000))}), source / "part-0.parquet")
    raylet = temp / "session_latest" / "logs" / "raylet.1.out"
    before = started_workers(raylet)
    code = ("import sys; from tasks.common.runner import map_to_shards; from tests.ops.test_ray_cluster import slow_drop_odd; "
            "map_to_shards(slow_drop_odd, sys.argv[1], sys.argv[2], num_workers=2, batch_size=100, ray_address=sys.argv[3])")
    driver = subprocess.Popen([str(BIN / "python"), "-c", code, str(source), str(out), address], cwd=tmp_path,
                              env=base_env(PYTHONPATH=str(ROOT), RAY_AUTH_MODE="token"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while started_workers(raylet) == before and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # a task of the driver's is running there
    assert driver.poll() is None, "the stage ended before the node was lost"
    os.killpg(node_pid, signal.SIGKILL)
    log, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, log[-3000:]
    return read_table(out).column("x").to_pylist(), read_table(out / "dropped").column("x").to_pylist()


def stage(name: str, source: Path, out: Path, address: str, cwd: Path) -> dict:
    sh([str(BIN / "cookbook"), name, "--params", str(ROOT / "params.yaml"), "--input", str(source), "--output", str(out),
        "--set", f"compute.ray_address={address}", "--set", "compute.num_workers=2", "--set", "tracking.enabled=false"],
       cwd, base_env(PYTHONPATH=str(ROOT), RAY_AUTH_MODE="token"), timeout=300)
    return json.loads(out.with_name(out.name + ".metrics.json").read_text())


def test_ingest_and_clean_run_on_a_two_node_cluster(tmp_path):
    source = tmp_path / "src" / "repo"
    shutil.copytree(ROOT / "tasks" / "clean", source, ignore=shutil.ignore_patterns("__pycache__", "data"))
    folder = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # Unix socket paths must stay short
    env = base_env(PYTHONPATH=str(ROOT))
    try:
        address = sh([str(BIN / "python"), str(CLUSTER), "start", "--dir", str(folder), "--nodes", "2"], tmp_path, env,
                     timeout=300).stdout.split()[-1]
        ingest = stage("ingest", tmp_path / "src", tmp_path / "ingest", address, tmp_path)
        clean = stage("clean", tmp_path / "ingest", tmp_path / "clean", address, tmp_path)
        dedup_input = write_folder(tmp_path / "dedup-input", corpus(seed=7))
        dedup = stage("dedup", dedup_input, tmp_path / "dedup", address, tmp_path)
        assert nodes_with_workers(folder / "ray") == 2, "both nodes ran tasks of the stages"
        survived = map_losing_a_node(tmp_path, address, folder / "ray", json.loads((folder / "cluster.json").read_text())["pids"][1])
    finally:
        sh([str(BIN / "python"), str(CLUSTER), "stop", "--dir", str(folder)], tmp_path, env, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)
    assert survived == (list(range(0, 2000, 2)), list(range(1, 2000, 2))), "same rows as an undisturbed run"
    assert ingest["rows_in"] >= 5 and clean["rows_in"] == ingest["rows_kept"]
    decided = read_table(tmp_path / "dedup" / "dropped").select(["id", "drop_reason", "duplicate_of"]).to_pylist()
    expected = dedup_reference.reference_decisions(dedup_input, Params().dedup)
    assert expected and {d["id"]: (d["drop_reason"], d["duplicate_of"]) for d in decided if d["drop_reason"] != "duplicate_id"} == expected
    assert dedup["rows_in"] == dedup["rows_kept"] + dedup["rows_dropped"]
    reference = clean_batch(read_table(tmp_path / "ingest"), Params().clean)
    kept = reference.filter(pc.is_null(reference["drop_reason"]))
    assert read_table(tmp_path / "clean").column("id").to_pylist() == kept.column("id").to_pylist()
    dropped = read_table(tmp_path / "clean" / "dropped")
    expected = reference.filter(pc.is_valid(reference["drop_reason"]))
    assert dropped.column("drop_reason").to_pylist() == expected.column("drop_reason").to_pylist()
