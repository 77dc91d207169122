"""Terminal logging of `cookbook`: one timestamp per line, our own messages at INFO, libraries quiet.

Library loggers that chatter at INFO (httpx logs every request the Prefect client makes, `POST /api/logs/`
included; alembic every MLflow schema check; Ray, DeepSpeed and MLflow their internals) are raised to WARNING,
unless `--verbose`. Prefect's run loggers are shown with the task run's name (the stage). A process started by
the lifecycle flow (which logs each of its lines with the flow's own
timestamp) gets `COOKBOOK_LOG_TIMESTAMPS=0` and leaves the timestamp out, so every line carries exactly one.
"""

from __future__ import annotations

import logging
import os
import sys

QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "filelock", "alembic", "ray", "ray.data", "ray.train", "ray.tune",
                 "mlflow", "DeepSpeed", "deepspeed", "numba", "matplotlib", "PIL", "fsspec", "asyncio", "git",
                 "huggingface_hub", "transformers", "torch.distributed", "prefect.server")
"""Loggers kept at WARNING in normal runs."""
NOTICES_DROPPED = {"DeepSpeed": ("Setting accelerator to CPU.",)}
"""Library warnings that only restate how the machine is set up (DeepSpeed warns on every import on a machine
without a GPU), by logger: the start of the message. Shown with `--verbose`."""
TIMESTAMPS_ENV = "COOKBOOK_LOG_TIMESTAMPS"


def log_format(timestamps: bool) -> str:
    """`12:00:01 INFO cookbook: message`, or without the time when the caller adds its own."""
    return ("%(asctime)s " if timestamps else "") + "%(levelname)s %(where)s: %(message)s"


class RunFormatter(logging.Formatter):
    """Names a Prefect task run or flow run (`clean`, `flow spicy-adder`) where Prefect's run loggers say only
    `prefect.task_runs`; any other record keeps its logger name."""

    def format(self, record: logging.LogRecord) -> str:
        task_run, flow_run = getattr(record, "task_run_name", None), getattr(record, "flow_run_name", None)
        record.where = task_run or (f"flow {flow_run}" if flow_run else record.name)
        return super().format(record)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes, not the stream of when it was made: a caller that
    swaps stderr and closes it later (pytest's capture, Prefect's print redirection) must not leave the root
    logger writing to a closed file."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the property always answers sys.stderr
        pass


class DropNotices(logging.Filter):
    """Drops the records whose message starts with one of `starts`."""

    def __init__(self, starts: tuple[str, ...]):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def configure_logging(verbose: bool = False, env: dict[str, str] | None = None) -> None:
    """Root logger at INFO (DEBUG with `verbose`), one format, library loggers at WARNING (all at DEBUG with
    `verbose`); Prefect's server telemetry off (offline it logs an error at every start)."""
    env = os.environ if env is None else env
    timestamps = env.get(TIMESTAMPS_ENV, "1") != "0"
    handler = StderrHandler()
    handler.setFormatter(RunFormatter(log_format(timestamps), datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name, starts in NOTICES_DROPPED.items():
        library = logging.getLogger(name)
        library.filters = [f for f in library.filters if not isinstance(f, DropNotices)]
        if not verbose:
            library.addFilter(DropNotices(starts))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:  # MLflow and Ray Data configure their own loggers when imported, from these variables
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")
