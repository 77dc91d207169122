"""Fault injection: kill stages, their Ray workers, the disk and the MLflow server; nothing may be lost or half-read.

    python benchmarks/faults.py                                    # every fault kind, 4 kills per stage
    python benchmarks/faults.py --stages ingest,clean --kills 2 --skip-mlflow --skip-disk-full   # a quick one

Each stage runs as `cookbook <stage>` (a real process tree: the driver, its private Ray, MLflow when tracking)
on a small slice of the embedded corpus (`ingest.max_files`), each stage reading the previous stage's
undisturbed output. Per stage:

- baseline: one undisturbed run; its digest is the sorted kept ids, the sorted (id, drop_reason,
  duplicate_of) of `dropped/`, and for `tokenize` the bytes of `tokens.bin` and the tokenizer files;
- kills (`--kills`, seeded): the stage is started over its previous (baseline) output and SIGKILLed with
  all its descendants at a random point of the baseline's duration; while it runs a reader reads the output
  folder every 0.2 s; afterwards the folder must hold the previous output or nothing (never a mix), then an
  undisturbed re-run must reproduce the baseline digest;
- worker kill: one Ray worker running a task (`ray::...`, not idle) of the stage is SIGKILLed; the stage must
  finish by itself with the baseline digest;
- disk full (`--skip-disk-full` to leave out; needs `mount -t tmpfs`, i.e. root): the output goes to a
  tmpfs smaller than it; the stage must fail with exit 2 and one `error: no space left ...` line, leave
  nothing in that filesystem, and succeed with the baseline digest once the filesystem is made larger;
- MLflow server loss (`--skip-mlflow`): a real `mlflow server` is the tracking URI and is killed at a random
  point; the stage must finish with the baseline digest, or fail with one line and succeed when re-run; it
  must never hang (limit: 3x the baseline + 120 s).

A fault counts in `faults_injected` only if it hit a running stage (a run that finished before its kill time
is reported in `kills_missed`). `runs_identical`: faults after which the final output equals the baseline;
`rows_lost`: baseline rows (kept + dropped ids) missing from those final outputs; `partial_outputs_seen`:
reader observations (or post-kill states) that were neither the previous output nor absent; `hung`: runs
past their limit. The peer of the timing figure is the undisturbed baseline of the same stage in the same run
(`rerun_seconds_vs_baseline`: mean re-run time after a kill over the baseline time).

Multi-version input (the issue's case): `--mv-files` real Python files from the installed distributions, each
in versions (the original, a one-word edit, a revert to the original, a rewrite of a fifth of its lines) plus
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
import hashlib
import json
import os
import random
import shutil
import signal
import socket
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
COOKBOOK = Path(sys.executable).with_name("cookbook")

CHAIN = {"ingest": None, "clean": "ingest", "dedup": "clean", "sample": "dedup", "tokenize": "sample"}
"""Stage -> the stage whose output it reads (tokenize reads the sampled documents as its pretraining data)."""
STAGE_SETS = {
    "ingest": [], "clean": [], "dedup": [], "sample": [],
    "tokenize": ["tokenize.vocab_size=1024", "tokenize.seq_len=64", "tokenize.train_sample_bytes=200000"],
}
COMMON_SETS = ["compute.num_workers=2"]


# ---------------------------------------------------------------------------------------------- digests

def shard_rows(folder: Path, columns: list[str]) -> list[tuple]:
    """Rows (as tuples of `columns` present) of a stage folder's shards as a reader gets them (`list_shards`: the
    parts its manifest lists where it has one), sorted."""
    from tasks.common.shards import list_shards

    rows = []
    for path in list_shards(folder):
        table = pq.read_table(path)
        present = [c for c in columns if c in table.column_names]
        rows += list(zip(*(table[c].to_pylist() for c in present)))
    return sorted(rows, key=repr)


def output_digest(folder: Path) -> dict | None:
    """What must be identical across runs: kept ids, dropped (id, reason, duplicate_of), token bytes. None: absent."""
    if not folder.exists():
        return None
    digest: dict = {"kept": [r[0] for r in shard_rows(folder, ["id"])]}
    if (folder / "dropped").exists():
        digest["dropped"] = shard_rows(folder / "dropped", ["id", "drop_reason", "duplicate_of"])
    for name in ("tokens.bin", "meta.json"):
        if (folder / name).exists():
            data = (folder / name).read_bytes()
            if name == "meta.json":
                meta = json.loads(data)
                data = json.dumps({k: v for k, v in meta.items() if "second" not in k}, sort_keys=True).encode()
            digest[name] = hashlib.sha256(data).hexdigest()
    if (folder / "tokenizer").exists():
        digest["tokenizer"] = sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in (folder / "tokenizer").iterdir())
    return digest


def row_ids(digest: dict | None) -> set[str]:
    if not digest:
        return set()
    return set(digest.get("kept", [])) | {r[0] for r in digest.get("dropped", [])}


def read_consistently(folder: Path, tries: int = 3) -> tuple[str, dict | None]:
    """('absent'|'read'|'unreadable', digest) as a reader would see it; a folder replaced mid-read is re-read.
    Parts without a manifest (a stage killed before its commit) are refused by `list_shards`: no output."""
    from tasks.common.shards import MissingInputError

    for _ in range(tries):
        try:
            digest = output_digest(folder)
            return ("absent" if digest is None else "read"), digest
        except MissingInputError:
            return "absent", None
        except Exception:  # files vanished or are being written: a reader retries
            time.sleep(0.05)
    return "unreadable", None


# ---------------------------------------------------------------------------------------------- processes

@dataclass
class Run:
    rc: int | None
    seconds: float
    output: str
    hung: bool = False
    observations: list = field(default_factory=list)


def stage_command(stage: str, src: Path | None, out: Path, metrics: Path, sets: list[str]) -> list[str]:
    cmd = [str(COOKBOOK), stage, "--output", str(out), "--metrics", str(metrics)]
    if src is not None:
        cmd += ["--input", str(src)]
    for s in [*COMMON_SETS, *STAGE_SETS.get(stage, []), *sets]:
        cmd += ["--set", s]
    return cmd


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process we started and every descendant (Ray's GCS, raylet and workers, a server's workers).

    Only a process not yet reaped is touched (a reaped pid may belong to someone else by now); the descendants
    are psutil handles, which refuse to signal a recycled pid. `proc.wait()` reaps it, so its return code is
    the signal's (psutil must not reap it first: subprocess would then report 0).
    """
    if proc.poll() is not None:
        return
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    proc.kill()
    for p in descendants:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    proc.wait()
    psutil.wait_procs(descendants, timeout=10)


