"""The data plane over HTTP: decisions, bad requests (4xx naming the field,
never a 5xx), authentication and roles, health."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leptonic.serving.app import EndpointApp, TokenAuth
from leptonic.serving.host import EndpointHost
from serving.conftest import Deployed, LiveServer


@pytest.fixture(scope="module")
def served(deployed: Deployed) -> Iterator[tuple[str, Deployed]]:
    lp = deployed.platform
    model, version = deployed.lightgbm
    lp.as_user("boss").endpoints.create(
        "credit",
        "app-test",
        model,
        version,
        entity_key="applicant_id",
        policy={
            "bands": [{"decision": "approve", "max": 0.1}, {"decision": "decline"}],
            "rules": [
                {
                    "field": "age",
                    "op": "<",
                    "value": 18,
                    "decision": "decline",
                    "reason": "applicants must be 18 or older",
                }
            ],
            "reasons": 3,
        },
    )
    host = EndpointHost(lp.metadata, lp.registry, "credit", "app-test", reload_interval=0)
    app = EndpointApp(host, auth=TokenAuth(lp.metadata, "credit"), max_body=4096)
    with LiveServer(app) as server:
        yield server.url, deployed
    app.close()


def _post(url: str, body: Any, token: str | None, *, raw: bytes | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if raw is not None:
        return httpx.post(url, content=raw, headers={**headers, "Content-Type": "application/json"})
    return httpx.post(url, json=body, headers=headers)


def test_a_decision(served: tuple[str, Deployed]) -> None:
    url, d = served
    record = d.records(1)[0]
    r = _post(f"{url}/decide", record, d.tokens["dev"])
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"request_id", "decision", "score", "model", "version", "reasons"}
    assert body["decision"] in {"approve", "decline"} and 0 <= body["score"] <= 1
    if body["decision"] == "decline":
        assert 1 <= len(body["reasons"]) <= 3


def test_a_hard_rule_decides_before_the_model(served: tuple[str, Deployed]) -> None:
    url, d = served
    record = {**d.records(1)[0], "age": 16}
    body = _post(f"{url}/decide", record, d.tokens["dev"]).json()
    assert body["decision"] == "decline"
    assert body["reasons"][0]["feature"] == "age" and "18" in body["reasons"][0]["text"]


def _bad(served: tuple[str, Deployed], change: Any) -> httpx.Response:
    url, d = served
    record = d.records(1)[0]
    return _post(f"{url}/decide", change(record), d.tokens["dev"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: {k: v for k, v in r.items() if k != "annual_income"}, "annual_income"),
        (lambda r: {**r, "annual_income": "lots"}, "annual_income"),
        (lambda r: {**r, "favourite_colour": "blue"}, "favourite_colour"),
        (lambda r: {**r, "region": ["a"]}, "region"),
        (lambda r: [r], "body"),
        (lambda r: {k: v for k, v in r.items() if k != "applicant_id"}, "applicant_id"),
        (lambda r: {**r, "applicant_id": "a\x00b"}, "applicant_id"),
        (lambda r: {**r, "applicant_id": {"id": 1}}, "applicant_id"),
    ],
)
def test_bad_records_are_422_naming_the_field(
    served: tuple[str, Deployed], change: Any, field: str
) -> None:
    r = _bad(served, change)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"annual_income": NaN}', "annual_income"),
        (b'{"annual_income": Infinity}', "annual_income"),
        (b"not json", "body"),
        (b"", "body"),
        (b'\xef\xbb\xbf{"annual_income": 1}', "body"),
        (b'{"annual_income": 1' + b"0" * 400 + b"}", "annual_income"),
    ],
)
def test_bad_bodies(served: tuple[str, Deployed], raw: bytes, field: str) -> None:
    url, d = served
    r = _post(f"{url}/decide", None, d.tokens["dev"], raw=raw)
    assert r.status_code == 422 and r.json()["error"]["field"] == field


def test_oversized_body_is_413(served: tuple[str, Deployed]) -> None:
    url, d = served
    r = _post(f"{url}/decide", None, d.tokens["dev"], raw=b'{"a": "' + b"x" * 10_000 + b'"}')
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_auth(served: tuple[str, Deployed]) -> None:
    url, d = served
    record = d.records(1)[0]
    assert _post(f"{url}/decide", record, None).status_code == 401
    assert _post(f"{url}/decide", record, "lep_nope").status_code == 401
    assert _post(f"{url}/decide", record, d.tokens["stranger"]).status_code == 404
    r = _post(f"{url}/feedback", {"request_id": "x", "label": 1}, d.tokens["viewer"])
    assert r.status_code == 403
    r = _post(f"{url}/decide", record, d.tokens["viewer"])
    assert r.status_code == 403 and "developer" in r.json()["error"]["message"]


def test_feedback_errors(served: tuple[str, Deployed]) -> None:
    url, d = served
    token = d.tokens["dev"]
    r = _post(f"{url}/feedback", {"request_id": "unknown", "label": 1}, token)
    assert r.status_code == 404 and "unknown" in r.json()["error"]["message"]
    r = _post(f"{url}/feedback", {"request_id": "x", "label": 3}, token)
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.label"
    r = _post(f"{url}/feedback", {"label": 1}, token)
    assert r.status_code == 422


def test_health_and_routes(served: tuple[str, Deployed]) -> None:
    url, d = served
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["endpoint"] == "app-test"
    assert health["log_dropped"] == health["log_spilled"] == health["shadow_failures"] == 0
    info = httpx.get(f"{url}/", headers={"Authorization": f"Bearer {d.tokens['viewer']}"}).json()
    assert info["routes"][0]["percent"] == 100 and info["entity_key"] == "applicant_id"
    assert httpx.get(f"{url}/decide").status_code == 405
    assert httpx.get(f"{url}/nope").status_code == 404


def test_a_refused_token_is_refused_again_without_a_query(deployed: Deployed) -> None:
    from leptonic.errors import Unauthenticated

    metadata = deployed.platform.metadata
    auth = TokenAuth(metadata, "credit", ttl=60.0)
    lookups: list[str] = []
    lookup = metadata.get_token_by_hash

    def counted(digest: str) -> Any:
        lookups.append(digest)
        return lookup(digest)

    metadata.get_token_by_hash = counted  # type: ignore[method-assign]
    try:
        for _ in range(50):  # a flood of one unknown token
            with pytest.raises(Unauthenticated, match="unknown API token"):
                auth.caller(b"Bearer lep_no-such-token")
        assert len(lookups) == 1
        user, _ = auth.caller(f"Bearer {deployed.tokens['dev']}".encode())
        assert user and len(lookups) == 2  # a good token is still looked up
    finally:
        del metadata.get_token_by_hash  # type: ignore[method-assign]


def test_a_token_lookup_does_not_block_the_event_loop(deployed: Deployed) -> None:
    # the store is slow: the lookup waits until another coroutine has run. Were it
    # run on the event loop, that coroutine could not run and the lookup would
    # give up (no wall-clock threshold: only the order of events is checked)
    from leptonic.errors import Unauthenticated

    metadata = deployed.platform.metadata
    auth = TokenAuth(metadata, "credit", ttl=60.0)
    lookup = metadata.get_token_by_hash
    others_ran = threading.Event()
    order: list[str] = []

    def slow(digest: str) -> Any:
        if not others_ran.wait(timeout=10):
            raise RuntimeError("the token lookup blocked the event loop")
        order.append("lookup")
        return lookup(digest)

    async def other() -> None:
        order.append("other")
        others_ran.set()

    async def main(header: bytes) -> tuple[str, Any]:
        others_ran.clear()
        checked = asyncio.ensure_future(auth.caller_async(header))  # scheduled first
        await asyncio.gather(checked, other(), return_exceptions=True)
        return checked.result()

    metadata.get_token_by_hash = slow  # type: ignore[method-assign]
    try:
        with pytest.raises(Unauthenticated, match="unknown API token"):
            asyncio.run(main(b"Bearer lep_no-such-token"))
        good = f"Bearer {deployed.tokens['dev']}".encode()
        user, role = asyncio.run(main(good))
        assert user == "dev" and role.value == "developer"
        assert order == ["other", "lookup"] * 2
        # cached now (and the refusal too): answered without a lookup
        assert asyncio.run(auth.caller_async(good))[0] == "dev"
        with pytest.raises(Unauthenticated, match="unknown API token"):
            asyncio.run(auth.caller_async(b"Bearer lep_no-such-token"))
        assert len(order) == 4
    finally:
        del metadata.get_token_by_hash  # type: ignore[method-assign]
