"""Progress of long text work: ``progress(done, total)`` calls and log lines with an ETA."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Progress", "format_seconds", "stage_progress"]

ProgressFn = Callable[[int, int], None]
LogFn = Callable[[str], None]


def format_seconds(seconds: float) -> str:
    """``75`` → ``1m15s``; ``4000`` → ``1h06m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def stage_progress(
    progress: ProgressFn | None, start: int, size: int, total: int
) -> ProgressFn | None:
    """A stage's own ``progress(done, of)`` reported as units ``start`` to
    ``start + size`` of a ``total``-unit run, so that a run of several stages
    (an adaptation, then fine-tuning; the models of a soup) fills one bar once."""
    if progress is None:
        return None

    def report(done: int, of: int) -> None:
        progress(start + (size * min(done, of)) // max(1, of), total)

    return report


class Progress:
    """Counts units of work; reports ``progress(done, total)`` and, every
    ``every_s`` seconds, a log line with the rate and the estimated time left.

    ``progress`` may raise (e.g. :class:`~leptonic.errors.Cancelled`) to stop the work.
    """

    def __init__(
        self,
        total: int,
        *,
        what: str,
        progress: ProgressFn | None = None,
        log: LogFn | None = None,
        every_s: float = 30.0,
        done: int = 0,
    ) -> None:
        self.total = max(1, int(total))
        self.what = what
        self.done = int(done)
        self._progress = progress
        self._log = log
        self._every = every_s
        self._start = time.perf_counter()
        self._start_done = self.done
        self._last_log = self._start

    @property
    def rate(self) -> float:
        """Units per second since the start (of this process's share of the work)."""
        elapsed = time.perf_counter() - self._start
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate (None before the first unit)."""
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def status(self) -> str:
        eta = self.eta_s
        left = format_seconds(eta) if eta is not None else "?"
        return f"{self.what} {self.done}/{self.total} · {self.rate:.2f}/s · ETA {left}"

    def advance(self, n: int = 1, *, note: str = "") -> None:
        self.done = min(self.total, self.done + n)
        if self._progress is not None:
            self._progress(self.done, self.total)
        now = time.perf_counter()
        if self._log is not None and now - self._last_log >= self._every:
            self._last_log = now
            self._log(self.status() + (f" · {note}" if note else ""))

    def finish(self) -> None:
        """Jump to the end (early stopping skips the remaining work)."""
        if self.done < self.total:
            self.advance(self.total - self.done)

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
