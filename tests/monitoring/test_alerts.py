"""Alert rules (thresholds, minimum samples, specs) and the webhook notifier."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leptonic.core.endpoint import Alert
from leptonic.errors import InvalidInput
from leptonic.monitoring import (
    AlertRules,
    AucDropRule,
    BaselineProfile,
    PsiRule,
    WebhookNotifier,
    alert_payload,
    check_webhook_url,
    drift_report,
    evaluate_rules,
    performance_report,
)
from leptonic.monitoring.drift import DriftReport, FeatureDrift

START = datetime(2025, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)


@pytest.fixture
def shifted(
    profile: BaselineProfile,
    make_applicants: Callable[..., tuple[pd.DataFrame, np.ndarray]],
    make_records: Callable[[pd.DataFrame], list[dict[str, Any]]],
) -> Callable[[int], DriftReport]:
    def report(n: int) -> DriftReport:
        frame, scores = make_applicants(n, seed=21, shift=1.0)
        return drift_report(profile, make_records(frame), scores)

    return report


def _evaluate(
    rules: AlertRules, drift: Any = None, perf: Any = None, auc: Any = None
) -> list[Alert]:
    return evaluate_rules(rules, drift, perf, auc, START, END, "credit", "decide", at=END)


def _labelled(n: int, n_bad: int, separation: float, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_bad), np.zeros(n - n_bad)]
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + separation * y - 2)))
    return [(float(a), int(b), "approve", START) for a, b in zip(s, y, strict=True)]


# --- rules -----------------------------------------------------------------------


def test_psi_alerts_name_the_drifted_inputs_and_the_score(
    shifted: Callable[[int], DriftReport],
) -> None:
    drift = shifted(2000)
    alerts = _evaluate(AlertRules(), drift)
    subjects = [a.subject for a in alerts]
    assert subjects[-1] == "score" and {"income", "age"} <= set(subjects)
    assert "region" not in subjects
    income = next(a for a in alerts if a.subject == "income")
    assert income.rule == "psi" and income.threshold == 0.25
    assert income.value == pytest.approx(drift.features["income"].psi)
    assert (income.workspace, income.endpoint) == ("credit", "decide")
    assert (income.window_start, income.window_end) == (START, END)
    assert income.id is None and income.status == "open" and income.at == END
    now = evaluate_rules(AlertRules(), drift, None, None, START, END, "credit", "decide")
    assert len({a.at for a in now}) == 1 and now[0].at > END
    assert "'income'" in income.message and f"{income.value:.3f}" in income.message
    assert "2,000 predictions" in income.message and "largest change" in income.message
    assert income.details["n"] == 2000 and len(income.details["labels"]) == 11


def test_psi_alert_messages_say_what_the_subjects_measure(
    shifted: Callable[[int], DriftReport],
) -> None:
    drift = shifted(2000)
    plain = {a.subject: a.message for a in _evaluate(AlertRules(), drift)}
    assert plain["income"].startswith("input 'income' has drifted")
    assert plain["score"].startswith("the model score has drifted")
    assert "Check the upstream data for 'income'" in plain["income"]
    named = evaluate_rules(
        AlertRules(),
        drift,
        None,
        None,
        START,
        END,
        "credit",
        "decide",
        subjects={"income": "the declared income", "score": "the model's confidence"},
        advice="Ask the branch.",
    )
    said = {a.subject: a.message for a in named}
    assert said["income"].startswith("the declared income ('income') has drifted")
    assert said["score"].startswith("the model's confidence ('score') has drifted")
    assert said["age"].startswith("input 'age' has drifted")  # not named: an input
    assert all(m.endswith("Ask the branch.") for m in said.values())


def test_small_windows_do_not_raise_psi_alerts(shifted: Callable[[int], DriftReport]) -> None:
    drift = shifted(150)
    assert drift.features["income"].psi > 0.25  # type: ignore[operator]
    assert _evaluate(AlertRules(), drift) == []
    assert _evaluate(AlertRules(psi=PsiRule(min_predictions=100)), drift) != []


def test_psi_rule_settings(shifted: Callable[[int], DriftReport]) -> None:
    drift = shifted(1000)
    rule = PsiRule(ignore=("income",), include_score=False)
    subjects = [a.subject for a in _evaluate(AlertRules(psi=rule), drift)]
    assert "income" not in subjects and "score" not in subjects and "age" in subjects
    assert _evaluate(AlertRules(psi=PsiRule(threshold=50.0)), drift) == []
    assert _evaluate(AlertRules(psi=None), drift) == []


def _feature(name: str, psi: float) -> FeatureDrift:
    return FeatureDrift(name, "numeric", psi, 500, 0, ("low", "high"), (0.5, 0.5), (0.1, 0.9))


def test_an_input_named_score_and_the_model_score_have_their_own_subjects() -> None:
    drift = DriftReport(
        500, {"score": _feature("score", 0.9), "age": _feature("age", 0.5)}, _feature("", 0.8), {}
    )
    alerts = _evaluate(AlertRules(), drift)
    by_subject = {a.subject: a for a in alerts}
    assert [a.subject for a in alerts] == ["score", "age", "model score"]
    assert by_subject["score"].value == 0.9 and by_subject["score"].details["kind"] == "numeric"
    assert by_subject["score"].message.startswith("input 'score' has drifted")
    model = by_subject["model score"]
    assert model.value == 0.8 and model.details["kind"] == "score"
    assert model.message.startswith("the model score has drifted")
    # ignoring the input leaves the score's subject as it is, run after run
    kept = _evaluate(AlertRules(psi=PsiRule(ignore=("score",))), drift)
    assert [a.subject for a in kept] == ["age", "model score"]
    # an input masked (skipped) under that name counts too; a further clash is numbered
    masked = DriftReport(500, {}, _feature("", 0.8), {"score": "masked as PII"})
    assert [a.subject for a in _evaluate(AlertRules(), masked)] == ["model score"]
    both = DriftReport(
        500,
        {"score": _feature("score", 0.0), "model score": _feature("model score", 0.0)},
        _feature("", 0.8),
        {},
    )
    assert [a.subject for a in _evaluate(AlertRules(), both)] == ["model score 2"]


def test_auc_drop_alert_with_enough_outcomes() -> None:
    perf = performance_report(_labelled(400, 80, separation=0.3))
    auc = perf.overall.auc
    assert auc is not None and auc < 0.7
    alerts = _evaluate(AlertRules(), perf=perf, auc=0.80)
    assert [a.rule for a in alerts] == ["auc_drop"]
    alert = alerts[0]
    assert alert.subject == "auc"
    assert alert.value == pytest.approx(0.80 - auc)
    assert alert.threshold == 0.05
    assert "400 outcomes" in alert.message and "0.800" in alert.message
    assert alert.details["baseline_auc"] == 0.80 and alert.details["n_bad"] == 80
    # a window counts by itself too
    assert _evaluate(AlertRules(), perf=perf.overall, auc=0.80) == alerts
    # no drop beyond the threshold, no alert
    assert _evaluate(AlertRules(), perf=perf, auc=auc + 0.04) == []


def test_auc_drop_needs_enough_outcomes_of_both_classes() -> None:
    few = performance_report(_labelled(99, 30, separation=0.0))
    assert few.overall.auc is not None
    assert _evaluate(AlertRules(), perf=few, auc=0.95) == []
    one_class = performance_report(_labelled(500, 0, separation=0.0))
    assert one_class.overall.auc is None
    assert _evaluate(AlertRules(), perf=one_class, auc=0.95) == []
    rare = performance_report(_labelled(500, 5, separation=0.0))
    assert _evaluate(AlertRules(), perf=rare, auc=0.95) == []
    relaxed = AlertRules(auc_drop=AucDropRule(min_each_class=1))
    assert len(_evaluate(relaxed, perf=rare, auc=0.95)) == 1
    # no baseline AUC, no AUC rule
    enough = performance_report(_labelled(500, 100, separation=0.0))
    assert _evaluate(AlertRules(), perf=enough, auc=None) == []


def test_evaluate_rules_checks_its_arguments() -> None:
    perf = performance_report(_labelled(200, 50, separation=0.0))
    with pytest.raises(InvalidInput) as info:
        _evaluate(AlertRules(), perf=perf, auc=1.5)
    assert info.value.field == "baseline_auc"
    with pytest.raises(InvalidInput) as info:
        evaluate_rules(AlertRules(), None, None, None, END, START, "credit", "decide")
    assert info.value.field == "window_end"


# --- specs -------------------------------------------------------------------------


def test_spec_round_trip_and_defaults() -> None:
    rules = AlertRules()
    spec = rules.to_spec()
    assert spec == {
        "psi": {"threshold": 0.25, "min_predictions": 200, "include_score": True, "ignore": []},
        "auc_drop": {"threshold": 0.05, "min_labelled": 100, "min_each_class": 10},
    }
    assert AlertRules.from_spec(json.loads(json.dumps(spec))) == rules
    assert AlertRules.from_spec({}) == rules == AlertRules.from_spec(None)
    custom = AlertRules.from_spec({"psi": {"threshold": 0.1, "ignore": ["age"]}, "auc_drop": None})
    assert custom.psi == PsiRule(threshold=0.1, ignore=("age",))
    assert custom.auc_drop is None
    assert AlertRules.from_spec(custom.to_spec()) == custom
    assert AlertRules.from_spec({"psi": False}).psi is None
    assert AlertRules.from_spec({"auc_drop": {"min_labelled": 500.0}}).auc_drop == AucDropRule(
        min_labelled=500
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"drift": {}}, "drift"),
        ({"psi": {"treshold": 0.2}}, "psi.treshold"),
        ({"psi": {"threshold": -1}}, "psi.threshold"),
        ({"psi": {"threshold": "high"}}, "psi.threshold"),
        ({"psi": {"min_predictions": 0}}, "psi.min_predictions"),
        ({"psi": {"min_predictions": True}}, "psi.min_predictions"),
        ({"psi": {"include_score": "yes"}}, "psi.include_score"),
        ({"psi": {"ignore": "age"}}, "psi.ignore"),
        ({"psi": 0.25}, "psi"),
        ({"auc_drop": {"threshold": float("nan")}}, "auc_drop.threshold"),
        ({"auc_drop": {"min_labelled": 10.5}}, "auc_drop.min_labelled"),
        ([], "rules"),
    ],
)
def test_bad_specs_name_the_field(spec: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        AlertRules.from_spec(spec)
    assert info.value.field == field


# --- webhook ---------------------------------------------------------------------


class _Hook:
    """A local HTTP server that records posted JSON; ``/fail`` answers 500, ``/gone``
    404, ``/flaky`` and ``/busy`` 503 and 429 to their first post, ``/slow`` waits."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.arrived = threading.Event()
        self.answered = threading.Event()
        self.release = threading.Event()
        hook = self
        first = {"/flaky": 503, "/busy": 429}
        always = {"/fail": 500, "/gone": 404}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/slow":
                    hook.arrived.set()
                    hook.release.wait(10)
                hook.bodies.append(json.loads(body))
                hook.headers.append(dict(self.headers))
                self.send_response(first.pop(self.path, None) or always.get(self.path, 204))
                self.send_header("Content-Length", "0")
                self.end_headers()
                hook.answered.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def hook() -> Iterator[_Hook]:
    server = _Hook()
    yield server
    server.close()


