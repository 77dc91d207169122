"""Run curation programs (doctests, MBPP references, teacher samples with their tests) in the evaluation sandbox.

Every program runs through `tasks.evaluate.sandbox.execute_many` (separate process group, rlimits, no
network, scratch folder, hard kill on timeout). The sandbox counts exit status 0 as passed, so a program
that calls `sys.exit(0)` before its tests would pass there; here a random sentinel is printed as the
program's last statement, and a program passes only when it exits 0 *and* the sentinel is the last line of
its output. Verdicts: passed, failed (non-zero exit: a failing assert, an exception, a signal), timeout,
exited_early (exit 0 without reaching the end), error (the sandbox could not run it).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from tasks.evaluate.sandbox import execute_many


@dataclass(frozen=True)
class Verdict:
    status: str
    """passed, failed, timeout, exited_early or error."""
    detail: str
    """One line saying why it did not pass ('' when it passed)."""
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def with_sentinel(program: str, sentinel: str) -> str:
    """The program followed by a print of the sentinel at module level (reached only if nothing stopped it)."""
    return f"{program.rstrip()}\n\nprint({sentinel!r}, flush=True)\n"


def verdict(result, sentinel: str) -> Verdict:
    if result.status == "passed":
        lines = result.stdout.rstrip().splitlines()
        if lines and lines[-1].strip() == sentinel:
            return Verdict("passed", "", result.seconds)
        return Verdict("exited_early", "exited with status 0 before its tests finished", result.seconds)
    if result.status == "timeout":
        return Verdict("timeout", result.error, result.seconds)
    if result.status == "error":
        return Verdict("error", result.error, result.seconds)
    return Verdict("failed", result.error, result.seconds)


def run_programs(programs: Sequence[str], *, timeout_s: float, memory_mb: int, num_workers: int | None = None) -> list[Verdict]:
    """Execute every program in the sandbox, in parallel, and judge it; verdicts in input order."""
    if not programs:
        return []
    sentinels = [f"__curate_ok_{secrets.token_hex(8)}__" for _ in programs]
    results = execute_many([with_sentinel(p, s) for p, s in zip(programs, sentinels)], timeouts_s=timeout_s,
                           memory_bytes=memory_mb << 20, num_workers=num_workers)
    return [verdict(r, s) for r, s in zip(results, sentinels)]
