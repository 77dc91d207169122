"""Fault injection: kill every stage, its Ray workers, the disk, the MLflow and the Prefect servers; nothing may
be lost or half-read, and the final outputs must equal an undisturbed run's.

    python benchmarks/faults.py                                  # every stage and fault kind, 3 kills per stage
    python benchmarks/faults.py --stages ingest,clean --kills 2 --skip mlflow,disk_full,prefect   # a quick one

Every stage of dvc.yaml runs as `cookbook <stage> --input --output` (a real process tree: the driver, its
private Ray, DeepSpeed for training, MLflow when tracking) in a small project folder (`tools/faults/core.py`
`make_project`: the repository's params.yaml with `ingest.max_files`, tiny training with a checkpoint every step),
each stage reading the previous stage's undisturbed output. Per stage:

- baseline: one undisturbed run; its digest (`stage_digest`) is every committed row of every Parquet folder of
  the output (all columns hashed, ids kept: kept ids, drop reasons, duplicate_of, ...), every other file's bytes
  (token files, tokenizer, model weights, scores; JSON/CSV without timings) and a training stage's loss curve;
- kills (`--kills K`, seeded): a previous output is put where the stage writes (the baseline changed
  everywhere: each Parquet folder without its last row, every file altered), its checkpoints (checkpoints/<stage>) are
  removed; then K runs in a row are each SIGKILLed (with all descendants) at a seeded point between 60% of the
  way to the baseline's first write (a file under its output, a hidden temporary sibling or its checkpoints
  changed) and its last write (the commit): a kill counts only if the process was still running and its output
  not yet complete (else it is in `faults_missed` and drawn again, earlier); `stage_kills_while_writing` says
  how many landed after the run was seen writing (stages that write their output in one burst at the end, such
  as ingest, are mostly killed while they compute it). Each run starts from what the previous kill left (a
  training run resumes its checkpoints). A reader
  digests the output every 0.2 s; every view, and the state after each kill, must be the previous output, the
  new (baseline) output or nothing -- anything else is a `partial_outputs_seen`. Then one undisturbed run must
  give the baseline digest; each kill of the chain counts in `runs_identical` if it does;
- worker kill: one Ray worker running a task of the stage (`ray::<task>`, not idle) is SIGKILLed; the stage
  must finish by itself with the baseline digest (stages with no busy Ray worker seen: `worker_kill_missed`);
- disk full (`--disk-full-stages`; needs `mount -t tmpfs`, i.e. root): the output goes to a tmpfs of half the
  output's size; the stage must fail with exit 2 and one `error: ... no space left` line and leave no
  readable output, then succeed with the baseline digest once the filesystem is made larger;
- MLflow server loss (`--mlflow-stages`): a real `mlflow server` is the tracking URI and is killed at a seeded
  point of the run; the stage must finish with the baseline digest (saying tracking was lost), or fail with
  one line and succeed when re-run; never hang (limit: 3x the baseline + 180 s);
- Prefect server restart (once, `--prefect-stages`): `cookbook run --stages ...` in a git + DVC copy of the
  project against a `prefect server start` of our own (PREFECT_API_URL); when the first stage starts writing the
  server is stopped (SIGTERM, then SIGKILL) and started again on the same port and database. The run must
  finish (or fail with one line and finish on a re-run) with the stages' baseline digests, never hang.

`rows_lost`: baseline rows (and files) missing from the final outputs; `hung`: runs past their limit;
`stage_failures`: stages whose undisturbed run failed (their error line), not faults of the harness.
The timing peer is the undisturbed baseline of the same stage in the same run (`rerun_seconds_vs_baseline`).

Multi-version input (the issue's case): `--mv-files` real Python files from the installed distributions, each
in versions (the original, a one-line edit, a revert to the original, a rewrite of a fifth of its lines) plus
a fork holding the edit with more stars, as Stack-v2 JSONL (`repo_name`, `path`, `blob_id`,
`revision_date`, `star_events_count`, `content`), through `cookbook ingest` and `cookbook dedup`.
`duplicate_ids_after_ingest` counts rows sharing an id (kept and dropped), next to
`duplicate_ids_with_path_only_ids`, what the former id (source|repo|path) gives on the same rows.
`removed_with_kept_near_copy_share`: of the rows dedup removed, the share whose `duplicate_of` is a kept row
at exact Jaccard >= dedup's own threshold over dedup's own shingles (`tasks/dedup/minhash.text_shingles`);
`clusters_lost`: groups of rows connected by such pairs (among rows of one file name, where the versions
are) with no kept member. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pyarrow.parquet as pq

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tasks.stages import ORDER  # noqa: E402
from tools.faults.core import (  # noqa: E402
    TRAINING, busy_ray_worker, clean_env, differences, free_port, kill_tree, make_project, one_error_line,
    read_view, remove, restore_baseline, rows_of, run_stage, save_baseline, stage_command, stage_digest,
    stage_paths, start_mlflow, start_prefect, tree_digest, write_roots)

FAULT_KINDS = ("stage_kill", "worker_kill", "disk_full", "mlflow", "prefect")


@dataclass
class Tally:
    injected: Counter = field(default_factory=Counter)
    identical: int = 0
    rows_lost: int = 0
    partial: Counter = field(default_factory=Counter)
    hung: int = 0
    missed: Counter = field(default_factory=Counter)
    tracebacks: int = 0
    rerun_ratios: list = field(default_factory=list)
    while_writing: int = 0
    failures: dict = field(default_factory=dict)

    def settle(self, kind: str, count: int, baseline: dict, final: dict | None) -> bool:
        """Count `count` injected faults of `kind` whose final output is `final`."""
        self.injected[kind] += count
        same = final == baseline
        self.identical += count * same
        self.rows_lost += len(rows_of(baseline) - rows_of(final))
        return same

    def check_views(self, kind: str, observations, allowed: list) -> int:
        """Every reader view must be no output or one of the `allowed` digests; returns the bad ones."""
        bad = len(bad_views(observations, allowed))
        self.partial[kind] += bad
        return bad


def bad_views(observations, allowed: list) -> list:
    """The reader views that were neither no output nor one of the `allowed` digests ("unreadable" or a digest)."""
    return [digest if state == "read" else state for state, digest in observations
            if state == "unreadable" or (state == "read" and digest not in allowed)]


def views_line(observations, allowed: list, baseline: dict) -> str:
    """`, N bad views (first: what differs from the baseline)` for a run's reader views; empty when all were good."""
    bad = bad_views(observations, allowed)
    if not bad:
        return ""
    first = bad[0] if isinstance(bad[0], str) else ", ".join(differences(baseline, bad[0])[:6])
    return f", {len(bad)} bad views during it (first: {first})"


