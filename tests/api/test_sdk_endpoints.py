"""``Client.endpoints`` mirrors ``Platform.endpoints`` over the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api._support import Server
from leptonic import Client
from leptonic.errors import Conflict, InvalidInput, NotFound, PermissionDenied, SchemaError


def _client(server: Server, user: str) -> Client:
    return Client("http://leptonic", server.tokens[user], transport=server.transport)


def test_endpoint_lifecycle_through_the_sdk(populated: Server) -> None:
    server = populated
    with _client(server, "ana") as ana, _client(server, "dev") as dev:
        endpoints = ana.endpoints
        ep = endpoints.get("alpha", "scorecard")
        assert ep.routes[0].model == "scorecard" and ep.routes[0].percent == 100
        assert [e.name for e in endpoints.list_endpoints("alpha")] == ["scorecard"]
        record = {
            i["name"]: None for i in server.platform.load_model("alpha", "scorecard", 1).inputs
        }
        answer = dev.endpoints.decide("alpha", "scorecard", record)
        assert answer["decision"] in {"approve", "review", "reject"}
        assert (
            dev.endpoints.feedback(
                "alpha", "scorecard", [{"request_id": answer["request_id"], "label": 1}]
            )
            == 1
        )
        server.app.state.endpoint_hosts.log.flush()
        logged = dev.endpoints.predictions("alpha", "scorecard", limit=10)
        assert answer["request_id"] in {p.request_id for p in logged}
        # route None: both routes, as Platform.endpoints.predictions reads it
        both = dev.endpoints.predictions("alpha", "scorecard", route=None, limit=10)
        local = server.platform.endpoints.predictions("alpha", "scorecard", route=None, limit=10)
        assert [p.request_id for p in both] == [p.request_id for p in local]
        since = datetime(2199, 1, 1, tzinfo=UTC)
        assert dev.endpoints.predictions("alpha", "scorecard", since=since) == []
        spec = {"bands": [{"decision": "yes", "max": 0.3}, {"decision": "no"}], "reasons": 2}
        policy = endpoints.set_policy("alpha", "scorecard", spec, reason="simpler")
        assert policy.version == 2 and [
            p.version for p in endpoints.policies("alpha", "scorecard")
        ] == [1, 2]
        with pytest.raises(PermissionDenied):
            dev.endpoints.set_policy("alpha", "scorecard", spec, reason="no")
        with pytest.raises(InvalidInput) as info:
            endpoints.set_policy("alpha", "scorecard", {"bands": []}, reason="bad")
        assert info.value.field == "spec.bands" or "bands" in (info.value.field or "")
        with pytest.raises(Conflict):
            endpoints.promote("alpha", "scorecard", reason="nothing to promote")
        with pytest.raises(NotFound):
            endpoints.get("alpha", "nope")
        alerts = endpoints.alerts("alpha", "scorecard")
        assert alerts and alerts[0].rule == "psi"
        resolved = endpoints.set_alert_status("alpha", "scorecard", alerts[0].id or 0, "resolved")
        assert resolved.status == "resolved"
        result = dev.endpoints.monitor("alpha", "scorecard")
        assert result["n"] >= 1 and "psi" in result
        assert "<html" in dev.endpoints.monitor_report("alpha", "scorecard").lower()
        # retention: deleting old predictions is an admin's
        with pytest.raises(PermissionDenied):
            dev.endpoints.prune("alpha", "scorecard", older_than_days=1, reason="no")
        with pytest.raises(InvalidInput):
            endpoints.prune("alpha", "scorecard", older_than_days=0, reason="bad")
        assert endpoints.prune("alpha", "scorecard", older_than_days=3650, reason="keep") == 0
        logged = server.platform.endpoints.predictions("alpha", "scorecard", limit=10)
        assert answer["request_id"] in {p.request_id for p in logged}


def _recommendation_endpoint(server: Server, tmp_path: Path, trials: int = 1) -> None:
    """Workspace shop: an endpoint ``plays`` serving a recommender, three settled events,
    ``sam`` its admin."""
    import pandas as pd

    from leptonic.core.event import Event
    from leptonic.tasks.recsys import RecommenderSpec

    lp = server.platform.as_user("setup")
    lp.create_workspace("shop")
    server.add_user("sam", roles={"shop": "admin"})
    rows = [
        (f"u{u}", f"i{(u % 4) + 4 * ((u + j) % 10)}", 1_700_000_000 + 60 * j + u)
        for u in range(80)
        for j in range(10)
    ]
    path = tmp_path / "plays.parquet"
    pd.DataFrame(rows, columns=["user", "item", "ts"]).to_parquet(path, index=False)
    lp.add_data("shop", path, name="plays")
    spec = RecommenderSpec(timestamp="ts", candidates=("als",), trials=trials, blend=1)
    lp.train("shop", "plays", spec, model_name="plays")
    lp.endpoints.create("shop", "plays", "plays", 1)
    now = datetime.now(UTC) - timedelta(minutes=2)  # settled in the store
    lp.metadata.append_events(
        [Event("shop", "plays", f"e{k}", f"u{k}", "i3", now, 1.0, "click", now) for k in range(3)]
    )


def test_a_recommendation_endpoint_retrains_as_a_job(server: Server, tmp_path: Path) -> None:
    _recommendation_endpoint(server, tmp_path)
    server.add_user("dana", roles={"shop": "developer"})
    with _client(server, "dana") as dana:
        with pytest.raises(PermissionDenied):  # serving the result changes live traffic
            dana.endpoints.retrain("shop", "plays", reason="nightly")
        with pytest.raises(InvalidInput, match="leave out dataset"):
            dana.endpoints.retrain("shop", "plays", dataset="other", promote=False, reason="x")
    with _client(server, "sam") as sam:
        job = sam.endpoints.retrain("shop", "plays", min_new_events=3, reason="nightly")
        assert job.kind == "retrain-events" and job.run_id is not None  # fixed up front
        with pytest.raises(NotFound):  # its run is recorded once it starts training
            sam.get_run("shop", job.run_id)
        server.run_jobs()
        done = sam.wait_for_job("shop", job.id, poll=0.05, timeout=60)
        assert done.status.value == "succeeded", done.error
        assert done.result["new_events"] == 3 and done.result["promoted"] is True
        assert done.result["model_version"] == 2 and done.result["run_id"] == job.run_id
        run = sam.get_run("shop", job.run_id)  # tracked like any training run
        assert run.status.value == "succeeded" and run.created_by == "sam"
        assert done.progress["done"] == done.progress["total"] == 1  # trials, reported
        assert any("registered plays v2" in line for line in done.progress["log"])
        assert sam.endpoints.get("shop", "plays").routes[0].version == 2
        again = sam.endpoints.retrain("shop", "plays", min_new_events=1, reason="nightly")
        server.run_jobs()
        skipped = sam.wait_for_job("shop", again.id, poll=0.05, timeout=60)
        assert skipped.result["new_events"] == 0 and skipped.result["run_id"] is None


def test_a_retrain_job_can_be_cancelled_while_it_trains(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _recommendation_endpoint(server, tmp_path, trials=3)
    store = server.platform.metadata
    with _client(server, "sam") as sam:
        job = sam.endpoints.retrain("shop", "plays", promote=False, reason="nightly")
        assert job.run_id is not None
        create_run = store.create_run

        def cancel_once_started(run: Any) -> Any:
            created = create_run(run)  # the retrain's run starts, then a cancel comes in
            asked = sam.cancel_job("shop", job.id)  # (by the job's id; by its run's too)
            assert asked.id == job.id and asked.cancel_requested
            return created

        monkeypatch.setattr(store, "create_run", cancel_once_started)
        server.run_jobs()
        done = sam.wait_for_job("shop", job.id, poll=0.05, timeout=60)
        assert done.status.value == "cancelled", done.error
        assert done.progress["done"] < 3
        run = sam.get_run("shop", job.run_id)
        assert run.status.value == "cancelled" and "Cancelled" in (run.error or "")
        assert [v.version for v in sam.model_versions("shop", "plays")] == [1]


def test_batch_decisions_and_policies_through_the_sdk(
    populated: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = populated
    with _client(server, "dev") as dev:
        local = server.platform.endpoints
        active = dev.endpoints.policy("alpha", "scorecard")
        assert active == local.policy("alpha", "scorecard")
        assert dev.endpoints.policy("alpha", "scorecard", 1).version == 1
        with pytest.raises(NotFound, match="no policy version 99"):
            dev.endpoints.policy("alpha", "scorecard", 99)
        get_job = dev.get_job

        def run_then_get(workspace: str, job_id: str) -> Any:
            server.run_jobs()  # the server's runner, in this thread
            return get_job(workspace, job_id)

        monkeypatch.setattr(dev, "get_job", run_then_get)
        seen: list[tuple[int, int]] = []
        written, created = dev.endpoints.decide_batch(
            "alpha", "scorecard", "applicants", poll=0, progress=lambda d, t: seen.append((d, t))
        )
        assert created and written.dataset == "applicants-decisions" and written.version == 1
        assert written.num_rows == 600 and seen and seen[-1] == (600, 600)
        assert "decision" in {c.name for c in written.columns}
        other = tmp_path / "other.csv"
        other.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
        server.platform.as_user("setup").add_data("alpha", other)
        # a job that fails raises the error it recorded, as its class
        with pytest.raises(SchemaError, match=r"batch decisions job .* failed: .* lacks column"):
            dev.endpoints.decide_batch("alpha", "scorecard", "other", poll=0)


def test_what_the_sdk_lacks_of_the_endpoint_service_is_documented() -> None:
    from leptonic._sdk_endpoints import RemoteEndpoints
    from leptonic.serving.service import EndpointService

    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    missing = public(EndpointService) - public(RemoteEndpoints)
    assert missing <= {
        "set_routes",
        "retrain_from_events",
        "retrain_plan",
        "audit_retrain",
        "baseline",
    }
    for name in missing:
        assert f"``{name}``" in (RemoteEndpoints.__doc__ or "")
