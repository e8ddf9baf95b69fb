"""The endpoint part of every metadata store: memory, SQLite and PostgreSQL.

Endpoints, policy versions, the prediction log, feedback and alerts
(:class:`~leptonic.storage.metadata.endpoint_base.EndpointStore`). Each test
gets an empty store; PostgreSQL tests skip, saying how to get the server,
when it is absent.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from leptonic.core.endpoint import Alert, Endpoint, Feedback, PolicyVersion, Prediction, Route
from leptonic.core.model_version import Model, ModelVersion
from leptonic.core.workspace import Workspace
from leptonic.errors import AlreadyExists, Conflict, InvalidInput, InvalidName, NotFound
from leptonic.storage.metadata.base import MetadataStore
from leptonic.storage.metadata.memory import MemoryMetadataStore

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
PLUS_0530 = timezone(timedelta(hours=5, minutes=30))
BACKENDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
SPEC = {"kind": "threshold", "approve_below": 0.2, "reject_above": 0.6, "reasons": 3}


# -- fixtures -------------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[[], MetadataStore]]:
    """Open a handle on this test's (initially empty) store; all handles share it."""
    opened: list[MetadataStore] = []
    memory = MemoryMetadataStore()
    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'meta' / 'leptonic.db'}"
    elif backend == "postgresql":
        uri = request.getfixturevalue("postgres_db")

    def _open() -> MetadataStore:
        if backend == "memory":
            return memory
        from leptonic.storage.metadata.sql import SQLMetadataStore

        store = SQLMetadataStore.from_uri(uri)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], MetadataStore]) -> MetadataStore:
    return open_store()


def with_models(store: MetadataStore, ws: str, versions: int = 3) -> None:
    """A workspace ``ws`` with model ``scorecard`` v1..``versions``."""
    store.create_workspace(Workspace(ws, created_at=T0))
    store.create_model(Model(ws, "scorecard", task="binary", created_at=T0))
    for _ in range(versions):
        store.add_model_version(
            ModelVersion(
                ws,
                "scorecard",
                0,
                "binary",
                "sklearn",
                "r1",
                "d",
                "k",
                "ab",
                {},
                {},
                "",
                created_at=T0,
            )
        )


@pytest.fixture
def ws(store: MetadataStore) -> str:
    with_models(store, "credit")
    return "credit"


