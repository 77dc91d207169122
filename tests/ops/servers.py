"""Real servers for the operations tests, on 127.0.0.1 and free ports, always stopped (process group) afterwards.

    with prefect_server(tmp) as api_url: ...      # `prefect server start`
    with mlflow_server(tmp) as uri: ...           # `mlflow server` with a SQLite store and local artifacts
    with prefect_and_mlflow(tmp) as (api_url, uri): ...   # both, started side by side
    with ray_head(path) as (address, temp): ...   # `ray start --head --block`

`project_copy(dest, *overrides)` makes a committed git + DVC copy of the repository (params overridden), so DVC
experiments and Prefect deployments can run there; `tiny_project(dest)` the one with tests/test_lifecycle.py's
TINY params.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.test_lifecycle import TINY, _merge

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """This environment without pointers to outside servers, with the venv's commands first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "RAY_ADDRESS"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    env.update(extra)
    return env


def sh(cmd: list[str], cwd: Path, env: dict, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@contextlib.contextmanager
def process(cmd: list[str], log: Path, env: dict, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run `cmd` in its own process group; on exit SIGTERM the group, then SIGKILL what is left."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children (workers, raylets) that outlived their parent
    proc.wait(timeout=30)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        time.sleep(1)
    raise TimeoutError(f"{url} not up after {timeout}s:\n{log.read_text()[-3000:]}")


def _prefect(home: Path) -> tuple[list[str], dict, str]:
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return cmd, base_env(PREFECT_HOME=str(home)), f"http://127.0.0.1:{port}/api"


def _mlflow(folder: Path) -> tuple[list[str], dict, str]:
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "artifacts")]
    return cmd, base_env(), f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """`prefect server start` with its own PREFECT_HOME (SQLite database inside); yields the API URL."""
    cmd, env, api = _prefect(home)
    with process(cmd, home / "server.log", env) as proc:
        wait_http(f"{api}/health", proc, home / "server.log")
        yield api


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """`mlflow server` over HTTP with a SQLite backend store and served artifacts; yields the tracking URI."""
    cmd, env, uri = _mlflow(folder)
    with process(cmd, folder / "server.log", env) as proc:
        wait_http(f"{uri}/health", proc, folder / "server.log")
        yield uri


@contextlib.contextmanager
def prefect_and_mlflow(root: Path) -> Iterator[tuple[str, str]]:
    """Both servers, started side by side (they take a while to come up); yields (Prefect API URL, MLflow URI)."""
    (p_cmd, p_env, api), (m_cmd, m_env, uri) = _prefect(root / "prefect"), _mlflow(root / "mlflow")
    with process(p_cmd, root / "prefect" / "server.log", p_env) as prefect, \
            process(m_cmd, root / "mlflow" / "server.log", m_env) as mlflow:
        wait_http(f"{api}/health", prefect, root / "prefect" / "server.log")
        wait_http(f"{uri}/health", mlflow, root / "mlflow" / "server.log")
        yield api, uri


@contextlib.contextmanager
def ray_head(pythonpath: Path) -> Iterator[tuple[str, Path]]:
    """`ray start --head --block` on loopback (its own short temp dir and ports); yields (GCS address, temp dir).
    Stopped by its process group, never by `ray stop` (which would stop every Ray on the machine)."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Unix socket paths must stay short
    port, dash, agent = free_port(), free_port(), free_port()
    cmd = [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
           "--num-cpus", "2", "--include-dashboard", "false", "--dashboard-port", str(dash),
           "--dashboard-agent-listen-port", str(agent), "--temp-dir", str(temp), "--disable-usage-stats"]
    log = temp / "head.log"
    env = base_env(PYTHONPATH=str(pythonpath))
    try:
        with process(cmd, log, env) as proc:
            deadline = time.monotonic() + 180
            while "Ray runtime started" not in log.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ray head did not start:\n{log.read_text()[-3000:]}")
                time.sleep(1)
            yield f"127.0.0.1:{port}", temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def project_copy(dest: Path, *overrides: dict, files: dict[str, str] | None = None) -> tuple[Path, dict]:
    """A committed git + DVC copy of the repository's files (as in the working tree, without metrics/ and
    plots/), its params.yaml merged with each of `overrides` in turn, plus extra `files` ({relative path: text});
    returns (path, env)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in listed:
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("metrics/", "plots/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if overrides:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        for override in overrides:
            params = _merge(params, override)
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for rel, text in (files or {}).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    env = base_env(PYTHONPATH=str(dest), PREFECT_HOME=str(dest / ".prefect"))
    sh(["git", "init", "-q"], dest, env)
    (dest / ".git" / "info" / "exclude").write_text(".prefect/\n")
    sh(["git", "add", "-A"], dest, env)
    sh(["git", "commit", "-qm", "project copy"], dest, env)
    return dest, env


def tiny_project(dest: Path, extra_params: dict | None = None, files: dict[str, str] | None = None) -> tuple[Path, dict]:
    """`project_copy` with test_lifecycle's TINY params (plus `extra_params`)."""
    return project_copy(dest, TINY, extra_params or {}, files=files)
