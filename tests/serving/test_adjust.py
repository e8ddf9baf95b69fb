"""Watching and adjusting endpoints: inputs masked as PII, windows in UTC, the primary
version's decisions only, repeated alerts, and recalibrating points policies."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from leptonic import TrainSpec
from leptonic.core.endpoint import Prediction
from leptonic.errors import InvalidInput
from leptonic.governance.schema import Contract
from leptonic.monitoring import WebhookNotifier
from leptonic.monitoring.drift import DriftReport, FeatureDrift
from leptonic.serving import adjust
from leptonic.serving.host import EndpointHost
from leptonic.serving.policy import DecisionPolicy
from serving.conftest import FAST, Deployed

POINTS = {
    "score": "points",
    "bands": [
        {"decision": "approve", "min": 560},
        {"decision": "review", "min": 500},
        {"decision": "reject"},
    ],
}
PROBABILITY = {
    "bands": [
        {"decision": "approve", "max": 0.1},
        {"decision": "review", "max": 0.3},
        {"decision": "reject"},
    ],
}
YOUNG = [{"feature": "age", "text": "applicants must be 21 or older", "rule": True}]


def _log(
    deployed: Deployed,
    endpoint: str,
    scores: Sequence[float],
    *,
    model: tuple[str, int] | None = None,
    reasons: list[dict[str, Any]] | None = None,
    inputs: Sequence[dict[str, Any]] | None = None,
    tag: str = "p",
) -> list[str]:
    """Log decisions of ``scores`` (by the logistic model unless ``model``) in the last
    minutes; returns their request ids."""
    name, version = model or deployed.logistic
    now = datetime.now(UTC)
    ids = [f"{tag}-{i}" for i in range(len(scores))]
    deployed.platform.metadata.append_predictions(
        [
            Prediction(
                workspace="credit",
                endpoint=endpoint,
                request_id=rid,
                model=name,
                version=version,
                score=float(s),
                decision="reject" if reasons else "approve",
                at=now - timedelta(seconds=60 + i),
                reasons=list(reasons or []),
                inputs=dict(inputs[i]) if inputs is not None else {},
            )
            for i, (rid, s) in enumerate(zip(ids, scores, strict=True))
        ]
    )
    return ids


def _recalibrated(
    deployed: Deployed, endpoint: str, scores: Sequence[float], target: float, spec: Any = None
) -> tuple[DecisionPolicy, str]:
    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", endpoint, *deployed.logistic)
    lp.endpoints.set_policy("credit", endpoint, spec or POINTS, reason="scorecard points")
    _log(deployed, endpoint, scores)
    stored = lp.endpoints.recalibrate(
        "credit", endpoint, target_approval_rate=target, reason="new appetite"
    )
    return DecisionPolicy.from_spec(stored.spec), stored.spec["description"]


def test_a_categorical_input_hashed_as_pii_is_skipped_not_alerted(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    rng = np.random.default_rng(0)
    n = 1200
    income = rng.normal(50, 10, n)
    frame = pd.DataFrame(
        {
            "surname": rng.choice(["Nowak", "Smith", "Garcia", "Kim"], n),
            "income": income,
            "default": (rng.uniform(size=n) < 1 / (1 + np.exp((income - 45) / 5))).astype(int),
        }
    )
    csv = deployed.home / "households.csv"
    frame.to_csv(csv, index=False)
    contract = Contract(
        target="default", pii={"surname": "person_name"}, allow_in_training=("surname",)
    )
    lp.add_data("credit", csv, name="households", contract=contract)
    spec = TrainSpec(candidates=("logistic",), **FAST)  # type: ignore[arg-type]
    outcome = lp.train("credit", "households", spec, model_name="households")
    assert outcome.model_version is not None
    mv = outcome.model_version
    lp.endpoints.create("credit", "households", mv.model, mv.version)
    host = EndpointHost(lp.metadata, lp.registry, "credit", "households", reload_interval=0)
    records = [
        {"surname": r["surname"], "income": r["income"]} for r in frame.head(300).to_dict("records")
    ]
    try:
        answers = [host.runtime.decide(record) for record in records]
        table = pa.Table.from_pylist(records)
        batch = host.runtime.decide_table(table, [a["score"] for a in answers])
    finally:
        host.close()
    surnames = set(frame["surname"])
    # the run's files any member may read name the surname's bins by position
    kept = outcome.run.artifacts
    assert {"report.html", "iv.json", "monitoring_baseline.json"} <= set(kept)
    for name in kept:
        blob = lp.artifacts.get_bytes(kept[name]).decode("utf-8")
        blob = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", blob)  # plots
        assert not [s for s in surnames if s in blob], name
    shown = json.dumps([mv.signature, mv.metrics, outcome.run.metrics, outcome.run.params])
    assert not [s for s in surnames if s in shown]
    # the answer names the surname; the log and the batch output hold its salted hash
    assert any(
        r["feature"] == "surname" and r["value"] in surnames for a in answers for r in a["reasons"]
    )
    logged = lp.endpoints.predictions("credit", "households", limit=300)
    assert logged[0].inputs["surname"] not in surnames  # logged as a hash
    reasons = [r for p in logged for r in p.reasons if r["feature"] == "surname"]
    written = [json.loads(cell) for cell in batch["reasons"].to_pylist()]
    for text in (json.dumps([p.reasons for p in logged]), json.dumps(written)):
        assert reasons and not any(name in text for name in surnames)
    report = lp.endpoints.monitor("credit", "households")
    assert report["n"] == 300
    assert "surname" not in report["psi"] and "PII" in report["drift"]["skipped"]["surname"]
    assert not [a for a in report["alerts"] if a["subject"] == "surname"]
    page = lp.endpoints.monitor_report("credit", "households")
    assert "masked by the PII policy before logging" in page


def test_naive_windows_are_read_as_utc(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", "naive", *deployed.logistic)
    _log(deployed, "naive", np.linspace(0.01, 0.99, 200))
    hour_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    report = lp.endpoints.monitor("credit", "naive", since=hour_ago)
    assert report["n"] == 200 and report["window_start"].endswith("+00:00")
    policy = lp.endpoints.recalibrate(
        "credit", "naive", target_approval_rate=0.5, since=hour_ago, reason="utc"
    )
    assert policy.spec["bands"][0]["max"] == pytest.approx(0.5, abs=0.01)


def test_recalibration_counts_the_primary_versions_score_decisions(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", "mixed", *deployed.logistic)
    lp.endpoints.canary("credit", "mixed", *deployed.lightgbm, 20, reason="try gbm")
    primary = (np.arange(200) + 0.5) / 200  # the lowest half ends below 0.5025
    _log(deployed, "mixed", primary, tag="primary")
    _log(deployed, "mixed", [0.001] * 200, model=deployed.lightgbm, tag="canary")
    _log(deployed, "mixed", [0.002] * 100, reasons=YOUNG, tag="rule")
    policy = lp.endpoints.recalibrate("credit", "mixed", target_approval_rate=0.5, reason="mix")
    assert policy.spec["bands"][0]["max"] == pytest.approx(0.5025)
    assert "200 recent decisions" in policy.spec["description"]


def _spy_on_report(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the monitoring report is drawn from: filled when ``monitor_report`` runs."""
    from leptonic.monitoring import plots

    seen: dict[str, Any] = {}
    real = plots.monitoring_report_html

    def spy(**kwargs: Any) -> str:
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(plots, "monitoring_report_html", spy)
    return seen


