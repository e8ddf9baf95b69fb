"""Time windows shared by drift and performance series.

Windows are aligned to ``origin`` (the Unix epoch by default), so daily
windows start at midnight UTC and the same record falls in the same window
whatever else is in the batch. Naive datetimes are read as UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from leptonic.core._time import as_utc
from leptonic.errors import InvalidInput

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The most windows one series may hold; a smaller window over a long span is refused.
MAX_WINDOWS = 10_000


def check_window(window: timedelta) -> float:
    """``window`` in seconds; :class:`InvalidInput` unless it is a positive timedelta."""
    if not isinstance(window, timedelta) or window <= timedelta(0):
        raise InvalidInput(
            f"window must be a positive timedelta (e.g. timedelta(days=1)), got {window!r}",
            field="window",
        )
    return window.total_seconds()


def epoch_seconds(ats: Sequence[datetime]) -> NDArray[np.float64]:
    """Seconds since the Unix epoch of each datetime (naive ones read as UTC)."""
    out = np.empty(len(ats), dtype=np.float64)
    for i, at in enumerate(ats):
        out[i] = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()
    return out


def assign_windows(
    seconds: NDArray[np.float64], window: timedelta, origin: datetime | None = None
) -> tuple[NDArray[np.int64], list[datetime]]:
    """Window of each timestamp, counted from the first window holding one.

    Returns
    -------
    tuple
        ``(index, starts)``: the 0-based window of each timestamp and the
        start of every window from the first to the last, empty ones included.
    """
    width = check_window(window)
    base = as_utc(origin) if origin is not None else EPOCH
    if seconds.size == 0:
        return np.zeros(0, dtype=np.int64), []
    absolute = np.floor((seconds - base.timestamp()) / width).astype(np.int64)
    first, last = int(absolute.min()), int(absolute.max())
    count = last - first + 1
    if count > MAX_WINDOWS:
        raise InvalidInput(
            f"a window of {window} splits the {count * window} covered into {count:,} windows, "
            f"more than {MAX_WINDOWS:,}; use a larger window or a shorter period",
            field="window",
        )
    starts = [base + window * k for k in range(first, last + 1)]
    return absolute - first, starts
