"""Alert rules over drift and performance, and a webhook that delivers alerts.

Two rules, each with a minimum sample so that small windows do not raise
alerts on noise:

``psi``
    The PSI of an input or of the score is above ``threshold`` (0.25) over at
    least ``min_predictions`` (200) predictions. With ``k`` bins a window of
    ``n`` predictions drawn from the baseline itself reads a PSI of about
    ``(k - 1) / n``: 0.05 for 11 bins and 200 predictions.
``auc_drop``
    The baseline AUC (e.g. the model version's test AUC) minus the AUC on
    fed-back outcomes is above ``threshold`` (0.05), over at least
    ``min_labelled`` (100) outcomes of which at least ``min_each_class`` (10)
    are bad and 10 good: with fewer bads the AUC's standard error alone is
    above 0.05. The two AUCs are not of the same population: the test AUC
    covers every applicant, but outcomes come back mostly for the approved,
    whose scores span a narrower range, and a narrower range alone lowers the
    AUC. A drop can therefore show without any decay of the model; compare
    with the test AUC of the same score range before retraining.

:func:`evaluate_rules` returns :class:`~leptonic.core.endpoint.Alert` records
for the store; :class:`WebhookNotifier` posts them as JSON from a background
thread without ever blocking or raising into its caller, retries posts that
may pass later and counts the alerts it could not deliver.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from leptonic.core._time import utcnow
from leptonic.core.endpoint import Alert
from leptonic.errors import InvalidInput
from leptonic.monitoring.drift import DriftReport, FeatureDrift
from leptonic.monitoring.performance import PerformanceReport, PerformanceWindow

__all__ = [
    "AlertRules",
    "AucDropRule",
    "PsiRule",
    "WebhookNotifier",
    "alert_payload",
    "check_webhook_url",
    "evaluate_rules",
    "score_subject",
]


@dataclass(frozen=True)
class PsiRule:
    """Alert when an input's (or the score's) PSI exceeds ``threshold``.

    ``ignore`` lists inputs never alerted on; ``include_score`` also checks the score.
    """

    threshold: float = 0.25
    min_predictions: int = 200
    include_score: bool = True
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class AucDropRule:
    """Alert when ``baseline AUC - AUC on outcomes`` exceeds ``threshold``.

    The baseline is usually the test AUC of all applicants, while outcomes come
    back mostly for the approved (a narrower score range, hence a lower AUC
    without any decay): see the module notes.
    """

    threshold: float = 0.05
    min_labelled: int = 100
    min_each_class: int = 10


@dataclass(frozen=True)
class AlertRules:
    """The rules of one monitor; a rule set to None is off.

    The JSON form (:meth:`to_spec`, :meth:`from_spec`)::

        {"psi": {"threshold": 0.25, "min_predictions": 200,
                 "include_score": true, "ignore": []},
         "auc_drop": {"threshold": 0.05, "min_labelled": 100, "min_each_class": 10}}

    A rule left out of a spec keeps its defaults, a rule given as ``null`` or
    ``false`` is off, and a field left out keeps its default.
    """

    psi: PsiRule | None = field(default_factory=PsiRule)
    auc_drop: AucDropRule | None = field(default_factory=AucDropRule)

    def to_spec(self) -> dict[str, Any]:
        """The JSON form; :meth:`from_spec` reads it back."""
        return {
            "psi": None
            if self.psi is None
            else {
                "threshold": self.psi.threshold,
                "min_predictions": self.psi.min_predictions,
                "include_score": self.psi.include_score,
                "ignore": list(self.psi.ignore),
            },
            "auc_drop": None
            if self.auc_drop is None
            else {
                "threshold": self.auc_drop.threshold,
                "min_labelled": self.auc_drop.min_labelled,
                "min_each_class": self.auc_drop.min_each_class,
            },
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> AlertRules:
        """Rules from their JSON form; :class:`InvalidInput` naming the bad field."""
        if spec is None:
            return cls()
        if not isinstance(spec, Mapping):
            raise InvalidInput(
                f"alert rules must be an object with 'psi' and 'auc_drop', got {spec!r}",
                field="rules",
            )
        unknown = sorted(set(spec) - {"psi", "auc_drop"})
        if unknown:
            raise InvalidInput(
                f"unknown alert rule {unknown[0]!r}; the rules are 'psi' and 'auc_drop'",
                field=str(unknown[0]),
            )
        psi: PsiRule | None = PsiRule()
        auc: AucDropRule | None = AucDropRule()
        if "psi" in spec:
            raw = _rule_fields(
                spec["psi"], "psi", {"threshold", "min_predictions", "include_score", "ignore"}
            )
            psi = None
            if raw is not None:
                defaults = PsiRule()
                psi = PsiRule(
                    threshold=_positive(raw, "psi", "threshold", defaults.threshold),
                    min_predictions=_count(raw, "psi", "min_predictions", defaults.min_predictions),
                    include_score=_flag(raw, "psi", "include_score", defaults.include_score),
                    ignore=_names(raw, "psi", "ignore"),
                )
        if "auc_drop" in spec:
            raw = _rule_fields(
                spec["auc_drop"], "auc_drop", {"threshold", "min_labelled", "min_each_class"}
            )
            auc = None
            if raw is not None:
                defaults_auc = AucDropRule()
                auc = AucDropRule(
                    threshold=_positive(raw, "auc_drop", "threshold", defaults_auc.threshold),
                    min_labelled=_count(raw, "auc_drop", "min_labelled", defaults_auc.min_labelled),
                    min_each_class=_count(
                        raw, "auc_drop", "min_each_class", defaults_auc.min_each_class
                    ),
                )
        return cls(psi=psi, auc_drop=auc)


def _rule_fields(raw: Any, rule: str, allowed: set[str]) -> Mapping[str, Any] | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput(
            f"alert rule {rule!r} must be an object of settings, or null to turn it off; "
            f"got {raw!r}",
            field=rule,
        )
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown setting {unknown[0]!r} of alert rule {rule!r}; "
            f"use {', '.join(sorted(allowed))}",
            field=f"{rule}.{unknown[0]}",
        )
    return raw


def _positive(raw: Mapping[str, Any], rule: str, name: str, default: float) -> float:
    value = raw.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInput(
            f"{rule}.{name} must be a positive number, got {value!r}", field=f"{rule}.{name}"
        )
    return float(value)


def _count(raw: Mapping[str, Any], rule: str, name: str, default: int) -> int:
    value = raw.get(name, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(
            f"{rule}.{name} must be a whole number >= 1, got {value!r}", field=f"{rule}.{name}"
        )
    return value


def _flag(raw: Mapping[str, Any], rule: str, name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(
            f"{rule}.{name} must be true or false, got {value!r}", field=f"{rule}.{name}"
        )
    return value


def _names(raw: Mapping[str, Any], rule: str, name: str) -> tuple[str, ...]:
    value = raw.get(name, [])
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInput(
            f"{rule}.{name} must be a list of input names, got {value!r}", field=f"{rule}.{name}"
        )
    if not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{rule}.{name} must hold input names (text)", field=f"{rule}.{name}")
    return tuple(value)


def _shift(drift: FeatureDrift) -> str:
    """The bin whose share moved most, as text."""
    pairs = list(zip(drift.labels, drift.expected, drift.actual, strict=True))
    label, e, a = max(pairs, key=lambda t: abs(t[2] - t[1]))
    return f"the largest change is in bin {label!r}: {e:.1%} in training, {a:.1%} now"


def _span(start: datetime, end: datetime) -> str:
    return f"{start.isoformat(timespec='minutes')} to {end.isoformat(timespec='minutes')}"


def score_subject(drift: DriftReport) -> str:
    """The subject of the model score's drift: ``score``, unless one of the profile's
    inputs has that name; then ``model score`` (numbered if an input has that name
    too), so that an input's alerts and PSI never share a subject with the score's."""
    inputs = {*drift.features, *drift.skipped}
    if "score" not in inputs:
        return "score"
    subject, i = "model score", 1
    while subject in inputs:
        i += 1
        subject = f"model score {i}"
    return subject


def _psi_alerts(
    rule: PsiRule,
    drift: DriftReport,
    start: datetime,
    end: datetime,
    workspace: str,
    endpoint: str,
    described: Mapping[str, str],
    advice: str | None,
) -> list[Alert]:
    subjects: list[tuple[str, FeatureDrift, bool]] = [
        (name, d, False) for name, d in drift.features.items() if name not in rule.ignore
    ]
    if rule.include_score:
        subjects.append((score_subject(drift), drift.score, True))
    alerts = []
    for name, d, is_score in subjects:
        if d.psi is None or d.n < rule.min_predictions or d.psi <= rule.threshold:
            continue
        if name in described:
            what = f"{described[name]} ({name!r})"
        else:
            what = "the model score" if is_score else f"input {name!r}"
        todo = advice or f"Check the upstream data for {name!r}, then consider retraining."
        message = (
            f"{what} has drifted on endpoint {endpoint!r}: PSI {d.psi:.3f} over {d.n:,} "
            f"predictions from {_span(start, end)}, above the threshold {rule.threshold:g}; "
            f"{_shift(d)}. {todo}"
        )
        alerts.append(
            Alert(
                workspace=workspace,
                endpoint=endpoint,
                rule="psi",
                subject=name,
                value=float(d.psi),
                threshold=rule.threshold,
                message=message,
                window_start=start,
                window_end=end,
                details={
                    "kind": "score" if is_score else d.kind,
                    "n": d.n,
                    "n_missing": d.n_missing,
                    "labels": list(d.labels),
                    "expected": list(d.expected),
                    "actual": list(d.actual),
                },
            )
        )
    return alerts


def _auc_alert(
    rule: AucDropRule,
    perf: PerformanceWindow,
    baseline_auc: float,
    start: datetime,
    end: datetime,
    workspace: str,
    endpoint: str,
) -> list[Alert]:
    if (
        perf.auc is None
        or perf.n < rule.min_labelled
        or min(perf.n_bad, perf.n_good) < rule.min_each_class
    ):
        return []
    drop = baseline_auc - perf.auc
    if drop <= rule.threshold:
        return []
    message = (
        f"AUC on endpoint {endpoint!r} fell to {perf.auc:.3f} on {perf.n:,} outcomes "
        f"({perf.n_bad:,} bad) of decisions from {_span(start, end)}, {drop:.3f} below the "
        f"baseline {baseline_auc:.3f} (threshold {rule.threshold:g}). Outcomes come back "
        "mostly for approved applicants, whose narrower score range lowers the AUC without "
        "any decay of the model: compare with the test AUC over the same score range, "
        "review the model's inputs for drift, then retrain on recent outcomes."
    )
    return [
        Alert(
            workspace=workspace,
            endpoint=endpoint,
            rule="auc_drop",
            subject="auc",
            value=float(drop),
            threshold=rule.threshold,
            message=message,
            window_start=start,
            window_end=end,
            details={
                "baseline_auc": baseline_auc,
                "auc": perf.auc,
                "ks": perf.ks,
                "n": perf.n,
                "n_bad": perf.n_bad,
            },
        )
    ]


def evaluate_rules(
    rules: AlertRules,
    drift_report: DriftReport | None,
    performance: PerformanceWindow | PerformanceReport | None,
    baseline_auc: float | None,
    window_start: datetime,
    window_end: datetime,
    workspace: str,
    endpoint: str,
    *,
    at: datetime | None = None,
    subjects: Mapping[str, str] | None = None,
    advice: str | None = None,
) -> list[Alert]:
    """The alerts that the rules raise on one window's drift and performance.

    Parameters
    ----------
    rules
        The monitor's rules.
    drift_report
        Drift of the window's predictions, or None to skip the PSI rule.
    performance
        Performance on the window's outcomes (a report counts by its overall
        figures), or None to skip the AUC rule.
    baseline_auc
        The AUC to compare with (e.g. the model version's test AUC); None
        skips the AUC rule.
    window_start, window_end
        The window the figures cover; copied into the alerts.
    workspace, endpoint
        The endpoint monitored.
    at
        When the alerts were raised; now (UTC) by default, the same for all.
    subjects
        What a drift subject measures, by name, for the alert messages (a text
        endpoint's ``label`` is "the share of each predicted label", not an
        input); unnamed subjects are inputs, and ``score`` the model score
        (``model score`` when an input is named ``score``; its ``details`` say
        ``"kind": "score"``).
    advice
        What a PSI alert's message tells to do; unset: check the upstream
        data for the input, then consider retraining.

    Returns
    -------
    list of Alert
        PSI alerts (inputs in profile order, then the score), then the AUC
        alert; unsaved (``id`` None).
    """
    if window_end < window_start:
        raise InvalidInput(
            f"window_end {window_end.isoformat()} is before window_start "
            f"{window_start.isoformat()}",
            field="window_end",
        )
    raised = utcnow() if at is None else at
    alerts: list[Alert] = []
    if rules.psi is not None and drift_report is not None:
        alerts += _psi_alerts(
            rules.psi,
            drift_report,
            window_start,
            window_end,
            workspace,
            endpoint,
            subjects or {},
            advice,
        )
    if rules.auc_drop is not None and performance is not None and baseline_auc is not None:
        if not isinstance(baseline_auc, int | float) or not 0 <= baseline_auc <= 1:
            raise InvalidInput(
                f"baseline_auc must be an AUC in [0, 1], got {baseline_auc!r}",
                field="baseline_auc",
            )
        window = performance.overall if isinstance(performance, PerformanceReport) else performance
        alerts += _auc_alert(
            rules.auc_drop,
            window,
            float(baseline_auc),
            window_start,
            window_end,
            workspace,
            endpoint,
        )
    return [replace(a, at=raised) for a in alerts]


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The JSON body a webhook receives for ``alert`` (datetimes in ISO 8601)."""
    return {
        "id": alert.id,
        "workspace": alert.workspace,
        "endpoint": alert.endpoint,
        "rule": alert.rule,
        "subject": alert.subject,
        "value": alert.value,
        "threshold": alert.threshold,
        "message": alert.message,
        "window_start": alert.window_start.isoformat(),
        "window_end": alert.window_end.isoformat(),
        "at": alert.at.isoformat(),
        "status": alert.status,
        "details": alert.details,
    }


def check_webhook_url(
    url: Any, field: str = "url", allowed_hosts: Sequence[str] | None = None
) -> str:
    """``url`` if it is an http(s) URL with a host; :class:`InvalidInput` naming ``field``.

    With ``allowed_hosts`` (lower-case host names; ``*.example.com`` matches the
    subdomains of ``example.com``), the URL's host must also be one of them.
    """
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        host = parts.hostname if parts is not None else None
        if parts is not None:
            parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:  # a bad port or bracketed host
        parts = host = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not host
        or any(c.isspace() for c in str(url))
    ):
        raise InvalidInput(
            f"webhook URL must be an http:// or https:// URL with a host, got {url!r}",
            field=field,
        )
    if allowed_hosts is not None and not _host_allowed(host, allowed_hosts):
        raise InvalidInput(
            f"webhook host {host!r} is not one this server may post to "
            f"(LEPTONIC_WEBHOOK_HOSTS: {', '.join(allowed_hosts) or 'none'}); use one of "
            "those hosts or ask the server's administrator to add it",
            field=field,
        )
    return url


