"""Events of the memory metadata store.

A part of :class:`~leptonic.storage.metadata.memory.MemoryMetadataStore`,
with the semantics of :class:`~leptonic.storage.metadata.event_base.EventStore`.
Events are frozen records of immutable values, so they are stored and
returned as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from leptonic.core.endpoint import Endpoint
from leptonic.core.event import Event
from leptonic.storage.metadata.event_base import (
    EventStore,
    EventTime,
    check_event_query,
    check_events,
    event_exists,
    event_id_taken,
)

__all__ = ["MemoryEventsMixin"]

_Key = tuple[str, str]  # (workspace, endpoint)


class MemoryEventsMixin(EventStore):
    """Events in dictionaries, guarded by the store's lock.

    The store calls :meth:`_init_events` from its ``__init__``.
    """

    _lock: threading.RLock

    if TYPE_CHECKING:

        def _endpoint(self, workspace: str, name: str) -> Endpoint: ...

    def _init_events(self) -> None:
        # endpoint -> event id -> event, in insertion order; and the (user, item, at) keys
        self._events: dict[_Key, dict[str, Event]] = {}
        self._event_keys: dict[_Key, set[tuple[str, str, datetime]]] = {}

    def append_events(self, events: Sequence[Event]) -> int:
        batch = check_events(events)
        with self._lock:
            for key in dict.fromkeys((e.workspace, e.endpoint) for e in batch):
                self._endpoint(*key)
            for e in batch:
                key = (e.workspace, e.endpoint)
                if (e.user, e.item, e.at) in self._event_keys.get(key, ()):
                    raise event_exists(e)
                if e.id in self._events.get(key, {}):
                    raise event_id_taken(e)
            for e in batch:
                key = (e.workspace, e.endpoint)
                self._events.setdefault(key, {})[e.id] = e
                self._event_keys.setdefault(key, set()).add((e.user, e.item, e.at))
            return len(batch)

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
        found = self._select_events(workspace, endpoint, since, until, user, by, limit, offset)
        found.sort(key=lambda e: (getattr(e, by), e.id))
        return found[offset : None if limit is None else offset + limit]

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
        return len(self._select_events(workspace, endpoint, since, until, user, by))

    def _select_events(
        self,
        workspace: str,
        endpoint: str,
        since: datetime | None,
        until: datetime | None,
        user: str | None,
        by: str,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Event]:
        since, until = check_event_query(since, until, user, by, limit, offset)
        with self._lock:
            self._endpoint(workspace, endpoint)
            stored = self._events.get((workspace, endpoint), {}).values()
            return [
                e
                for e in stored
                if (user is None or e.user == user)
                and (since is None or getattr(e, by) >= since)
                and (until is None or getattr(e, by) < until)
            ]
