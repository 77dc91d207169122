"""A local DVC remote round-trips the pipeline's artifacts: `dvc push --run-cache` from one clone, `dvc pull` in
another, where `dvc repro` then restores the stage instead of running it."""

from __future__ import annotations

import json
import shutil

from tests.ops.servers import BIN, base_env, sh, tiny_project

INGEST_ONLY = {"ingest": {"max_files": 12}}


def test_push_pull_round_trip_through_a_local_remote(tmp_path):
    first, env = tiny_project(tmp_path / "first", extra_params=INGEST_ONLY)
    remote = tmp_path / "remote"
    dvc = str(BIN / "dvc")
    sh([dvc, "remote", "add", "-d", "storage", str(remote)], first, env)
    sh(["git", "commit", "-qam", "remote"], first, env)
    sh([dvc, "repro", "ingest"], first, env, timeout=600)
    sh(["git", "add", "dvc.lock", "metrics"], first, env)
    sh(["git", "commit", "-qm", "ingest"], first, env)
    pushed = sh([dvc, "push", "--run-cache", "ingest"], first, env)
    assert "pushed" in pushed.stdout.lower() or "transferred" in pushed.stdout.lower(), pushed.stdout
    assert any(remote.rglob("*"))

    second = tmp_path / "second"
    sh(["git", "clone", "-q", str(first), str(second)], tmp_path, env)
    env2 = base_env(PYTHONPATH=str(second))
    sh([dvc, "pull", "--run-cache", "ingest"], second, env2)
    kept = lambda p: sorted(x.relative_to(p).as_posix() for x in p.rglob("*") if x.is_file())  # noqa: E731
    assert kept(second / "data" / "ingest") == kept(first / "data" / "ingest")
    status = sh([dvc, "status", "ingest"], second, env2)
    assert "up to date" in status.stdout, status.stdout

    shutil.rmtree(second / "data" / "ingest")  # gone locally and from the clone's cache: the run-cache restores it
    shutil.rmtree(second / ".dvc" / "cache" / "files", ignore_errors=True)
    repro = sh([dvc, "repro", "--pull", "ingest"], second, env2)
    assert "Running stage 'ingest'" not in repro.stdout, repro.stdout
    assert json.loads((second / "metrics" / "ingest.json").read_text())["rows_in"] == 12