def _alert(subject: str = "income") -> Alert:
    return Alert(
        workspace="credit",
        endpoint="decide",
        rule="psi",
        subject=subject,
        value=0.31,
        threshold=0.25,
        message="input 'income' has drifted",
        window_start=START,
        window_end=END,
        at=END,
        details={"n": 1000},
        id=7,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_webhook_posts_alerts_as_json(hook: _Hook) -> None:
    notifier = WebhookNotifier(hook.url + "/alerts", timeout=5.0)
    assert notifier.notify(_alert("income")) and notifier.notify(_alert("age"))
    notifier.close()
    assert notifier.sent == 2 and notifier.failures == 0 and notifier.last_error is None
    assert [b["subject"] for b in hook.bodies] == ["income", "age"]
    body = hook.bodies[0]
    assert body == alert_payload(_alert("income"))
    assert body["window_start"] == "2025-03-01T00:00:00+00:00" and body["id"] == 7
    assert hook.headers[0]["Content-Type"] == "application/json"
    assert not notifier.notify(_alert())  # closed
    notifier.close()  # twice is fine


def test_webhook_records_failures_without_raising(hook: _Hook) -> None:
    refused = WebhookNotifier(
        f"http://127.0.0.1:{_free_port()}/x", timeout=2.0, retries=1, backoff=0.001
    )
    assert refused.notify(_alert())
    refused.close()
    assert refused.sent == 0 and refused.failures == 1
    assert refused.last_error is not None and "ConnectError" in refused.last_error
    assert "after 2 tries" in refused.last_error
    with WebhookNotifier(hook.url + "/fail", timeout=5.0, retries=2, backoff=0.001) as failing:
        failing.notify(_alert("a"))
        failing.notify(_alert("b"))
    assert failing.failures == 2 and failing.sent == 0
    assert failing.last_error is not None and "HTTP 500" in failing.last_error
    assert [b["subject"] for b in hook.bodies] == ["a"] * 3 + ["b"] * 3  # tried 3 times each
    assert [a.subject for a in failing.undelivered] == ["a", "b"]


def test_webhook_retries_what_may_pass_later(hook: _Hook) -> None:
    for path in ("/flaky", "/busy"):
        hook.bodies.clear()
        with WebhookNotifier(hook.url + path, timeout=5.0, backoff=0.001) as notifier:
            notifier.notify(_alert("a"))
            notifier.notify(_alert("b"))
        assert notifier.sent == 2 and notifier.failures == 0 and notifier.undelivered == []
        assert [b["subject"] for b in hook.bodies] == ["a", "a", "b"], path
    with WebhookNotifier(hook.url + "/gone", timeout=5.0, backoff=0.001) as gone:
        gone.notify(_alert("c"))
    assert gone.failures == 1 and "HTTP 404" in (gone.last_error or "")
    assert [b["subject"] for b in hook.bodies].count("c") == 1  # a 4xx is not retried


def test_webhook_close_counts_what_it_could_not_deliver(hook: _Hook) -> None:
    notifier = WebhookNotifier(hook.url + "/slow", timeout=10.0)
    for subject in ("a", "b", "c"):
        assert notifier.notify(_alert(subject))
    assert hook.arrived.wait(10)  # the worker is posting "a"; "b" and "c" wait
    notifier.close(timeout=0.05)
    assert notifier.sent == 0 and notifier.failures == 3
    assert [a.subject for a in notifier.undelivered] == ["a", "b", "c"]
    assert "close timed out after 0.05s with 3 alert(s) undelivered" in (notifier.last_error or "")
    hook.release.set()  # "a" arrives after all, but it was counted already
    notifier._thread.join(5)
    assert not notifier._thread.is_alive()
    assert notifier.sent == 0 and notifier.failures == 3
    assert [b["subject"] for b in hook.bodies] == ["a"]


def test_webhook_close_cuts_a_retrys_wait_short(hook: _Hook) -> None:
    notifier = WebhookNotifier(hook.url + "/fail", timeout=5.0, retries=1, backoff=60.0)
    notifier.notify(_alert())
    assert hook.answered.wait(10)  # the first try failed; the retry waits a minute
    notifier.close(timeout=0.05)
    notifier._thread.join(5)
    assert not notifier._thread.is_alive()  # cut short
    assert notifier.sent == 0 and notifier.failures == 1 and len(hook.bodies) == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [("retries", -1), ("retries", 1.5), ("retries", True), ("backoff", -0.1), ("backoff", "1")],
)
def test_webhook_retry_settings_are_checked(option: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        WebhookNotifier("http://127.0.0.1:1/x", **{option: value})
    assert info.value.field == option


def test_webhook_queue_is_bounded(hook: _Hook) -> None:
    notifier = WebhookNotifier(hook.url + "/slow", timeout=10.0, max_queue=1)
    assert notifier.notify(_alert("a"))
    assert hook.arrived.wait(10)  # the worker is busy posting "a"
    assert notifier.notify(_alert("b"))  # waits in the queue
    assert not notifier.notify(_alert("c"))  # queue full: dropped, counted
    assert notifier.failures == 1 and "queue full" in (notifier.last_error or "")
    assert [a.subject for a in notifier.undelivered] == ["c"]
    hook.release.set()
    notifier.close()
    assert notifier.sent == 2
    assert [b["subject"] for b in hook.bodies] == ["a", "b"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "file:///etc/passwd", "example.com/hook", "http://", ""]
)
def test_webhook_accepts_only_http_urls(url: str) -> None:
    with pytest.raises(InvalidInput) as info:
        WebhookNotifier(url)
    assert info.value.field == "url"


def test_webhook_repr_hides_credentials() -> None:
    notifier = WebhookNotifier("https://user:secret@hooks.example.com/a?token=t")
    try:
        assert "secret" not in repr(notifier) and "token" not in repr(notifier)
    finally:
        notifier.close()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.com/a", True),
        ("https://HOOKS.example.com./a", True),
        ("https://team.alerts.example.com:8443/a", True),
        ("https://alerts.example.com/a", False),  # "*." allows subdomains only
        ("http://169.254.169.254/latest", False),
        ("https://hooks.example.com.evil.net/a", False),
        ("https://evilalerts.example.com/a", False),
        ("http://[::1]:9000/a", True),
    ],
)
def test_webhook_hosts_outside_the_allow_list_are_refused(url: str, allowed: bool) -> None:
    hosts = ("hooks.example.com", "*.alerts.example.com", "::1")
    if allowed:
        assert check_webhook_url(url, "webhook", hosts) == url
    else:
        with pytest.raises(InvalidInput, match="LEPTONIC_WEBHOOK_HOSTS") as info:
            check_webhook_url(url, "webhook", hosts)
        assert info.value.field == "webhook"
