"""``/decide`` in the platform server: a shadow's failure never reaches the live answer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from api._support import Server, _first_record
from leptonic.serving.runtime import ServedVersion


class _Broken:
    """A shadow model with the live signature whose scoring raises."""

    task = "binary"

    def __init__(self, inputs: Any) -> None:
        self.inputs = inputs

    def predict_one(self, record: Any) -> float:
        raise RuntimeError("the shadow model is broken")


def test_a_failing_shadow_never_changes_the_live_answer(
    populated: Server, applicants_csv: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = populated
    host = server.app.state.endpoint_hosts.get("alpha", "scorecard")
    live = host.runtime.live[0]
    record = _first_record(server, applicants_csv)
    with server.client("dev") as dev:
        before = dev.post("/workspaces/alpha/endpoints/scorecard/decide", json=record)
        assert before.status_code == 200
        host.runtime.shadow = ServedVersion(
            "shadow", 9, _Broken(live.predictor.inputs), live.explainer
        )
        with caplog.at_level(logging.ERROR, logger="leptonic.serving.runtime"):
            r = dev.post("/workspaces/alpha/endpoints/scorecard/decide", json=record)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["model"] == "scorecard" and answer["decision"] == before.json()["decision"]
    assert answer["request_id"] in caplog.text and "the shadow model is broken" in caplog.text
    assert host.log_health()["shadow_failures"] == 1
    host.reload(force=True)  # a new revision served: the count is kept
    assert host.shadow_failures == 1 and host.runtime.shadow is None
    server.app.state.endpoint_hosts.log.flush()
    logged = server.platform.endpoints.predictions("alpha", "scorecard", route=None, limit=10)
    mine = [p for p in logged if p.request_id == answer["request_id"]]
    assert [p.route for p in mine] == ["live"]
