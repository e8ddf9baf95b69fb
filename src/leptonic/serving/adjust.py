"""Watching an endpoint and adjusting it: drift and performance checks,
alerts, threshold recalibration and retraining.

A part of :class:`~leptonic.serving.service.EndpointService`. The baseline
of a model version is the profile its training run kept
(:data:`~leptonic.monitoring.baseline.BASELINE_ARTIFACT`) of its inputs and
answers on the rows or texts held out for the test. For a run of an older
release it is made once per process: a tabular model's from the dataset
version it was trained on, scored by the model itself (at most
:data:`BASELINE_ROWS` rows), a text model's from its test texts
(:mod:`leptonic.monitoring.text`).
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leptonic.core._time import as_utc, checked_utc, utcnow
from leptonic.core.dataset import DatasetVersion
from leptonic.core.endpoint import Alert, Endpoint, Feedback, PolicyVersion, Prediction, Route
from leptonic.core.model_version import ModelVersion
from leptonic.core.uri import ObjectRef
from leptonic.errors import InvalidInput, LeptonicError
from leptonic.monitoring.alerts import (
    AlertRules,
    WebhookNotifier,
    alert_payload,
    check_webhook_url,
    evaluate_rules,
    score_subject,
)
from leptonic.monitoring.baseline import BASELINE_ARTIFACT, BASELINE_ROWS, BaselineProfile
from leptonic.monitoring.drift import drift_report
from leptonic.monitoring.performance import outcomes_from_labelled, performance_report
from leptonic.monitoring.recalibrate import (
    thresholds_for_approval_rate,
    thresholds_for_bad_rate,
)
from leptonic.serving.policy import DecisionPolicy
from leptonic.serving.runtime import ONE_VERSION_KINDS, endpoint_pii
from leptonic.tasks.spec import spec_from_stored

if TYPE_CHECKING:
    from leptonic.platform import Platform
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.runner import TrainOutcome
    from leptonic.tasks.spec import TrainSpec
    from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = ["BASELINE_ROWS", "DEFAULT_WINDOW", "EndpointAdjustment", "RetrainPlan"]

#: ``leptonic.tasks.textcls.TASK`` (not imported here: the text task loads lazily).
TEXT_TASK = "text-classification"

#: Rows of the training dataset profiled for a baseline (a seeded sample above it).

#: The monitoring window when none is given.
DEFAULT_WINDOW = timedelta(hours=24)

#: Most decisions a check reads.
MAX_WINDOW_ROWS = 200_000

#: Stored alerts read per page when looking for the one a new alert repeats.
_ALERT_PAGE = 200

#: Seconds a check waits for its alerts to reach the webhook (retries included).
_WEBHOOK_WAIT = 5.0

logger = logging.getLogger("leptonic.monitoring")

_baselines: dict[tuple[str, str], BaselineProfile] = {}
_baselines_lock = threading.Lock()


@dataclass(frozen=True)
class RetrainPlan:
    """What a retraining run will do: the primary's spec on the newest data."""

    dataset: str
    dataset_version: int
    spec: TrainSpec | RecommenderSpec | TextClassificationSpec
    model: str


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """The window ``[since, until)`` in aware UTC (a naive datetime is read as UTC)."""
    for field, value in (("since", since), ("until", until)):
        if value is not None and not isinstance(value, datetime):
            raise InvalidInput(
                f"{field} must be a datetime, got {type(value).__name__} {value!r}", field=field
            )
    end = checked_utc(until, "until") if until is not None else datetime.now(UTC)
    start = checked_utc(since, "since") if since is not None else end - DEFAULT_WINDOW
    if start >= end:
        raise InvalidInput("the window's start must come before its end", field="since")
    return start, end


def _check_last(last: Any) -> None:
    """``last`` (how many of the newest answers) is None or a whole number ≥ 1."""
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
        raise InvalidInput(f"last must be a whole number of 1 or more, got {last!r}", field="last")