def last_error(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("error:")]
    return (errors or lines or ["(no output)"])[-1][:300]


def limit_for(base_s: float) -> float:
    return 3 * base_s + 180


# ---------------------------------------------------------------------------------------------- stage kills

def install_previous_state(project: Path, stage: str, keep: Path) -> dict | None:
    """The previous output a killed run must leave intact (different from the new one); the stage starts from no
    checkpoint (training's steps, recall's rounds, curate's teacher samples), as its undisturbed run did."""
    from tools.faults.core import install_previous

    remove(project / "checkpoints" / stage)
    return install_previous(project, stage, keep)


def inject_kills(stage: str, ctx: dict, tally: Tally, kills: int, rng: random.Random, attempts: int = 4) -> None:
    """`kills` SIGKILLs in a row, each at a seeded point of the baseline's work (from 60% of the way to its first
    write to its commit) where the run is still running and its output not yet complete, then one run to the end."""
    project, env, base, baseline, keep = ctx["project"], ctx["env"], ctx["base"], ctx["baseline"], ctx["keep"]
    cmd, roots = stage_command(stage), write_roots(project, stage)
    previous = install_previous_state(project, stage, keep)
    allowed = [previous, baseline]
    # kill points: from 60% of the way to the baseline's first write to its last write (the commit), i.e. over the
    # work that ends in the output; a point past the end of a run is drawn again below the missed one
    low = 0.6 * (base.wrote_at or 0.5 * base.seconds)
    landed = 0
    for k in range(kills):
        high = max(low + 0.5, (base.last_write_at or base.seconds) + 0.3)
        for attempt in range(attempts):
            kill_at = rng.uniform(low, high)
            run = run_stage(cmd, cwd=project, env=env, limit_s=limit_for(base.seconds), roots=roots,
                            kill_at=kill_at, reader=lambda: read_view(project, stage))
            tally.hung += run.hung
            bad = tally.check_views("stage_kill", run.observations, allowed)
            committed = run.killed_at is not None and read_view(project, stage)[1] == baseline
            if run.killed_at is not None and not committed:
                break
            tally.missed["stage_kill"] += 1
            high = max(low + 0.2, kill_at)
            if committed:  # killed after its output was complete: not mid-work; the chain starts over
                print(f"  {stage} kill {k + 1}/{kills} at {run.killed_at:.1f}s missed: the output was already "
                      f"complete", flush=True)
                previous = install_previous_state(project, stage, keep)
                allowed.append(previous)
                continue
            why = f"rc {run.rc}" + ("" if run.wrote_at is not None else ", never seen writing")
            print(f"  {stage} kill {k + 1}/{kills} at {kill_at:.1f}s missed: the run ended first ({why}, "
                  f"{run.seconds:.1f}s)", flush=True)
            if run.rc != 0:
                tally.failures.setdefault(f"{stage} after a kill", last_error(run.output))
                tally.tracebacks += "Traceback" in run.output
                break
            previous = install_previous_state(project, stage, keep)  # it finished: start the chain over
            allowed.append(previous)
        if run.killed_at is None or committed:
            continue
        landed += 1
        state, after = read_view(project, stage)
        bad_after = state == "unreadable" or (state == "read" and after not in allowed)
        tally.partial["stage_kill"] += bad_after
        what = "absent" if state == "absent" else ("previous" if after in allowed and after != baseline
                                                   else "A MIX/PARTIAL")
        tally.while_writing += run.wrote_at is not None
        writing = f"writing from {run.wrote_at:.1f}s" if run.wrote_at is not None else "before it wrote"
        print(f"  {stage} kill {k + 1}/{kills} at {run.killed_at:.1f}s ({writing}): output "
              f"{what} after the kill, {len(run.observations)} reads during the run ({bad} bad)", flush=True)
    if not landed:
        return
    final = run_stage(cmd, cwd=project, env=env, limit_s=limit_for(base.seconds), roots=roots,
                      reader=lambda: read_view(project, stage))
    tally.hung += final.hung
    tally.check_views("stage_kill", final.observations, allowed)
    tally.rerun_ratios.append(final.seconds / base.seconds)
    digest = stage_digest(project, stage) if final.rc == 0 else None
    if final.rc != 0:
        tally.failures.setdefault(f"{stage} re-run after kills", last_error(final.output))
        tally.tracebacks += "Traceback" in final.output
    same = tally.settle("stage_kill", landed, baseline, digest)
    print(f"  {stage}: after {landed} kills the re-run ({final.seconds:.1f}s, rc {final.rc}) is "
          f"{'identical' if same else 'DIFFERENT: ' + ', '.join(differences(baseline, digest))}"
          f"{views_line(final.observations, allowed, baseline)}", flush=True)


