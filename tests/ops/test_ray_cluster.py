"""A data stage joins a real Ray cluster (`ray start --head` on loopback) through its address.

`ray start` (Ray 2.60) turns token authentication on; a driver joining it sets `RAY_AUTH_MODE=token` and finds
the cluster's token in ~/.ray/auth_token (same machine) or `RAY_AUTH_TOKEN` (README, Scale out).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.ops.servers import BIN, ROOT, base_env, ray_head, sh


def drivers(temp: Path) -> set[str]:
    """The driver processes that have connected to the cluster (one log file each in the head's session)."""
    return {p.name for p in (temp / "session_latest" / "logs").glob("python-core-driver-*")}


def test_a_data_stage_runs_on_a_cluster_given_its_address(tmp_path):
    source = tmp_path / "src" / "repo"
    shutil.copytree(ROOT / "tasks" / "clean", source, ignore=shutil.ignore_patterns("__pycache__", "data"))
    with ray_head(ROOT) as (address, temp):
        before = drivers(temp)
        out = tmp_path / "ingest"
        run = sh([str(BIN / "cookbook"), "ingest", "--params", str(ROOT / "params.yaml"), "--input", str(tmp_path / "src"), "--output", str(out),
                  "--set", f"compute.ray_address={address}", "--set", "tracking.enabled=false"],
                 tmp_path, base_env(PYTHONPATH=str(ROOT), RAY_AUTH_MODE="token"), timeout=300)
        metrics = json.loads((tmp_path / "ingest.metrics.json").read_text())
        assert metrics["rows_in"] >= 5 and metrics["rows_kept"] > 0, run.stderr[-2000:]
        assert drivers(temp) - before, f"the stage did not connect to the cluster:\n{run.stderr[-2000:]}"