# -- record factories -------------------------------------------------------------
def endpoint(ws: str, name: str = "decide", **kw: Any) -> Endpoint:
    fields: dict[str, Any] = {
        "workspace": ws,
        "name": name,
        "routes": (Route("scorecard", 1, 100.0),),
        "entity_key": "customer_id",
        "description": "Crédit · décision 🚀",
        "created_by": "ana",
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(kw)
    return Endpoint(**fields)


def policy(ws: str, name: str = "decide", spec: Any = None, **kw: Any) -> PolicyVersion:
    fields: dict[str, Any] = {
        "workspace": ws,
        "endpoint": name,
        "version": 0,
        "spec": SPEC if spec is None else spec,
        "reason": "first",
        "created_by": "ana",
        "created_at": T0,
    }
    fields.update(kw)
    return PolicyVersion(**fields)


def create(store: MetadataStore, ws: str, name: str = "decide", **kw: Any) -> Endpoint:
    return store.create_endpoint(endpoint(ws, name, **kw), policy(ws, name))


def pred(ws: str, rid: str, minute: int = 0, *, name: str = "decide", **kw: Any) -> Prediction:
    fields: dict[str, Any] = {
        "workspace": ws,
        "endpoint": name,
        "request_id": rid,
        "model": "scorecard",
        "version": 1,
        "score": 0.25,
        "decision": "review",
        "at": T0 + timedelta(minutes=minute),
        "entity": "c1",
        "inputs": {"age": 41, "income": 52000.5, "city": "Zoë"},
        "reasons": [{"feature": "age", "points": -12.5}],
        "latency_ms": 1.5,
    }
    fields.update(kw)
    return Prediction(**fields)


def outcome(ws: str, rid: str, label: float = 1.0, **kw: Any) -> Feedback:
    return Feedback(ws, kw.pop("name", "decide"), rid, label, at=T0 + timedelta(days=30), **kw)


def alert(ws: str, name: str = "decide", **kw: Any) -> Alert:
    fields: dict[str, Any] = {
        "workspace": ws,
        "endpoint": name,
        "rule": "psi",
        "subject": "income",
        "value": 0.31,
        "threshold": 0.25,
        "message": "income drifted",
        "window_start": T0,
        "window_end": T0 + timedelta(days=1),
        "at": T0 + timedelta(days=1),
        "details": {"bins": [0.1, 0.2]},
    }
    fields.update(kw)
    return Alert(**fields)


def ids(predictions: list[Prediction]) -> list[str]:
    return [p.request_id for p in predictions]


# -- endpoints ------------------------------------------------------------------
def test_create_get_list(store: MetadataStore, ws: str) -> None:
    given = endpoint(ws, policy_version=7, revision=9, shadow=Route("scorecard", 2, 0.0))
    created = store.create_endpoint(given, policy(ws, version=5))
    assert created == replace(given, policy_version=1, revision=1)
    assert store.get_endpoint(ws, "decide") == created
    create(store, ws, "b-first", routes=(Route("scorecard", 1, 50), Route("scorecard", 3, 50)))
    assert [e.name for e in store.list_endpoints(ws)] == ["b-first", "decide"]
    split = store.get_endpoint(ws, "b-first").routes
    assert split == (Route("scorecard", 1, 50.0), Route("scorecard", 3, 50.0))
    assert all(type(r.percent) is float for r in split)
    assert store.list_policy_versions(ws, "decide") == [policy(ws, version=1)]


def test_endpoint_name_taken(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    with pytest.raises(AlreadyExists, match="'decide' already exists") as info:
        store.create_endpoint(endpoint(ws, description="other"), policy(ws, reason="again"))
    assert info.value.field == "name"
    assert store.get_endpoint(ws, "decide").description == endpoint(ws).description
    assert [p.reason for p in store.list_policy_versions(ws, "decide")] == ["first"]


def test_endpoint_not_found(store: MetadataStore, ws: str) -> None:
    with pytest.raises(NotFound, match="endpoint 'nope' not found in workspace 'credit'") as info:
        store.get_endpoint(ws, "nope")
    assert info.value.field == "endpoint"
    with pytest.raises(NotFound, match="workspace 'ghost'"):
        store.get_endpoint("ghost", "decide")
    with pytest.raises(NotFound, match="workspace 'ghost'"):
        store.list_endpoints("ghost")
    with pytest.raises(NotFound, match="workspace 'ghost'"):
        store.create_endpoint(endpoint("ghost"), policy("ghost"))


BAD_SPLITS = {
    "no route": ((), None, "at least one route"),
    "sum": ((Route("scorecard", 1, 60), Route("scorecard", 2, 30)), None, "sum to 100"),
    "range": ((Route("scorecard", 1, 120), Route("scorecard", 2, -20)), None, "0..100"),
    "nan": ((Route("scorecard", 1, float("nan")),), None, "must be a number"),
    "twice": ((Route("scorecard", 1, 50), Route("scorecard", 1, 50)), None, "routed twice"),
    "shadow live": ((Route("scorecard", 1, 100),), Route("scorecard", 1, 0), "both live"),
    "version": ((Route("scorecard", 0, 100),), None, "whole number >= 1"),
    "not a route": (({"model": "scorecard", "version": 1, "percent": 100},), None, "Route"),
}


@pytest.mark.parametrize("case", list(BAD_SPLITS))
def test_bad_routes_are_refused(store: MetadataStore, ws: str, case: str) -> None:
    routes, shadow, match = BAD_SPLITS[case]
    with pytest.raises(InvalidInput, match=match):
        store.create_endpoint(endpoint(ws, routes=routes, shadow=shadow), policy(ws))
    assert store.list_endpoints(ws) == []
    create(store, ws)
    with pytest.raises(InvalidInput, match=match):
        store.update_endpoint(ws, "decide", routes=routes, shadow=shadow)
    assert store.get_endpoint(ws, "decide").revision == 1


def test_bad_names_and_specs_are_refused(store: MetadataStore, ws: str) -> None:
    with pytest.raises(InvalidName):
        store.create_endpoint(endpoint(ws, "Bad Name"), policy(ws, "Bad Name"))
    with pytest.raises(InvalidInput, match="spec") as info:
        store.create_endpoint(endpoint(ws), policy(ws, spec={"cut": float("inf")}))
    assert info.value.field == "spec"
    with pytest.raises(InvalidInput, match="dict"):
        store.create_endpoint(endpoint(ws), policy(ws, spec=[1, 2]))
    with pytest.raises(InvalidInput, match="belongs to endpoint credit/other"):
        store.create_endpoint(endpoint(ws), policy(ws, "other"))
    assert store.list_endpoints(ws) == []


@pytest.mark.parametrize("where", ["routes", "shadow"])
def test_unknown_model_version_is_refused(store: MetadataStore, ws: str, where: str) -> None:
    missing = Route("scorecard", 9, 100.0 if where == "routes" else 0.0)
    kw: dict[str, Any] = {"routes": (missing,)} if where == "routes" else {"shadow": missing}
    with pytest.raises(NotFound, match="model 'scorecard' v9") as info:
        store.create_endpoint(endpoint(ws, **kw), policy(ws))
    assert info.value.field == where
    with pytest.raises(NotFound, match="'other' v1"):
        store.create_endpoint(endpoint(ws, routes=(Route("other", 1, 100),)), policy(ws))
    assert store.list_endpoints(ws) == []
    create(store, ws)
    with pytest.raises(NotFound, match="v9"):
        store.update_endpoint(ws, "decide", **kw)
    assert store.get_endpoint(ws, "decide") == replace(endpoint(ws), revision=1)


def test_update_endpoint(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    before = datetime.now(UTC)
    canary = (Route("scorecard", 1, 90), Route("scorecard", 2, 10))
    updated = store.update_endpoint(
        ws, "decide", expected_revision=1, routes=canary, description="canary", entity_key=None
    )
    assert updated.revision == 2
    assert updated.routes == canary
    assert (updated.description, updated.entity_key) == ("canary", None)
    assert updated.updated_at >= before
    assert updated.created_at == T0
    assert store.get_endpoint(ws, "decide") == updated
    shadowed = store.update_endpoint(ws, "decide", shadow=Route("scorecard", 3, 0))
    assert (shadowed.revision, shadowed.shadow) == (3, Route("scorecard", 3, 0.0))
    assert store.update_endpoint(ws, "decide", shadow=None).shadow is None
    assert store.update_endpoint(ws, "decide") == store.get_endpoint(ws, "decide")
    assert store.get_endpoint(ws, "decide").revision == 4


def test_stale_revision_is_a_conflict(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    store.update_endpoint(ws, "decide", expected_revision=1, description="first change")
    with pytest.raises(Conflict, match="revision 2, not 1") as info:
        store.update_endpoint(ws, "decide", expected_revision=1, description="lost")
    assert info.value.field == "expected_revision"
    with pytest.raises(Conflict):
        store.update_endpoint(ws, "decide", expected_revision=1)
    assert store.get_endpoint(ws, "decide").description == "first change"
    assert store.get_endpoint(ws, "decide").revision == 2


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"created_by": "eve"}, InvalidInput, "created_by"),
        ({"revision": 5}, InvalidInput, "revision"),
        ({"description": None}, InvalidInput, "description"),
        ({"entity_key": 3}, InvalidInput, "entity_key"),
        ({"policy_version": "2"}, InvalidInput, "policy_version"),
        ({"policy_version": 2}, NotFound, "policy_version"),
    ],
)
def test_update_endpoint_refuses(
    store: MetadataStore, ws: str, changes: dict[str, Any], error: type[Exception], field: str
) -> None:
    created = create(store, ws)
    with pytest.raises(error) as info:
        store.update_endpoint(ws, "decide", **changes)
    assert getattr(info.value, "field", None) == field
    assert store.get_endpoint(ws, "decide") == created
    with pytest.raises(NotFound):
        store.update_endpoint(ws, "nope", description="x")


