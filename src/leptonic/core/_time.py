from __future__ import annotations

from datetime import UTC, datetime

from leptonic.errors import InvalidInput

#: The span of times a caller may name (windows, outcomes): business data lies inside it.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, to the microsecond."""
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """``at`` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def checked_utc(value: datetime, field: str) -> datetime:
    """``value`` as an aware UTC datetime (a naive one is read as UTC); :class:`InvalidInput`
    naming ``field`` when it lies outside 1900-2200 (or beyond what a datetime holds once
    converted, such as year 9999 at -05:00)."""
    try:
        at = as_utc(value)
    except (OverflowError, ValueError):
        at = None
    if at is None or not EARLIEST <= at < LATEST:
        raise InvalidInput(
            f"{field} is {value.isoformat()}, out of range: give a time from 1900 to 2199",
            field=field,
        )
    return at
