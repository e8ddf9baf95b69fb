"""Managing endpoints from the control plane: deploy, traffic, policies, outcomes.

:class:`EndpointService` is reached as ``platform.endpoints``. Every change
is checked, written in one store transaction and recorded in the audit log
with the acting user; a serving process notices the new revision and
reloads without a restart.

Traffic: the first route is the primary; :meth:`EndpointService.canary`
adds (or re-weights) a second version on a percentage of entities;
:meth:`EndpointService.promote` makes the canary the primary at 100 %;
:meth:`EndpointService.rollback` drops the canary (or, right after a
promotion, restores the routes it replaced). A shadow version is scored and
logged for every request but never answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leptonic.core.audit import AuditEvent
from leptonic.core.endpoint import Endpoint, Feedback, PolicyVersion, Prediction, Route
from leptonic.core.names import validate_name
from leptonic.core.uri import ObjectRef
from leptonic.errors import Conflict, InvalidInput
from leptonic.governance.pii import hash_value
from leptonic.serving.adjust import TEXT_TASK, EndpointAdjustment
from leptonic.serving.feedback import parse_feedback, record_feedback
from leptonic.serving.policy import DecisionPolicy, default_policy
from leptonic.serving.runtime import ONE_VERSION_KINDS
from leptonic.serving.traffic import BUCKETS
from leptonic.storage.metadata.endpoint_base import check_routes

if TYPE_CHECKING:
    from leptonic.platform import Platform
    from leptonic.serving.recs_retrain import RecsRetrain

__all__ = [
    "MAX_RETENTION_DAYS",
    "EndpointService",
    "check_canary_percent",
    "routes_from_json",
    "routes_to_json",
]


def routes_to_json(routes: Sequence[Route]) -> list[dict[str, Any]]:
    return [asdict(r) for r in routes]


def routes_from_json(items: Sequence[Mapping[str, Any]]) -> tuple[Route, ...]:
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Route(str(item["model"]), int(item["version"]), float(item["percent"])))
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(
                f"routes[{i}] must be {{'model': str, 'version': int, 'percent': number}}",
                field=f"routes[{i}]",
            ) from None
    return tuple(out)


def _ref(endpoint: Endpoint | tuple[str, str]) -> ObjectRef:
    if isinstance(endpoint, Endpoint):
        return ObjectRef(endpoint.workspace, "endpoint", endpoint.name)
    return ObjectRef(endpoint[0], "endpoint", endpoint[1])


#: The longest retention :meth:`EndpointService.prune` takes, in days (100 years).
MAX_RETENTION_DAYS = 36_500

#: The smallest canary share: one of the split's buckets (less would route no traffic).
MIN_PERCENT = 100 / BUCKETS

#: Audit actions that set an endpoint's routes (what :meth:`EndpointService.rollback` reads).
_ROUTES_ACTIONS = frozenset(
    (
        "endpoint.create",
        "endpoint.traffic",
        "endpoint.canary",
        "endpoint.promote",
        "endpoint.rollback",
    )
)
_AUDIT_PAGE = 500
#: How far back in the workspace's audit log a rollback looks for the last promotion.
_ROLLBACK_LOOKBACK = 20_000


def _text_hashed(inputs: Mapping[str, Any], salt: str) -> dict[str, Any]:
    """A text endpoint's logged inputs with the text replaced by its salted hash."""
    out = {k: v for k, v in inputs.items() if k != "text"}
    out["text_hash"] = hash_value(str(inputs["text"]), salt)
    return out


def _reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput("say why (a reason is recorded in the audit log)", field="reason")
    return reason.strip()


def check_canary_percent(percent: object, field: str = "percent") -> float:
    """``percent`` as the share of a canary: from :data:`MIN_PERCENT` to
    ``100 - MIN_PERCENT`` (the split's resolution); :class:`InvalidInput` otherwise."""
    if (
        isinstance(percent, bool)
        or not isinstance(percent, int | float)
        or not MIN_PERCENT <= float(percent) <= 100 - MIN_PERCENT
    ):
        raise InvalidInput(
            f"a canary takes from {MIN_PERCENT} to {100 - MIN_PERCENT} percent of traffic "
            f"(the split's resolution), got {percent!r}",
            field=field,
        )
    return float(percent)