def test_policy_versions(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    second = store.add_policy_version(policy(ws, spec={"kind": "b"}, reason="tighter", version=9))
    assert second == policy(ws, spec={"kind": "b"}, reason="tighter", version=2)
    current = store.get_endpoint(ws, "decide")
    assert (current.policy_version, current.revision) == (2, 2)
    third = store.add_policy_version(policy(ws, spec={"kind": "c"}), activate=False)
    assert third.version == 3
    current = store.get_endpoint(ws, "decide")
    assert (current.policy_version, current.revision) == (2, 2)
    assert [p.version for p in store.list_policy_versions(ws, "decide")] == [1, 2, 3]
    assert store.get_policy_version(ws, "decide", 3).spec == {"kind": "c"}
    with pytest.raises(NotFound, match="no policy version 4"):
        store.get_policy_version(ws, "decide", 4)
    assert store.update_endpoint(ws, "decide", policy_version=3).policy_version == 3
    assert store.update_endpoint(ws, "decide", policy_version=1).revision == 4
    with pytest.raises(NotFound, match="endpoint 'nope'"):
        store.add_policy_version(policy(ws, "nope"))
    with pytest.raises(NotFound, match="endpoint 'nope'"):
        store.list_policy_versions(ws, "nope")
    with pytest.raises(InvalidInput):
        store.add_policy_version(policy(ws, spec={"cut": float("nan")}))
    assert len(store.list_policy_versions(ws, "decide")) == 3


# -- prediction log ---------------------------------------------------------------
def test_append_and_list_predictions(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    live = [pred(ws, f"r{i}", minute=i, entity=f"c{i % 2}") for i in range(6)]
    shadow = [pred(ws, f"r{i}", minute=i, route="shadow", version=2) for i in (1, 4)]
    assert store.append_predictions(live[:3] + shadow) == 5
    assert store.append_predictions(live[3:]) == 3
    assert store.append_predictions([]) == 0
    assert ids(store.list_predictions(ws, "decide")) == ["r5", "r4", "r3", "r2", "r1", "r0"]
    assert ids(store.list_predictions(ws, "decide", newest_first=False, limit=2)) == ["r0", "r1"]
    assert ids(store.list_predictions(ws, "decide", limit=2, offset=3)) == ["r2", "r1"]
    assert ids(store.list_predictions(ws, "decide", limit=None, offset=5)) == ["r0"]
    both = store.list_predictions(ws, "decide", route=None)
    assert [(p.request_id, p.route) for p in both[:3]] == [
        ("r5", "live"),
        ("r4", "shadow"),
        ("r4", "live"),
    ]
    assert ids(store.list_predictions(ws, "decide", route="shadow")) == ["r4", "r1"]
    window = {"since": T0 + timedelta(minutes=1), "until": T0 + timedelta(minutes=4)}
    assert ids(store.list_predictions(ws, "decide", **window)) == ["r3", "r2", "r1"]
    assert store.count_predictions(ws, "decide", **window) == 3
    assert store.count_predictions(ws, "decide", route=None, **window) == 4
    assert store.count_predictions(ws, "decide") == 6
    assert store.count_predictions(ws, "decide", since=T0 + timedelta(hours=1)) == 0
    assert store.list_predictions(ws, "decide", newest_first=False)[2] == live[2]


def test_predictions_compare_instants_across_time_zones(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    local = T0.astimezone(PLUS_0530)
    store.append_predictions([pred(ws, "a", at=local), pred(ws, "b", at=T0 + timedelta(hours=1))])
    got = store.get_prediction(ws, "decide", "a")
    assert got.at == T0
    assert ids(store.list_predictions(ws, "decide", until=local + timedelta(seconds=1))) == ["a"]
    naive_utc = T0.replace(tzinfo=None)  # taken as UTC
    assert store.count_predictions(ws, "decide", since=naive_utc) == 2
    assert store.count_predictions(ws, "decide", until=naive_utc + timedelta(minutes=30)) == 1


def test_prediction_round_trip_and_lookup(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    p = pred(ws, "req-1", score=1, latency_ms=0, entity=None, inputs={}, reasons=[])
    store.append_predictions([p])
    got = store.get_prediction(ws, "decide", "req-1")
    assert got == p
    assert (type(got.score), type(got.latency_ms)) == (float, float)
    with pytest.raises(NotFound, match="'req-2'") as info:
        store.get_prediction(ws, "decide", "req-2")
    assert info.value.field == "request_id"
    with pytest.raises(NotFound, match="shadow prediction for request 'req-1'"):
        store.get_prediction(ws, "decide", "req-1", route="shadow")
    with pytest.raises(InvalidInput, match="unknown prediction route"):
        store.list_predictions(ws, "decide", route="canary")
    with pytest.raises(NotFound, match="endpoint 'nope'"):
        store.list_predictions(ws, "nope")


def test_repeated_predictions_roll_back_the_batch(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    store.append_predictions([pred(ws, "r1"), pred(ws, "r1", route="shadow")])
    batch = [pred(ws, "r2"), pred(ws, "r3"), pred(ws, "r1", minute=9)]
    with pytest.raises(AlreadyExists, match="live prediction for request 'r1'") as info:
        store.append_predictions(batch)
    assert info.value.field == "request_id"
    with pytest.raises(AlreadyExists, match="'r4'"):
        store.append_predictions([pred(ws, "r4"), pred(ws, "r5"), pred(ws, "r4")])
    many = [pred(ws, f"m{i}", minute=i % 60) for i in range(1200)]
    with pytest.raises(AlreadyExists, match="shadow prediction for request 'r1'"):
        store.append_predictions([*many, pred(ws, "r1", route="shadow")])
    assert store.count_predictions(ws, "decide", route=None) == 2
    assert store.append_predictions(many) == 1200
    assert store.get_prediction(ws, "decide", "r1").at == T0


def test_append_needs_existing_endpoints_and_good_records(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    create(store, ws, "other")
    with pytest.raises(NotFound, match="endpoint 'nope'"):
        store.append_predictions([pred(ws, "r1"), pred(ws, "r2", name="nope")])
    bad: list[tuple[str, Any]] = [
        ("score", float("nan")),
        ("score", True),
        ("latency_ms", float("inf")),
        ("version", 1.0),
        ("route", "canary"),
        ("inputs", {"when": T0}),
        ("inputs", {1: "one"}),
        ("inputs", [("age", 41)]),
        ("reasons", [{"points": float("nan")}]),
        ("reasons", [{"nested": {2: "two"}}]),
        ("at", "2024-05-01"),
        ("request_id", ""),
        ("entity", 7),
    ]
    for field, value in bad:
        batch = [pred(ws, "ok", name="other"), pred(ws, "bad", **{field: value})]
        with pytest.raises(InvalidInput) as info:
            store.append_predictions(batch)
        assert info.value.field == field, (field, value)
    assert store.count_predictions(ws, "decide", route=None) == 0
    assert store.count_predictions(ws, "other", route=None) == 0
    assert store.append_predictions([pred(ws, "r1"), pred(ws, "r1", name="other")]) == 2


def test_stored_predictions_do_not_change_with_the_callers_objects(
    store: MetadataStore, ws: str
) -> None:
    create(store, ws)
    p = pred(ws, "r1")
    store.append_predictions([p])
    p.inputs["age"] = 99
    got = store.get_prediction(ws, "decide", "r1")
    assert got.inputs["age"] == 41
    got.reasons.clear()
    assert store.get_prediction(ws, "decide", "r1").reasons != []


def test_latest_prediction_for_entity(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    store.append_predictions(
        [
            pred(ws, "a", minute=1, entity="c1"),
            pred(ws, "b", minute=5, entity="c1"),
            pred(ws, "c", minute=3, entity="c1"),
            pred(ws, "d", minute=9, entity="c1", route="shadow"),
            pred(ws, "e", minute=7, entity="c2"),
        ]
    )
    latest = store.latest_prediction_for_entity(ws, "decide", "c1")
    assert latest is not None and latest.request_id == "b"
    assert store.latest_prediction_for_entity(ws, "decide", "c9") is None
    with pytest.raises(NotFound):
        store.latest_prediction_for_entity(ws, "nope", "c1")


# -- feedback ------------------------------------------------------------------------
def test_feedback_for_an_unknown_request_rolls_back_the_batch(
    store: MetadataStore, ws: str
) -> None:
    create(store, ws)
    store.append_predictions([pred(ws, "r1"), pred(ws, "r2"), pred(ws, "s1", route="shadow")])
    with pytest.raises(NotFound, match="request 'r9'") as info:
        store.add_feedback([outcome(ws, "r1"), outcome(ws, "r9"), outcome(ws, "r8")])
    assert info.value.field == "request_id"
    with pytest.raises(NotFound, match="request 's1'"):
        store.add_feedback([outcome(ws, "r2"), outcome(ws, "s1")])
    with pytest.raises(NotFound, match="endpoint 'nope'"):
        store.add_feedback([outcome(ws, "r1", name="nope")])
    store.append_predictions([pred(ws, f"m{i}") for i in range(1200)])
    with pytest.raises(NotFound, match="request 'm1200'"):
        store.add_feedback([outcome(ws, f"m{i}") for i in range(1201)])
    with pytest.raises(InvalidInput) as bad:
        store.add_feedback([outcome(ws, "r1"), outcome(ws, "r2", label=float("nan"))])
    assert bad.value.field == "label"
    assert store.labelled_predictions(ws, "decide") == []
    assert store.add_feedback([]) == 0


def test_later_feedback_replaces_the_earlier(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    store.append_predictions([pred(ws, "r1"), pred(ws, "r2", minute=1)])
    assert store.add_feedback([outcome(ws, "r1", 0), outcome(ws, "r2", 0, entity="c1")]) == 2
    corrected = outcome(ws, "r1", 1, entity="c7")
    assert store.add_feedback([outcome(ws, "r1", 0.5), corrected]) == 2
    pairs = store.labelled_predictions(ws, "decide")
    assert [(p.request_id, f.label) for p, f in pairs] == [("r1", 1.0), ("r2", 0.0)]
    assert pairs[0][1] == corrected


def test_labelled_predictions_join(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    create(store, ws, "other")
    live = [pred(ws, f"r{i}", minute=i) for i in range(5)]
    store.append_predictions([*live, pred(ws, "r1", route="shadow"), pred(ws, "r3", name="other")])
    store.add_feedback([outcome(ws, "r3", 0), outcome(ws, "r0"), outcome(ws, "r1", 0.0)])
    store.add_feedback([outcome(ws, "r3", 1, name="other")])
    pairs = store.labelled_predictions(ws, "decide")
    assert [p for p, _ in pairs] == [live[0], live[1], live[3]]
    assert [f for _, f in pairs] == [outcome(ws, "r0"), outcome(ws, "r1", 0), outcome(ws, "r3", 0)]
    window = {"since": T0 + timedelta(minutes=1), "until": T0 + timedelta(minutes=3)}
    assert [p.request_id for p, _ in store.labelled_predictions(ws, "decide", **window)] == ["r1"]
    assert len(store.labelled_predictions(ws, "decide", limit=2)) == 2
    assert [f.label for _, f in store.labelled_predictions(ws, "other")] == [1.0]


def test_delete_predictions_before_a_time_takes_their_outcomes(
    store: MetadataStore, ws: str
) -> None:
    create(store, ws)
    create(store, ws, "other")
    live = [pred(ws, f"r{i}", minute=i) for i in range(5)]
    store.append_predictions(
        [*live, pred(ws, "r1", minute=1, route="shadow"), pred(ws, "r0", name="other")]
    )
    store.add_feedback([outcome(ws, "r0"), outcome(ws, "r3", 0)])
    # r0, r1 and r1's shadow answer are older than minute 2; "other" keeps its own
    assert store.delete_predictions(ws, "decide", before=T0 + timedelta(minutes=2)) == 3
    assert ids(store.list_predictions(ws, "decide", route=None, newest_first=False)) == [
        "r2",
        "r3",
        "r4",
    ]
    assert [p.request_id for p, _ in store.labelled_predictions(ws, "decide")] == ["r3"]
    assert ids(store.list_predictions(ws, "other")) == ["r0"]
    # a deleted request takes no new outcome; nothing older is left to delete
    with pytest.raises(NotFound, match="r0"):
        store.add_feedback([outcome(ws, "r0")])
    assert store.delete_predictions(ws, "decide", before=T0 + timedelta(minutes=2)) == 0
    # an instant in another time zone is the same instant
    east = timezone(timedelta(hours=2))
    assert (
        store.delete_predictions(ws, "decide", before=(T0 + timedelta(minutes=3)).astimezone(east))
        == 1
    )
    with pytest.raises(NotFound):
        store.delete_predictions(ws, "nope", before=T0)
    with pytest.raises(InvalidInput) as info:
        store.delete_predictions(ws, "decide", before="2025-01-01")  # type: ignore[arg-type]
    assert info.value.field == "before"
    assert store.count_predictions(ws, "decide") == 2


def test_delete_predictions_goes_by_batches(
    store: MetadataStore, ws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leptonic.storage.metadata import _endpoints

    monkeypatch.setattr(_endpoints, "PRUNE_BATCH", 2)  # (the SQL stores' batch)
    create(store, ws)
    live = [pred(ws, f"r{i}", minute=i) for i in range(6)]
    tied = pred(ws, "r2b", minute=2)  # a batch ends in a tie: both go together
    store.append_predictions([*live, tied, pred(ws, "r1", minute=1, route="shadow")])
    store.add_feedback([outcome(ws, "r0"), outcome(ws, "r3", 0), outcome(ws, "r5")])
    # 6 live answers before minute 5 (three batches of 2, exactly), then 1 shadow answer
    assert store.delete_predictions(ws, "decide", before=T0 + timedelta(minutes=5)) == 7
    assert ids(store.list_predictions(ws, "decide", route=None)) == ["r5"]
    assert [p.request_id for p, _ in store.labelled_predictions(ws, "decide")] == ["r5"]


# -- alerts -----------------------------------------------------------------------------
def test_alerts(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    create(store, ws, "other")
    first = store.add_alert(alert(ws, value=1))
    assert first == alert(ws, value=1.0, id=first.id)
    second = store.add_alert(alert(ws, "other", rule="auc_drop", subject="score"))
    third = store.add_alert(alert(ws, status="acknowledged"))
    assert first.id is not None and second.id is not None and third.id is not None
    assert first.id < second.id < third.id
    assert store.list_alerts(ws) == [third, second, first]
    assert store.list_alerts(ws, "decide") == [third, first]
    assert store.list_alerts(ws, status="open") == [second, first]
    assert store.list_alerts(ws, "decide", status="open", limit=1, offset=0) == [first]
    assert store.list_alerts(ws, limit=1, offset=1) == [second]
    resolved = store.set_alert_status(ws, first.id, "resolved")
    assert resolved == replace(first, status="resolved")
    assert store.list_alerts(ws, status="resolved") == [resolved]
    with pytest.raises(InvalidInput, match="unknown alert status 'closed'"):
        store.set_alert_status(ws, first.id, "closed")
    with pytest.raises(InvalidInput):
        store.list_alerts(ws, status="closed")
    with pytest.raises(NotFound, match="alert 999"):
        store.set_alert_status(ws, 999, "resolved")
    # asked for as another endpoint's alert: refused, and nothing changes
    with pytest.raises(InvalidInput, match="belongs to endpoint 'other'") as info:
        store.set_alert_status(ws, second.id, "resolved", endpoint="decide")
    assert info.value.field == "alert_id"
    assert store.list_alerts(ws, "other") == [second]
    assert store.set_alert_status(ws, second.id, "acknowledged", endpoint="other") == replace(
        second, status="acknowledged"
    )
    with pytest.raises(NotFound, match="endpoint 'nope'"):
        store.add_alert(alert(ws, "nope"))
    with pytest.raises(InvalidInput) as info:
        store.add_alert(alert(ws, value=float("inf")))
    assert info.value.field == "value"
    assert len(store.list_alerts(ws)) == 3


# -- isolation and concurrency ------------------------------------------------------
def test_workspace_isolation(store: MetadataStore, ws: str) -> None:
    with_models(store, "fraud", versions=1)
    create(store, ws)
    store.append_predictions([pred(ws, "r1")])
    store.add_feedback([outcome(ws, "r1")])
    mine = store.add_alert(alert(ws))
    assert store.list_endpoints("fraud") == []
    assert store.list_alerts("fraud") == []
    for call in (
        lambda: store.get_endpoint("fraud", "decide"),
        lambda: store.update_endpoint("fraud", "decide", description="x"),
        lambda: store.list_policy_versions("fraud", "decide"),
        lambda: store.add_policy_version(policy("fraud")),
        lambda: store.list_predictions("fraud", "decide"),
        lambda: store.get_prediction("fraud", "decide", "r1"),
        lambda: store.append_predictions([pred("fraud", "r2")]),
        lambda: store.add_feedback([outcome("fraud", "r1")]),
        lambda: store.labelled_predictions("fraud", "decide"),
        lambda: store.set_alert_status("fraud", mine.id or 0, "resolved"),
    ):
        with pytest.raises(NotFound):
            call()
    create(store, "fraud")  # the same name in another workspace is another endpoint
    assert store.list_predictions("fraud", "decide") == []
    assert store.labelled_predictions("fraud", "decide") == []
    assert store.latest_prediction_for_entity("fraud", "decide", "c1") is None
    with pytest.raises(NotFound):
        store.add_feedback([outcome("fraud", "r1")])
    assert store.get_endpoint(ws, "decide").revision == 1
    assert store.list_alerts(ws) == [mine]


def _in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n, timeout=60)

    def start(i: int) -> Any:
        barrier.wait()
        try:
            return work(i)
        except Conflict as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(start, range(n)))


def test_concurrent_changes(
    open_store: Callable[[], MetadataStore], store: MetadataStore, ws: str
) -> None:
    create(store, ws)
    handles = [store, open_store()]
    results = _in_threads(
        4,
        lambda i: handles[i % 2].update_endpoint(
            ws, "decide", expected_revision=1, description=f"writer {i}"
        ),
    )
    assert sum(isinstance(r, Endpoint) for r in results) == 1
    assert store.get_endpoint(ws, "decide").revision == 2
    added = _in_threads(4, lambda i: handles[i % 2].add_policy_version(policy(ws, reason=str(i))))
    assert sorted(p.version for p in added) == [2, 3, 4, 5]
    assert store.get_endpoint(ws, "decide").revision == 6


@pytest.mark.parametrize("field", ["request_id", "entity"])
def test_a_prediction_with_a_nul_character_is_refused(
    store: MetadataStore, ws: str, field: str
) -> None:
    # PostgreSQL cannot store NUL in text: every backend refuses it, naming the field
    create(store, ws)
    with pytest.raises(InvalidInput, match="NUL") as info:
        store.append_predictions([pred(ws, "r1"), pred(ws, "r2", **{field: "c\x00"})])
    assert info.value.field == field
    assert store.list_predictions(ws, "decide") == []


def test_alerts_are_marked_delivered_for_their_endpoint_only(store: MetadataStore, ws: str) -> None:
    create(store, ws)
    create(store, ws, "other")
    window = (T0, T0 + timedelta(days=1))
    mine = store.add_alert(Alert(ws, "decide", "psi", "age", 0.4, 0.25, "drift", *window))
    theirs = store.add_alert(Alert(ws, "other", "psi", "age", 0.4, 0.25, "drift", *window))
    assert mine.delivered_at is None and mine.id is not None and theirs.id is not None
    at = datetime(2024, 5, 2, 17, 30, tzinfo=PLUS_0530)
    assert store.set_alerts_delivered(ws, "decide", [mine.id, theirs.id], at) == 1
    got = {a.endpoint: a for a in store.list_alerts(ws)}
    assert got["decide"].delivered_at == at and got["decide"].delivered_at.utcoffset() == timedelta(
        0
    )
    assert got["other"].delivered_at is None
    assert store.set_alerts_delivered(ws, "decide", [], at) == 0
    with pytest.raises(InvalidInput) as info:
        store.set_alerts_delivered(ws, "decide", ["1"], at)  # type: ignore[list-item]
    assert info.value.field == "alert_ids"
    with pytest.raises(NotFound):
        store.set_alerts_delivered(ws, "ghost", [mine.id], at)


def test_a_policy_worked_out_from_a_replaced_one_is_a_conflict(
    store: MetadataStore, ws: str
) -> None:
    create(store, ws)  # policy version 1 active
    second = store.add_policy_version(policy(ws, spec={"kind": "b"}), expected_active=1)
    assert second.version == 2 and store.get_endpoint(ws, "decide").policy_version == 2
    with pytest.raises(Conflict, match="now runs policy version 2, not 1") as info:
        store.add_policy_version(policy(ws, spec={"kind": "stale"}), expected_active=1)
    assert info.value.field == "policy_version"
    assert [p.version for p in store.list_policy_versions(ws, "decide")] == [1, 2]


# -- paging across both routes ---------------------------------------------------------
def test_both_routes_page_in_one_order(store: MetadataStore, ws: str) -> None:
    # route=None lists both routes by (at, request_id, route): pages neither skip nor
    # repeat a prediction, ties in time included, from either end; counts add up
    create(store, ws)
    logged = [pred(ws, f"r{i:02}", minute=i // 3) for i in range(24)]  # three per minute
    logged += [pred(ws, f"r{i:02}", minute=i // 3, route="shadow") for i in range(0, 24, 2)]
    logged += [pred(ws, "s-only", minute=4, route="shadow"), pred(ws, "a-first", minute=4)]
    store.append_predictions(logged)
    oldest = sorted(logged, key=lambda p: (p.at, p.request_id, p.route))
    for newest_first in (True, False):
        expected = [(p.request_id, p.route) for p in (oldest[::-1] if newest_first else oldest)]
        for limit in (1, 5, 7, 100):
            paged = []
            for offset in range(0, len(expected) + limit, limit):
                page = store.list_predictions(
                    ws,
                    "decide",
                    route=None,
                    limit=limit,
                    offset=offset,
                    newest_first=newest_first,
                )
                assert len(page) <= limit
                paged += [(p.request_id, p.route) for p in page]
            assert paged == expected, (newest_first, limit)
        rest = store.list_predictions(
            ws, "decide", route=None, limit=None, offset=3, newest_first=newest_first
        )
        assert [(p.request_id, p.route) for p in rest] == expected[3:]
    assert store.list_predictions(ws, "decide", route=None, limit=None) == oldest[::-1]
    window = {"since": T0 + timedelta(minutes=2), "until": T0 + timedelta(minutes=5)}
    inside = [p for p in oldest if window["since"] <= p.at < window["until"]]
    got = store.list_predictions(ws, "decide", route=None, newest_first=False, limit=4, **window)
    assert got == inside[:4]
    assert store.count_predictions(ws, "decide", route=None, **window) == len(inside)
    assert store.count_predictions(ws, "decide", route=None) == len(logged)
    assert store.count_predictions(ws, "decide", route="shadow") == 13


# -- values every store keeps, and refuses, alike -------------------------------------
NAIVE = datetime(2024, 5, 1, 12, 0)  # taken to be UTC
LOCAL = datetime(2024, 5, 1, 18, 0, tzinfo=PLUS_0530)  # 12:30 UTC

#: (case, call, the field named): calls that every store refuses, changing nothing.
REFUSED: list[tuple[str, Callable[[MetadataStore, str], Any], str]] = [
    (
        "endpoint description NUL",
        lambda s, ws: s.create_endpoint(
            endpoint(ws, "other", description="a\x00"), policy(ws, "other")
        ),
        "description",
    ),
    (
        "endpoint entity key NUL",
        lambda s, ws: s.create_endpoint(
            endpoint(ws, "other", entity_key="\x00"), policy(ws, "other")
        ),
        "entity_key",
    ),
    (
        "endpoint time None",
        lambda s, ws: s.create_endpoint(
            endpoint(ws, "other", created_at=None), policy(ws, "other")
        ),
        "created_at",
    ),
    (
        "policy reason NUL",
        lambda s, ws: s.create_endpoint(endpoint(ws, "other"), policy(ws, "other", reason="\x00")),
        "reason",
    ),
    (
        "description change NUL",
        lambda s, ws: s.update_endpoint(ws, "decide", description="\x00"),
        "description",
    ),
    (
        "entity key change NUL",
        lambda s, ws: s.update_endpoint(ws, "decide", entity_key="\x00"),
        "entity_key",
    ),
    (
        "new policy creator NUL",
        lambda s, ws: s.add_policy_version(policy(ws, created_by="ana\x00")),
        "created_by",
    ),
    ("policy version a str", lambda s, ws: s.get_policy_version(ws, "decide", "1"), "version"),  # type: ignore[arg-type]
    (
        "prediction model NUL",
        lambda s, ws: s.append_predictions([pred(ws, "r2", model="score\x00card")]),
        "model",
    ),
    (
        "prediction decision NUL",
        lambda s, ws: s.append_predictions([pred(ws, "r2", decision="\x00")]),
        "decision",
    ),
    ("feedback request NUL", lambda s, ws: s.add_feedback([outcome(ws, "r1\x00")]), "request_id"),
    (
        "feedback entity NUL",
        lambda s, ws: s.add_feedback([outcome(ws, "r1", entity="c\x00")]),
        "entity",
    ),
    ("alert message NUL", lambda s, ws: s.add_alert(alert(ws, message="drift\x00")), "message"),
    ("alert subject surrogate", lambda s, ws: s.add_alert(alert(ws, subject="\udc00")), "subject"),
]


def _held(store: MetadataStore, ws: str) -> list[Any]:
    return [
        store.list_endpoints(ws),
        store.list_policy_versions(ws, "decide"),
        store.list_predictions(ws, "decide", route=None, limit=None),
        store.labelled_predictions(ws, "decide"),
        store.list_alerts(ws),
    ]


@pytest.mark.parametrize(("case", "call", "field"), REFUSED, ids=[c[0] for c in REFUSED])
def test_every_store_refuses_the_same_values(
    store: MetadataStore, ws: str, case: str, call: Any, field: str
) -> None:
    create(store, ws)
    store.append_predictions([pred(ws, "r1")])
    before = _held(store, ws)
    with pytest.raises(InvalidInput) as info:
        call(store, ws)
    assert info.value.field == field
    assert _held(store, ws) == before


def test_endpoint_records_keep_their_times_in_utc(store: MetadataStore, ws: str) -> None:
    # a naive time is taken to be UTC; an aware one comes back as the same instant in UTC
    created = create(store, ws, created_at=NAIVE, updated_at=LOCAL)
    store.add_policy_version(policy(ws, created_at=LOCAL), activate=False)
    store.append_predictions([pred(ws, "r1", at=NAIVE)])
    store.add_feedback([Feedback(ws, "decide", "r1", 1.0, at=LOCAL)])
    added = store.add_alert(alert(ws, window_start=NAIVE, window_end=LOCAL, at=NAIVE))
    assert added.id is not None
    store.set_alerts_delivered(ws, "decide", [added.id], NAIVE)
    records: list[Any] = [
        created,
        store.get_endpoint(ws, "decide"),
        *store.list_policy_versions(ws, "decide"),
        *store.labelled_predictions(ws, "decide")[0],
        *store.list_alerts(ws),
    ]
    times = [
        value
        for record in records
        for f in dataclasses.fields(record)
        if isinstance(value := getattr(record, f.name), datetime)
    ]
    assert len(times) == 12
    assert all(at.tzinfo is not None and at.utcoffset() == timedelta(0) for at in times)
    assert set(times) == {NAIVE.replace(tzinfo=UTC), LOCAL, T0}  # T0: the first policy's


def test_json_values_of_endpoints_come_back_as_json_gives_them(
    store: MetadataStore, ws: str
) -> None:
    # tuples come back as lists, from every store (SQL keeps JSON, which has no tuples)
    store.create_endpoint(endpoint(ws), policy(ws, spec={"cuts": (0.2, 0.6)}))
    store.add_policy_version(policy(ws, spec={"cuts": (0.3, 0.7)}))
    assert [p.spec for p in store.list_policy_versions(ws, "decide")] == [
        {"cuts": [0.2, 0.6]},
        {"cuts": [0.3, 0.7]},
    ]
    store.append_predictions([pred(ws, "r1", inputs={"pair": (1, 2)}, reasons=[{"x": (3,)}])])
    got = store.get_prediction(ws, "decide", "r1")
    assert (got.inputs, got.reasons) == ({"pair": [1, 2]}, [{"x": [3]}])
    store.add_alert(alert(ws, details={"bins": (0.1, 0.2)}))
    assert store.list_alerts(ws)[0].details == {"bins": [0.1, 0.2]}
