"""The event part of every metadata store: memory, SQLite and PostgreSQL.

Events posted to recommendation endpoints
(:class:`~leptonic.storage.metadata.event_base.EventStore`). The store
fixtures are those of the endpoint conformance tests: each test gets an empty
store, and PostgreSQL tests skip, saying how to get the server, when it is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import conformance.test_endpoint_store as endpoints
from conformance.test_endpoint_store import PLUS_0530, T0, create, with_models
from leptonic.core.event import Event
from leptonic.errors import AlreadyExists, InvalidInput, NotFound
from leptonic.storage.metadata.base import MetadataStore

# the stores of the endpoint conformance tests: memory, SQLite, PostgreSQL
backend = endpoints.backend
open_store = endpoints.open_store
store = endpoints.store
ws = endpoints.ws


def event(ws: str, eid: str, minute: int = 0, *, name: str = "decide", **kw: Any) -> Event:
    fields: dict[str, Any] = {
        "workspace": ws,
        "endpoint": name,
        "id": eid,
        "user": "u1",
        "item": f"item-{eid}",
        "at": T0 + timedelta(minutes=minute),
        "weight": 1.0,
        "kind": "click",
        "received_at": T0 + timedelta(minutes=minute, seconds=1),
    }
    fields.update(kw)
    return Event(**fields)


def ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]


def test_append_list_and_count(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    assert store.append_events([]) == 0
    batch = [
        event(ws, "e2", 2, user="u2", weight=4),
        event(ws, "e1", 1, kind="purchase", item="Zoë 🚀"),
        event(ws, "e3", 3),
    ]
    assert store.append_events(batch) == 3
    got = store.list_events(ws, "decide")
    assert ids(got) == ["e1", "e2", "e3"]  # oldest first
    first = got[0]
    assert first == batch[1]
    assert first.item == "Zoë 🚀" and first.kind == "purchase"
    assert first.at == T0 + timedelta(minutes=1) and first.at.tzinfo is not None
    assert got[1].weight == 4.0 and isinstance(got[1].weight, float)
    assert store.count_events(ws, "decide") == 3
    assert ids(store.list_events(ws, "decide", user="u1")) == ["e1", "e3"]
    assert store.count_events(ws, "decide", user="u2") == 1
    window = {"since": T0 + timedelta(minutes=2), "until": T0 + timedelta(minutes=3, seconds=1)}
    assert ids(store.list_events(ws, "decide", **window)) == ["e2"]  # by received_at
    assert ids(store.list_events(ws, "decide", by="at", **window)) == ["e2", "e3"]
    assert store.count_events(ws, "decide", by="at", **window) == 2
    assert ids(store.list_events(ws, "decide", limit=1, offset=1)) == ["e2"]
    assert ids(store.list_events(ws, "decide", limit=None, offset=2)) == ["e3"]


def test_order_by_event_time_differs_from_arrival(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    late = event(ws, "late", 0, received_at=T0 + timedelta(hours=2))
    early = event(ws, "early", 5, received_at=T0 + timedelta(hours=1))
    store.append_events([late, early])
    assert ids(store.list_events(ws, "decide")) == ["early", "late"]
    assert ids(store.list_events(ws, "decide", by="at")) == ["late", "early"]


def test_times_compare_as_instants_across_time_zones(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    local = T0.astimezone(PLUS_0530)
    naive = (T0 + timedelta(minutes=1)).replace(tzinfo=None)  # taken as UTC
    store.append_events([event(ws, "a", at=local), event(ws, "b", at=naive, item="other")])
    got = store.list_events(ws, "decide", by="at", until=T0 + timedelta(seconds=1))
    assert ids(got) == ["a"] and got[0].at == T0 and got[0].at.utcoffset() == timedelta(0)
    with pytest.raises(AlreadyExists):  # the same instant, written in UTC
        store.append_events([event(ws, "c", at=T0, item="item-a")])


def test_a_repeated_event_is_refused_and_rolls_back_the_batch(
    store: MetadataStore, ws: str
) -> None:
    create(store, ws)
    store.append_events([event(ws, "e1", 1)])
    repeat = event(ws, "e9", 1, item="item-e1")  # same user, item and time: the same event
    with pytest.raises(AlreadyExists) as info:
        store.append_events([event(ws, "e2", 2), repeat])
    assert info.value.field == "at" and "item-e1" in str(info.value)
    with pytest.raises(AlreadyExists) as info:
        store.append_events([event(ws, "e3", 3), event(ws, "e1", 4)])  # a taken id
    assert info.value.field == "id"
    with pytest.raises(AlreadyExists):  # a repeat within the batch
        store.append_events([event(ws, "e5", 5), event(ws, "e6", 5, item="item-e5")])
    assert ids(store.list_events(ws, "decide")) == ["e1"]
    # the same item at another time, or by another user, is another event
    store.append_events([event(ws, "e7", 2, item="item-e1"), event(ws, "e8", 1, user="u2")])
    assert store.count_events(ws, "decide") == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user": ""}, "user"),
        ({"item": 7}, "item"),
        ({"id": "x" * 201}, "id"),
        ({"kind": "Click!"}, "kind"),
        ({"weight": float("nan")}, "weight"),
        ({"weight": -1.0}, "weight"),
        ({"weight": True}, "weight"),
        ({"at": "2024-05-01"}, "at"),
        ({"received_at": None}, "received_at"),
    ],
)
def test_bad_fields_are_refused(
    store: MetadataStore, ws: str, change: dict[str, Any], field: str
) -> None:
    create(store, ws)
    with pytest.raises(InvalidInput) as info:
        store.append_events([event(ws, "ok", 0), event(ws, "bad", 1, **change)])
    assert info.value.field == field
    assert store.count_events(ws, "decide") == 0


def test_bad_queries_are_refused(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    for kwargs, field in (
        ({"by": "created_at"}, "by"),
        ({"since": "yesterday"}, "since"),
        ({"limit": -1}, "limit"),
        ({"offset": 1.5}, "offset"),
        ({"user": 7}, "user"),
    ):
        with pytest.raises(InvalidInput) as info:
            store.list_events(ws, "decide", **kwargs)
        assert info.value.field == field
    with pytest.raises(InvalidInput):
        store.count_events(ws, "decide", by="id")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        store.append_events(event(ws, "e1"))  # type: ignore[arg-type]


def test_events_need_an_existing_endpoint(store: MetadataStore, ws: str) -> None:
    with pytest.raises(NotFound):
        store.append_events([event(ws, "e1")])
    with pytest.raises(NotFound):
        store.list_events(ws, "decide")
    with pytest.raises(NotFound):
        store.count_events("nowhere", "decide")
    create(store, ws)
    create(store, ws, "other")
    with pytest.raises(NotFound):  # one unknown endpoint refuses the whole batch
        store.append_events([event(ws, "e1"), event(ws, "e2", name="missing")])
    # a batch may mix endpoints; the same event at two endpoints is two events
    store.append_events([event(ws, "e1"), event(ws, "e1", name="other")])
    assert store.count_events(ws, "decide") == store.count_events(ws, "other") == 1


def test_workspace_isolation(store: MetadataStore, ws: str) -> None:
    with_models(store, "fraud", versions=1)
    create(store, ws)
    store.append_events([event(ws, "e1")])
    with pytest.raises(NotFound):
        store.list_events("fraud", "decide")
    with pytest.raises(NotFound):
        store.append_events([event("fraud", "e2")])
    create(store, "fraud")
    assert store.list_events("fraud", "decide") == []
    store.append_events([event("fraud", "e1")])  # the same event in another workspace
    assert store.count_events(ws, "decide") == store.count_events("fraud", "decide") == 1


def test_concurrent_writers_store_each_event_once(
    open_store: Callable[[], MetadataStore], store: MetadataStore, ws: str
) -> None:
    create(store, ws)
    handles = [store, open_store()]

    def write(i: int) -> Any:
        # writers 0-1 and 2-3 send the same event (same user, item and time)
        batch = [event(ws, f"w{i}", 0, item=f"shared-{i // 2}"), event(ws, f"own{i}", i + 1)]
        try:
            return handles[i % 2].append_events(batch)
        except AlreadyExists as exc:
            return exc

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(write, range(4)))
    assert sum(r == 2 for r in results) == 2
    assert sum(isinstance(r, AlreadyExists) for r in results) == 2
    stored = store.list_events(ws, "decide", limit=None)
    assert len(stored) == 4 and len({(e.user, e.item, e.at) for e in stored}) == 4


def test_stored_events_are_read_back_in_utc(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    at = datetime(2024, 5, 1, 23, 59, 59, 999999, tzinfo=PLUS_0530)
    store.append_events([event(ws, "e1", at=at, received_at=at)])
    got = store.list_events(ws, "decide")[0]
    assert got.at == at and got.at.tzinfo is not None
    assert got.at.astimezone(UTC).utcoffset() == timedelta(0)
    assert got.at.microsecond == 999999


@pytest.mark.parametrize("field", ["id", "user", "item"])
def test_an_id_with_a_nul_character_is_refused(store: MetadataStore, ws: str, field: str) -> None:
    # PostgreSQL cannot store NUL in text: every backend refuses it, naming the field
    create(store, ws)
    with pytest.raises(InvalidInput, match="NUL") as info:
        store.append_events([event(ws, "e1"), event(ws, "e2", 1, **{field: "a\x00b"})])
    assert info.value.field == field
    assert store.count_events(ws, "decide") == 0