def inject_worker_kill(stage: str, ctx: dict, tally: Tally) -> None:
    project, env, base, baseline, keep = ctx["project"], ctx["env"], ctx["base"], ctx["baseline"], ctx["keep"]
    victims: list[str] = []

    def kill_one_worker(proc):
        while proc.poll() is None and not victims:
            worker = busy_ray_worker(proc.pid)
            if worker is not None:
                try:
                    title = " ".join(worker.cmdline())[:60]
                    worker.send_signal(signal.SIGKILL)
                    victims.append(title)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.1)

    previous = install_previous_state(project, stage, keep)
    run = run_stage(stage_command(stage), cwd=project, env=env, limit_s=limit_for(base.seconds),
                    reader=lambda: read_view(project, stage), on_start=kill_one_worker)
    tally.hung += run.hung
    tally.check_views("worker_kill", run.observations, [previous, baseline])
    if not victims:
        tally.missed["worker_kill"] += 1
        print(f"  {stage} worker kill: no busy Ray worker seen (rc {run.rc}, {run.seconds:.1f}s)", flush=True)
        if run.rc != 0:
            tally.failures.setdefault(f"{stage} (worker kill run)", last_error(run.output))
        return
    digest = stage_digest(project, stage) if run.rc == 0 else None
    if run.rc != 0:
        tally.failures.setdefault(f"{stage} after a worker kill", last_error(run.output))
        tally.tracebacks += "Traceback" in run.output
    same = tally.settle("worker_kill", 1, baseline, digest)
    print(f"  {stage} worker kill ({victims[0]}): rc {run.rc} in {run.seconds:.1f}s, "
          f"{'identical' if same else 'DIFFERENT: ' + ', '.join(differences(baseline, digest))}"
          f"{views_line(run.observations, [previous, baseline], baseline)}", flush=True)


