"""Progress of long work: a bar for a person at a terminal, timestamped log lines for a job's log file.

Workflow jobs run quietly (``--quiet``: no bar, which would fill a log with carriage returns), yet a
four-hour extraction must not leave its log empty until the end: :class:`Progress` then writes a line
through :mod:`logging` every ``every`` items and every ``seconds`` at most, with the rate and the time
left. The CLI sets up logging (:func:`setup_logging`) so those lines carry a timestamp.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Optional

log = logging.getLogger("ecma")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (it may be replaced after set-up, as tests do)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(level: int = logging.INFO) -> None:
    """Timestamped lines on stderr (the job's log), once per process."""
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(level)


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts done items of ``total``; shows a tqdm bar (``bar=True``) or logs lines with rate and ETA."""

    def __init__(self, total: int, what: str, unit: str, *, bar: bool, every: Optional[int] = None,
                 seconds: float = 60.0, clock=time.monotonic):
        self.total, self.what, self.unit = total, what, unit
        self.done = 0
        self.every = every or max(1, total // 20)  # about twenty lines for the whole job
        self.seconds = seconds
        self.clock = clock
        self.start = self.last = clock()
        self._bar = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit, desc=what, file=sys.stderr, dynamic_ncols=True)
        elif total:
            log.info("%s: %d %s(s) to do", what, total, unit)

    def update(self, n: int = 1) -> None:
        before = self.done
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self.clock()
        crossed = self.done // self.every > before // self.every
        if self.done >= self.total or crossed or now - self.last >= self.seconds:
            self.last = now
            log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = format_seconds(left) if left != float("inf") else "?"
        return (f"{self.what}: {self.done}/{self.total} {self.unit}s ({100 * self.done / max(self.total, 1):.0f}%), "
                f"{rate:.2f} {self.unit}s/s, elapsed {format_seconds(elapsed)}, left {eta}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
