"""The terminal: library loggers quiet, one timestamp per line, the stage named; progress lines with a rate and
an ETA at most every interval, and a report when a watched process stays silent."""

from __future__ import annotations

import logging

import pytest

from tasks.common.logs import QUIET_LOGGERS, RunFormatter, configure_logging, log_format
from tasks.common.progress import Progress, SilenceWatch, format_duration, progress_line


@pytest.fixture
def restore_logging(monkeypatch):
    for var in ("COOKBOOK_LOG_TIMESTAMPS", "MLFLOW_LOGGING_LEVEL", "RAY_DATA_LOG_LEVEL", "PREFECT_SERVER_ANALYTICS_ENABLED"):
        monkeypatch.delenv(var, raising=False)
    root = logging.getLogger()
    saved = (root.level, root.handlers[:], {n: logging.getLogger(n).level for n in QUIET_LOGGERS})
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_library_loggers_are_quiet_and_ours_speak(restore_logging):
    import os

    configure_logging()
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("ray.data").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("alembic.runtime.migration").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("cookbook").getEffectiveLevel() == logging.INFO
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING" and os.environ["RAY_DATA_LOG_LEVEL"] == "WARNING"
    configure_logging(verbose=True)
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG


def test_the_handler_follows_stderr_when_it_is_swapped_and_closed(restore_logging, monkeypatch):
    """An earlier caller's stderr (pytest's capture, Prefect's redirection) closed later must not break logging."""
    import io

    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    configure_logging()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logging.getLogger("cookbook").info("still heard")
    assert "INFO cookbook: still heard" in second.getvalue() and "Logging error" not in second.getvalue()


def _format(fmt: str, **extra) -> str:
    record = logging.LogRecord("prefect.task_runs", logging.INFO, __file__, 1, "Running stage 'clean':", None, None)
    record.__dict__.update(extra)
    return RunFormatter(fmt, datefmt="%H:%M:%S").format(record)


def test_one_timestamp_per_line_and_the_stage_named():
    line = _format(log_format(True), task_run_name="clean", flow_run_name="spicy-adder")
    assert line.endswith(" INFO clean: Running stage 'clean':") and line.count(":") == 4  # HH:MM:SS + 2
    assert _format(log_format(False)) == "INFO prefect.task_runs: Running stage 'clean':"  # a flow's child
    assert _format(log_format(False), flow_run_name="spicy-adder").startswith("INFO flow spicy-adder:")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_logs_at_most_every_interval_with_rate_and_eta():
    clock, lines = Clock(), []
    progress = Progress("clean", total=1000, interval=10, emit=lines.append, clock=clock)
    clock.now = 4
    assert progress.advance(100) is None
    clock.now = 10
    assert progress.advance(150) == "clean: 250 / 1,000 rows (25%), 25 rows/s, ETA 30s"
    clock.now = 15
    assert progress.advance(100, loss=2.345678) is None
    clock.now = 20
    assert progress.advance(0, loss=2.345678) == "clean: 350 / 1,000 rows (35%), 18 rows/s, ETA 37s, loss 2.346"
    assert progress.finish() == lines[-1] and len(lines) == 3


def test_progress_without_total_and_durations():
    assert progress_line("pretrain", 3, None, 90.0, "steps") == "pretrain: 3 steps, 0.03 steps/s, elapsed 1m30s"
    assert [format_duration(s) for s in (9.6, 125, 3725)] == ["10s", "2m05s", "1h02m"]


def test_silence_watch_reports_a_silent_process_with_its_last_line():
    clock, lines = Clock(), []
    watch = SilenceWatch("pretrain", interval=10, emit=lines.append, clock=clock)
    clock.now = 3
    watch.heard("> cookbook pretrain\n")
    clock.now = 12
    assert watch.tick() is None  # 9 s since the last line
    clock.now = 13
    assert watch.tick() == "pretrain: running for 13s, last: > cookbook pretrain"
    clock.now = 20
    assert watch.tick() is None
    clock.now = 23
    assert watch.tick() == "pretrain: running for 23s, last: > cookbook pretrain" and len(lines) == 2
