"""The decision lifecycle over real HTTP: train → deploy → 1,000 decisions →
outcomes → drifted traffic raises a PSI alert → recalibration → canary of a
retrained version → rollback; each step is in the prediction log and the
audit trail."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, ClassVar

import httpx

from leptonic.serving.app import EndpointApp, TokenAuth
from leptonic.serving.host import EndpointHost
from leptonic.synthetic import write_applicants_csv
from serving.conftest import Deployed, LiveServer


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _drifted(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    out["monthly_debt"] = (out["monthly_debt"] or 0.0) * 4 + 2000
    out["late_payments_12m"] = (out["late_payments_12m"] or 0) + 3
    return out


def test_decision_lifecycle(deployed: Deployed, live_server: type[LiveServer]) -> None:
    lp = deployed.platform
    boss = lp.as_user("boss")
    model, version = deployed.logistic
    boss.endpoints.create("credit", "decide", model, version, entity_key="applicant_id")

    host = EndpointHost(lp.metadata, lp.registry, "credit", "decide", reload_interval=0.1)
    app = EndpointApp(host, auth=TokenAuth(lp.metadata, "credit", ttl=1.0))
    headers = {"Authorization": f"Bearer {deployed.tokens['dev']}"}
    viewer_headers = {"Authorization": f"Bearer {deployed.tokens['viewer']}"}
    records = deployed.records(1500)
    labels = {r["applicant_id"]: r["default"] for r in deployed.rows[:1500]}
    answers: list[dict[str, Any]] = []

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    webhook = f"http://127.0.0.1:{hook.server_address[1]}/alerts"
    try:
        with live_server(app) as server, httpx.Client(base_url=server.url) as client:
            # 1,000 decisions over HTTP
            for record in records[:1000]:
                r = client.post("/decide", json=record, headers=headers)
                assert r.status_code == 200, r.text
                answers.append(r.json())
            decisions = {a["decision"] for a in answers}
            assert decisions <= {"approve", "review", "reject"} and len(decisions) >= 2
            adverse = [a for a in answers if a["decision"] != "approve"]
            assert adverse and all(a["reasons"] for a in adverse)
            assert all(isinstance(x["text"], str) and x["text"] for x in adverse[0]["reasons"])

            # outcomes, by request id and by entity key; viewers may not post them
            outcomes = [
                {"request_id": a["request_id"], "label": labels[rec["applicant_id"]]}
                for a, rec in zip(answers[:600], records[:600], strict=True)
            ]
            outcomes += [
                {"entity": str(rec["applicant_id"]), "label": labels[rec["applicant_id"]]}
                for rec in records[600:1000]
            ]
            assert (
                client.post("/feedback", json=outcomes, headers=viewer_headers).status_code == 403
            )
            r = client.post("/feedback", json=outcomes, headers=headers)
            assert r.status_code == 200 and r.json() == {"recorded": 1000}

            # no drift on the same population: no PSI alert
            calm = lp.as_user("dev").endpoints.monitor("credit", "decide", last=1000)
            assert not [a for a in calm["alerts"] if a["rule"] == "psi"], calm["psi"]
            assert calm["performance"]["n"] == 1000 and calm["performance"]["auc"] > 0.6

            # drifted traffic raises a PSI alert (and calls the webhook)
            for record in records[1000:1500]:
                r = client.post("/decide", json=_drifted(record), headers=headers)
                assert r.status_code == 200
            report = lp.as_user("dev").endpoints.monitor(
                "credit", "decide", last=500, webhook=webhook
            )
            psi_alerts = [a for a in report["alerts"] if a["rule"] == "psi"]
            assert {"monthly_debt", "late_payments_12m"} <= {a["subject"] for a in psi_alerts}
            assert len(_Hook.received) == len(report["alerts"])
            assert lp.endpoints.alerts("credit", "decide", status="open")

            # recalibration: a new, audited policy version approving 50 % of recent traffic
            policy = boss.endpoints.recalibrate(
                "credit", "decide", target_approval_rate=0.5, last=1500, reason="drift"
            )
            assert policy.version == 2
            assert host.reload() or host.runtime.policy_version == 2
            r = client.post("/decide", json=records[0], headers=headers)
            assert r.json()["policy_version"] == 2

            # a retrained version on the newest data goes to canary, sticky by applicant
            more = write_applicants_csv(deployed.home / "applicants-2.csv", n=2500, seed=11)
            lp.add_data("credit", more, name="applicants", target="default")
            outcome = boss.endpoints.retrain("credit", "decide", canary_percent=30, reason="drift")
            assert outcome.model_version is not None
            new = (outcome.model_version.model, outcome.model_version.version)
            assert new == (model, version + 2) or new[1] > version
            host.reload()
            seen: dict[Any, set[int]] = {}
            for record in records[:300] * 2:
                body = client.post("/decide", json=record, headers=headers).json()
                seen.setdefault(record["applicant_id"], set()).add(body["version"])
            assert all(len(v) == 1 for v in seen.values())  # sticky
            share = sum(new[1] in v for v in seen.values()) / len(seen)
            assert 0.15 < share < 0.45, share

            # rollback: everything back on the first version
            boss.endpoints.rollback("credit", "decide", reason="canary worse")
            host.reload()
            versions = {
                client.post("/decide", json=rec, headers=headers).json()["version"]
                for rec in records[:100]
            }
            assert versions == {version}
    finally:
        hook.shutdown()
        hook.server_close()
        app.close()

    # every step is in the prediction log ...
    log = lp.metadata
    total = 1000 + 500 + 1 + 600 + 100
    assert log.count_predictions("credit", "decide") == total
    logged_versions = {p.version for p in log.list_predictions("credit", "decide", limit=None)}
    assert logged_versions == {version, new[1]}
    first = log.get_prediction("credit", "decide", answers[0]["request_id"])
    assert first.decision == answers[0]["decision"] and first.latency_ms > 0
    assert "full_name" not in first.inputs and first.entity is not None
    labelled = log.labelled_predictions("credit", "decide")
    assert len(labelled) == 1000
    # ... and in the audit trail
    actions = [e.action for e in lp.audit_log(workspace="credit", limit=200)]
    for action in (
        "endpoint.create",
        "endpoint.feedback",
        "endpoint.alert",
        "endpoint.policy",
        "endpoint.retrain",
        "endpoint.canary",
        "endpoint.rollback",
    ):
        assert action in actions, action
