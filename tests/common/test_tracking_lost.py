"""A tracking server that stops mid-run: the stage's tracker says tracking was lost once and goes on, never hangs;
a server that does not answer when a stage starts is one line naming it (a `ConfigError`, exit 2 in `cookbook`)."""

from __future__ import annotations

import logging
import time

import pytest

from tasks.common.config import ConfigError
from tasks.common.tracking import HTTP_LIMITS, MlflowTracker, tracking_uri
from tests.ops.servers import _mlflow, process, stop_group, wait_http


@pytest.fixture
def server_env(monkeypatch):
    for key in HTTP_LIMITS:  # tracking_uri() sets them for the process; monkeypatch restores the absent state
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_a_server_stopped_mid_run_is_tracking_lost_not_a_hang(tmp_path, server_env, caplog):
    cmd, env, uri = _mlflow(tmp_path / "mlflow")
    server_env.setenv("MLFLOW_TRACKING_URI", uri)
    with process(cmd, tmp_path / "server.log", env) as proc:
        wait_http(f"{uri}/health", proc, tmp_path / "server.log")
        with caplog.at_level(logging.WARNING, logger="cookbook"):
            with MlflowTracker.start("lost", "clean", uri=tracking_uri()) as tracker:
                tracker.log_metrics({"rows_in": 10})
                assert not tracker.lost
                stop_group(proc)
                started = time.monotonic()
                tracker.log_metrics({"rows_kept": 9})
                tracker.log_params({"clean.seed": 1})
                with tracker.child("variant") as child:
                    child.log_metrics({"x": 1.0})
                elapsed = time.monotonic() - started
    assert tracker.lost
    lost = [r.getMessage() for r in caplog.records if "tracking lost" in r.getMessage()]
    assert len(lost) == 1 and uri in lost[0], lost
    assert elapsed < 120, f"calls to a stopped server took {elapsed:.0f}s"  # a hang guard, not a speed target


def test_a_server_that_does_not_answer_at_start_is_one_line(tmp_path, server_env):
    _, _, uri = _mlflow(tmp_path / "mlflow")  # a free port nobody listens on
    server_env.setenv("MLFLOW_TRACKING_URI", uri)
    server_env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(ConfigError, match="does not answer") as err:
        with MlflowTracker.start("lost", "clean", uri=tracking_uri()):
            pass
    assert uri in str(err.value) and "\n" not in str(err.value)