def _served_policy(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A checked policy spec of a text or recommendation endpoint (kind kept)."""
    if not isinstance(spec, Mapping):
        what = "text" if kind == "text-classification" else kind
        raise InvalidInput(
            f"a {what} endpoint's policy must be a JSON object of policy fields, got "
            f"{type(spec).__name__}",
            field="policy",
        )
    if kind == "text-classification":
        from leptonic.serving.text import text_policy

        return text_policy({"kind": kind, **spec})
    from leptonic.serving.recs import recommendation_policy

    return recommendation_policy({"kind": kind, **spec})


class EndpointService(EndpointAdjustment):
    """Endpoints of the platform, acting as the platform's user.

    Monitoring, recalibration and retraining come from
    :class:`~leptonic.serving.adjust.EndpointAdjustment`.
    """

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.metadata = platform.metadata

    # -- create and read ---------------------------------------------------------
    def create(
        self,
        workspace: str,
        name: str,
        model: str,
        version: int,
        *,
        policy: Mapping[str, Any] | None = None,
        entity_key: str | None = None,
        description: str = "",
    ) -> Endpoint:
        """Deploy one model version behind a new endpoint (100 % of traffic).

        ``policy`` is a decision policy spec (:mod:`leptonic.serving.policy`);
        without one, approve / review / reject bands are placed around the
        model's decision threshold. A ``recommendation`` model gets a
        recommendation endpoint instead, whose ``policy`` is a
        :class:`~leptonic.serving.recs.RecsPolicy` spec (defaults without one),
        and a ``text-classification`` model a text endpoint, whose ``policy`` is
        a :class:`~leptonic.serving.text.TextPolicy` spec.
        """
        validate_name(name, "endpoint")
        task = self.metadata.get_model_version(workspace, model, version).task
        if task == "text-classification":
            from leptonic.serving.text import load_text_version, text_policy

            if entity_key is not None:
                raise InvalidInput(
                    "text endpoints answer texts, not entities; leave entity_key unset",
                    field="entity_key",
                )
            spec = text_policy(policy)
            # the bundle must load and verify (and export, for onnx) before anything is stored
            _, _, folder = load_text_version(
                self.metadata,
                self.platform.artifacts,
                workspace,
                model,
                version,
                runtime=spec["runtime"],
                precision=spec["precision"],
            )
            if folder is not None:
                folder.cleanup()
        elif task == "recommendation":
            from leptonic.serving.recs import load_recommender_version, recommendation_policy

            if entity_key is not None:
                raise InvalidInput(
                    "recommendation endpoints are keyed by user; leave entity_key unset",
                    field="entity_key",
                )
            spec = recommendation_policy(policy)
            # the bundle must load (and verify) before anything is stored
            load_recommender_version(
                self.metadata, self.platform.artifacts, workspace, model, version
            )
        else:
            predictor = self.platform.load_model(workspace, model, version)
            if predictor.task != "binary":
                raise InvalidInput(
                    f"{model} v{version} is a {predictor.task} model; decision endpoints serve "
                    "binary models (a probability of the bad outcome)",
                    field="model",
                )
            names = {i["name"] for i in predictor.inputs}
            if entity_key is not None and not entity_key.strip():
                raise InvalidInput("entity_key must be a field name", field="entity_key")
            if policy is None:
                spec = default_policy(
                    predictor.threshold if predictor.threshold is not None else 0.5
                )
            else:
                spec = DecisionPolicy.from_spec(policy).to_spec()
            DecisionPolicy.from_spec(spec).check_fields(
                names | ({entity_key} if entity_key else set())
            )
        endpoint = self.metadata.create_endpoint(
            Endpoint(
                workspace=workspace,
                name=name,
                routes=(Route(model, version, 100.0),),
                entity_key=entity_key,
                description=description,
                created_by=self.platform.actor,
            ),
            PolicyVersion(
                workspace, name, 1, spec, reason="initial policy", created_by=self.platform.actor
            ),
        )
        self.metadata.add_lineage(ObjectRef(workspace, "model", model, version), _ref(endpoint))
        self.platform.audit(
            "endpoint.create",
            workspace,
            [_ref(endpoint), ObjectRef(workspace, "model", model, version)],
            routes=routes_to_json(endpoint.routes),
            policy=spec,
        )
        return endpoint

    def get(self, workspace: str, name: str) -> Endpoint:
        return self.metadata.get_endpoint(workspace, name)

    def list_endpoints(self, workspace: str) -> list[Endpoint]:
        return self.metadata.list_endpoints(workspace)

    # -- traffic --------------------------------------------------------------
    def set_routes(
        self,
        workspace: str,
        name: str,
        routes: Sequence[Route],
        *,
        reason: str,
        action: str = "endpoint.traffic",
        expected: Endpoint | None = None,
    ) -> Endpoint:
        """Replace the traffic split (checked; audited with the previous split).

        ``expected`` is the endpoint as the caller read it to work out ``routes``:
        a change stored since is a :class:`Conflict`, not silently replaced.
        """
        reason = _reason(reason)
        current = expected if expected is not None else self.get(workspace, name)
        routes = check_routes(routes, current.shadow)
        policy = self.policy(workspace, name, current.policy_version)
        kind = policy.spec.get("kind")
        if kind in ONE_VERSION_KINDS and len(routes) > 1:
            raise InvalidInput(
                f"a {kind} endpoint serves one version; canary splits are for decision "
                "endpoints (serve a new version with deploy)",
                field="routes",
            )
        for r in routes:
            self._check_version(workspace, r.model, r.version, kind)
        if kind not in ONE_VERSION_KINDS:  # the rules must still name fields requests carry
            DecisionPolicy.from_spec(policy.spec).check_fields(
                self._served_fields(workspace, routes, current.entity_key)
            )
            if current.shadow is not None:
                self._check_shadow_fields(workspace, routes, current.shadow, current.entity_key)
        updated = self.metadata.update_endpoint(
            workspace, name, expected_revision=current.revision, routes=routes
        )
        for r in routes:  # recorded once the split is stored (a refused one leaves none)
            self.metadata.add_lineage(
                ObjectRef(workspace, "model", r.model, r.version), _ref(updated)
            )
        self.platform.audit(
            action,
            workspace,
            [_ref(updated), *(ObjectRef(workspace, "model", r.model, r.version) for r in routes)],
            routes=routes_to_json(routes),
            previous_routes=routes_to_json(current.routes),
            reason=reason,
        )
        return updated

    def canary(
        self, workspace: str, name: str, model: str, version: int, percent: float, *, reason: str
    ) -> Endpoint:
        """Send ``percent`` of entities to ``model`` v``version``; the primary keeps the rest."""
        check_canary_percent(percent)
        current = self.get(workspace, name)
        self._refuse_single(workspace, name, "canary splits")
        primary = current.routes[0]
        if (primary.model, primary.version) == (model, version):
            raise Conflict(
                f"{model} v{version} is already the primary of endpoint {name!r}", field="version"
            )
        routes = (
            Route(primary.model, primary.version, 100.0 - float(percent)),
            Route(model, version, float(percent)),
        )
        return self.set_routes(
            workspace, name, routes, reason=reason, action="endpoint.canary", expected=current
        )

    def deploy(
        self, workspace: str, name: str, model: str, version: int, *, reason: str
    ) -> Endpoint:
        """Serve ``model`` v``version`` to all traffic at once: how a text or
        recommendation endpoint (one version) moves to a new version, and a decision
        endpoint without a canary. Recorded as a promotion: :meth:`rollback` undoes it."""
        return self.set_routes(
            workspace,
            name,
            (Route(model, version, 100.0),),
            reason=reason,
            action="endpoint.promote",
        )

    def promote(self, workspace: str, name: str, *, reason: str) -> Endpoint:
        """Make the canary the primary, at 100 % of traffic."""
        current = self.get(workspace, name)
        if len(current.routes) < 2:
            raise Conflict(
                f"endpoint {name!r} has no canary to promote; start one with canary()",
                field="routes",
            )
        canary = current.routes[-1]
        return self.set_routes(
            workspace,
            name,
            (Route(canary.model, canary.version, 100.0),),
            reason=reason,
            action="endpoint.promote",
            expected=current,
        )

    def rollback(self, workspace: str, name: str, *, reason: str) -> Endpoint:
        """Drop the canary; right after a promotion (when it is the endpoint's last change
        of routes), serve again the primary it replaced."""
        current = self.get(workspace, name)
        if len(current.routes) > 1:
            primary = current.routes[0]
            routes: tuple[Route, ...] = (Route(primary.model, primary.version, 100.0),)
        else:
            event = self._last_routes_change(current)
            if event is None or event.action != "endpoint.promote":
                what = "no change of routes" if event is None else f"a {event.action}"
                raise Conflict(
                    f"endpoint {name!r} has no canary, and its last change of routes was "
                    f"{what}, not a promotion: nothing to roll back (deploy the version to "
                    "serve instead)",
                    field="routes",
                )
            previous = routes_from_json(event.details["previous_routes"])
            routes = (Route(previous[0].model, previous[0].version, 100.0),)
        return self.set_routes(
            workspace, name, routes, reason=reason, action="endpoint.rollback", expected=current
        )

    def _last_routes_change(self, endpoint: Endpoint) -> AuditEvent | None:
        """The newest audit event that set ``endpoint``'s routes (None: none found among
        the workspace's latest :data:`_ROLLBACK_LOOKBACK` events)."""
        ref = str(_ref(endpoint))
        for offset in range(0, _ROLLBACK_LOOKBACK, _AUDIT_PAGE):
            page = self.metadata.list_audit(
                workspace=endpoint.workspace, limit=_AUDIT_PAGE, offset=offset
            )
            for event in page:
                if event.action in _ROUTES_ACTIONS and event.objects and event.objects[0] == ref:
                    return event
            if len(page) < _AUDIT_PAGE:
                break
        return None

    def set_shadow(
        self, workspace: str, name: str, model: str | None, version: int | None, *, reason: str
    ) -> Endpoint:
        """Score ``model`` v``version`` in the shadow of live traffic (None: stop)."""
        reason = _reason(reason)
        current = self.get(workspace, name)
        shadow = None
        if model is not None:
            if version is None:
                raise InvalidInput("a shadow needs a model version", field="version")
            self._refuse_single(workspace, name, "shadow versions")
            self._check_version(workspace, model, version)
            shadow = Route(model, int(version), 0.0)
            check_routes(current.routes, shadow)
            self._check_shadow_fields(workspace, current.routes, shadow, current.entity_key)
        updated = self.metadata.update_endpoint(
            workspace, name, expected_revision=current.revision, shadow=shadow
        )
        if shadow is not None:
            self.metadata.add_lineage(
                ObjectRef(workspace, "model", shadow.model, shadow.version), _ref(updated)
            )
        self.platform.audit(
            "endpoint.shadow",
            workspace,
            [_ref(updated)],
            shadow=asdict(shadow) if shadow else None,
            reason=reason,
        )
        return updated

    def retrain_from_events(
        self,
        workspace: str,
        name: str,
        *,
        min_new_events: int = 1,
        promote: bool = True,
        reason: str = "retrain",
        settle_s: float | None = None,
    ) -> RecsRetrain:
        """Retrain a recommendation endpoint on its data and the events it received since
        (nothing happens below ``min_new_events``); with ``promote`` serve the result.
        See :mod:`leptonic.serving.recs_retrain`."""
        from leptonic.serving.recs_retrain import SETTLE_S, retrain_recommendation

        return retrain_recommendation(
            self.platform,
            workspace,
            name,
            min_new_events=min_new_events,
            promote=promote,
            reason=_reason(reason),
            settle_s=SETTLE_S if settle_s is None else settle_s,
        )

    def _refuse_single(self, workspace: str, name: str, what: str) -> None:
        """Refuse ``what`` (a canary, a shadow) on an endpoint that serves one version."""
        kind = self.policy(workspace, name).spec.get("kind")
        if kind in ONE_VERSION_KINDS:
            raise InvalidInput(
                f"a {kind} endpoint serves one version; {what} are for decision endpoints "
                "(serve a new version with deploy(), roll it back if needed)",
                field="routes",
            )

    def _check_version(self, workspace: str, model: str, version: int, kind: Any = None) -> None:
        """The version can be served by an endpoint whose policy is of ``kind``."""
        if kind in ONE_VERSION_KINDS:
            task = self.metadata.get_model_version(workspace, model, version).task
            if task != kind:
                raise InvalidInput(
                    f"{model} v{version} is a {task} model; this endpoint serves {kind} models",
                    field="model",
                )
            return
        predictor = self.platform.load_model(workspace, model, version)
        if predictor.task != "binary":
            raise InvalidInput(
                f"{model} v{version} is a {predictor.task} model; decision endpoints serve "
                "binary models",
                field="model",
            )

    # -- policies ------------------------------------------------------------
    def set_policy(
        self,
        workspace: str,
        name: str,
        spec: Mapping[str, Any],
        *,
        reason: str,
        based_on: int | None = None,
    ) -> PolicyVersion:
        """Store and activate a new policy version; with ``based_on`` (the version the
        spec was worked out from), a :class:`Conflict` if another one is active by now."""
        reason = _reason(reason)
        endpoint = self.get(workspace, name)
        kind = self.policy(workspace, name).spec.get("kind")
        if kind in ("text-classification", "recommendation"):
            served = _served_policy(kind, spec)
            return self._store_policy(workspace, name, served, reason, based_on)
        policy = DecisionPolicy.from_spec(spec)
        policy.check_fields(self._served_fields(workspace, endpoint.routes, endpoint.entity_key))
        return self._store_policy(workspace, name, policy.to_spec(), reason, based_on)

    def _check_shadow_fields(
        self, workspace: str, routes: Sequence[Route], shadow: Route, entity_key: str | None
    ) -> None:
        """Refuse a shadow that needs fields the live requests do not carry: every request
        would then be refused for lack of them, live traffic included."""
        served = self._served_fields(workspace, routes, entity_key)
        needed = self._served_fields(workspace, [shadow], None)
        missing = sorted(needed - served)
        if missing:
            raise InvalidInput(
                f"the shadow {shadow.model} v{shadow.version} needs field(s) "
                f"{', '.join(missing)} that the live version(s) do not take, so requests do "
                "not carry them; shadow a version with the live inputs, or stop the shadow "
                "(set_shadow(None)) before serving a version without them",
                field="model",
            )

    def _served_fields(
        self, workspace: str, routes: Sequence[Route], entity_key: str | None
    ) -> set[str]:
        """The fields a decision request carries: the routed models' inputs, the entity key."""
        names: set[str] = set()
        for r in routes:
            names |= {
                i["name"] for i in self.platform.load_model(workspace, r.model, r.version).inputs
            }
        if entity_key:
            names.add(entity_key)
        return names

    def _store_policy(
        self,
        workspace: str,
        name: str,
        spec: dict[str, Any],
        reason: str,
        based_on: int | None = None,
    ) -> PolicyVersion:
        stored = self.metadata.add_policy_version(
            PolicyVersion(workspace, name, 0, spec, reason=reason, created_by=self.platform.actor),
            expected_active=based_on,
        )
        self.platform.audit(
            "endpoint.policy",
            workspace,
            [_ref((workspace, name))],
            policy_version=stored.version,
            policy=stored.spec,
            reason=reason,
        )
        return stored

    def policy(self, workspace: str, name: str, version: int | None = None) -> PolicyVersion:
        if version is None:
            version = self.get(workspace, name).policy_version
        return self.metadata.get_policy_version(workspace, name, version)

    def policies(self, workspace: str, name: str) -> list[PolicyVersion]:
        return self.metadata.list_policy_versions(workspace, name)

    # -- the prediction log and outcomes -----------------------------------------
    def predictions(
        self,
        workspace: str,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = "live",
        limit: int = 100,
        offset: int = 0,
        raw: bool = False,
    ) -> list[Prediction]:
        """Logged predictions, newest first. Personal data is masked as logged (PII
        inputs hashed); the texts a text endpoint keeps (its policy's ``log_text``) are
        shown as their salted hash (``text_hash``) unless ``raw``."""
        endpoint = self.get(workspace, name)
        items = self.metadata.list_predictions(
            workspace, name, since=since, until=until, route=route, limit=limit, offset=offset
        )
        if raw or not any("text" in p.inputs for p in items):
            return items
        policy = self.metadata.get_policy_version(workspace, name, endpoint.policy_version)
        if policy.spec.get("kind") != TEXT_TASK:
            return items
        salt = self.metadata.get_workspace(workspace).pii_salt
        return [
            replace(p, inputs=_text_hashed(p.inputs, salt)) if "text" in p.inputs else p
            for p in items
        ]

    def prune(self, workspace: str, name: str, *, older_than_days: float, reason: str) -> int:
        """Delete the endpoint's predictions logged more than ``older_than_days`` days
        ago, with the outcomes recorded for them (the retention of the prediction
        log, which grows with every answer); returns how many were deleted. Monitoring
        and recalibration then see only what is left. A recommendation endpoint's
        events are its models' training data, not its log: they are kept. Audited as
        ``endpoint.prune``."""
        reason = _reason(reason)
        days = older_than_days
        if (
            isinstance(days, bool)
            or not isinstance(days, int | float)
            or not 0 < days <= MAX_RETENTION_DAYS
        ):
            raise InvalidInput(
                f"older_than_days must be a positive number of days, at most "
                f"{MAX_RETENTION_DAYS:,}, got {days!r}",
                field="older_than_days",
            )
        self.get(workspace, name)
        before = datetime.now(UTC) - timedelta(days=float(days))

        def audit(**outcome: Any) -> None:
            self.platform.audit(
                "endpoint.prune",
                workspace,
                [_ref((workspace, name))],
                before=before.isoformat(),
                reason=reason,
                **outcome,
            )

        try:
            deleted = self.metadata.delete_predictions(workspace, name, before=before)
        except Exception as exc:  # batches before the error are deleted: say so
            with contextlib.suppress(Exception):
                audit(error=f"{type(exc).__name__}: {exc} (stopped part way; run it again)")
            raise
        audit(deleted=deleted)
        return deleted

    def feedback(self, workspace: str, name: str, payload: Any) -> list[Feedback]:
        """Record outcomes (see :func:`~leptonic.serving.feedback.parse_feedback`)."""
        endpoint = self.get(workspace, name)
        items = parse_feedback(payload)
        pii_entity = False
        if endpoint.entity_key:
            from leptonic.serving.runtime import load_runtime

            runtime = load_runtime(self.metadata, self.platform.registry, workspace, name)
            pii_entity = endpoint.entity_key in runtime.pii
        stored = record_feedback(self.metadata, workspace, name, items, pii_entity=pii_entity)
        self.platform.audit(
            "endpoint.feedback",
            workspace,
            [_ref(endpoint)],
            outcomes=len(stored),
            bad=int(sum(f.label for f in stored)),
        )
        return stored

    # -- batch decisions ---------------------------------------------------------
    def decide_batch(
        self,
        workspace: str,
        name: str,
        dataset: str,
        *,
        dataset_version: int | None = None,
        output: str | None = None,
        progress: Any = None,
    ) -> tuple[Any, bool]:
        """Decide every row of a dataset version with the endpoint's primary version
        and policy, streamed, into a new dataset version (ids, score, decision,
        reasons; no personal data). A file is first added as a dataset version
        (``platform.add_data``), so it is governed like any other input."""
        import tempfile
        from pathlib import Path

        from leptonic.platform import check_score_output
        from leptonic.serving.batch import score_to_parquet
        from leptonic.serving.runtime import load_runtime

        endpoint = self.get(workspace, name)
        runtime = load_runtime(self.metadata, self.platform.registry, workspace, name)
        served = runtime.live[0]
        dv = self.platform.dataset_version(workspace, dataset, dataset_version)
        out_name = validate_name(output or f"{dataset}-decisions"[:63], "dataset")
        check_score_output(dv.dataset, out_name)
        input_ref = ObjectRef(workspace, "dataset", dv.dataset, dv.version)
        model_ref = ObjectRef(workspace, "model", served.model, served.version)
        with tempfile.TemporaryDirectory(prefix="leptonic-decide-") as tmp:
            path = Path(tmp) / f"{out_name}.parquet"
            rows = score_to_parquet(
                served.predictor,
                dv,
                self.platform.artifacts.local_path(dv.artifact_key),
                path,
                progress=progress,
                decide=runtime.decide_table,
                executor=self.platform.compute,
            )
            scored, created = self.platform.add_data(
                workspace,
                path,
                name=out_name,
                description=f"decisions of endpoint {name} ({model_ref}) on {input_ref}",
                origin={
                    "path": f"decided:{_ref(endpoint)} on {input_ref}",
                    "model": str(model_ref),
                },
            )
        out_ref = ObjectRef(workspace, "dataset", scored.dataset, scored.version)
        self.metadata.add_lineage(input_ref, out_ref)
        self.metadata.add_lineage(model_ref, out_ref)
        self.platform.audit(
            "endpoint.batch",
            workspace,
            [_ref(endpoint), model_ref, input_ref, out_ref],
            rows=rows,
            policy_version=runtime.policy_version,
        )
        return scored, created
