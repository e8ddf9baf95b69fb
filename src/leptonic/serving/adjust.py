"""Watching an endpoint and adjusting it: drift and performance checks,
alerts, threshold recalibration and retraining.

A part of :class:`~leptonic.serving.service.EndpointService`. The baseline
of a tabular model version is profiled from the dataset version it was trained
on, scored by the model itself (at most :data:`BASELINE_ROWS` rows), once per
process. A text model's is the profile its training run kept of its answers on
the texts held out for the test (:mod:`leptonic.monitoring.text`); for a run of an
older release, those texts are scored once per process.
"""

from __future__ import annotations

import abc
import contextlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leptonic.core.dataset import DatasetVersion
from leptonic.core.endpoint import Alert, Endpoint, PolicyVersion, Prediction, Route
from leptonic.core.model_version import ModelVersion
from leptonic.core.uri import ObjectRef
from leptonic.errors import InvalidInput, LeptonicError
from leptonic.monitoring.alerts import AlertRules, WebhookNotifier, alert_payload, evaluate_rules
from leptonic.monitoring.baseline import BaselineProfile
from leptonic.monitoring.drift import drift_report
from leptonic.monitoring.performance import outcomes_from_labelled, performance_report
from leptonic.monitoring.recalibrate import (
    thresholds_for_approval_rate,
    thresholds_for_bad_rate,
)
from leptonic.serving.policy import DecisionPolicy
from leptonic.serving.runtime import ONE_VERSION_KINDS
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
BASELINE_ROWS = 50_000

#: The monitoring window when none is given.
DEFAULT_WINDOW = timedelta(hours=24)

