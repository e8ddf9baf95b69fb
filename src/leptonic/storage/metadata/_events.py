"""Events of the SQL metadata store.

A part of :class:`~leptonic.storage.metadata.sql.SQLMetadataStore`; the
semantics are those of :class:`~leptonic.storage.metadata.event_base.EventStore`.

Events arrive in batches from a serving process's writer:
:meth:`EventsMixin.append_events` checks the batch in Python, looks each
endpoint up once and inserts every row with one ``executemany``; the primary
key and the unique ``(workspace, endpoint, user, item, at)`` refuse repeats,
and only then (on the error path) are the stored events looked up to name
the repeated one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from leptonic.core.event import Event
from leptonic.errors import AlreadyExists
from leptonic.storage.metadata import _tables as t
from leptonic.storage.metadata._endpoints import _insert_many, _require_endpoint
from leptonic.storage.metadata._sqlbase import SQLStoreBase
from leptonic.storage.metadata.event_base import (
    EventTime,
    check_event_query,
    check_events,
    event_exists,
    event_id_taken,
)

__all__ = ["EventsMixin"]

_ev = t.events

#: Users per ``IN (...)`` lookup on the error path (well under SQLite's parameter limit).
_CHUNK = 500


class _Repeated(Exception):
    """The batch repeats a stored event; the transaction is rolled back."""


def _row(e: Event) -> dict[str, Any]:
    return {
        "workspace": e.workspace,
        "endpoint": e.endpoint,
        "id": e.id,
        "user": e.user,
        "item": e.item,
        "weight": e.weight,
        "kind": e.kind,
        "at": e.at,
        "received_at": e.received_at,
    }


def _event(row: Row[Any]) -> Event:
    return Event(
        workspace=row.workspace,
        endpoint=row.endpoint,
        id=row.id,
        user=row.user,
        item=row.item,
        at=row.at,
        weight=float(row.weight),
        kind=row.kind,
        received_at=row.received_at,
    )


class EventsMixin(SQLStoreBase):
    """Events kept in the ``events`` table."""

    def append_events(self, events: Sequence[Event]) -> int:
        batch = check_events(events)
        if not batch:
            return 0
        rows = [_row(e) for e in batch]
        try:
            with self._write() as conn:
                for ws, name in dict.fromkeys((e.workspace, e.endpoint) for e in batch):
                    _require_endpoint(conn, ws, name)
                try:
                    _insert_many(conn, _ev, rows, encoded=())
                except sa.exc.IntegrityError:
                    raise _Repeated from None
        except _Repeated:
            raise self._repeated_events(batch) from None
        return len(batch)

    def _repeated_events(self, batch: list[Event]) -> AlreadyExists:
        """The error naming the first event of ``batch`` that is already stored."""
        groups: dict[tuple[str, str], list[Event]] = {}
        for e in batch:
            groups.setdefault((e.workspace, e.endpoint), []).append(e)
        ids: set[tuple[str, str, str]] = set()
        keys: set[tuple[str, str, str, str, datetime]] = set()
        with self._read() as conn:
            for (ws, name), mine in groups.items():
                users = sorted({e.user for e in mine})
                for start in range(0, len(users), _CHUNK):
                    query = sa.select(_ev.c.id, _ev.c.user, _ev.c.item, _ev.c.at).where(
                        _ev.c.workspace == ws,
                        _ev.c.endpoint == name,
                        _ev.c.user.in_(users[start : start + _CHUNK]),
                    )
                    for row in conn.execute(query):
                        keys.add((ws, name, row.user, row.item, row.at))
                for start in range(0, len(mine), _CHUNK):
                    chunk = [e.id for e in mine[start : start + _CHUNK]]
                    query = sa.select(_ev.c.id).where(
                        _ev.c.workspace == ws, _ev.c.endpoint == name, _ev.c.id.in_(chunk)
                    )
                    ids.update((ws, name, i) for i in conn.execute(query).scalars())
        for e in batch:
            if (e.workspace, e.endpoint, e.user, e.item, e.at) in keys:
                return event_exists(e)
            if (e.workspace, e.endpoint, e.id) in ids:
                return event_id_taken(e)
        return event_exists(batch[0])  # another writer's batch was rolled back meanwhile

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
        where = _window(workspace, endpoint, since, until, user, by, limit, offset)
        query = sa.select(_ev).where(*where).order_by(_ev.c[by], _ev.c.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            _require_endpoint(conn, workspace, endpoint)
            return [_event(r) for r in conn.execute(query)]

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
        where = _window(workspace, endpoint, since, until, user, by)
        query = sa.select(sa.func.count()).select_from(_ev).where(*where)
        with self._read() as conn:
            _require_endpoint(conn, workspace, endpoint)
            return int(conn.execute(query).scalar_one())


def _window(
    workspace: str,
    endpoint: str,
    since: datetime | None,
    until: datetime | None,
    user: str | None,
    by: str,
    limit: int | None = None,
    offset: int = 0,
) -> list[sa.ColumnElement[bool]]:
    """Conditions on ``events`` for one endpoint, time window and user."""
    since, until = check_event_query(since, until, user, by, limit, offset)
    where = [_ev.c.workspace == workspace, _ev.c.endpoint == endpoint]
    if user is not None:
        where.append(_ev.c.user == user)
    if since is not None:
        where.append(_ev.c[by] >= since)
    if until is not None:
        where.append(_ev.c[by] < until)
    return where