def folder_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def mount_tmpfs(path: Path, size_bytes: int) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={max(64, size_bytes // 1024)}k", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def inject_disk_full(stage: str, ctx: dict, tally: Tally) -> str:
    project, env, base, baseline, keep, work = (ctx[k] for k in ("project", "env", "base", "baseline", "keep", "work"))
    small = work / f"small-{stage}"
    need = folder_bytes(keep)
    if not mount_tmpfs(small, need // 2):
        return "skipped: mount -t tmpfs not permitted (needs root)"
    expected = {k: v for k, v in baseline.items() if k != "plots/loss.csv"}
    try:
        out = small / Path(stage_paths(stage)[1]).name
        cmd = stage_command(stage, output=str(out))
        run = run_stage(cmd, cwd=project, env=env, limit_s=limit_for(base.seconds))
        tally.hung += run.hung
        ok_failure = run.rc == 2 and one_error_line(run.output) and "no space left" in run.output.lower()
        tally.tracebacks += run.rc not in (0, 2) and "Traceback" in run.output
        try:
            seen = tree_digest(out)
        except Exception:  # noqa: BLE001 - a reader that cannot read it
            seen = "unreadable"
        if seen is not None:  # the failed stage had nothing to leave: a reader must find no output
            tally.partial["disk_full"] += 1
        leftovers = sorted(p.name for p in small.iterdir())
        # room for the output and what a stage writes beside it (a training stage's checkpoints, several times
        # its model with the optimizer states); tmpfs takes memory only for what is written
        subprocess.run(["mount", "-o", f"remount,size={max(1024, 8 * need // 1024) + 1024 * 1024}k", str(small)], check=True)
        rerun = run_stage(cmd, cwd=project, env=env, limit_s=limit_for(base.seconds))
        digest = tree_digest(out) if rerun.rc == 0 else None
        same = tally.settle("disk_full", 1, expected, digest)
        if rerun.rc != 0:
            tally.failures.setdefault(f"{stage} re-run after disk full", last_error(rerun.output))
        print(f"  {stage} disk full ({need // 2} of {need} bytes): rc {run.rc}, {last_error(run.output)!r}, output "
              f"after it {'none' if seen is None else 'PRESENT'} (entries {leftovers}); after freeing space "
              f"{'identical' if same else 'DIFFERENT: ' + ', '.join(differences(expected, digest))}", flush=True)
        return "failed with one line, no output" if ok_failure and seen is None else \
            f"rc {run.rc}: {last_error(run.output)}"
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def inject_mlflow_loss(stage: str, ctx: dict, tally: Tally, rng: random.Random) -> str:
    project, env, base, baseline, keep, work = (ctx[k] for k in ("project", "env", "base", "baseline", "keep", "work"))
    server, uri = start_mlflow(work / f"mlflow-{stage}")
    previous = install_previous_state(project, stage, keep)
    kill_at = rng.uniform(0.1, 0.8) * base.seconds
    hit: list[bool] = []

    def stop_server(proc):
        time.sleep(kill_at)
        hit.append(proc.poll() is None)
        kill_tree(server)

    cmd = stage_command(stage, sets=["tracking.enabled=true"])
    run = run_stage(cmd, cwd=project, env={**env, "MLFLOW_TRACKING_URI": uri}, limit_s=limit_for(base.seconds),
                    reader=lambda: read_view(project, stage), on_start=stop_server)
    kill_tree(server)
    tally.hung += run.hung
    tally.check_views("mlflow_server_loss", run.observations, [previous, baseline])
    if not (hit and hit[0]):
        tally.missed["mlflow_server_loss"] += 1
        print(f"  {stage} MLflow server loss at {kill_at:.1f}s missed: the run ended first (rc {run.rc})", flush=True)
        return "missed"
    if run.rc == 0:
        outcome, digest = "finished", stage_digest(project, stage)
    else:
        outcome = "failed with one line" if run.rc == 2 and one_error_line(run.output) else f"failed rc {run.rc}"
        tally.tracebacks += "Traceback" in run.output
        rerun = run_stage(stage_command(stage), cwd=project, env=env, limit_s=limit_for(base.seconds))
        digest = stage_digest(project, stage) if rerun.rc == 0 else None
    said_lost = "tracking lost" in run.output.lower() or "tracking was lost" in run.output.lower()
    same = tally.settle("mlflow_server_loss", 1, baseline, digest)
    print(f"  {stage} MLflow server killed at {kill_at:.1f}s: {outcome} in {run.seconds:.1f}s, said tracking was "
          f"lost: {said_lost}, {'identical' if same else 'DIFFERENT: ' + ', '.join(differences(baseline, digest))}",
          flush=True)
    return outcome + (", said tracking was lost" if said_lost else "")


# ---------------------------------------------------------------------------------------------- Prefect restart

def git_project_copy(dest: Path, params_from: Path) -> Path:
    """A committed git + DVC copy of the repository's files with the harness's params.yaml (for `cookbook run`)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=PROJECT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in listed:
        src = PROJECT / rel
        if src.is_file() and not rel.startswith(("metrics/", "plots/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    shutil.copy2(params_from, dest / "params.yaml")
    env = clean_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "faults"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    (dest / ".git" / "info" / "exclude").write_text(".prefect/\n")
    return dest


def restart_prefect_when_writing(project: Path, first_stage: str, home: Path, port: int, holder: dict,
                                 delay: float):
    """`on_start` callback: when `first_stage` starts writing (+`delay` s), stop the Prefect server (SIGTERM,
    SIGKILL after 10 s) and start it again on the same port and database; records what it did in `holder`."""
    roots = write_roots(project, first_stage)

    def act(proc):
        from tools.faults.core import write_marks

        before = write_marks(roots)
        while proc.poll() is None and not (write_marks(roots) - before):
            time.sleep(0.2)
        time.sleep(delay)
        if proc.poll() is not None:
            return
        server = holder["server"]
        holder["stopped_while_running"] = True
        stopped = time.monotonic()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_tree(server)
        holder["server"] = start_prefect(home, port)
        holder["down_seconds"] = round(time.monotonic() - stopped, 1)

    return act


def inject_prefect_restart(ctx: dict, stages: list[str], tally: Tally, rng: random.Random) -> str:
    """`cookbook run --stages` against our own Prefect server, restarted while the first stage writes."""
    work, baselines, base_seconds = ctx["work"], ctx["baselines"], ctx["base_seconds"]
    project = git_project_copy(work / "prefect-project", ctx["project"] / "params.yaml")
    home, port = work / "prefect-home", free_port()
    holder = {"server": start_prefect(home, port)}
    env = {**ctx["env"], **{k: v for k, v in clean_env().items() if k == "PATH"},
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_HOME": str(work / "prefect-client")}
    env = {k: v for k, v in env.items() if not k.startswith("MLFLOW_")}
    cmd = [str(Path(sys.executable).with_name("cookbook")), "run", "--stages", ",".join(stages)]
    limit = 3 * sum(base_seconds[s] for s in stages) + 300
    try:
        run = run_stage(cmd, cwd=project, env=env, limit_s=limit,
                        on_start=restart_prefect_when_writing(project, stages[0], home, port, holder,
                                                              rng.uniform(0.0, 0.5) * base_seconds[stages[0]]))
        tally.hung += run.hung
        if not holder.get("stopped_while_running"):
            tally.missed["prefect_restart"] += 1
            print(f"  prefect restart missed: the run ended first (rc {run.rc}, {run.seconds:.1f}s)", flush=True)
            return "missed"
        if run.rc == 0:
            outcome = "finished"
        else:
            outcome = "failed with one line" if one_error_line(run.output) else f"failed rc {run.rc}"
            tally.tracebacks += "Traceback" in run.output
            print(f"  prefect restart: `cookbook run` {outcome}: {last_error(run.output)}; re-running", flush=True)
            rerun = run_stage(cmd, cwd=project, env=env, limit_s=limit)
            tally.hung += rerun.hung
            if rerun.rc != 0:
                tally.failures.setdefault("cookbook run after a Prefect restart", last_error(rerun.output))
        finals = {f"{s}/{k}": v for s in stages for k, v in (stage_digest(project, s) or {}).items()}
        expected = {f"{s}/{k}": v for s in stages for k, v in baselines[s].items()}
        same = tally.settle("prefect_restart", 1, expected, finals)
        print(f"  Prefect server restarted ({holder.get('down_seconds')}s down) during `cookbook run --stages "
              f"{','.join(stages)}`: {outcome} in {run.seconds:.1f}s, outputs "
              f"{'identical' if same else 'DIFFERENT: ' + ', '.join(differences(expected, finals))}",
              flush=True)
        return f"{outcome}, server down {holder.get('down_seconds')}s"
    finally:
        kill_tree(holder["server"])


# ---------------------------------------------------------------------------------------------- multi-version

def shard_rows(folder: Path, columns: list[str]) -> list[tuple]:
    """Rows (tuples of the `columns` present) of a stage folder's committed shards, sorted."""
    from tasks.common.shards import list_shards

    rows = []
    for path in list_shards(folder):
        table = pq.read_table(path)
        present = [c for c in columns if c in table.column_names]
        rows += list(zip(*(table[c].to_pylist() for c in present)))
    return sorted(rows, key=repr)
def installed_python_files(limit: int) -> list[tuple[str, str]]:
    """(repo, text) of up to `limit` real Python files (1-40 kB) of the embedded corpus' distributions."""
    import importlib.metadata

    import yaml

    names = [d["name"] for d in yaml.safe_load((PROJECT / "params.yaml").read_text())["ingest"]["distributions"]]
    found = []
    for name in names:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for f in sorted(dist.files or [], key=str):
            if f.suffix == ".py":
                path = Path(dist.locate_file(f))
                if path.is_file() and 1000 <= path.stat().st_size <= 40000:
                    found.append((name, f.as_posix(), path.read_text(errors="replace")))
    random.Random(0).shuffle(found)
    return found[:limit]


def edit_words(text: str, rng: random.Random, share: float) -> str:
    """The text with `share` of its lines (at least one) changed by one renamed identifier each."""
    lines = text.split("\n")
    candidates = [i for i, line in enumerate(lines) if any(c.isalpha() for c in line)]
    for i in rng.sample(candidates, max(1, int(len(candidates) * share))):
        lines[i] = lines[i] + f"  # rev{rng.randrange(10**9)}"
    return "\n".join(lines)


def multi_version_jsonl(path: Path, num_files: int, seed: int) -> int:
    rng = random.Random(seed)
    records = []
    for repo, rel, text in installed_python_files(num_files):
        edited = edit_words(text, rng, 0.0)  # one line touched: a near copy
        rewritten = edit_words(text, rng, 0.2)  # a fifth of the lines touched: another document
        versions = [("o/" + repo, text, 2020), ("o/" + repo, edited, 2021), ("o/" + repo, text, 2022),
                    ("o/" + repo, rewritten, 2023), ("fork/" + repo, edited, 2019)]
        for k, (repo_name, content, year) in enumerate(versions):
            blob = hashlib.sha1(f"{repo_name}|{rel}|{k}|{content}".encode()).hexdigest()
            records.append({"repo_name": repo_name, "path": rel, "blob_id": blob, "content": content, "language": "Python",
                            "revision_date": f"{year}-01-01T00:00:00+00:00",
                            "star_events_count": 100 if repo_name.startswith("fork/") else 10})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return len(records)


def near_copy_figures(ingest_out: Path, dedup_out: Path) -> dict:
    from tasks.config import load_params
    from tasks.dedup import minhash as mh
    from tasks.ingest.read import TABLE_SOURCE

    cfg = load_params(PROJECT / "params.yaml").dedup
    threshold = cfg.jaccard_threshold
    rows = {}
    for folder in (ingest_out, ingest_out / "dropped"):
        for r in shard_rows(folder, ["id", "repo", "path", "text"]):
            rows.setdefault(r[0], []).append(r)
    all_rows = [r for group in rows.values() for r in group]
    old_ids = Counter(hashlib.sha256(f"{TABLE_SOURCE}|{r[1]}|{r[2]}".encode()).hexdigest()[:16] for r in all_rows)
    figures = {"multi_version_rows": len(all_rows),
               "duplicate_ids_after_ingest": len(all_rows) - len(rows),
               "duplicate_ids_with_path_only_ids": sum(n - 1 for n in old_ids.values())}
    text = {i: group[0][3] for i, group in rows.items() if group[0][3] is not None}
    kept = set(r[0] for r in shard_rows(dedup_out, ["id"]))
    removed = shard_rows(dedup_out / "dropped", ["id", "duplicate_of"])
    shingles = {i: mh.text_shingles(t, cfg.shingle, cfg.ngram) for i, t in text.items()}

    def similar(a, b) -> bool:
        return a in shingles and b in shingles and mh.jaccard(shingles[a], shingles[b]) >= threshold

    covered = sum(1 for i, dup in removed if dup in kept and similar(i, dup))
    # clusters: rows of one file name connected by pairs at the threshold (the versions and the fork are there)
    by_name: dict[str, list[str]] = {}
    for i, group in rows.items():
        by_name.setdefault(Path(group[0][2]).name, []).append(i)
    parent = {i: i for i in text}

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for ids in by_name.values():
        ids = [i for i in ids if i in text]
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                if similar(ids[a], ids[b]):
                    parent[find(ids[a])] = find(ids[b])
    clusters: dict[str, set] = {}
    for i in text:
        clusters.setdefault(find(i), set()).add(i)
    dedup_input = kept | {i for i, _ in removed}
    lost = sum(1 for members in clusters.values() if members & dedup_input and not members & kept)
    figures.update({"dedup_removed": len(removed), "removed_with_kept_near_copy": covered,
                    "removed_with_kept_near_copy_share": round(covered / len(removed), 4) if removed else None,
                    "clusters_lost": lost, "jaccard_threshold": round(threshold, 4)})
    return figures


def multi_version(work: Path, num_files: int, seed: int, env: dict) -> dict:
    mv = work / "multi_version"
    mv.mkdir()
    num = multi_version_jsonl(mv / "stack.jsonl", num_files, seed)
    for stage, src, out in (("ingest", mv / "stack.jsonl", mv / "ingest"), ("dedup", mv / "ingest", mv / "dedup")):
        cmd = [str(Path(sys.executable).with_name("cookbook")), stage, "--input", str(src), "--output", str(out),
               "--metrics", str(mv / f"{stage}.metrics.json"), "--set", "tracking.enabled=false",
               "--set", "compute.num_workers=2"]
        run = run_stage(cmd, cwd=PROJECT, env=env, limit_s=1800)
        if run.rc != 0:
            return {"multi_version_error": f"{stage} rc {run.rc}: {last_error(run.output)}"}
    return {"multi_version_records": num, **near_copy_figures(mv / "ingest", mv / "dedup")}


# ---------------------------------------------------------------------------------------------- main

def stage_list(text: str, parser) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if set(names) - set(ORDER):
        parser.error(f"unknown stage(s) {', '.join(sorted(set(names) - set(ORDER)))}; choose from {', '.join(ORDER)}")
    return [s for s in ORDER if s in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", default=",".join(ORDER), help="stages to inject faults into (default: all)")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per data stage (default 3)")
    parser.add_argument("--train-kills", type=int, default=2, help="SIGKILLs per training stage (default 2)")
    parser.add_argument("--max-files", type=int, default=150, help="ingest.max_files of the embedded slice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mv-files", type=int, default=200, help="files of the multi-version input (0: skip)")
    parser.add_argument("--worker-kill-stages", default=",".join(ORDER))
    parser.add_argument("--disk-full-stages", default="ingest,clean,dedup,tokenize,pretrain")
    parser.add_argument("--mlflow-stages", default="ingest,clean,tokenize,pretrain")
    parser.add_argument("--prefect-stages", default="ingest,recall", help="the stages of the `cookbook run` restarted")
    parser.add_argument("--skip", default="", help=f"fault kinds to leave out: {', '.join(FAULT_KINDS)}")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args()
    stages = stage_list(args.stages, parser)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skip - set(FAULT_KINDS):
        parser.error(f"--skip: choose from {', '.join(FAULT_KINDS)}")
    worker_stages = set(stage_list(args.worker_kill_stages, parser)) if "worker_kill" not in skip else set()
    disk_stages = set(stage_list(args.disk_full_stages, parser)) if "disk_full" not in skip else set()
    mlflow_stages = set(stage_list(args.mlflow_stages, parser)) if "mlflow" not in skip else set()
    prefect_stages = stage_list(args.prefect_stages, parser) if "prefect" not in skip else []
    rng = random.Random(args.seed)
    work = (args.work or Path(tempfile.mkdtemp(prefix="faults-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    project = make_project(work / "project", args.max_files)
    env = {**clean_env(), **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    tally, figures, started = Tally(), {}, time.monotonic()
    disk, mlflow_outcomes, prefect_outcome, baselines, base_seconds = {}, {}, None, {}, {}
    needed = ORDER[: max(ORDER.index(s) for s in [*stages, *prefect_stages]) + 1]
    try:
        for stage in needed:  # a stage needs its predecessors' outputs
            roots = write_roots(project, stage)
            remove(project / "checkpoints" / stage)
            base = run_stage(stage_command(stage), cwd=project, env=env, limit_s=3600, roots=roots)
            if base.rc != 0:
                tally.failures[f"{stage} (undisturbed)"] = last_error(base.output)
                print(f"{stage}: undisturbed run failed (rc {base.rc}): {last_error(base.output)}", flush=True)
                break
            baseline = stage_digest(project, stage)
            keep = work / "baselines" / stage
            save_baseline(project, stage, keep)
            baselines[stage], base_seconds[stage] = baseline, base.seconds
            print(f"{stage}: undisturbed {base.seconds:.1f}s (writing from {base.wrote_at if base.wrote_at is None else round(base.wrote_at, 1)}s), "
                  f"{len(rows_of(baseline))} rows and files", flush=True)
            ctx = {"project": project, "env": env, "base": base, "baseline": baseline, "keep": keep, "work": work}
            if stage in stages:
                if "stage_kill" not in skip:
                    inject_kills(stage, ctx, tally, args.train_kills if stage in TRAINING else args.kills, rng)
                if stage in worker_stages:
                    inject_worker_kill(stage, ctx, tally)
                if stage in disk_stages:
                    disk[stage] = inject_disk_full(stage, ctx, tally)
                if stage in mlflow_stages:
                    mlflow_outcomes[stage] = inject_mlflow_loss(stage, ctx, tally, rng)
            restore_baseline(project, stage, keep)  # the next stage reads the undisturbed output
        if prefect_stages and all(s in baselines for s in prefect_stages):
            ctx = {"project": project, "env": env, "work": work, "baselines": baselines, "base_seconds": base_seconds}
            prefect_outcome = inject_prefect_restart(ctx, prefect_stages, tally, rng)
        if args.mv_files:
            figures.update(multi_version(work, args.mv_files, args.seed, env))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    injected = sum(tally.injected.values())
    print(json.dumps({
        "faults_injected": injected, "faults_by_kind": dict(tally.injected), "runs_identical": tally.identical,
        "rows_lost": tally.rows_lost, "partial_outputs_seen": sum(tally.partial.values()),
        "partial_outputs_by_kind": dict(tally.partial), "hung": tally.hung,
        "failed_with_traceback": tally.tracebacks,
        "stage_kills_while_writing": tally.while_writing, "faults_missed": dict(tally.missed),
        "stage_failures": tally.failures,
        "rerun_seconds_vs_baseline": round(sum(tally.rerun_ratios) / len(tally.rerun_ratios), 3) if tally.rerun_ratios else None,
        "disk_full": disk, "mlflow_server_loss": mlflow_outcomes, "prefect_restart": prefect_outcome,
        "stages": stages, "kills_per_stage": args.kills, "kills_per_training_stage": args.train_kills,
        "baseline_seconds": {s: round(v, 1) for s, v in base_seconds.items()},
        **figures, "seconds": round(time.monotonic() - started, 1),
    }))


if __name__ == "__main__":
    main()
