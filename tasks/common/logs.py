"""Terminal logging of `cookbook`: one timestamp per line, our own messages at INFO, libraries quiet.

Library loggers that chatter at INFO (httpx logs every request the Prefect client makes, `POST /api/logs/`
included; alembic every MLflow schema check; Ray, DeepSpeed and MLflow their internals) are raised to WARNING,
unless `--verbose`. A process started by the lifecycle flow (which logs each of its lines with the flow's own
timestamp) gets `COOKBOOK_LOG_TIMESTAMPS=0` and leaves the timestamp out, so every line carries exactly one.
"""

from __future__ import annotations

import logging
import os

QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "filelock", "alembic", "ray", "ray.data", "ray.train", "ray.tune",
                 "mlflow", "DeepSpeed", "deepspeed", "numba", "matplotlib", "PIL", "fsspec", "asyncio", "git",
                 "huggingface_hub", "transformers", "torch.distributed", "prefect.server")
"""Loggers kept at WARNING in normal runs."""
TIMESTAMPS_ENV = "COOKBOOK_LOG_TIMESTAMPS"


def log_format(timestamps: bool) -> str:
    """`12:00:01 INFO cookbook: message`, or without the time when the caller adds its own."""
    return ("%(asctime)s " if timestamps else "") + "%(levelname)s %(name)s: %(message)s"


def configure_logging(verbose: bool = False, env: dict[str, str] | None = None) -> None:
    """Root logger at INFO (DEBUG with `verbose`), one format, library loggers at WARNING (all at DEBUG with
    `verbose`); Prefect's server telemetry off (offline it logs an error at every start)."""
    env = os.environ if env is None else env
    timestamps = env.get(TIMESTAMPS_ENV, "1") != "0"
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=log_format(timestamps),
                        datefmt="%H:%M:%S", force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