def _masked_inputs(metadata: Any, endpoint: Endpoint, mv: ModelVersion) -> set[str]:
    """The model's inputs that the runtime hashes before logging (PII it may train on);
    other personal fields a request carries are not inputs, and drift ignores them."""
    inputs = {str(i.get("name")) for i in (mv.signature or {}).get("inputs", [])}
    return set(endpoint_pii(metadata, endpoint)) & inputs


def _is_primary(prediction: Prediction, primary: Route) -> bool:
    return (prediction.model, prediction.version) == (primary.model, primary.version)


def _rule_decided(prediction: Prediction) -> bool:
    """Whether a policy rule, not the score, decided (its reason says ``"rule": true``)."""
    return any(isinstance(r, Mapping) and r.get("rule") is True for r in prediction.reasons)


def _repeats(alert: Alert, earlier: Alert) -> bool:
    """Whether ``earlier`` is the same finding as ``alert``: same rule and subject, over an
    overlapping window."""
    return (
        (earlier.rule, earlier.subject) == (alert.rule, alert.subject)
        and as_utc(earlier.window_start) < as_utc(alert.window_end)
        and as_utc(earlier.window_end) > as_utc(alert.window_start)
    )


class EndpointAdjustment(abc.ABC):
    """Monitoring, recalibration and retraining of endpoints (a mixin of
    :class:`~leptonic.serving.service.EndpointService`, which provides the
    abstract methods)."""

    platform: Platform

    @abc.abstractmethod
    def get(self, workspace: str, name: str) -> Endpoint: ...

    @abc.abstractmethod
    def policy(self, workspace: str, name: str, version: int | None = None) -> PolicyVersion: ...

    @abc.abstractmethod
    def set_policy(
        self,
        workspace: str,
        name: str,
        spec: Mapping[str, Any],
        *,
        reason: str,
        based_on: int | None = None,
    ) -> PolicyVersion: ...

    @abc.abstractmethod
    def canary(
        self, workspace: str, name: str, model: str, version: int, percent: float, *, reason: str
    ) -> Endpoint: ...

    # -- baselines ------------------------------------------------------------------
    def baseline(self, workspace: str, model: str, version: int) -> BaselineProfile:
        """The training-data profile of a model version (computed once per process)."""
        mv = self.platform.model_version(workspace, model, version)
        key = (mv.artifact_digest, mv.dataset)
        with _baselines_lock:
            cached = _baselines.get(key)
        if cached is not None:
            return cached
        profile = self._kept_baseline(mv)
        if profile is None and mv.task == TEXT_TASK:
            profile = self._text_baseline(mv)
        elif profile is None:
            profile = self._tabular_baseline(mv, self._dataset_of(mv))
        with _baselines_lock:
            _baselines[key] = profile
        return profile

    def _dataset_of(self, mv: ModelVersion) -> DatasetVersion:
        ref = ObjectRef.parse(mv.dataset)
        return self.platform.dataset_version(mv.workspace, ref.name, ref.version)

    def _kept_baseline(self, mv: ModelVersion) -> BaselineProfile | None:
        """The profile the version's training run kept, if it kept one that can be read
        (a blob gone or a format of another release: None, and it is made again)."""
        run = self.platform.metadata.get_run(mv.workspace, mv.run_id)
        if BASELINE_ARTIFACT not in run.artifacts:
            return None
        with contextlib.suppress(LeptonicError, ValueError):
            kept = self.platform.artifacts.get_bytes(run.artifacts[BASELINE_ARTIFACT])
            return BaselineProfile.from_json(json.loads(kept))
        return None

    def _tabular_baseline(self, mv: ModelVersion, dv: DatasetVersion) -> BaselineProfile:
        """A tabular model's inputs and scores on (a sample of) its dataset's rows, for
        a run of an older release that kept no profile."""
        import pyarrow.parquet as pq

        predictor = self.platform.load_model(mv.workspace, mv.model, mv.version)
        table = pq.read_table(
            self.platform.artifacts.local_path(dv.artifact_key), columns=predictor.input_names
        )
        frame = table.to_pandas()
        if len(frame) > BASELINE_ROWS:
            frame = frame.sample(BASELINE_ROWS, random_state=0)
        scores = predictor.predict_batch(frame)
        return BaselineProfile.fit(frame, scores, predictor.inputs)

    def _text_baseline(self, mv: ModelVersion) -> BaselineProfile:
        """A text model profiled on the texts its run held out for the test (the model's
        answers on texts it was trained on would be surer than on any new text), for a
        run of an older release that kept no profile."""
        from leptonic.monitoring.text import text_baseline
        from leptonic.tasks.textcls import TextClassificationSpec, holdout_positions, load_text_data

        run = self.platform.metadata.get_run(mv.workspace, mv.run_id)
        dv = self._dataset_of(mv)
        # only what names the data and its split (a run of an older version may hold
        # fields this one no longer has)
        wanted = ("text", "label", "labels", "multi_label", "label_separator", "seed")
        try:
            spec = TextClassificationSpec(
                mode="tfidf", **{k: run.spec[k] for k in wanted if k in run.spec}
            )
        except (InvalidInput, TypeError) as exc:
            raise InvalidInput(
                f"cannot read the text columns of run {run.id} that trained {mv.model} "
                f"v{mv.version} ({exc}); monitor a version trained by this release",
                field="model",
            ) from None
        texts, labels, _ = load_text_data(dv, self.platform.artifacts, spec)
        held_out = [texts[i] for i in holdout_positions(labels, spec)]
        predictor = self.platform.registry.load_any(mv.workspace, mv.model, mv.version)
        return text_baseline(predictor, held_out)

    def _primary_answers(
        self, workspace: str, primary: Route, predictions: list[Prediction]
    ) -> tuple[ModelVersion, BaselineProfile, list[Prediction]]:
        """The primary version, its baseline, and its answers among ``predictions`` as
        monitoring reads them (a text answer: its top label, the text's length and, for a
        multi-label model, its number of labels; see
        :mod:`leptonic.monitoring.text`)."""
        mv = self.platform.model_version(workspace, primary.model, primary.version)
        profile = self.baseline(workspace, primary.model, primary.version)
        mine = [p for p in predictions if _is_primary(p, primary)]
        if mv.task == TEXT_TASK:
            from leptonic.monitoring.text import text_records

            uncertain = None
            if "n_labels" in profile.features and mine:  # multi-label: older logs lack it
                spec = self.policy(workspace, mine[0].endpoint).spec
                uncertain = str(spec.get("uncertain_label", "uncertain"))
            mine = text_records(mine, uncertain_label=uncertain)
        return mv, profile, mine

    def _window_predictions(
        self,
        workspace: str,
        name: str,
        since: datetime | None,
        until: datetime | None,
        last: int | None,
    ) -> tuple[list[Prediction], datetime, datetime]:
        _check_last(last)
        start, end = _window(since, until)
        limit = min(last or MAX_WINDOW_ROWS, MAX_WINDOW_ROWS)
        items = self.platform.metadata.list_predictions(
            workspace, name, since=start, until=end, route="live", limit=limit, newest_first=True
        )
        return items, start, end

    def _primary_labelled(
        self,
        workspace: str,
        name: str,
        primary: Route,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[Prediction, Feedback]]:
        """The outcomes of the primary version's decisions (a canary's or an older
        version's left out), oldest first."""
        labelled = self.platform.metadata.labelled_predictions(
            workspace, name, since=since, until=until
        )
        return [(p, f) for p, f in labelled if _is_primary(p, primary)]

    def _recent_alerts(self, workspace: str, name: str, since: datetime) -> list[Alert]:
        """The endpoint's alerts raised at ``since`` or later (pages of the newest first)."""
        found: list[Alert] = []
        offset = 0
        while True:
            page = self.platform.metadata.list_alerts(
                workspace, name, limit=_ALERT_PAGE, offset=offset
            )
            found += [a for a in page if as_utc(a.at) >= since]
            if len(page) < _ALERT_PAGE or as_utc(page[-1].at) < since:
                return found
            offset += len(page)

    # -- checks --------------------------------------------------------------------
    def monitor(
        self,
        workspace: str,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        last: int | None = None,
        rules: Mapping[str, Any] | None = None,
        webhook: str | None = None,
    ) -> dict[str, Any]:
        """Compare the window's decisions by the primary version with its training
        baseline (PSI per input and for the score) and its outcomes with its test
        AUC; store the alerts that the rules raise and post them to ``webhook``.
        A text endpoint's answers are compared by their top label, confidence and
        text length, a multi-label model's also by its number of labels
        (:mod:`leptonic.monitoring.text`); outcomes are not scored.

        Inputs hashed by the PII policy before logging are skipped (their reason in
        ``drift.skipped``). An alert that repeats one raised within the last window
        length (same rule and subject, overlapping window) is neither stored nor
        posted again; ``repeated`` lists the ids of the alerts it repeats. A naive
        ``since`` or ``until`` is read as UTC.

        With ``webhook``, ``webhook`` in the result says how the new alerts fared:
        ``sent``, ``failed``, the ids ``reposted`` (earlier alerts posted again, see
        below) and ``undelivered`` (after the notifier's retries,
        within 5 seconds in all) and the last ``error``; failures are also logged as
        a warning. A delivered alert is marked (``delivered_at``); one that is not
        stays open and undelivered, and a later check with a webhook that repeats it
        posts it again (as it does an open alert raised by a check without webhook).
        Without ``webhook``, ``webhook`` is None."""
        endpoint = self.get(workspace, name)
        alert_rules = AlertRules.from_spec(rules)
        if webhook:  # checked before any alert is stored
            check_webhook_url(webhook, "webhook", self.platform.settings.webhook_hosts)
        primary = endpoint.routes[0]
        predictions, start, end = self._window_predictions(workspace, name, since, until, last)
        mv, profile, mine = self._primary_answers(workspace, primary, predictions)
        drift = (
            drift_report(
                profile,
                [p.inputs for p in mine],
                [p.score for p in mine],
                masked=_masked_inputs(self.platform.metadata, endpoint, mv),
            )
            if mine
            else None
        )
        # outcomes score a decision model's P(bad); a text answer's confidence is not one
        labelled = (
            self._primary_labelled(workspace, name, primary, start, end)
            if mv.task != TEXT_TASK
            else []
        )
        performance = performance_report(outcomes_from_labelled(labelled)) if labelled else None
        baseline_auc = (mv.metrics.get("test") or {}).get("auc")
        words: dict[str, Any] = {}
        if mv.task == TEXT_TASK:
            from leptonic.monitoring.text import TEXT_ADVICE, TEXT_SUBJECTS

            words = {"subjects": TEXT_SUBJECTS, "advice": TEXT_ADVICE}
        raised = evaluate_rules(
            alert_rules, drift, performance, baseline_auc, start, end, workspace, name, **words
        )
        earlier = (
            self._recent_alerts(workspace, name, datetime.now(UTC) - (end - start))
            if raised
            else []
        )
        repeated: list[int] = []
        fresh: list[Alert] = []
        # open findings that no webhook has taken yet are posted again with this check's
        undelivered: dict[int, Alert] = {}
        for alert in raised:
            same = next((e for e in earlier if _repeats(alert, e)), None)
            if same is None:
                fresh.append(alert)
            elif same.id is not None:
                repeated.append(same.id)
                if same.delivered_at is None and same.status == "open":
                    undelivered[same.id] = same
        stored: list[Alert] = [self.platform.metadata.add_alert(a) for a in fresh]
        if stored:
            ref = ObjectRef(workspace, "endpoint", name)
            self.platform.audit(
                "endpoint.alert",
                workspace,
                [ref],
                alerts=[a.id for a in stored],
                rules=[f"{a.rule}:{a.subject}" for a in stored],
            )
        delivery = None
        if webhook:
            delivery = self._post_alerts(workspace, name, webhook, [*undelivered.values(), *stored])
            delivery["reposted"] = list(undelivered)
        return {
            "endpoint": name,
            "model": primary.model,
            "version": primary.version,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "n": len(mine),
            # the score under its alerts' subject, which no input's name takes
            "psi": {**drift.psi, score_subject(drift): drift.score.psi} if drift else {},
            "drift": drift.to_dict() if drift else None,
            "performance": performance.overall.to_dict() if performance else None,
            "baseline_auc": baseline_auc,
            "rules": alert_rules.to_spec(),
            "alerts": [alert_payload(a) for a in stored],
            "repeated": repeated,
            "webhook": delivery,
        }

    def _post_alerts(
        self, workspace: str, name: str, webhook: str, alerts: list[Alert]
    ) -> dict[str, Any]:
        """Post ``alerts`` to ``webhook``; what was sent and what was not (logged)."""
        if not alerts:
            return {"sent": 0, "failed": 0, "undelivered": [], "error": None}
        notifier = WebhookNotifier(webhook)
        try:
            for a in alerts:
                notifier.notify(a)
        finally:
            notifier.close(timeout=_WEBHOOK_WAIT)
        undelivered = [a.id for a in notifier.undelivered]
        delivered = [a.id for a in alerts if a.id is not None and a.id not in undelivered]
        if delivered:  # what is not marked is posted again when a later check repeats it
            self.platform.metadata.set_alerts_delivered(workspace, name, delivered, utcnow())
        if notifier.failures:
            logger.warning(
                "%d of %d alert(s) of endpoint %r in workspace %r were not delivered to the "
                "webhook (ids %s): %s",
                notifier.failures,
                len(alerts),
                name,
                workspace,
                undelivered,
                notifier.last_error,
            )
        return {
            "sent": notifier.sent,
            "failed": notifier.failures,
            "undelivered": undelivered,
            "error": notifier.last_error,
        }

    def alerts(
        self,
        workspace: str,
        name: str,
        *,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Alert]:
        self.get(workspace, name)
        return self.platform.metadata.list_alerts(
            workspace, name, status=status, limit=limit, offset=offset
        )

    def set_alert_status(self, workspace: str, name: str, alert_id: int, status: str) -> Alert:
        # another endpoint's alert is refused before anything changes
        alert = self.platform.metadata.set_alert_status(workspace, alert_id, status, endpoint=name)
        self.platform.audit(
            "endpoint.alert_status",
            workspace,
            [ObjectRef(workspace, "endpoint", name)],
            alert=alert_id,
            status=status,
        )
        return alert

    def monitor_report(self, workspace: str, name: str, *, window: timedelta | None = None) -> str:
        """A self-contained HTML page of drift and performance over time."""
        from leptonic.monitoring.drift import drift_over_time
        from leptonic.monitoring.plots import monitoring_report_html

        endpoint = self.get(workspace, name)
        primary = endpoint.routes[0]
        predictions = self.platform.metadata.list_predictions(
            workspace, name, route="live", limit=MAX_WINDOW_ROWS, newest_first=True
        )
        mv, profile, mine = self._primary_answers(workspace, primary, predictions)
        masked = _masked_inputs(self.platform.metadata, endpoint, mv) if mine else set()
        span = (mine[0].at - mine[-1].at) if mine else timedelta(0)
        step = window or _pick_window(span)
        series = drift_over_time(profile, mine, step, masked=masked) if mine else None
        recent = (
            drift_report(profile, [p.inputs for p in mine], [p.score for p in mine], masked=masked)
            if mine
            else None
        )
        labelled: list[tuple[Prediction, Feedback]] = []
        if mine and mv.task != TEXT_TASK:
            # the outcomes of the decisions the drift rows cover: the window was sized
            # for that span, and labels of older decisions could need far more windows
            times = [p.at for p in mine]
            labelled = self._primary_labelled(
                workspace, name, primary, min(times), max(times) + timedelta(microseconds=1)
            )
        performance = (
            performance_report(outcomes_from_labelled(labelled), step) if labelled else None
        )
        return monitoring_report_html(
            title=f"Endpoint {workspace}/{name}: {primary.model} v{primary.version}",
            profile=profile,
            drift=recent,
            series=series,
            performance=performance,
            alerts=self.platform.metadata.list_alerts(workspace, name, limit=50),
        )

    # -- adjusting -------------------------------------------------------------------
    def recalibrate(
        self,
        workspace: str,
        name: str,
        *,
        target_approval_rate: float | None = None,
        target_bad_rate: float | None = None,
        since: datetime | None = None,
        last: int | None = None,
        reason: str,
    ) -> PolicyVersion:
        """A new policy version whose approve (and review) edges hit a target
        approval rate on recent decisions, or a target bad rate among the
        approved on recent outcomes.

        Only the primary version's decisions count (a canary's scores are scaled
        differently), and only those its score decided (not a policy rule). The
        rate achieved, in the stored note, is measured on the same decisions the
        edges were chosen on (in-sample). A naive ``since`` is read as UTC."""
        if (target_approval_rate is None) == (target_bad_rate is None):
            raise InvalidInput(
                "give exactly one of target_approval_rate or target_bad_rate",
                field="target_approval_rate",
            )
        _check_last(last)
        endpoint = self.get(workspace, name)
        current = self.platform.metadata.get_policy_version(
            workspace, name, endpoint.policy_version
        )
        policy = DecisionPolicy.from_spec(current.spec)
        primary = endpoint.routes[0]
        start, end = _window(since, None)
        if target_approval_rate is not None:
            predictions, _, _ = self._window_predictions(workspace, name, start, end, last)
            result = thresholds_for_approval_rate(
                [p.score for p in predictions if _is_primary(p, primary) and not _rule_decided(p)],
                target_approval_rate,
            )
        else:
            assert target_bad_rate is not None
            labelled = [
                (p, f)
                for p, f in self._primary_labelled(workspace, name, primary, start, end)
                if not _rule_decided(p)
            ]
            if last:
                labelled = labelled[-last:]
            result = thresholds_for_bad_rate(
                [p.score for p, _ in labelled], [f.label for _, f in labelled], target_bad_rate
            )
        moved, changes = _moved(policy, result.approve_edge, result.reject_edge)
        spec = moved.to_spec()
        note = "; ".join(
            [
                f"recalibrated for {result.method.replace('_', ' ')} {result.target:g}: achieved "
                f"{result.achieved:.4f} in-sample, on the {result.n} recent decisions of "
                f"{primary.model} v{primary.version} decided by score that the edges were "
                "chosen on",
                *changes,
            ]
        )
        spec["description"] = note
        # worked out from the active version: a policy set meanwhile is a Conflict
        return self.set_policy(
            workspace, name, spec, reason=f"{reason} ({note})", based_on=current.version
        )

    def retrain_plan(
        self,
        workspace: str,
        name: str,
        *,
        dataset: str | None = None,
        dataset_version: int | None = None,
        model: str | None = None,
    ) -> RetrainPlan:
        """The primary version's training spec on the newest version of its dataset."""
        endpoint = self.get(workspace, name)
        primary = endpoint.routes[0]
        mv = self.platform.model_version(workspace, primary.model, primary.version)
        run = self.platform.get_run(workspace, mv.run_id)
        ref = ObjectRef.parse(mv.dataset)
        dv = self.platform.dataset_version(workspace, dataset or ref.name, dataset_version)
        return RetrainPlan(dv.dataset, dv.version, spec_from_stored(run.spec), model or mv.model)

    def audit_retrain(
        self,
        workspace: str,
        name: str,
        plan: RetrainPlan,
        run_id: str | None,
        reason: str,
        **details: Any,
    ) -> None:
        """Record ``endpoint.retrain`` for a training of ``plan`` (run ``run_id``), run now
        or queued as a job (``details``: e.g. its id)."""
        refs = [ObjectRef(workspace, "endpoint", name)]
        if run_id is not None:
            refs.append(ObjectRef(workspace, "run", run_id))
        self.platform.audit(
            "endpoint.retrain",
            workspace,
            refs,
            dataset=plan.dataset,
            dataset_version=plan.dataset_version,
            reason=reason,
            **details,
        )

    def retrain(
        self,
        workspace: str,
        name: str,
        *,
        dataset: str | None = None,
        dataset_version: int | None = None,
        model: str | None = None,
        canary_percent: float | None = None,
        reason: str = "retrain",
    ) -> TrainOutcome:
        """Train :meth:`retrain_plan` now, register a candidate, optionally start its canary
        (decision endpoints; a text endpoint serves one version: ``deploy`` the new one)."""
        if canary_percent is not None:
            from leptonic.serving.service import check_canary_percent

            check_canary_percent(canary_percent, "canary_percent")  # before the training
            kind = self.policy(workspace, name).spec.get("kind")
            if kind in ONE_VERSION_KINDS:  # refused before the training, not after it
                raise InvalidInput(
                    f"a {kind} endpoint serves one version: retrain without a canary, then "
                    "serve the new version with `leptonic endpoint deploy`",
                    field="canary_percent",
                )
        plan = self.retrain_plan(
            workspace, name, dataset=dataset, dataset_version=dataset_version, model=model
        )
        outcome = self.platform.train(
            workspace, plan.dataset, plan.spec, version=plan.dataset_version, model_name=plan.model
        )
        self.audit_retrain(workspace, name, plan, outcome.run.id, reason)
        mv = outcome.model_version
        if canary_percent is not None and mv is not None:
            self.canary(workspace, name, mv.model, mv.version, canary_percent, reason=reason)
        return outcome


