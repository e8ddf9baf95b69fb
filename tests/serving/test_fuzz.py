"""Whatever the body, the data plane answers 2xx or 4xx with a JSON error, never 5xx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leptonic.serving.app import EndpointApp
from leptonic.serving.host import EndpointHost
from serving.conftest import Deployed

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def app(deployed: Deployed) -> Iterator[tuple[EndpointApp, list[str]]]:
    lp = deployed.platform
    model, version = deployed.logistic
    lp.as_user("boss").endpoints.create("credit", "fuzz", model, version)
    host = EndpointHost(lp.metadata, lp.registry, "credit", "fuzz", reload_interval=0)
    application = EndpointApp(host, max_body=8192)
    yield application, deployed.inputs
    application.close()


def _call(app: EndpointApp, path: str, body: bytes) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    chunks = [body]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunks.pop() if chunks else b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_JSON, path=st.sampled_from(["/decide", "/feedback"]))
def test_any_json_gets_a_clear_answer(
    app: tuple[EndpointApp, list[str]], value: Any, path: str
) -> None:
    application, _ = app
    status, body = _call(application, path, json.dumps(value).encode())
    assert status < 500, body
    if status >= 400:
        assert json.loads(body)["error"]["message"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.dictionaries(st.text(max_size=12), _JSON, max_size=4), drop=st.integers(0, 30))
def test_mangled_records_get_a_clear_answer(
    app: tuple[EndpointApp, list[str]], changes: dict[str, Any], drop: int
) -> None:
    application, inputs = app
    record: dict[str, Any] = {name: 1.0 for name in inputs}
    if drop < len(inputs):
        record.pop(inputs[drop])
    record.update(changes)
    status, body = _call(application, "/decide", json.dumps(record).encode())
    assert status < 500, body
    if status != 200:
        error = json.loads(body)["error"]
        assert error["field"] is not None, error


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes(app: tuple[EndpointApp, list[str]], raw: bytes) -> None:
    status, _ = _call(app[0], "/decide", raw)
    assert status < 500
