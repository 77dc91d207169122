"""Progress lines for long work, so a terminal is never silent for more than ~10 seconds.

`Progress` is called by a loop as it advances (`progress.advance(rows)`); it logs one line at most every
`interval` seconds (and the last one when asked): what, done / total, rate, ETA, plus any figures the caller adds
(the loss of a training step). `SilenceWatch` watches a process whose output arrives line by
line (a DVC stage run by the Prefect flow): when nothing arrived for `interval` seconds it reports how long the
stage has been running and what it said last.

    progress = Progress("clean", total=rows_in, unit="rows")
    for batch in batches:
        ...
        progress.advance(batch.num_rows)
    progress.finish()
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import PurePosixPath

PROGRESS_INTERVAL_S = 10.0
"""At most this long between two progress lines of a long stage (the issue's bound)."""

log = logging.getLogger("cookbook.progress")


_TEMPORARY_SIBLING = re.compile(r"^\.(?P<name>.+)\.tmp-[0-9a-f]+$")


def output_label(output: object) -> str:
    """What a progress line calls the output folder `output` (a path or URI): its name, or the name of the
    folder it will replace when it is the temporary sibling a stage writes into (`.recall.tmp-95b09e76` ->
    `recall`)."""
    name = PurePosixPath(str(output).rstrip("/")).name
    match = _TEMPORARY_SIBLING.match(name)
    return match.group("name") if match else name


def format_duration(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_line(what: str, done: int, total: int | None, elapsed: float, unit: str,
                  extra: dict[str, object] | None = None) -> str:
    """`clean: 12,000 / 40,000 rows (30%), 1,500 rows/s, ETA 19s, loss 2.31`."""
    rate = done / elapsed if elapsed > 0 else 0.0
    parts = [f"{what}: {done:,}" + (f" / {total:,}" if total else "") + f" {unit}"]
    if total:
        parts[0] += f" ({100 * done / total:.0f}%)"
    parts.append(f"{rate:,.0f} {unit}/s" if rate >= 10 else f"{rate:.2f} {unit}/s")
    if total and rate > 0:
        parts.append(f"ETA {format_duration((total - done) / rate)}")
    else:
        parts.append(f"elapsed {format_duration(elapsed)}")
    for key, value in (extra or {}).items():
        if isinstance(value, float):
            parts.append(f"{key} {value:.4g}")
        elif isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"{key} {value:,}")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


class Progress:
    """Counts work done and logs a progress line at most every `interval` seconds."""

    def __init__(self, what: str, total: int | None = None, unit: str = "rows", interval: float = PROGRESS_INTERVAL_S,
                 emit: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.what, self.total, self.unit, self.interval = what, total, unit, interval
        self.emit = emit or log.info
        self.clock = clock
        self.started = self.last = clock()
        self.done = 0

    def advance(self, n: int = 1, **extra: object) -> str | None:
        """Add `n` units done; return the line logged, if this call logged one."""
        self.done += n
        now = self.clock()
        if now - self.last < self.interval:
            return None
        return self._emit(now, extra)

    def finish(self, **extra: object) -> str:
        """Log the final line (total time and rate)."""
        return self._emit(self.clock(), extra)

    def _emit(self, now: float, extra: dict[str, object]) -> str:
        self.last = now
        line = progress_line(self.what, self.done, self.total, now - self.started, self.unit, extra)
        self.emit(line)
        return line


class SilenceWatch:
    """For a child process read line by line: `heard(line)` for every line; `tick()` (called at least every
    `interval` seconds) logs `<what>: running for 40s, last: <line>` when nothing arrived for `interval` seconds."""

    def __init__(self, what: str, interval: float = PROGRESS_INTERVAL_S, emit: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.what, self.interval, self.emit, self.clock = what, interval, emit or log.info, clock
        self.started = self.last = clock()
        self.last_line = ""

    def heard(self, line: str) -> None:
        self.last = self.clock()
        if line.strip():
            self.last_line = line.strip()

    def tick(self) -> str | None:
        now = self.clock()
        if now - self.last < self.interval:
            return None
        self.last = now
        line = f"{self.what}: running for {format_duration(now - self.started)}"
        if self.last_line:
            line += f", last: {self.last_line[:160]}"
        self.emit(line)
        return line
