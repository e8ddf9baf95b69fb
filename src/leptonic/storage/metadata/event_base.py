"""The part of the metadata store interface that keeps events.

Events are the interactions posted to a recommendation endpoint (see
:class:`~leptonic.core.event.Event`). They are written in batches by the
serving process, replayed when it starts, and read back by the next
retrain and by monitoring. :class:`~leptonic.storage.metadata.base.MetadataStore`
inherits :class:`EventStore`; every backend implements it and passes the same
conformance tests.
"""

from __future__ import annotations

import abc
import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Literal

from leptonic.core._time import as_utc
from leptonic.core.event import Event
from leptonic.errors import AlreadyExists, InvalidInput

__all__ = [
    "EVENT_TIME_FIELDS",
    "MAX_EVENT_ID_LENGTH",
    "EventStore",
    "check_event_query",
    "check_events",
    "event_exists",
    "event_id_taken",
]

#: The time columns an event listing may be windowed and ordered on.
EVENT_TIME_FIELDS = ("received_at", "at")

#: The longest user id, item id or event id kept, in characters.
MAX_EVENT_ID_LENGTH = 200

_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")

EventTime = Literal["received_at", "at"]


def event_exists(event: Event) -> AlreadyExists:
    """The error for an event whose ``(user, item, at)`` the endpoint already holds."""
    return AlreadyExists(
        f"endpoint {event.endpoint!r} already recorded the event of user {event.user!r} on "
        f"item {event.item!r} at {as_utc(event.at).isoformat()}; an event is recorded once "
        "(do not resend it; a new interaction needs its own time)",
        field="at",
    )


def event_id_taken(event: Event) -> AlreadyExists:
    return AlreadyExists(
        f"endpoint {event.endpoint!r} already has an event with id {event.id!r}; "
        "give each event its own id",
        field="id",
    )


def _text(value: object, name: str, where: str) -> None:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_EVENT_ID_LENGTH
        or "\x00" in value
    ):
        shown = repr(value) if isinstance(value, str | int | float | None) else type(value).__name__
        raise InvalidInput(
            f"{where}: {name} must be a non-empty str of at most {MAX_EVENT_ID_LENGTH} "
            f"characters, without NUL (\\x00), got {shown}",
            field=name,
        )


def check_events(events: Sequence[Event]) -> list[Event]:
    """Check a batch for :meth:`EventStore.append_events`.

    Returns the events with ``at`` and ``received_at`` in UTC and ``weight``
    a float. :class:`InvalidInput` names the first bad field; :class:`AlreadyExists`
    the first event given twice in the batch (by id, or by ``(user, item, at)``).
    """
    if isinstance(events, Event) or not isinstance(events, Sequence):
        raise InvalidInput(
            f"events must be a list of Event records, got {type(events).__name__}",
            field="events",
        )
    out: list[Event] = []
    ids: set[tuple[str, str, str]] = set()
    keys: set[tuple[str, str, str, str, datetime]] = set()
    for e in events:
        if not isinstance(e, Event):
            raise InvalidInput(f"expected Event records, got {type(e).__name__}", field="events")
        where = f"event {e.id!r}" if isinstance(e.id, str) else "an event"
        for name in ("workspace", "endpoint", "id", "user", "item"):
            _text(getattr(e, name), name, where)
        if not isinstance(e.kind, str) or not _KIND.match(e.kind):
            raise InvalidInput(
                f"{where}: kind must be a lowercase name such as 'click' or 'purchase' "
                f"(letters, digits, '_' or '-', at most 32), got {e.kind!r}",
                field="kind",
            )
        w = e.weight
        if (
            isinstance(w, bool)
            or not isinstance(w, numbers.Real)
            or not math.isfinite(float(w))
            or float(w) < 0
        ):
            raise InvalidInput(
                f"{where}: weight must be a finite number ≥ 0, got {w!r}", field="weight"
            )
        for name in ("at", "received_at"):
            if not isinstance(getattr(e, name), datetime):
                raise InvalidInput(
                    f"{where}: {name} must be a datetime, got {type(getattr(e, name)).__name__}",
                    field=name,
                )
        e = replace(e, at=as_utc(e.at), received_at=as_utc(e.received_at), weight=float(w))
        if (e.workspace, e.endpoint, e.id) in ids:
            raise event_id_taken(e)
        key = (e.workspace, e.endpoint, e.user, e.item, e.at)
        if key in keys:
            raise event_exists(e)
        ids.add((e.workspace, e.endpoint, e.id))
        keys.add(key)
        out.append(e)
    return out


def check_event_query(
    since: datetime | None,
    until: datetime | None,
    user: str | None,
    by: str,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[datetime | None, datetime | None]:
    """Check the arguments of a listing; returns the window in UTC."""
    if by not in EVENT_TIME_FIELDS:
        raise InvalidInput(
            f"events are listed by {' or '.join(EVENT_TIME_FIELDS)}, not {by!r}", field="by"
        )
    for name, value in (("since", since), ("until", until)):
        if value is not None and not isinstance(value, datetime):
            raise InvalidInput(
                f"{name} must be a datetime or None, got {type(value).__name__}", field=name
            )
    if user is not None and not isinstance(user, str):
        raise InvalidInput(f"user must be a str or None, got {type(user).__name__}", field="user")
    for name, number in (("limit", 0 if limit is None else limit), ("offset", offset)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise InvalidInput(f"{name} must be a whole number >= 0, got {number!r}", field=name)
    return (None if since is None else as_utc(since), None if until is None else as_utc(until))


class EventStore(abc.ABC):
    """Events posted to endpoints: appended in batches, listed by time."""

    @abc.abstractmethod
    def append_events(self, events: Sequence[Event]) -> int:
        """Append events in one transaction (all or none); returns the count.

        ``(workspace, endpoint, id)`` and ``(workspace, endpoint, user, item,
        at)`` are unique: a repeat of either raises :class:`AlreadyExists`
        naming the event and nothing of the batch is written. The endpoint
        must exist (:class:`NotFound`); a bad field is :class:`InvalidInput`
        naming it (:func:`check_events`). A batch may mix endpoints. Times
        are stored in UTC (a naive one is taken as UTC).
        """

    @abc.abstractmethod
    def list_events(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        user: str | None = None,
        by: EventTime = "received_at",
        limit: int | None = 1000,
        offset: int = 0,
    ) -> list[Event]:
        """Events with ``since <= <by> < until`` (of one user if given), oldest first.

        Ordered by the ``by`` time (``received_at``: the order the endpoint
        accepted them; ``at``: the order they happened), then id; ``limit``
        None: all. :class:`NotFound` if the endpoint does not exist.
        """

    @abc.abstractmethod
    def count_events(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        user: str | None = None,
        by: EventTime = "received_at",
    ) -> int:
        """How many events :meth:`list_events` would return without a limit."""
