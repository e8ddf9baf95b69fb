"""Recommendation endpoints over real HTTP: answers, events, bad input, restarts, monitoring.

A tiny ALS recommender is trained here on generated interactions (users of
group g mostly like the items of group g), registered as a
``recommendation`` model version, deployed with ``EndpointService.create``
and served by :class:`~leptonic.serving.recs_app.RecsApp` under uvicorn.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leptonic import Platform, Settings
from leptonic.core.access import Role
from leptonic.core.event import Event
from leptonic.core.model_version import Model, ModelVersion
from leptonic.errors import AlreadyExists, InvalidInput
from leptonic.serving.app import TokenAuth

pytest.importorskip("implicit", reason="implicit is not installed: pip install 'leptonic[recsys]'")

from leptonic.core.endpoint import Route
from leptonic.governance.pii import hash_value
from leptonic.monitoring.recs import recommendation_monitoring
from leptonic.serving.recs import RecsHost, recommendation_policy, user_is_pii
from leptonic.serving.recs_app import RecsApp
from leptonic.tasks.recsys import (
    Interactions,
    RecommenderSpec,
    fit_recommender,
    save_recommender,
)

WS = "shop"
#: One ALS fit, no search: what the platform-training tests need.
FAST_ALS = RecommenderSpec(
    timestamp="ts",
    weight="rating",
    candidates=("als",),
    trials=1,
    timeout_s=None,
    valid_repeats=1,
    blend=1,
)
GROUPS = 4
N_USERS, N_ITEMS = 60, 40
T0 = 1_700_000_000


def _interactions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(N_USERS):
        g = u % GROUPS
        own = [i for i in range(N_ITEMS) if i % GROUPS == g]
        picks = [*rng.choice(own, size=6, replace=False), int(rng.integers(0, N_ITEMS))]
        for j, i in enumerate(dict.fromkeys(int(p) for p in picks)):
            rows.append((f"u{u}", f"i{i}", int(rng.integers(3, 6)), T0 + 1000 * j + u))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "ts"])


def genre(item: str) -> str:
    return f"g{int(item[1:]) % GROUPS}"


@dataclass
class Shop:
    platform: Platform
    model: tuple[str, int]
    data: pd.DataFrame
    tokens: dict[str, str]

    def deploy(self, name: str, policy: dict[str, Any] | None = None) -> None:
        self.platform.endpoints.create(WS, name, *self.model, policy=policy)

    def host(self, name: str) -> RecsHost:
        lp = self.platform
        return RecsHost(lp.metadata, lp.artifacts, WS, name, reload_interval=0)

    def app(self, host: RecsHost) -> RecsApp:
        return RecsApp(host, auth=TokenAuth(self.platform.metadata, WS))

    def seen(self, user: str) -> set[str]:
        return set(self.data.loc[self.data["user"] == user, "item"])


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    home = tmp_path_factory.mktemp("recs-home")
    lp = Platform.open(Settings.for_home(home, user="ana"))
    lp.create_workspace(WS)
    df = _interactions()
    spec = RecommenderSpec(
        timestamp="ts", weight="rating", candidates=("als",), trials=1, timeout_s=None, seed=0
    )
    data = Interactions.from_table(df, timestamp="ts", weight="rating")
    items = pd.DataFrame({"item": [f"i{i}" for i in range(N_ITEMS)]})
    items["genre"] = items["item"].map(genre)
    users = pd.DataFrame({"user": [f"u{u}" for u in range(N_USERS)]})
    users["group"] = [f"G{u % GROUPS}" for u in range(N_USERS)]
    fitted = fit_recommender(
        data, spec, item_attributes=items, user_attributes=users, log=lambda _: None
    ).predictor
    key, digest = save_recommender(fitted, lp.artifacts)
    lp.metadata.create_model(Model(WS, "recs", task="recommendation"))
    mv = lp.metadata.add_model_version(
        ModelVersion(
            WS,
            "recs",
            0,
            "recommendation",
            "als",
            "r1",
            f"leptonic://{WS}/dataset/interactions/1",
            key,
            digest,
            {},
            {},
            "",
        )
    )
    tokens = {}
    for name, role in (("viewer", Role.VIEWER), ("dev", Role.DEVELOPER)):
        lp.create_user(name)
        lp.set_member(WS, name, role)
        tokens[name] = lp.create_token(name, "test")[1]
    yield Shop(lp, (mv.model, mv.version), df, tokens)
    lp.close()


class Client:
    """httpx against a live server, with the developer's token."""

    def __init__(self, url: str, token: str, name: str = "") -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        self.url = url
        self.name = name

    def recommend(self, user: Any, **kw: Any) -> dict[str, Any]:
        r = self.http.post("/recommend", json={"user": user, **kw})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def items(self, user: Any, **kw: Any) -> list[str]:
        return [x["item"] for x in self.recommend(user, **kw)["items"]]

    def events(self, body: Any) -> httpx.Response:
        return self.http.post("/events", json=body)


_numbers = itertools.count(1)


@pytest.fixture
def served(shop: Shop, live_server: Any) -> Iterator[Client]:
    """A fresh endpoint served over HTTP."""
    name = f"ep-{next(_numbers)}"
    shop.deploy(name)
    with live_server(shop.app(shop.host(name))) as server:
        client = Client(server.url, shop.tokens["dev"], name)
        yield client
        client.http.close()