RAY_SYSTEM_WORDS = ("IDLE", "Agent", "Dashboard", "Supervisor", "Coordinator", "Requester", "StatsActor")
"""Process titles of Ray's own processes and actors (idle workers, agents, Ray Data's coordinators): not task workers."""


def busy_ray_worker(pid: int) -> psutil.Process | None:
    """A descendant Ray worker running a task (process title `ray::<task>`, not `ray::IDLE`)."""
    try:
        for p in psutil.Process(pid).children(recursive=True):
            try:
                title = " ".join(p.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if title.startswith("ray::") and not any(word in title for word in RAY_SYSTEM_WORDS):
                return p
    except psutil.NoSuchProcess:
        return None
    return None


def run_stage(cmd: list[str], *, env: dict, limit_s: float, watch: Path | None = None, kill_at: float | None = None,
              on_start=None) -> Run:
    """Run a command; optionally SIGKILL its tree at `kill_at` s, read `watch` every 0.2 s, call `on_start(proc)`."""
    started = time.monotonic()
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    observations: list = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            observations.append(read_consistently(watch))
            stop.wait(0.2)

    thread = threading.Thread(target=reader, daemon=True) if watch is not None else None
    if thread:
        thread.start()
    helper = threading.Thread(target=on_start, args=(proc,), daemon=True) if on_start else None
    if helper:
        helper.start()
    hung = False
    while proc.poll() is None:
        elapsed = time.monotonic() - started
        if kill_at is not None and elapsed >= kill_at:
            kill_tree(proc)
            break
        if elapsed > limit_s:
            kill_tree(proc)
            hung = True
            break
        time.sleep(0.05)
    rc = proc.returncode
    stop.set()
    if thread:
        thread.join()
    log.seek(0)
    text = log.read()
    killed = kill_at is not None and rc == -signal.SIGKILL
    return Run(None if killed else rc, time.monotonic() - started, text, hung, observations)


# ---------------------------------------------------------------------------------------------- fault kinds

@dataclass
class Tally:
    injected: Counter = field(default_factory=Counter)
    identical: int = 0
    rows_lost: int = 0
    partial: Counter = field(default_factory=Counter)
    hung: int = 0
    missed: int = 0
    tracebacks: int = 0
    rerun_ratios: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def settle(self, kind: str, baseline: dict, final: dict | None) -> bool:
        """Count one injected fault of `kind` whose final output is `final`."""
        self.injected[kind] += 1
        same = final == baseline
        self.identical += same
        self.rows_lost += len(row_ids(baseline) - row_ids(final))
        return same

    def check_observations(self, kind: str, observations, allowed: list) -> None:
        """Every reader observation must be the absence of output or one of the `allowed` digests."""
        for state, digest in observations:
            if state == "unreadable" or (state == "read" and digest not in allowed):
                self.partial[kind] += 1


def one_error_line(text: str) -> bool:
    return "Traceback" not in text and sum(line.startswith("error: ") for line in text.splitlines()) == 1


def inject_kills(stage, cmd, out, baseline, base_s, env, rng, kills, tally: Tally, attempts: int = 3) -> None:
    """`kills` SIGKILLs at seeded points of the first 70% of the (shortest) undisturbed duration; a kill that
    comes after the run ended is counted as missed and drawn again (up to `attempts` draws per kill)."""
    for k in range(kills):
        for _ in range(attempts):
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(work_baseline(out), out)  # the previous output the killed run must leave intact
            kill_at = rng.uniform(0.03, 0.7) * base_s
            killed = run_stage(cmd, env=env, limit_s=3 * base_s + 120, watch=out, kill_at=kill_at)
            if killed.rc is None:
                break
            tally.missed += 1  # it finished (or failed) before the kill time: no fault injected
            tally.hung += killed.hung
            print(f"  {stage} kill {k + 1}/{kills} at {kill_at:.1f}s missed: the run ended first (rc {killed.rc}, "
                  f"{killed.seconds:.1f}s)", flush=True)
        else:
            continue
        tally.check_observations("stage_kill", killed.observations, [baseline])
        state, after = read_consistently(out)
        if state == "unreadable" or (state == "read" and after != baseline):
            tally.partial["stage_kill"] += 1
        rerun = run_stage(cmd, env=env, limit_s=3 * base_s + 120)
        tally.hung += rerun.hung
        tally.tracebacks += rerun.rc not in (0, None) and "Traceback" in rerun.output
        tally.rerun_ratios.append(rerun.seconds / base_s)
        same = tally.settle("stage_kill", baseline, output_digest(out) if rerun.rc == 0 else None)
        print(f"  {stage} kill {k + 1}/{kills} at {kill_at:.1f}s: previous output {state}, {len(killed.observations)} "
              f"reads during the run, re-run {'identical' if same else 'DIFFERENT'} in {rerun.seconds:.1f}s", flush=True)


def inject_worker_kill(stage, cmd, out, baseline, base_s, env, tally: Tally) -> None:
    victims: list = []

    def kill_one_worker(proc):
        while proc.poll() is None and not victims:
            worker = busy_ray_worker(proc.pid)
            if worker is not None:
                try:
                    victims.append(" ".join(worker.cmdline())[:60])
                    worker.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    victims.clear()
            time.sleep(0.1)

    shutil.rmtree(out, ignore_errors=True)
    run = run_stage(cmd, env=env, limit_s=3 * base_s + 120, watch=out, on_start=kill_one_worker)
    tally.hung += run.hung
    if not victims:
        tally.missed += 1
        print(f"  {stage} worker kill: no busy Ray worker seen (rc {run.rc})", flush=True)
        return
    tally.check_observations("worker_kill", run.observations, [baseline])
    tally.tracebacks += run.rc not in (0, None) and "Traceback" in run.output
    same = tally.settle("worker_kill", baseline, output_digest(out) if run.rc == 0 else None)
    print(f"  {stage} worker kill ({victims[0]}): rc {run.rc}, {'identical' if same else 'DIFFERENT'}", flush=True)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def mount_tmpfs(path: Path, size_bytes: int) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    size_kb = max(64, size_bytes // 1024)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True).returncode == 0


def inject_disk_full(stage, src, sets, work, baseline, base_s, env, tally: Tally) -> str:
    small = work / f"small-{stage}"
    need = folder_bytes(work_baseline(work / "out" / stage))
    if not mount_tmpfs(small, need // 2):
        return "skipped: mount -t tmpfs not permitted (needs root)"
    try:
        out = small / "out"
        cmd = stage_command(stage, src, out, work / f"disk-{stage}.metrics.json", sets)
        run = run_stage(cmd, env=env, limit_s=3 * base_s + 120)
        tally.hung += run.hung
        leftovers = sorted(str(p.relative_to(small)) for p in small.rglob("*") if p.is_file())
        ok_failure = run.rc == 2 and one_error_line(run.output) and "no space left" in run.output and not leftovers
        if run.rc not in (0, 2) and "Traceback" in run.output:
            tally.tracebacks += 1
        state, _ = read_consistently(out)
        if state != "absent":  # a reader finds a folder where the failed stage had nothing to leave
            tally.partial["disk_full"] += 1
        subprocess.run(["mount", "-o", f"remount,size={max(64, 4 * need // 1024)}k", str(small)], check=True)
        rerun = run_stage(cmd, env=env, limit_s=3 * base_s + 120)
        same = tally.settle("disk_full", baseline, output_digest(out) if rerun.rc == 0 else None)
        line = next((l for l in run.output.splitlines() if l.startswith("error: ")), run.output.strip().splitlines()[-1:])
        print(f"  {stage} disk full ({need // 2} of {need} bytes): rc {run.rc}, leftovers {leftovers}, {line}; "
              f"after freeing space {'identical' if same else 'DIFFERENT'}", flush=True)
        return "failed with one line, no leftovers" if ok_failure else f"rc {run.rc}, leftovers {leftovers}"
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{work}/mlflow.db", "--default-artifact-root", str(work / "mlartifacts"),
         "--workers", "1"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, url
        except OSError:
            time.sleep(0.5)
    kill_tree(server)
    raise RuntimeError("mlflow server did not start in 180 s")


def inject_mlflow_loss(stage, src, sets, work, baseline, base_s, env, rng, tally: Tally) -> str:
    server, url = start_mlflow(work)
    out = work / f"mlflow-{stage}"
    cmd = stage_command(stage, src, out, work / f"mlflow-{stage}.metrics.json", [*sets, "tracking.enabled=true"])
    kill_at = rng.uniform(0.05, 0.9) * base_s
    timer = threading.Timer(kill_at, kill_tree, args=(server,))
    timer.start()
    run = run_stage(cmd, env={**env, "MLFLOW_TRACKING_URI": url}, limit_s=3 * base_s + 120, watch=out)
    timer.cancel()
    timer.join()
    kill_tree(server)
    tally.hung += run.hung
    tally.check_observations("mlflow_server_loss", run.observations, [baseline])
    if run.rc == 0:
        outcome, final = "finished", output_digest(out)
    elif run.rc == 2 and one_error_line(run.output):
        rerun = run_stage(stage_command(stage, src, out, work / "rerun.metrics.json", sets), env=env, limit_s=3 * base_s + 120)
        outcome, final = "failed with one line", output_digest(out) if rerun.rc == 0 else None
    else:
        outcome, final = ("hung" if run.hung else f"failed rc {run.rc}"), None
        tally.tracebacks += "Traceback" in run.output
        rerun = run_stage(stage_command(stage, src, out, work / "rerun.metrics.json", sets), env=env, limit_s=3 * base_s + 120)
        final = output_digest(out) if rerun.rc == 0 else None
    said_lost = any("tracking" in l.lower() and ("lost" in l.lower() or "unreachable" in l.lower()) for l in run.output.splitlines())
    same = tally.settle("mlflow_server_loss", baseline, final)
    print(f"  {stage} MLflow server killed at {kill_at:.1f}s: {outcome} in {run.seconds:.1f}s, said tracking was lost: "
          f"{said_lost}, final output {'identical' if same else 'DIFFERENT'}", flush=True)
    return outcome


def work_baseline(out: Path) -> Path:
    return out.with_name(out.name + ".baseline")


# ---------------------------------------------------------------------------------------------- multi-version

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
        run = run_stage(stage_command(stage, src, out, mv / f"{stage}.metrics.json", ["tracking.enabled=false"]),
                        env=env, limit_s=1800)
        if run.rc != 0:
            return {"multi_version_error": f"{stage} rc {run.rc}: {run.output.strip().splitlines()[-1:]}"}
    return {"multi_version_records": num, **near_copy_figures(mv / "ingest", mv / "dedup")}


# ---------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", default=",".join(CHAIN), help=f"comma-separated, from {', '.join(CHAIN)}")
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs per stage (default 4)")
    parser.add_argument("--max-files", type=int, default=300, help="ingest.max_files of the embedded slice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mv-files", type=int, default=200, help="files of the multi-version input (0: skip)")
    parser.add_argument("--skip-worker-kill", action="store_true")
    parser.add_argument("--skip-disk-full", action="store_true")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if not stages or set(stages) - set(CHAIN):
        parser.error(f"--stages: choose from {', '.join(CHAIN)}")
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="faults-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "MLFLOW_TRACKING_URI": f"sqlite:///{work}/local-mlflow.db"}
    tally, figures, started = Tally(), {}, time.monotonic()
    disk, mlflow_outcomes = {}, {}
    try:
        order = list(CHAIN)
        for stage in order[: max(order.index(s) for s in stages) + 1]:  # a stage needs its predecessors' outputs
            src = work / "out" / CHAIN[stage] if CHAIN[stage] else None
            out = work / "out" / stage
            sets = ["tracking.enabled=false"] + ([f"ingest.max_files={args.max_files}"] if stage == "ingest" else [])
            cmd = stage_command(stage, src, out, work / f"{stage}.metrics.json", sets)
            cold = run_stage(cmd, env=env, limit_s=1800)
            if cold.rc != 0:
                raise SystemExit(f"{stage} baseline failed (rc {cold.rc}): {cold.output[-2000:]}")
            baseline = output_digest(out)
            base = run_stage(cmd, env=env, limit_s=1800)  # warm: the duration kill points are drawn from
            if base.rc != 0 or output_digest(out) != baseline:
                raise SystemExit(f"{stage}: two undisturbed runs differ (rc {base.rc}); nothing to compare faults against")
            shutil.copytree(out, work_baseline(out))
            print(f"{stage}: baseline {cold.seconds:.1f}s cold, {base.seconds:.1f}s warm, identical, "
                  f"{len(row_ids(baseline))} rows", flush=True)
            if stage not in stages:
                continue
            shortest = min(cold.seconds, base.seconds)
            inject_kills(stage, cmd, out, baseline, shortest, env, rng, args.kills, tally)
            if not args.skip_worker_kill:
                inject_worker_kill(stage, cmd, out, baseline, base.seconds, env, tally)
            if not args.skip_disk_full:
                disk[stage] = inject_disk_full(stage, src, sets, work, baseline, base.seconds, env, tally)
            if not args.skip_mlflow:
                mlflow_outcomes[stage] = inject_mlflow_loss(stage, src, sets, work, baseline, base.seconds, env, rng, tally)
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(work_baseline(out), out)  # the next stage reads the undisturbed output
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
        "failed_with_traceback": tally.tracebacks, "kills_missed": tally.missed,
        "rerun_seconds_vs_baseline": round(sum(tally.rerun_ratios) / len(tally.rerun_ratios), 3) if tally.rerun_ratios else None,
        "disk_full": disk, "mlflow_server_loss": mlflow_outcomes, "stages": stages, "kills_per_stage": args.kills,
        **figures, "seconds": round(time.monotonic() - started, 1),
    }))


if __name__ == "__main__":
    main()