#: Most decisions a check reads.
MAX_WINDOW_ROWS = 200_000

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
    end = until or datetime.now(UTC)
    start = since or (end - DEFAULT_WINDOW)
    if start >= end:
        raise InvalidInput("the window's start must come before its end", field="since")
    return start, end


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
        self, workspace: str, name: str, spec: Mapping[str, Any], *, reason: str
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
        if mv.task == TEXT_TASK:
            profile = self._text_baseline(mv)
        else:
            profile = self._tabular_baseline(mv, self._dataset_of(mv))
        with _baselines_lock:
            _baselines[key] = profile
        return profile

    def _dataset_of(self, mv: ModelVersion) -> DatasetVersion:
        ref = ObjectRef.parse(mv.dataset)
        return self.platform.dataset_version(mv.workspace, ref.name, ref.version)

    def _tabular_baseline(self, mv: ModelVersion, dv: DatasetVersion) -> BaselineProfile:
        """A tabular model's inputs and scores on (a sample of) its training rows."""
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
        answers on texts it was trained on would be surer than on any new text): the
        profile its run kept, or (a run of an older release, or a profile that cannot
        be read) made now, the same way."""
        from leptonic.monitoring.text import BASELINE_ARTIFACT, text_baseline
        from leptonic.tasks.textcls import TextClassificationSpec, holdout_positions, load_text_data

        run = self.platform.metadata.get_run(mv.workspace, mv.run_id)
        if BASELINE_ARTIFACT in run.artifacts:
            # (a blob gone or a format of another release: made again below)
            with contextlib.suppress(LeptonicError, ValueError):
                kept = self.platform.artifacts.get_bytes(run.artifacts[BASELINE_ARTIFACT])
                return BaselineProfile.from_json(json.loads(kept))
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
        mine = [p for p in predictions if (p.model, p.version) == (primary.model, primary.version)]
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
        start, end = _window(since, until)
        limit = min(last or MAX_WINDOW_ROWS, MAX_WINDOW_ROWS)
        items = self.platform.metadata.list_predictions(
            workspace, name, since=start, until=end, route="live", limit=limit, newest_first=True
        )
        return items, start, end

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
        (:mod:`leptonic.monitoring.text`); outcomes are not scored."""
        endpoint = self.get(workspace, name)
        alert_rules = AlertRules.from_spec(rules)
        primary = endpoint.routes[0]
        predictions, start, end = self._window_predictions(workspace, name, since, until, last)
        mv, profile, mine = self._primary_answers(workspace, primary, predictions)
        drift = (
            drift_report(profile, [p.inputs for p in mine], [p.score for p in mine])
            if mine
            else None
        )
        # outcomes score a decision model's P(bad); a text answer's confidence is not one
        labelled = (
            self.platform.metadata.labelled_predictions(workspace, name, since=start, until=end)
            if mv.task != TEXT_TASK
            else []
        )
        labelled = [
            (p, f) for p, f in labelled if (p.model, p.version) == (primary.model, primary.version)
        ]
        performance = performance_report(outcomes_from_labelled(labelled)) if labelled else None
        baseline_auc = (mv.metrics.get("test") or {}).get("auc")
        words: dict[str, Any] = {}
        if mv.task == TEXT_TASK:
            from leptonic.monitoring.text import TEXT_ADVICE, TEXT_SUBJECTS

            words = {"subjects": TEXT_SUBJECTS, "advice": TEXT_ADVICE}
        raised = evaluate_rules(
            alert_rules, drift, performance, baseline_auc, start, end, workspace, name, **words
        )
        stored: list[Alert] = [self.platform.metadata.add_alert(a) for a in raised]
        if stored:
            ref = ObjectRef(workspace, "endpoint", name)
            self.platform.audit(
                "endpoint.alert",
                workspace,
                [ref],
                alerts=[a.id for a in stored],
                rules=[f"{a.rule}:{a.subject}" for a in stored],
            )
            if webhook:
                notifier = WebhookNotifier(webhook)
                try:
                    for a in stored:
                        notifier.notify(a)
                finally:
                    notifier.close(timeout=5.0)
        return {
            "endpoint": name,
            "model": primary.model,
            "version": primary.version,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "n": len(mine),
            "psi": {
                **(drift.psi if drift else {}),
                **({"score": drift.score.psi} if drift else {}),
            },
            "drift": drift.to_dict() if drift else None,
            "performance": performance.overall.to_dict() if performance else None,
            "baseline_auc": baseline_auc,
            "rules": alert_rules.to_spec(),
            "alerts": [alert_payload(a) for a in stored],
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
        alert = self.platform.metadata.set_alert_status(workspace, alert_id, status)
        if alert.endpoint != name:
            raise InvalidInput(
                f"alert {alert_id} belongs to endpoint {alert.endpoint!r}, not {name!r}",
                field="alert_id",
            )
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
        span = (mine[0].at - mine[-1].at) if mine else timedelta(0)
        step = window or _pick_window(span)
        series = drift_over_time(profile, mine, step) if mine else None
        recent = (
            drift_report(profile, [p.inputs for p in mine], [p.score for p in mine])
            if mine
            else None
        )
        labelled = (
            self.platform.metadata.labelled_predictions(workspace, name)
            if mv.task != TEXT_TASK
            else []
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
        approved on recent outcomes."""
        if (target_approval_rate is None) == (target_bad_rate is None):
            raise InvalidInput(
                "give exactly one of target_approval_rate or target_bad_rate",
                field="target_approval_rate",
            )
        endpoint = self.get(workspace, name)
        current = self.platform.metadata.get_policy_version(
            workspace, name, endpoint.policy_version
        )
        policy = DecisionPolicy.from_spec(current.spec)
        start, end = _window(since, None)
        if target_approval_rate is not None:
            predictions, _, _ = self._window_predictions(workspace, name, start, end, last)
            result = thresholds_for_approval_rate(
                [p.score for p in predictions], target_approval_rate
            )
        else:
            assert target_bad_rate is not None
            labelled = self.platform.metadata.labelled_predictions(
                workspace, name, since=start, until=end
            )
            if last:
                labelled = labelled[-last:]
            result = thresholds_for_bad_rate(
                [p.score for p, _ in labelled], [f.label for _, f in labelled], target_bad_rate
            )
        spec = _moved(policy, result.approve_edge, result.reject_edge).to_spec()
        note = (
            f"recalibrated for {result.method.replace('_', ' ')} {result.target:g}: achieved "
            f"{result.achieved:.4f} on {result.n} recent decisions"
        )
        spec["description"] = note
        return self.set_policy(workspace, name, spec, reason=f"{reason} ({note})")

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
        self.platform.audit(
            "endpoint.retrain",
            workspace,
            [ObjectRef(workspace, "endpoint", name), ObjectRef(workspace, "run", outcome.run.id)],
            dataset=plan.dataset,
            dataset_version=plan.dataset_version,
            reason=reason,
        )
        mv = outcome.model_version
        if canary_percent is not None and mv is not None:
            self.canary(workspace, name, mv.model, mv.version, canary_percent, reason=reason)
        return outcome


def _moved(policy: DecisionPolicy, approve: float, reject: float | None) -> DecisionPolicy:
    """``policy`` with its first band ending at probability ``approve`` and, with
    three bands or more, its second at ``reject`` (kept above ``approve``)."""
    names = [name for name, _ in policy.bands]
    if len(names) < 2:
        raise InvalidInput(
            "this policy has a single band; give it approve and reject bands to recalibrate",
            field="bands",
        )
    edges: dict[str, float] = {names[0]: approve}
    if len(names) >= 3:
        current = policy.bands[1][1]
        assert current is not None
        second = reject if reject is not None else current
        if policy.score == "probability" and second <= approve:
            second = min(1.0, approve + (1.0 - approve) * 0.1)
        edges[names[1]] = second
    if policy.score == "points":
        # approve below a probability edge = points at or above the same edge in points
        edges = {name: round(policy.to_score(edge), 6) for name, edge in edges.items()}
    return policy.with_thresholds(edges)


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