def _edge(policy: DecisionPolicy, probability: float) -> float:
    """The edge in the policy's score of a band taking the scores below ``probability``.

    A points band takes the points at or above its ``min``, and points fall as the
    probability rises: its ``min`` must lie strictly above the points of ``probability``
    (rounded up to 6 decimals), or a score tied at the edge would fall into the band.
    """
    if policy.score == "probability":
        return probability
    points = policy.to_score(probability)
    if not math.isfinite(points):
        raise InvalidInput(
            f"the edge P(bad) = {probability!r} has no finite number of points; "
            "recalibrate on other decisions or set the bands by hand with set_policy",
            field="bands",
        )
    edge = round(points, 6)
    if edge <= points:
        edge = round(points + 1e-6, 6)
    return edge if edge > points else math.nextafter(points, math.inf)


def _moved(
    policy: DecisionPolicy, approve: float, reject: float | None
) -> tuple[DecisionPolicy, list[str]]:
    """``policy`` with its first band ending at probability ``approve`` and, with
    three bands or more, its second at ``reject``; and notes on what was decided
    beyond that.

    Without ``reject`` (no decision of the sample would be rejected) the second
    band keeps its edge. When that edge, or ``reject``, would leave the second band
    empty (at or within the new first band's edge), it is set 10% of the way from
    ``approve`` to 1, and a note says so.
    """
    names = [name for name, _ in policy.bands]
    if len(names) < 2:
        raise InvalidInput(
            "this policy has a single band; give it approve and reject bands to recalibrate",
            field="bands",
        )
    first = _edge(policy, approve)
    edges: dict[str, float] = {names[0]: first}
    notes: list[str] = []
    if len(names) >= 3:
        current = policy.bands[1][1]
        assert current is not None
        second = _edge(policy, reject) if reject is not None else current
        beyond = second > first if policy.score == "probability" else second < first
        if not beyond:
            fallback = min(1.0, approve + (1.0 - approve) * 0.1)
            second = _edge(policy, fallback)
            notes.append(
                f"the {names[1]} band would have been empty, so its edge is set at "
                f"P(bad) = {fallback:.6g} ({second:g} in the policy's score), 10% of the way "
                f"from the {names[0]} edge to 1: check it, or set it by hand"
            )
        elif reject is None:
            notes.append(
                f"no recent decision would reach the {names[2]} band, so the {names[1]} "
                f"edge {current:g} is kept"
            )
        edges[names[1]] = second
    return policy.with_thresholds(edges), notes


def _pick_window(span: timedelta) -> timedelta:
    for step in (
        timedelta(minutes=1),
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=6),
        timedelta(days=1),
    ):
        if span <= step * 48:
            return step
    return timedelta(days=7)