def _host_allowed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """Whether ``host`` is one of ``allowed_hosts`` or a subdomain of a ``*.`` entry."""
    host = host.lower().rstrip(".")
    return any(
        host.endswith(pattern[1:]) if pattern.startswith("*.") else host == pattern
        for pattern in allowed_hosts
    )


def _redacted(url: str) -> str:
    """The URL without credentials or query (never raises)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
    except ValueError:
        return "the webhook URL"


_STOP = object()


class WebhookNotifier:
    """Posts alerts as JSON to a URL from a background thread.

    :meth:`notify` only queues the alert (a bounded queue: when it is full the
    alert is dropped and counted as a failure) and never raises. A post that
    fails on the way (a connection error or timeout) or is answered 429 or
    5xx is tried again up to ``retries`` times, after ``backoff`` seconds,
    then twice that, and so on; an alert is posted at least once and, when
    an answer was lost, possibly twice (its ``id`` tells the copies apart).
    Other answers (3xx, 4xx) are not retried. An alert not delivered counts
    in :attr:`failures`, is kept in :attr:`undelivered` and the last reason
    in :attr:`last_error`. :meth:`close` delivers what is queued, then stops
    the thread; alerts it could not deliver in its ``timeout`` count as
    failures. Redirects are not followed.

    Each alert takes at most ``(retries + 1) * timeout`` seconds of posting
    plus ``backoff * (2**retries - 1)`` seconds of waiting.

    Parameters
    ----------
    url
        An ``http://`` or ``https://`` URL.
    timeout
        Seconds allowed for each post.
    max_queue
        Alerts that may wait for delivery (and undelivered alerts kept).
    retries
        Further tries of a post that failed on the way or was answered 429 or 5xx.
    backoff
        Seconds before the first retry; each further retry waits twice as long.

    Examples
    --------
    >>> notifier = WebhookNotifier("https://hooks.example.com/leptonic")  # doctest: +SKIP
    >>> notifier.notify(alert)  # doctest: +SKIP
    True
    >>> notifier.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        *,
        max_queue: int = 1000,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.url = check_webhook_url(url)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise InvalidInput(
                f"timeout must be a positive number, got {timeout!r}", field="timeout"
            )
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise InvalidInput(
                f"max_queue must be an integer >= 1, got {max_queue!r}", field="max_queue"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput(f"retries must be an integer >= 0, got {retries!r}", field="retries")
        if (
            isinstance(backoff, bool)
            or not isinstance(backoff, int | float)
            or not math.isfinite(backoff)
            or backoff < 0
        ):
            raise InvalidInput(
                f"backoff must be a number of seconds >= 0, got {backoff!r}", field="backoff"
            )
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._closed = False
        self._abandoned = False  # close timed out: the worker stops, nothing more counts
        self._wake = threading.Event()  # cuts a retry's wait short when abandoned
        self._current: Alert | None = None  # the alert being posted
        self._sent = 0
        self._failures = 0
        self._last_error: str | None = None
        self._undelivered: deque[Alert] = deque(maxlen=max_queue)
        self._thread = threading.Thread(target=self._run, name="leptonic-webhook", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return (
            f"WebhookNotifier({_redacted(self.url)!r}, sent={self.sent}, failures={self.failures})"
        )

    @property
    def sent(self) -> int:
        """Alerts delivered (answered with a 2xx status)."""
        with self._lock:
            return self._sent

    @property
    def failures(self) -> int:
        """Alerts not delivered: failed posts (after their retries), alerts dropped on
        a full or closed queue, and alerts still waiting when :meth:`close` timed out."""
        with self._lock:
            return self._failures

    @property
    def last_error(self) -> str | None:
        """What went wrong with the last failure, or None."""
        with self._lock:
            return self._last_error

    @property
    def undelivered(self) -> list[Alert]:
        """The alerts counted in :attr:`failures`, oldest first (at most ``max_queue``,
        the newest)."""
        with self._lock:
            return list(self._undelivered)

    def _fail(self, alert: Alert, error: str) -> None:
        """Count ``alert`` as not delivered (the lock held)."""
        self._failures += 1
        self._last_error = error
        self._undelivered.append(alert)

    def notify(self, alert: Alert) -> bool:
        """Queue ``alert`` for delivery; False (and a failure counted) if it cannot be."""
        try:
            with self._lock:
                if self._closed:
                    self._fail(alert, "notifier is closed")
                    return False
                try:
                    self._queue.put_nowait(alert)
                except queue.Full:
                    self._fail(
                        alert, f"queue full ({self._queue.maxsize} alerts waiting); alert dropped"
                    )
                    return False
            return True
        except Exception as exc:  # never raise into the caller
            with self._lock:
                self._fail(alert, f"{type(exc).__name__}: {exc}")
            return False

    def _run(self) -> None:
        import httpx

        with httpx.Client(
            timeout=self.timeout,
            follow_redirects=False,
            headers={"User-Agent": "leptonic-monitoring"},
        ) as client:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                with self._lock:
                    if self._abandoned:  # close timed out after this alert left the queue
                        self._fail(item, "close timed out before the alert was posted")
                        continue
                    self._current = item
                self._deliver(client, item)

    def _deliver(self, client: Any, alert: Alert) -> None:
        """Post ``alert``, retrying what may pass on a later try, and count the outcome."""
        error: str | None = None
        tries = 0
        for attempt in range(self.retries + 1):
            if attempt and self._wake.wait(self.backoff * 2 ** (attempt - 1)):
                break  # close timed out: the alert is already counted
            tries += 1
            error, again = self._post(client, alert)
            if error is None or not again:
                break
        with self._lock:
            if self._current is not alert:  # counted as undelivered when close timed out
                return
            self._current = None
            if error is None:
                self._sent += 1
            else:
                after = f" (after {tries} tries)" if tries > 1 else ""
                self._fail(alert, f"post to {_redacted(self.url)} {error}{after}")

    def _post(self, client: Any, alert: Alert) -> tuple[str | None, bool]:
        """One post: None or what went wrong, and whether a retry may do better."""
        import httpx

        try:
            response = client.post(self.url, json=alert_payload(alert))
        except httpx.TransportError as exc:  # connection refused or reset, timeouts
            return f"failed: {type(exc).__name__}: {exc}", True
        except Exception as exc:  # a failed post must not stop the worker
            return f"failed: {type(exc).__name__}: {exc}", False
        status = response.status_code
        if 200 <= status < 300:
            return None, False
        return f"answered HTTP {status}: {response.text[:200]}", status == 429 or status >= 500

    def close(self, timeout: float | None = None) -> None:
        """Deliver the queued alerts, then stop; waits at most ``timeout`` seconds (None:
        until all are posted or have failed, retries included).

        Alerts not delivered by then count in :attr:`failures` and
        :attr:`undelivered`; one whose post was under way may still arrive.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        try:
            self._queue.put(_STOP, timeout=_left(deadline))  # may wait for the worker to drain
        except queue.Full:
            pass
        else:
            self._thread.join(_left(deadline))
        if self._thread.is_alive():
            self._abandon(timeout)

    def _abandon(self, timeout: float | None) -> None:
        """Count what is queued or being posted as undelivered and let the worker stop."""
        with self._lock:
            self._abandoned = True
            left = [] if self._current is None else [self._current]
            self._current = None
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    left.append(item)
            waited = "" if timeout is None else f" after {timeout:g}s"
            error = f"close timed out{waited} with {len(left)} alert(s) undelivered"
            for alert in left:
                self._fail(alert, error)
        self._wake.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_STOP)

    def __enter__(self) -> WebhookNotifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (a :func:`time.monotonic` time; None: no limit)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())