def test_the_monitor_report_reads_the_primary_versions_outcomes(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:

    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", "reported", *deployed.logistic)
    lp.endpoints.canary("credit", "reported", *deployed.lightgbm, 20, reason="try gbm")
    ours = _log(deployed, "reported", [0.1, 0.6] * 50, tag="primary")
    theirs = _log(deployed, "reported", [0.05] * 30, model=deployed.lightgbm, tag="canary")
    lp.endpoints.feedback(
        "credit", "reported", [{"request_id": r, "label": i % 2} for i, r in enumerate(ours)]
    )
    lp.endpoints.feedback("credit", "reported", [{"request_id": r, "label": 1} for r in theirs])
    seen = _spy_on_report(monkeypatch)
    lp.endpoints.monitor_report("credit", "reported")
    assert seen["performance"].overall.n == 100 and seen["performance"].overall.auc == 1.0


def test_the_monitor_report_reads_outcomes_of_the_period_its_drift_covers(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leptonic.serving import adjust

    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", "long-labelled", *deployed.logistic)
    name, version = deployed.logistic
    now = datetime.now(UTC)
    # decisions of the last 15 months, labelled since; the report reads the newest rows only
    old = [f"old-{i}" for i in range(90)]
    deployed.platform.metadata.append_predictions(
        [
            Prediction(
                workspace="credit",
                endpoint="long-labelled",
                request_id=rid,
                model=name,
                version=version,
                score=0.1 + 0.8 * (i % 2),
                decision="approve",
                at=now - timedelta(days=450) + timedelta(days=5 * i),
            )
            for i, rid in enumerate(old)
        ]
    )
    recent = _log(deployed, "long-labelled", [0.1, 0.6] * 20, tag="recent")
    monkeypatch.setattr(adjust, "MAX_WINDOW_ROWS", len(recent))
    lp.endpoints.feedback(
        "credit",
        "long-labelled",
        [{"request_id": r, "label": i % 2} for i, r in enumerate(old + recent)],
    )
    seen = _spy_on_report(monkeypatch)
    lp.endpoints.monitor_report("credit", "long-labelled")  # the drift rows span 40 seconds
    assert seen["series"].window == timedelta(minutes=1)
    assert seen["performance"].overall.n == len(recent)


def test_a_repeated_alert_is_not_stored_or_posted_again(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", "repeated", *deployed.logistic)
    records = deployed.records(300)
    for r in records:
        r["monthly_debt"] = (r["monthly_debt"] or 0.0) * 4 + 2000
    _log(deployed, "repeated", [0.1] * 300, inputs=records)
    first = lp.endpoints.monitor("credit", "repeated")
    raised = {(a["rule"], a["subject"]) for a in first["alerts"]}
    assert ("psi", "monthly_debt") in raised and first["repeated"] == []
    again = lp.endpoints.monitor("credit", "repeated", last=250)  # an overlapping window
    assert again["alerts"] == []
    assert sorted(again["repeated"]) == sorted(a["id"] for a in first["alerts"])
    assert len(lp.endpoints.alerts("credit", "repeated")) == len(first["alerts"])


def test_points_recalibration_keeps_ties_at_the_edge_out_of_the_band(
    deployed: Deployed,
) -> None:
    scores = [0.05] * 60 + [0.2] * 10 + [0.4] * 30 + [0.6] * 100
    policy, _ = _recalibrated(deployed, "points-ties", scores, 0.3)
    decided = [policy.decide({}, s).decision for s in scores]
    assert decided.count("approve") == 60 and decided.count("review") == 10
    assert policy.decide({}, 0.2).decision == "review"  # p < 0.2 approves, as in probability
    assert policy.decide({}, 0.4).decision == "reject"


def test_points_recalibration_without_a_reject_edge_keeps_the_review_edge(
    deployed: Deployed,
) -> None:
    policy, note = _recalibrated(deployed, "points-kept", [0.05] * 180 + [0.3] * 20, 0.9)
    assert policy.bands[1] == ("review", 500.0)
    assert policy.decide({}, 0.05).decision == "approve"
    assert policy.decide({}, 0.3).decision == "review"
    assert "kept" in note


@pytest.mark.parametrize("score", ["probability", "points"])
def test_recalibration_to_equal_edges_says_it_placed_the_review_edge(
    deployed: Deployed, score: str
) -> None:
    spec = POINTS if score == "points" else PROBABILITY
    scores = [0.05] * 60 + [0.2] * 40 + [0.6] * 100
    policy, note = _recalibrated(deployed, f"equal-{score}", scores, 0.3, spec)
    assert policy.decide({}, 0.05).decision == "approve"
    assert policy.decide({}, 0.2).decision == "review"
    assert policy.decide({}, 0.27).decision == "review"
    assert policy.decide({}, 0.29).decision == "reject"
    assert "would have been empty" in note and "0.28" in note


def test_a_tabular_run_keeps_the_baseline_of_its_test_rows(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from leptonic.errors import NotFound
    from leptonic.monitoring.baseline import BASELINE_ARTIFACT, BaselineProfile
    from leptonic.serving import adjust
    from leptonic.tasks._data import load_training_data
    from leptonic.tasks.tabular import make_split

    lp = deployed.platform
    for model in (deployed.logistic, deployed.lightgbm):
        mv = lp.model_version("credit", *model)
        run = lp.get_run("credit", mv.run_id)
        kept = json.loads(lp.run_artifact("credit", run.id, BASELINE_ARTIFACT))
        # the model's inputs and scores on the rows its run held out for the test
        spec = TrainSpec(candidates=(model[0].removeprefix("risk-"),), **FAST)  # type: ignore[arg-type]
        dv = lp.dataset_version("credit", "applicants")
        data = load_training_data(dv, lp.artifacts, spec)
        test = make_split(data.y, spec).test
        predictor = lp.load_model("credit", *model)
        frame = data.frame.iloc[test][predictor.input_names].reset_index(drop=True)
        expected = BaselineProfile.fit(frame, predictor.predict_batch(frame), predictor.inputs)
        assert kept == expected.to_json()
        # not the training rows': a boosted model is surer on rows it was fitted on
        monkeypatch.setattr(adjust, "_baselines", {})
        with monkeypatch.context() as patched:
            patched.setattr(lp.endpoints, "_tabular_baseline", _not_called)
            assert lp.endpoints.baseline("credit", *model).to_json() == kept

    # a kept profile that cannot be read: profiled from the dataset, as before
    key = lp.get_run("credit", mv.run_id).artifacts[BASELINE_ARTIFACT]
    read = lp.artifacts.get_bytes

    def lost(k: str, **kwargs: Any) -> bytes:
        if k == key:
            raise NotFound(f"artifact {k} is gone")
        return read(k, **kwargs)

    monkeypatch.setattr(lp.artifacts, "get_bytes", lost)
    monkeypatch.setattr(adjust, "_baselines", {})
    again = lp.endpoints.baseline("credit", *deployed.lightgbm)
    assert again.to_json() != kept and set(again.features) == set(expected.features)


def _not_called(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the baseline was profiled again from the dataset")


def test_a_bad_webhook_is_refused_before_any_alert_is_stored(deployed: Deployed) -> None:
    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", "hooked", *deployed.logistic)
    _log(deployed, "hooked", np.linspace(0.01, 0.99, 50), inputs=[{"age": 99}] * 50)
    rules = {"psi": {"threshold": 0.0001, "min_predictions": 1}}
    for url in ("not a url", "ftp://host/x", "http://[bad/", "http://h:99999/x", "http://a b/x"):
        with pytest.raises(InvalidInput) as info:
            lp.endpoints.monitor("credit", "hooked", rules=rules, webhook=url)
        assert info.value.field == "webhook"
    # a server that allows only its own hook hosts refuses others (its network posts them)
    lp.settings = dataclasses.replace(lp.settings, webhook_hosts=("hooks.example.com",))
    with pytest.raises(InvalidInput, match="LEPTONIC_WEBHOOK_HOSTS") as info:
        lp.endpoints.monitor("credit", "hooked", rules=rules, webhook="http://10.0.0.1/x")
    assert info.value.field == "webhook"
    assert lp.metadata.list_alerts("credit", "hooked") == []
    assert lp.endpoints.monitor("credit", "hooked", rules=rules)["alerts"]  # they would fire


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A local webhook: ``/flaky`` answers 503 to its first post, ``/gone`` 404 to all;
    yields its URL and the (path, body) of each post. Retries wait a millisecond."""
    monkeypatch.setattr(
        adjust, "WebhookNotifier", functools.partial(WebhookNotifier, backoff=0.001)
    )
    posts: list[tuple[str, dict[str, Any]]] = []
    first = {"/flaky": 503}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((self.path, json.loads(body)))
            self.send_response(first.pop(self.path, None) or (404 if self.path == "/gone" else 204))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", posts
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_webhooks_delivery_is_reported_and_a_failed_post_retried(
    deployed: Deployed,
    hook: tuple[str, list[tuple[str, dict[str, Any]]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, posts = hook
    lp = deployed.platform.as_user("boss")
    rules = {"psi": {"threshold": 0.0001, "min_predictions": 1}}
    for name in ("hook-flaky", "hook-gone"):
        lp.endpoints.create("credit", name, *deployed.logistic)
        _log(deployed, name, np.linspace(0.01, 0.99, 50), inputs=[{"age": 99}] * 50)
    flaky = lp.endpoints.monitor("credit", "hook-flaky", rules=rules, webhook=url + "/flaky")
    ids = [a["id"] for a in flaky["alerts"]]
    assert ids and flaky["webhook"] == {
        "sent": len(ids),
        "failed": 0,
        "undelivered": [],
        "error": None,
        "reposted": [],
    }
    assert [b["id"] for _, b in posts] == [ids[0], *ids]  # the first was answered 503, then sent
    with caplog.at_level(logging.WARNING, logger="leptonic.monitoring"):
        gone = lp.endpoints.monitor("credit", "hook-gone", rules=rules, webhook=url + "/gone")
    ids = [a["id"] for a in gone["alerts"]]
    assert gone["webhook"]["sent"] == 0 and gone["webhook"]["failed"] == len(ids)
    assert gone["webhook"]["undelivered"] == ids and "HTTP 404" in gone["webhook"]["error"]
    assert f"{len(ids)} of {len(ids)} alert(s) of endpoint 'hook-gone'" in caplog.text
    assert lp.endpoints.monitor("credit", "hook-gone", rules=rules)["webhook"] is None


def test_an_alert_no_webhook_took_is_posted_again_by_the_next_check(
    deployed: Deployed, hook: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    url, posts = hook
    lp = deployed.platform.as_user("boss")
    rules = {"psi": {"threshold": 0.0001, "min_predictions": 1}}
    lp.endpoints.create("credit", "hook-later", *deployed.logistic)
    _log(deployed, "hook-later", np.linspace(0.01, 0.99, 50), inputs=[{"age": 99}] * 50)
    gone = lp.endpoints.monitor("credit", "hook-later", rules=rules, webhook=url + "/gone")
    ids = [a["id"] for a in gone["alerts"]]
    assert ids and gone["webhook"]["undelivered"] == ids
    stored = lp.metadata.list_alerts("credit", "hook-later")
    assert all(a.delivered_at is None for a in stored)
    # the same findings: not stored again, but posted to the webhook that now answers
    posts.clear()
    later = lp.endpoints.monitor("credit", "hook-later", rules=rules, webhook=url + "/ok")
    assert later["alerts"] == [] and sorted(later["repeated"]) == sorted(ids)
    assert sorted(later["webhook"]["reposted"]) == sorted(ids) and later["webhook"]["sent"] == len(
        ids
    )
    assert sorted(b["id"] for _, b in posts) == sorted(ids)
    assert all(a.delivered_at is not None for a in lp.metadata.list_alerts("credit", "hook-later"))
    # delivered now: a third check neither stores nor posts them
    posts.clear()
    third = lp.endpoints.monitor("credit", "hook-later", rules=rules, webhook=url + "/ok")
    assert third["webhook"]["reposted"] == [] and posts == []


def test_an_input_named_score_keeps_its_psi_beside_the_model_scores(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    lp = deployed.platform.as_user("boss")
    lp.endpoints.create("credit", "scored", *deployed.logistic)
    _log(deployed, "scored", np.linspace(0.01, 0.99, 50), inputs=[{"age": 99}] * 50)
    real = adjust.drift_report

    def with_a_score_input(*args: Any, **kwargs: Any) -> DriftReport:
        report = real(*args, **kwargs)
        score = FeatureDrift("score", "numeric", 7.5, 50, 0, ("lo", "hi"), (0.5, 0.5), (0.0, 1.0))
        return DriftReport(
            report.n, {"score": score, **report.features}, report.score, report.skipped
        )

    monkeypatch.setattr(adjust, "drift_report", with_a_score_input)
    rules = {"psi": {"threshold": 0.0001, "min_predictions": 1}}
    report = lp.endpoints.monitor("credit", "scored", rules=rules)
    assert report["psi"]["score"] == 7.5
    assert report["psi"]["model score"] == report["drift"]["score"]["psi"] != 7.5
    subjects = [a["subject"] for a in report["alerts"]]
    assert "score" in subjects and "model score" in subjects
    assert len(subjects) == len(set(subjects))
    again = lp.endpoints.monitor("credit", "scored", rules=rules)
    assert again["alerts"] == [] and len(again["repeated"]) == len(subjects)


@pytest.mark.parametrize(
    "at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "1850-01-01T00:00:00Z"]
)
def test_times_out_of_range_are_refused_naming_the_field(deployed: Deployed, at: str) -> None:
    lp = deployed.platform.as_user("boss")
    name = f"timed-{at[:4]}"
    lp.endpoints.create("credit", name, *deployed.logistic)
    (rid,) = _log(deployed, name, [0.2])
    with pytest.raises(InvalidInput) as info:
        lp.endpoints.feedback("credit", name, [{"request_id": rid, "label": 1, "at": at}])
    assert info.value.field == "[0].at"
    when = datetime.fromisoformat(at)
    for bound in ("since", "until"):
        with pytest.raises(InvalidInput) as info:
            lp.endpoints.monitor("credit", name, **{bound: when})
        assert info.value.field == bound
    with pytest.raises(InvalidInput) as info:
        lp.endpoints.recalibrate("credit", name, target_approval_rate=0.5, since=when, reason="r")
    assert info.value.field == "since"
