"""Evaluate a rule set on one document: which rules fail, and the first one (the drop reason).

A rule is a signal name plus `[min, max]` bounds from `CleanConfig` (null = disabled). A signal that
returns None never fires. Each signal runs under a wall-clock limit (`rule_timeout_s`, SIGALRM; only
in a main thread, which is where Ray runs tasks) and a signal that raises or times out makes the
verdict `rule_error:<rule>`: the file is dropped, the stage goes on. Rules listed in
`drop_probability` fire only when a draw from hash(id, rule, seed) is below the probability, so the
same file gets the same verdict on every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal as os_signal
import threading
from dataclasses import dataclass

import tasks.clean.signals_lang  # noqa: F401  (registers the language-specific signals)
from tasks.clean.signals import SIGNALS, Doc

GENERAL_PREFIXES = ("qsc_code_", "qsc_doc_")


class RuleTimeout(Exception):
    """A signal ran past `rule_timeout_s`."""


def check_rule_names(cfg) -> None:
    """Every configured rule must name a known signal (typos fail at load time)."""
    for section in ("code_rules", "text_rules"):
        for lang, rules in getattr(cfg, section).items():
            for name in rules:
                if name not in SIGNALS:
                    raise ValueError(f"clean.{section}.{lang}.{name}: unknown rule (no such signal)")
    for name in cfg.drop_probability:
        if name not in SIGNALS:
            raise ValueError(f"clean.drop_probability.{name}: unknown rule (no such signal)")


@contextlib.contextmanager
def alarm_handler(enabled: bool):
    """Install the SIGALRM handler once for a document (main thread only); `arm` then times each signal."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield False
        return

    def on_alarm(signum, frame):
        raise RuleTimeout()

    previous = os_signal.signal(os_signal.SIGALRM, on_alarm)
    try:
        yield True
    finally:
        os_signal.setitimer(os_signal.ITIMER_REAL, 0)
        os_signal.signal(os_signal.SIGALRM, previous)


def fires(value: float | None, bounds: tuple[float | None, float | None]) -> bool:
    if value is None:
        return False
    lo, hi = bounds
    return (lo is not None and value < lo) or (hi is not None and value > hi)


def draw(doc_id: str, rule: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (document id, rule, seed)."""
    digest = hashlib.blake2b(f"{seed}\x00{rule}\x00{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Verdict:
    failed: list[str]
    error: str | None = None

    @property
    def reason(self) -> str | None:
        if self.error:
            return f"rule_error:{self.error}"
        return self.failed[0] if self.failed else None


def evaluate(doc: Doc, doc_id: str, rules: dict, cfg) -> Verdict:
    """Run the active rules of one config on `doc`, general rules first."""
    active = [(name, b) for name, b in rules.items() if b is not None]
    general = [r for r in active if r[0].startswith(GENERAL_PREFIXES)]
    specific = [r for r in active if not r[0].startswith(GENERAL_PREFIXES)]
    failed: list[str] = []
    timeout = cfg.rule_timeout_s
    with alarm_handler(timeout > 0) as timed:
        for group in (general, specific):
            if failed and group is specific and not cfg.evaluate_all_rules:
                break
            for name, bounds in group:
                try:
                    if timed:
                        os_signal.setitimer(os_signal.ITIMER_REAL, timeout)
                    value = SIGNALS[name](doc)
                    if timed:
                        os_signal.setitimer(os_signal.ITIMER_REAL, 0)
                except (Exception, RecursionError):
                    return Verdict(failed, error=name)
                if fires(value, bounds):
                    p = cfg.drop_probability.get(name)
                    if p is None or draw(doc_id, name, cfg.seed) < p:
                        failed.append(name)
    return Verdict(failed)
