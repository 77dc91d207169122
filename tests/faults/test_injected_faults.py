"""One fault of each kind at small size, against real processes: a SIGKILLed stage, a SIGKILLed Ray worker, a
full disk, an MLflow server killed mid-run, a Prefect server restarted during `cookbook run`.

Each runs `cookbook ingest` (a Ray map over a small slice of the embedded corpus) in a small project folder
(`tools/faults/core.make_project`) and compares the final output row by row with one undisturbed run
(`stage_digest`: every committed row hashed over all its columns, every other file's bytes). Where a previous
output exists, it differs from the new one (`install_previous`), so a reader that saw a mix of the two would
tell. `benchmarks/faults.py` does the same over every stage, many times.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.faults.core import (
    busy_ray_worker, clean_env, free_port, install_previous, kill_tree, make_project, one_error_line, read_view,
    run_stage, save_baseline, stage_command, stage_digest, start_mlflow, start_prefect, tree_digest, write_marks,
    write_roots)

STAGE = "ingest"
MAX_FILES = 40
LIMIT_S = 600


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory):
    """A project with one undisturbed ingest: (project, env, digest, baseline copy, run)."""
    work = tmp_path_factory.mktemp("faults")
    project = make_project(work / "project", MAX_FILES)
    env = clean_env()
    run = run_stage(stage_command(STAGE), cwd=project, env=env, limit_s=LIMIT_S, roots=write_roots(project, STAGE))
    assert run.rc == 0, run.output[-3000:]
    digest = stage_digest(project, STAGE)
    assert digest and len(digest["."]) >= MAX_FILES // 2, digest
    save_baseline(project, STAGE, work / "baseline")
    return project, env, digest, work / "baseline", run


def test_a_killed_stage_leaves_the_previous_output_and_its_rerun_is_identical(undisturbed):
    project, env, digest, keep, base = undisturbed
    previous = install_previous(project, STAGE, keep)
    assert previous != digest and previous["."] and set(previous["."]) < set(digest["."])  # a mix would show
    killed = run_stage(stage_command(STAGE), cwd=project, env=env, limit_s=LIMIT_S, roots=write_roots(project, STAGE),
                       kill_after_write=0.0, reader=lambda: read_view(project, STAGE))
    assert killed.killed_at is not None, f"the run ended before the kill (rc {killed.rc}): {killed.output[-2000:]}"
    assert killed.wrote_at is not None and killed.observations
    views = [d for state, d in killed.observations if state == "read"]
    assert all(d in (previous, digest) for d in views), "a reader saw a partial output"
    assert all(state != "unreadable" for state, _ in killed.observations)
    state, after = read_view(project, STAGE)
    assert state == "absent" or after in (previous, digest)
    rerun = run_stage(stage_command(STAGE), cwd=project, env=env, limit_s=LIMIT_S)
    assert rerun.rc == 0, rerun.output[-3000:]
    assert stage_digest(project, STAGE) == digest


def test_a_killed_ray_worker_does_not_change_the_output(undisturbed):
    project, env, digest, keep, _ = undisturbed
    install_previous(project, STAGE, keep)
    victims = []

    def kill_one_worker(proc):
        while proc.poll() is None and not victims:
            worker = busy_ray_worker(proc.pid)
            if worker is not None:
                with contextlib.suppress(Exception):
                    worker.send_signal(signal.SIGKILL)
                    victims.append(worker.pid)
            time.sleep(0.05)

    run = run_stage(stage_command(STAGE), cwd=project, env=env, limit_s=LIMIT_S, on_start=kill_one_worker)
    assert victims, f"no busy Ray worker was seen (rc {run.rc})"
    assert run.rc == 0, run.output[-3000:]
    assert stage_digest(project, STAGE) == digest


def test_a_full_disk_fails_with_one_line_leaves_no_output_and_succeeds_once_freed(undisturbed, tmp_path):
    project, env, digest, keep, _ = undisturbed
    small = tmp_path / "small"
    small.mkdir()
    need = sum(p.stat().st_size for p in keep.rglob("*") if p.is_file())
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={max(64, need // 2048)}k", "tmpfs", str(small)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("mount -t tmpfs is not permitted here (needs root)")
    try:
        out = small / "ingest"
        run = run_stage(stage_command(STAGE, output=str(out)), cwd=project, env=env, limit_s=LIMIT_S)
        assert run.rc == 2 and one_error_line(run.output), run.output[-3000:]
        assert "no space left" in run.output.lower() and str(small) in run.output
        assert tree_digest(out) is None  # nothing a reader could take for an output
        subprocess.run(["mount", "-o", f"remount,size={max(1024, 8 * need // 1024)}k", str(small)], check=True)
        rerun = run_stage(stage_command(STAGE, output=str(out)), cwd=project, env=env, limit_s=LIMIT_S)
        assert rerun.rc == 0, rerun.output[-3000:]
        assert tree_digest(out) == digest
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_the_mlflow_server_stopping_mid_run_is_tracking_lost_not_a_hang(undisturbed, tmp_path):
    project, env, digest, keep, base = undisturbed
    install_previous(project, STAGE, keep)
    server, uri = start_mlflow(tmp_path / "mlflow")
    stopped = []

    def stop_server_once_writing(proc):
        before = write_marks(write_roots(project, STAGE))
        while proc.poll() is None and not (write_marks(write_roots(project, STAGE)) - before):
            time.sleep(0.05)
        stopped.append(proc.poll() is None)
        kill_tree(server)

    try:
        run = run_stage(stage_command(STAGE, sets=["tracking.enabled=true"]), cwd=project,
                        env={**env, "MLFLOW_TRACKING_URI": uri}, limit_s=3 * base.seconds + 180,
                        on_start=stop_server_once_writing)
    finally:
        kill_tree(server)
    assert not run.hung
    assert stopped == [True], "the server was stopped after the stage ended"
    if run.rc == 0:
        assert "tracking lost" in run.output.lower(), run.output[-3000:]
    else:  # a stage may also stop with one line; then a re-run without the server must finish
        assert run.rc == 2 and one_error_line(run.output), run.output[-3000:]
        assert run_stage(stage_command(STAGE), cwd=project, env=env, limit_s=LIMIT_S).rc == 0
    assert stage_digest(project, STAGE) == digest


def git_project(dest: Path, params: Path) -> Path:
    """A committed git + DVC copy of the repository with `params` as its params.yaml (what `cookbook run` needs)."""
    root = Path(__file__).resolve().parents[2]
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in listed:
        if (root / rel).is_file() and not rel.startswith(("metrics/", "plots/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest / rel)
    shutil.copy2(params, dest / "params.yaml")
    env = clean_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "faults"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    return dest


def test_a_prefect_server_restart_during_cookbook_run_changes_nothing(undisturbed, tmp_path):
    project, env, digest, _, base = undisturbed
    copy = git_project(tmp_path / "project", project / "params.yaml")
    home, port = tmp_path / "prefect", free_port()
    servers = [start_prefect(home, port)]
    restarted = []

    def restart_when_the_stage_runs(proc):
        """Stop the server (SIGTERM) as soon as `cookbook ingest` runs under the flow, start it again."""
        while proc.poll() is None and not any("cookbook" in c and " ingest" in c for c in _command_lines(proc.pid)):
            time.sleep(0.1)
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(servers[-1].pid, signal.SIGTERM)
        servers[-1].wait(timeout=60)
        down = time.monotonic()
        servers.append(start_prefect(home, port))
        restarted.append(round(time.monotonic() - down, 1))

    run_env = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_HOME": str(tmp_path / "client")}
    cmd = [str(Path(sys.executable).with_name("cookbook")), "run", "--stages", STAGE]
    try:
        run = run_stage(cmd, cwd=copy, env=run_env, limit_s=6 * base.seconds + 400, on_start=restart_when_the_stage_runs)
    finally:
        for server in servers:
            kill_tree(server)
    assert not run.hung, run.output[-3000:]
    assert restarted, f"the run ended before the restart (rc {run.rc}): {run.output[-3000:]}"
    if run.rc != 0:  # a run may stop with one line; its re-run must then finish
        assert one_error_line(run.output), run.output[-3000:]
        servers = [start_prefect(home, port)]
        try:
            assert run_stage(cmd, cwd=copy, env=run_env, limit_s=LIMIT_S).rc == 0
        finally:
            kill_tree(servers[0])
    assert stage_digest(copy, STAGE) == digest


def _command_lines(pid: int) -> list[str]:
    """The command lines of a process's living descendants."""
    import psutil

    try:
        found = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    lines = []
    for p in found:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            lines.append(" ".join(p.cmdline()))
    return lines