# -- answers -----------------------------------------------------------------------------------
def test_an_event_changes_the_next_answer(served: Client) -> None:
    before = served.recommend("u0", k=5)
    assert not before["cold_start"] and len(before["items"]) == 5
    assert all(x["because"] is not None for x in before["items"])  # "because you liked X"
    # u0 likes group 0; a burst of strong events on group-2 items moves the answer
    posted = [{"user": "u0", "item": f"i{i}", "weight": 5, "kind": "purchase"} for i in (2, 6, 10)]
    r = served.events(posted)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == 3 and len(set(r.json()["ids"])) == 3
    after = served.items("u0", k=5)
    assert after != [x["item"] for x in before["items"]]
    assert {"i2", "i6", "i10"}.isdisjoint(after)  # now seen: excluded
    assert any(genre(i) == "g2" for i in after)


def test_posting_events_does_not_hold_up_other_requests(shop: Shop) -> None:
    name = f"ep-{next(_numbers)}"
    shop.deploy(name)
    host = shop.host(name)
    app = RecsApp(host)
    released = threading.Event()

    def release() -> None:
        released.set()
        host._lock.release()

    async def main() -> tuple[int, bool, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            host._lock.acquire()  # as a reload replaying stored events holds it
            timer = threading.Timer(5.0, release)  # (if the loop were blocked: not forever)
            timer.start()
            posting = asyncio.ensure_future(
                client.post("/events", json={"user": "u0", "item": "i3"})
            )
            await asyncio.sleep(0.05)
            health = await client.get("/health")
            answered_meanwhile = not released.is_set()
            timer.cancel()
            if not released.is_set():
                release()
            posted = await posting
        return health.status_code, answered_meanwhile, posted.status_code

    try:
        assert asyncio.run(main()) == (200, True, 200)
    finally:
        app.close()


def test_an_unknown_user_gets_a_cold_start_answer(served: Client, shop: Shop) -> None:
    answer = served.recommend("someone-new", k=5)
    assert answer["cold_start"] is True
    assert len(answer["items"]) == 5 and all(x["because"] is None for x in answer["items"])
    popular = shop.data["item"].value_counts()
    assert answer["items"][0]["item"] in set(popular[popular == popular.max()].index)
    by_segment = served.items("someone-new", k=5, user_attributes={"group": "G1"})
    assert all(genre(i) == "g1" for i in by_segment)


def test_seen_items_are_excluded(served: Client, shop: Shop) -> None:
    for user in ("u3", "u17", "u42"):
        seen = shop.seen(user)
        assert seen.isdisjoint(served.items(user, k=20))
        assert seen & set(served.items(user, k=20, exclude_seen=False))


def test_filters_and_similar_items(served: Client) -> None:
    comedy = served.items("u1", k=5, filter={"genre": "g2"})
    assert comedy and all(genre(i) == "g2" for i in comedy)
    r = served.http.get("/similar", params={"item": "i1", "k": "3"})
    assert r.status_code == 200, r.text
    similar = [x["item"] for x in r.json()["items"]]
    assert len(similar) == 3 and "i1" not in similar
    r = served.http.post("/similar", json={"item": "i1", "k": 3, "filter": {"genre": "g3"}})
    assert r.status_code == 200 and all(genre(x["item"]) == "g3" for x in r.json()["items"])


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/recommend", {"user": "u1", "k": 0}, 422, "k"),
        ("POST", "/recommend", {"user": "u1", "k": -3}, 422, "k"),
        ("POST", "/recommend", {"user": "u1", "k": 10**9}, 422, "k"),
        ("POST", "/recommend", {"user": "u1", "k": "5"}, 422, "k"),
        ("POST", "/recommend", {"user": "u1", "k": 2.5}, 422, "k"),
        ("POST", "/recommend", {"k": 5}, 422, "user"),
        ("POST", "/recommend", {"user": None}, 422, "user"),
        ("POST", "/recommend", {"user": ["u1"]}, 422, "user"),
        ("POST", "/recommend", {"user": "u1", "colour": "red"}, 422, "colour"),
        ("POST", "/recommend", {"user": "u1", "exclude_seen": "yes"}, 422, "exclude_seen"),
        ("POST", "/recommend", {"user": "u1", "filter": {"size": "XL"}}, 422, "filter"),
        ("POST", "/recommend", {"user": "u1", "filter": "g1"}, 422, "filter"),
        ("POST", "/recommend", [1, 2], 422, "body"),
        ("POST", "/recommend", b'{"user": "u1", "k": NaN}', 422, "k"),
        ("POST", "/recommend", b"{not json", 422, "body"),
        ("GET", "/recommend", None, 405, None),
        ("GET", "/similar?item=nope", None, 404, "item"),
        ("GET", "/similar?item=i1&k=0", None, 422, "k"),
        ("GET", "/similar?item=i1&k=ten", None, 422, "k"),
        ("GET", "/similar?item=i1&k=--5", None, 422, "k"),
        ("GET", "/similar?item=i1&k=%C2%B2", None, 422, "k"),  # "²": a digit, not 0-9
        ("POST", "/similar", b"[" * 5000, 422, "body"),
        ("POST", "/recommend", {"user": 2**63}, 422, "user"),
        ("POST", "/events", b"[" * 5000, 422, "body"),
        ("GET", "/similar", None, 422, "item"),
        ("POST", "/events", {"user": "nobody", "item": "i1"}, 422, "user"),
        ("POST", "/events", {"user": "u1", "item": "i999"}, 422, "item"),
        ("POST", "/events", {"user": "u1", "item": "i1", "at": "yesterday"}, 422, "at"),
        ("POST", "/events", {"user": "u1", "item": "i1", "at": "2024-13-01T00:00:00Z"}, 422, "at"),
        ("POST", "/events", {"user": "u1", "item": "i1", "at": "2999-01-01T00:00:00Z"}, 422, "at"),
        ("POST", "/events", {"user": "u1", "item": "i1", "at": -5}, 422, "at"),
        ("POST", "/events", {"user": "u1", "item": "i1", "at": True}, 422, "at"),
        ("POST", "/events", {"user": "u1", "item": "i1", "weight": -1}, 422, "weight"),
        ("POST", "/events", {"user": "u1", "item": "i1", "weight": "5"}, 422, "weight"),
        ("POST", "/events", {"user": "u1", "item": "i1", "kind": "teleport"}, 422, "kind"),
        ("POST", "/events", {"user": "u1", "item": "i1", "extra": 1}, 422, "extra"),
        ("POST", "/events", {"user": "u1"}, 422, "item"),
        ("POST", "/events", [], 422, "events"),
        ("POST", "/events", "click", 422, "body"),
        ("POST", "/events", [{"user": "u1", "item": "i1"}, 7], 422, "events[1]"),
        ("POST", "/events", {"events": 5}, 422, "events"),
        ("POST", "/events", {"events": True}, 422, "events"),
        ("POST", "/events", {"events": "u1"}, 422, "events"),
        ("POST", "/events", {"events": {"user": "u1", "item": "i1"}}, 422, "events"),
        ("POST", "/events", {"user": "u1\x00", "item": "i1"}, 422, "user"),
        (
            "POST",
            "/events",
            [{"user": "u1", "item": "i1"}, {"user": "u1", "item": "i\n1"}],
            422,
            "events[1].item",
        ),
        ("POST", "/recommend", {"user": "u\x001"}, 422, "user"),
        ("GET", "/similar?item=i1%00", None, 422, "item"),
        ("POST", "/nowhere", {}, 404, "path"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field(
    served: Client,
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str | None,
) -> None:
    kw: dict[str, Any] = {}
    if isinstance(body, bytes):
        kw = {"content": body, "headers": {"content-type": "application/json"}}
    elif body is not None:
        kw = {"json": body}
    r = served.http.request(method, path, **kw)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field and error["message"]


def test_events_that_are_not_a_list_or_hold_control_characters_change_nothing(
    served: Client, shop: Shop
) -> None:
    for body in ({"events": 5}, {"events": "u1"}, {"events": {"user": "u1", "item": "i1"}}):
        r = served.events(body)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["message"].startswith("events must be a list of event objects")
    # PostgreSQL refuses NUL: such an event would be answered 200, then lost
    r = served.events([{"user": "u5", "item": "i3"}, {"user": "u5", "item": "i\x003"}])
    assert r.status_code == 422 and "control character" in r.json()["error"]["message"]
    health = served.http.get("/health").json()
    assert health["events_pending"] == 0 and health["events_written"] == 0
    assert shop.platform.metadata.count_events(WS, served.name) == 0


def test_k_defaults_to_what_the_catalogue_can_answer(shop: Shop) -> None:
    name = "k-above-catalogue"
    shop.deploy(name, policy={"k": 60})  # the catalogue holds 40 items
    host = shop.host(name)
    try:
        runtime = host.runtime
        assert runtime.cap == N_ITEMS
        # no k given: every item the user has not seen, not a 422 about a k never sent
        answer = runtime.recommend({"user": "u1", "exclude_seen": False})
        assert len(answer["items"]) == N_ITEMS
        assert len(runtime.recommend({"user": "u1"})["items"]) == N_ITEMS - len(shop.seen("u1"))
        assert len(runtime.similar({"item": "i1"})["items"]) == N_ITEMS - 1
        for call, record in (
            (runtime.recommend, {"user": "u1"}),
            (runtime.similar, {"item": "i1"}),
        ):
            with pytest.raises(InvalidInput, match=f"k is 60; it must lie between 1 and {N_ITEMS}"):
                call({**record, "k": 60})  # a k the client gave is still checked
    finally:
        host.close()


def test_events_without_a_time_are_distinct_events(shop: Shop) -> None:
    name = "arrival-stamps"
    shop.deploy(name)
    host = shop.host(name)
    try:
        # a view, then a purchase of one item by one user in one request: two events
        both = [
            {"user": "u9", "item": "i13", "kind": "view"},
            {"user": "u9", "item": "i13", "kind": "purchase"},
        ]
        assert host.post_events(both)["recorded"] == 2
        assert host.post_events(both)["recorded"] == 2  # at once again: stamps never repeat
        # a true duplicate, one explicit time twice, is still refused
        at = "2024-05-01T12:00:00Z"
        with pytest.raises(AlreadyExists, match="send each event once") as info:
            host.post_events([{**both[0], "at": at}, {**both[1], "at": at}])
        assert info.value.field == "events[1].at"
        host.events.flush()
    finally:
        host.close()
    stored = sorted(shop.platform.metadata.list_events(WS, name), key=lambda e: e.at)
    assert [e.kind for e in stored] == ["view", "purchase"] * 2
    assert len({e.at for e in stored}) == 4


def test_a_bad_event_in_a_batch_changes_nothing(served: Client, shop: Shop) -> None:
    before = served.items("u5", k=5)
    batch = [
        {"user": "u5", "item": "i3", "weight": 5},
        {"user": "u6", "item": "i7"},
        {"user": "u7", "item": "not-an-item"},
    ]
    r = served.events(batch)
    assert r.status_code == 422 and r.json()["error"]["field"] == "events[2].item"
    assert served.items("u5", k=5) == before
    health = served.http.get("/health").json()
    assert health["events_pending"] == 0 and health["events_written"] == 0
    assert shop.platform.metadata.count_events(WS, served.name) == 0


def test_roles_are_checked(served: Client, shop: Shop) -> None:
    anonymous = httpx.post(f"{served.url}/recommend", json={"user": "u1"})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["field"] == "authorization"
    viewer = {"Authorization": f"Bearer {shop.tokens['viewer']}"}
    r = httpx.post(f"{served.url}/recommend", json={"user": "u1"}, headers=viewer)
    assert r.status_code == 403
    r = httpx.post(f"{served.url}/events", json={"user": "u1", "item": "i1"}, headers=viewer)
    assert r.status_code == 403
    r = httpx.get(f"{served.url}/similar?item=i1", headers=viewer)
    assert r.status_code == 200


def test_a_duplicate_event_is_a_conflict(served: Client, shop: Shop) -> None:
    event = {"user": "u8", "item": "i12", "kind": "click", "at": "2024-05-01T12:00:00Z"}
    assert served.events(event).status_code == 200
    again = served.events({**event, "at": "2024-05-01T14:00:00+02:00"})  # the same instant
    assert again.status_code == 409 and again.json()["error"]["field"] == "at"
    twice = served.events([{**event, "at": 1714567000}, {**event, "at": 1714567000.0}])
    assert twice.status_code == 409 and twice.json()["error"]["field"] == "events[1].at"
    first = shop.data.iloc[0]  # an interaction the model was trained on
    trained = {"user": first["user"], "item": first["item"], "at": int(first["ts"])}
    r = served.events(trained)
    assert r.status_code == 409, r.text


def _register(shop: Shop, model: str, predictor: Any, signature: dict[str, Any]) -> ModelVersion:
    """Save ``predictor`` and register it as a new version of ``model``."""
    lp = shop.platform
    key, digest = save_recommender(predictor, lp.artifacts)
    if model not in {m.name for m in lp.metadata.list_models(WS)}:
        lp.metadata.create_model(Model(WS, model, task="recommendation"))
    return lp.metadata.add_model_version(
        ModelVersion(
            WS,
            model,
            0,
            "recommendation",
            "als",
            "r-test",
            f"leptonic://{WS}/dataset/interactions/1",
            key,
            digest,
            signature,
            {},
            "",
        )
    )


def _fit(frame: pd.DataFrame) -> Any:
    spec = RecommenderSpec(
        timestamp="ts", weight="rating", candidates=("als",), trials=1, timeout_s=None, seed=0
    )
    data = Interactions.from_table(frame, timestamp="ts", weight="rating")
    return fit_recommender(data, spec, log=lambda _: None).predictor


@pytest.fixture(scope="module")
def numbered(shop: Shop) -> tuple[str, int]:
    """An integer-id model: users 0-59, items 100-139 (the shop's, renumbered)."""
    frame = shop.data.assign(
        user=shop.data["user"].str[1:].astype("int64"),
        item=shop.data["item"].str[1:].astype("int64") + 100,
    )
    mv = _register(shop, "recs-int", _fit(frame), {})
    return mv.model, mv.version


def _stored_event(name: str, n: int, user: str, item: str) -> Event:
    at = datetime(2024, 5, 1, 12, tzinfo=UTC) + timedelta(minutes=n)
    return Event(WS, name, f"e{n}", user, item, at, 1.0, "click", at)


def test_ids_are_compared_as_the_model_spells_them(shop: Shop, numbered: tuple[str, int]) -> None:
    name = "numbered"
    shop.platform.endpoints.create(
        WS, name, *numbered, policy={"new_users": True, "new_items": True}
    )
    host = shop.host(name)
    try:
        p = host.runtime.predictor
        item = next(i for i in p.item_ids if i not in p.seen(1))
        before = (p.seen(1), p.recommend(1, 5), p.n_users, p.n_items)
        at = "2024-05-01T12:00:00Z"
        first = {"user": 1, "item": item, "at": at}
        bad: list[tuple[list[dict[str, Any]], type[AlreadyExists | InvalidInput], str]] = [
            # "0999" and "999" are one user, "05" and 5 one item: the same event twice
            (
                [
                    first,
                    {"user": "0999", "item": 102, "at": at},
                    {"user": "999", "item": 102, "at": at},
                ],
                AlreadyExists,
                "events[2].at",
            ),
            (
                [first, {"user": 1, "item": "05", "at": at}, {"user": 1, "item": 5, "at": at}],
                AlreadyExists,
                "events[2].at",
            ),
            ([first, {"user": "abc", "item": item}], InvalidInput, "events[1].user"),
            ([first, {"user": 1, "item": "²"}], InvalidInput, "events[1].item"),
            ([first, {"user": 1, "item": "9" * 20}], InvalidInput, "events[1].item"),
        ]
        for body, error, field in bad:
            with pytest.raises(error) as info:
                host.post_events(body)
            assert info.value.field == field, body
        assert (p.seen(1), p.recommend(1, 5), p.n_users, p.n_items) == before
        assert p.user_code(999) is None and p.item_code(5) is None
        assert host.events.pending == 0
        # one spelling of each: applied, and stored as the model spells the ids
        r = host.post_events([{"user": "0999", "item": "05", "at": at}, {**first, "user": " 1 "}])
        assert r["recorded"] == 2 and item in p.seen(1) and p.seen(999) == [5]
        host.events.flush()
        stored = shop.platform.metadata.list_events(WS, name)
        assert sorted((e.user, e.item) for e in stored) == sorted([("999", "5"), ("1", str(item))])
        with pytest.raises(AlreadyExists):
            host.post_events({"user": 999, "item": " 5", "at": at})
    finally:
        host.close()
    assert host.events.spilled == 0


def test_the_log_spells_the_user_as_the_events_do(shop: Shop, numbered: tuple[str, int]) -> None:
    name = "numbered-log"
    shop.platform.endpoints.create(WS, name, *numbered)
    start = datetime.now(UTC) - timedelta(seconds=1)
    host = shop.host(name)
    try:
        answer = host.runtime.recommend({"user": "05", "k": 3})
        assert answer["user"] == "05"  # the answer echoes the request
        host.post_events({"user": 5, "item": answer["items"][0]["item"], "kind": "click"})
        host.runtime.pii_salt = "pepper"  # as for personal user ids: the log holds a hash
        host.runtime.recommend({"user": " 007", "k": 3})
    finally:
        host.close()
    lp = shop.platform
    logged = sorted(lp.metadata.list_predictions(WS, name), key=lambda p: p.at)
    assert [(p.entity, p.inputs["user"]) for p in logged] == [
        ("5", 5),
        (hash_value("7", "pepper"), hash_value("7", "pepper")),
    ]
    (event,) = lp.metadata.list_events(WS, name)
    assert event.user == "5"
    # so monitoring joins the recommendation with its click
    report = recommendation_monitoring(lp.metadata, lp.artifacts, WS, name, since=start)
    assert report.recommendations == 2 and report.clicked == 1


def test_replay_skips_and_counts_ids_the_model_cannot_hold(
    shop: Shop, numbered: tuple[str, int]
) -> None:
    name = "numbered-replay"
    shop.platform.endpoints.create(
        WS, name, *numbered, policy={"new_users": True, "new_items": True}
    )
    shop.platform.metadata.append_events(
        [
            _stored_event(name, 1, "abc", "101"),  # e.g. stored while a text-id model was served
            _stored_event(name, 2, "1", "x1"),
            _stored_event(name, 3, "9" * 20, "101"),  # beyond int64
            _stored_event(name, 4, "2", "0102"),
            _stored_event(name, 5, "77", "7"),  # a new user and a new item: allowed
        ]
    )
    host = shop.host(name)  # loads: the events it cannot hold are skipped, not fatal
    try:
        runtime = host.runtime
        assert (runtime.replayed, runtime.replay_skipped) == (2, 3)
        assert host.health()["replay_skipped"] == 3
        assert 102 in runtime.predictor.seen(2) and runtime.predictor.seen(77) == [7]
        assert runtime.replay([_stored_event(name, 6, "u1", "101")]) == 0  # a journal too
        assert runtime.replay_skipped == 4
        assert host.reload(force=True) and host.runtime.replay_skipped == 3
    finally:
        host.close()


def test_ids_beyond_int64_are_refused(shop: Shop) -> None:
    name = "big-ids"
    shop.deploy(name, policy={"new_users": True, "new_items": True})
    host = shop.host(name)
    try:
        for body, field in [
            ({"user": 10**250, "item": "i1"}, "user"),  # its text: 251 characters
            ({"user": "u1", "item": 2**63}, "item"),
            (
                [{"user": "u1", "item": "i1"}, {"user": -(2**63) - 1, "item": "i1"}],
                "events[1].user",
            ),
        ]:
            with pytest.raises(InvalidInput, match="int64") as info:
                host.post_events(body)
            assert info.value.field == field
        assert host.post_events({"user": 2**63 - 1, "item": -(2**63)})["recorded"] == 1
        host.events.flush()
        (event,) = shop.platform.metadata.list_events(WS, name)
        assert (event.user, event.item) == (str(2**63 - 1), str(-(2**63)))
    finally:
        host.close()
    assert host.events.spilled == 0


def test_a_resend_after_a_retrain_is_a_conflict(shop: Shop) -> None:
    from leptonic.serving.recs_retrain import append_events

    name = "resent"
    shop.deploy(name)
    host = shop.host(name)
    lp = shop.platform
    ahead = datetime.now(UTC).replace(microsecond=250_000) + timedelta(hours=1)
    sent = [
        {"user": "u14", "item": "i30", "at": "2024-05-01T12:00:00Z"},
        {"user": "u14", "item": "i30", "at": "2024-05-02T12:00:00Z"},  # the pair's latest
        {"user": "u15", "item": "i31", "at": ahead.isoformat()},  # trained as a whole second
    ]
    try:
        host.post_events(sent)
        host.events.flush()
        stored = lp.metadata.list_events(WS, name, limit=None)
        # a retrain learns them (in the data's own columns) and records its cut-off
        frame = append_events(
            shop.data, stored, user="user", item="item", timestamp="ts", weight="rating"
        )
        signature = {
            "events_until": stored[-1].received_at.isoformat(),
            "events_of": f"{WS}/{name}",
        }
        v2 = _register(shop, "recs", _fit(frame), signature)
        lp.endpoints.set_routes(WS, name, (Route("recs", v2.version, 100.0),), reason="retrain")
        assert host.reload() and host.runtime.version == v2.version
        assert host.runtime.replayed == 0
        p = host.runtime.predictor
        state = (p.seen("u14"), p.recommend("u14", 5), p.seen("u15"), p.recommend("u15", 5))
        for event in sent:
            with pytest.raises(AlreadyExists) as info:
                host.post_events(event)
            assert info.value.field == "at", event
            with pytest.raises(AlreadyExists) as info:
                host.post_events([{"user": "u1", "item": "i1"}, event])
            assert info.value.field == "events[1].at", event
        assert (p.seen("u14"), p.recommend("u14", 5), p.seen("u15"), p.recommend("u15", 5)) == state
        # a new event of the pair, timed before the cut-off, is not a resend
        assert host.post_events({**sent[0], "at": "2024-04-30T12:00:00Z"})["recorded"] == 1
    finally:
        host.close()
    assert host.events.spilled == 0 and lp.metadata.count_events(WS, name) == 4


# -- durability ---------------------------------------------------------------------------------
def test_a_graceful_restart_keeps_every_event_and_its_effect(shop: Shop, live_server: Any) -> None:
    name = "restart"
    shop.deploy(name)
    metadata = shop.platform.metadata
    accepted: list[str] = []
    with live_server(shop.app(shop.host(name))) as server:
        client = Client(server.url, shop.tokens["dev"])
        untouched = client.items("u9", k=8)
        r = client.events(
            [{"user": "u9", "item": f"i{i}", "weight": 5, "kind": "purchase"} for i in (0, 4, 8)]
        )
        accepted += r.json()["ids"]
        for n in range(20, 40):  # many small posts: some are still queued at shutdown
            r = client.events({"user": f"u{n}", "item": "i39", "kind": "view"})
            assert r.status_code == 200
            accepted += r.json()["ids"]
        assert client.events({"user": "u9", "item": "i0", "at": "garbage"}).status_code == 422
        answer = client.recommend("u9", k=8)
        assert [x["item"] for x in answer["items"]] != untouched
        client.http.close()
    stored = metadata.list_events(WS, name, limit=None)
    assert sorted(e.id for e in stored) == sorted(accepted)  # exactly the accepted events

    host = shop.host(name)  # a new process would do the same: load, replay
    assert host.runtime.replayed == len(accepted)
    with live_server(shop.app(host)) as server:
        client = Client(server.url, shop.tokens["dev"])
        again = client.recommend("u9", k=8)
        assert [x["item"] for x in again["items"]] == [x["item"] for x in answer["items"]]
        assert [x["score"] for x in again["items"]] == pytest.approx(
            [x["score"] for x in answer["items"]], rel=1e-5, abs=1e-6
        )
        # the replayed event is known: sending it again is a conflict
        first = stored[0]
        r = client.events({"user": first.user, "item": first.item, "at": first.at.isoformat()})
        assert r.status_code == 409
        client.http.close()
    assert metadata.count_events(WS, name) == len(accepted)


def test_new_users_and_items_when_the_policy_allows_them(shop: Shop, live_server: Any) -> None:
    name = "open-shop"
    shop.deploy(name, policy={"new_users": True, "new_items": True, "k": 5})
    with live_server(shop.app(shop.host(name))) as server:
        client = Client(server.url, shop.tokens["dev"])
        assert client.recommend("newbie")["cold_start"] is True
        # events only on a new item (no factors yet): still the cold start, and said so
        r = client.events([{"user": "fresh", "item": "brand-new-2", "weight": 5}])
        assert r.status_code == 200, r.text
        assert client.recommend("fresh")["cold_start"] is True
        r = client.events(
            [
                {"user": "newbie", "item": "i2", "weight": 5},
                {"user": "newbie", "item": "brand-new", "weight": 5},
                {"user": "u2", "item": "brand-new", "weight": 5},
            ]
        )
        assert r.status_code == 200, r.text
        warm = client.recommend("newbie")
        assert warm["cold_start"] is False and len(warm["items"]) == 5
        client.http.close()
    host = shop.host(name)
    try:
        assert host.runtime.predictor.item_code("brand-new") is not None
        assert set(host.runtime.predictor.seen("newbie")) == {"i2", "brand-new"}
    finally:
        host.close()


# -- deployment and monitoring -------------------------------------------------------------
def test_deploying_checks_the_recommendation_policy(shop: Shop) -> None:
    assert recommendation_policy()["kind"] == "recommendation"
    with pytest.raises(InvalidInput) as info:
        shop.deploy("bad-policy", policy={"k": 500, "max_k": 100})
    assert info.value.field == "k"
    with pytest.raises(InvalidInput) as info:
        shop.deploy("bad-policy", policy={"kind": "threshold"})
    assert info.value.field == "kind"
    with pytest.raises(InvalidInput) as info:
        shop.platform.endpoints.create(WS, "bad-policy", *shop.model, entity_key="user")
    assert info.value.field == "entity_key"
    shop.deploy("checked-policy", policy={"k": 4, "kinds": ["view", "buy"]})
    spec = shop.platform.metadata.get_policy_version(WS, "checked-policy", 1).spec
    assert spec["kind"] == "recommendation" and spec["max_k"] == 100 and spec["k"] == 4
    assert spec["kinds"] == ["view", "buy"] and spec["default_kind"] == "view"


def test_monitoring_from_stored_events(shop: Shop, live_server: Any) -> None:
    name = "monitored"
    shop.deploy(name)
    start = datetime.now(UTC) - timedelta(seconds=1)
    with live_server(shop.app(shop.host(name))) as server:
        client = Client(server.url, shop.tokens["dev"])
        for u in range(10):
            items = client.items(f"u{u}", k=5)
            if u < 4:  # four users click their first recommendation, one of them buys it
                kind = "purchase" if u == 0 else "click"
                assert client.events({"user": f"u{u}", "item": items[0], "kind": kind}).is_success
            if u == 0:
                client.events({"user": "u0", "item": items[1], "kind": "click"})
        client.http.close()
    lp = shop.platform
    report = recommendation_monitoring(lp.metadata, lp.artifacts, WS, name, since=start)
    assert report.recommendations == 10 and report.users == 10
    assert report.clicked == 4 and report.click_through_rate == pytest.approx(0.4)
    assert report.converted == 1 and report.conversion_rate == pytest.approx(0.1)
    assert report.catalogue_size == N_ITEMS
    assert 0 < report.coverage <= 1 and report.distinct_items >= 5  # type: ignore[operator]
    assert report.events == 5 and report.events_by_kind == {"click": 4, "purchase": 1}
    assert report.popularity_psi is not None and report.popularity_psi >= 0
    assert report.to_dict()["window_start"] == start.isoformat()


def test_health_and_info(served: Client) -> None:
    health = served.http.get("/health").json()
    assert health["status"] == "ok" and health["items"] == N_ITEMS and health["users"] == N_USERS
    assert health["shortlists"] is True  # an ALS model: each user's best items are listed
    info = served.http.get("/").json()
    assert info["task"] == "recommendation" and info["item_attributes"] == ["genre"]


def test_a_reload_rebuilds_the_predictor_with_every_event(shop: Shop) -> None:
    name = "reloaded"
    shop.deploy(name)
    host = shop.host(name)
    try:
        posted = host.post_events([{"user": "u11", "item": f"i{i}", "weight": 5} for i in (1, 5)])
        assert posted["recorded"] == 2
        before = host.runtime.recommend({"user": "u11", "k": 6})["items"]
        old = host.runtime.predictor
        assert host.reload() is False  # same revision: nothing to do
        assert host.reload(force=True) is True
        assert host.runtime.predictor is not old and host.runtime.replayed == 2
        after = host.runtime.recommend({"user": "u11", "k": 6})["items"]
        assert [x["item"] for x in after] == [x["item"] for x in before]
        with pytest.raises(AlreadyExists):
            host.post_events({"user": "u11", "item": "i1", "at": posted_at(shop, name, "i1")})
    finally:
        host.close()
    assert shop.platform.metadata.count_events(WS, name) == 2


def posted_at(shop: Shop, name: str, item: str) -> str:
    (event,) = [e for e in shop.platform.metadata.list_events(WS, name) if e.item == item]
    return event.at.isoformat()


def test_a_retrained_version_replays_only_the_events_it_did_not_learn(shop: Shop) -> None:
    from leptonic.serving.recs import events_for_retrain

    name = "retrained"
    shop.deploy(name)
    host = shop.host(name)
    try:
        host.post_events({"user": "u12", "item": "i2", "weight": 5})
        host.events.flush()
        frame, until = events_for_retrain(shop.platform.metadata, WS, name)
        assert list(frame.columns) == ["user", "item", "weight", "kind", "ts"]
        assert frame[["user", "item"]].values.tolist() == [["u12", "i2"]] and until is not None
        host.post_events({"user": "u13", "item": "i3", "weight": 5})
        # a retrain on the first event registers a new version that says so
        lp = shop.platform
        v1 = lp.metadata.get_model_version(WS, *shop.model)
        v2 = lp.metadata.add_model_version(
            ModelVersion(
                WS,
                "recs",
                0,
                "recommendation",
                "als",
                "r2",
                v1.dataset,
                v1.artifact_key,
                v1.artifact_digest,
                {"events_until": until.isoformat()},
                {},
                "",
            )
        )
        lp.endpoints.set_routes(WS, name, (Route("recs", v2.version, 100.0),), reason="v2")
        assert host.reload() is True
        assert host.runtime.version == v2.version
        assert host.runtime.replayed == 1  # u13's event; u12's is in the (pretend) training
        assert host.runtime.predictor.seen("u13") and "i2" not in host.runtime.predictor.seen("u12")
    finally:
        host.close()


def test_a_version_trained_by_the_platform_is_served(
    shop: Shop, live_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lp = shop.platform
    path = tmp_path_factory.mktemp("interactions") / "clicks.parquet"
    shop.data.to_parquet(path, index=False)
    lp.add_data(WS, path, name="clicks")
    spec = FAST_ALS
    mv = lp.train(WS, "clicks", spec, model_name="platform-recs").model_version
    assert mv is not None and mv.task == "recommendation"
    lp.endpoints.create(WS, "trained", mv.model, mv.version)
    host = shop.host("trained")
    with live_server(shop.app(host)) as server:
        client = Client(server.url, shop.tokens["dev"])
        before = client.items("u3", k=5)
        assert set(host.runtime.predictor.seen("u3")).isdisjoint(before)
        assert client.events({"user": "u3", "item": before[0], "kind": "click"}).is_success
        assert before[0] not in client.items("u3", k=5)
        client.http.close()


def test_personal_user_ids_are_hashed_in_the_prediction_log(
    shop: Shop, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lp = shop.platform
    data = shop.data.assign(user=shop.data["user"].map(lambda u: f"{u}@example.com"))
    path = tmp_path_factory.mktemp("interactions") / "mails.parquet"
    data.to_parquet(path, index=False)
    dv, _ = lp.add_data(WS, path, name="mail-clicks")
    assert dv.pii == {"user": "email"}
    mv = lp.train(WS, "mail-clicks", FAST_ALS, model_name="mail-recs").model_version
    assert mv is not None and user_is_pii(lp.metadata, mv)
    assert not user_is_pii(lp.metadata, lp.metadata.get_model_version(WS, *shop.model))
    lp.endpoints.create(WS, "mail", mv.model, mv.version)
    host = shop.host("mail")
    try:
        answer = host.runtime.recommend({"user": "u3@example.com", "k": 3})
        assert answer["user"] == "u3@example.com" and len(answer["items"]) == 3
        host.post_events(
            {"user": "u3@example.com", "item": answer["items"][0]["item"], "kind": "click"}
        )
    finally:
        host.close()
    [logged] = lp.metadata.list_predictions(WS, "mail")
    hashed = hash_value("u3@example.com", lp.metadata.get_workspace(WS).pii_salt)
    assert logged.entity == hashed and logged.inputs["user"] == hashed
    assert "example.com" not in json.dumps([logged.inputs, logged.entity, logged.reasons])
    # monitoring matches the hashed recommendation with the user's click
    report = recommendation_monitoring(lp.metadata, lp.artifacts, WS, "mail")
    assert report.recommendations == 1 and report.clicked == 1


# -- fuzz -------------------------------------------------------------------------------------
_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["u1", "i1", "g1", "genre", "G1", "group", "2024-05-01T12:00:00Z"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = {
    "/recommend": ["user", "k", "filter", "exclude_seen", "user_attributes"],
    "/similar": ["item", "k", "filter"],
    "/events": ["user", "item", "weight", "kind", "at"],
}


@pytest.fixture(scope="module")
def fuzzed(shop: Shop) -> Iterator[RecsApp]:
    shop.deploy("fuzz", policy={"new_users": True, "new_items": True})
    app = RecsApp(shop.host("fuzz"), max_body=8192)
    yield app
    app.close()


def _call(app: RecsApp, path: str, body: bytes) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    chunks = [body]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunks.pop() if chunks else b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(sorted(_FIELDS)),
    values=st.lists(_ANY, min_size=5, max_size=5),
    keep=st.lists(st.booleans(), min_size=5, max_size=5),
    whole=_ANY,
    mangled=st.booleans(),
)
def test_any_body_gets_an_answer_or_a_4xx(
    fuzzed: RecsApp, path: str, values: list[Any], keep: list[bool], whole: Any, mangled: bool
) -> None:
    if mangled:
        body: Any = whole
    else:
        body = {f: v for f, v, k in zip(_FIELDS[path], values, keep, strict=False) if k}
        body.setdefault(_FIELDS[path][0], "u1" if path != "/similar" else "i1")
    status, payload = _call(fuzzed, path, json.dumps(body, allow_nan=True).encode())
    assert status < 500, payload
    if status >= 400:
        error = json.loads(payload)["error"]
        assert error["message"] and "field" in error


def test_a_retrain_learns_the_endpoint_events_and_is_served(
    shop: Shop, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lp = shop.platform
    path = tmp_path_factory.mktemp("learning") / "plays.parquet"
    shop.data.to_parquet(path, index=False)
    base, _ = lp.add_data(WS, path, name="plays")
    spec = FAST_ALS
    v1 = lp.train(WS, "plays", spec, model_name="learning").model_version
    assert v1 is not None
    lp.endpoints.create(WS, "learning", v1.model, v1.version)
    host = shop.host("learning")
    try:
        nothing = lp.endpoints.retrain_from_events(WS, "learning", reason="nightly")
        assert nothing.outcome is None and nothing.new_events == 0
        host.post_events([{"user": "u3", "item": "i2", "weight": 5}, {"user": "u4", "item": "i6"}])
        host.events.flush()
        # events younger than settle_s may still be on their way to the store: left for later
        young = lp.endpoints.retrain_from_events(WS, "learning", reason="nightly")
        assert young.outcome is None and young.new_events == 0
        wait = lp.endpoints.retrain_from_events(
            WS, "learning", min_new_events=5, reason="nightly", settle_s=0
        )
        assert wait.outcome is None and wait.new_events == 2
        done = lp.endpoints.retrain_from_events(
            WS, "learning", min_new_events=2, reason="nightly", settle_s=0
        )
        assert done.outcome is not None and done.promoted and done.new_events == 2
        v2 = done.outcome.model_version
        assert v2 is not None and v2.version == v1.version + 1
        dv = lp.dataset_version(WS, "plays", done.dataset_version)
        assert dv.version == base.version + 1 and dv.num_rows == base.num_rows + 2
        assert dv.source["events_of"] == f"{WS}/learning" and dv.source["events_added"] == 2
        assert v2.signature["events_of"] == f"{WS}/learning"
        assert v2.signature["events_until"] == dv.source["events_until"]
        assert lp.endpoints.get(WS, "learning").routes == (Route(v2.model, v2.version, 100.0),)
        actions = [e.action for e in lp.audit_log(workspace=WS, limit=10)]
        assert {"endpoint.retrain", "endpoint.promote"} <= set(actions)
        # the serving process picks the new version up; its events are in the training
        assert host.reload() and host.runtime.version == v2.version
        assert host.runtime.replayed == 0
        assert "i2" in host.runtime.predictor.seen("u3")
        # the next retrain adds only the events that came after
        host.post_events({"user": "u5", "item": "i9", "weight": 4})
        host.events.flush()
        again = lp.endpoints.retrain_from_events(
            WS, "learning", promote=False, reason="more", settle_s=0
        )
        assert again.new_events == 1 and not again.promoted
        assert lp.dataset_version(WS, "plays", again.dataset_version).num_rows == dv.num_rows + 1
        assert lp.endpoints.get(WS, "learning").routes[0].version == v2.version
        # and a promotion rolls back like any other
        lp.endpoints.rollback(WS, "learning", reason="compare")
        assert lp.endpoints.get(WS, "learning").routes[0].version == v1.version
    finally:
        host.close()


def test_recommendation_endpoints_serve_one_version(shop: Shop) -> None:
    shop.deploy("single")
    with pytest.raises(InvalidInput, match="serves one version"):
        shop.platform.endpoints.canary(WS, "single", *shop.model, 10, reason="try")
    with pytest.raises(InvalidInput, match="serves one version"):
        shop.platform.endpoints.set_shadow(WS, "single", *shop.model, reason="try")
