"""Endpoints, policy versions, the prediction log, feedback and alerts of the
memory metadata store.

A part of :class:`~leptonic.storage.metadata.memory.MemoryMetadataStore`,
with the semantics of :class:`~leptonic.storage.metadata.endpoint_base.EndpointStore`.
Records are deep-copied in and out, so that callers cannot change what is stored.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leptonic.core._time import as_utc, utcnow
from leptonic.core.endpoint import Alert, Endpoint, Feedback, PolicyVersion, Prediction
from leptonic.core.model_version import ModelVersion
from leptonic.core.workspace import Workspace
from leptonic.errors import NotFound
from leptonic.storage.metadata._errors import (
    alert_not_found,
    endpoint_exists,
    endpoint_not_found,
    feedback_without_prediction,
    policy_version_not_found,
    prediction_exists,
    prediction_not_found,
    routed_version_not_found,
)
from leptonic.storage.metadata._fields import check_time, check_whole
from leptonic.storage.metadata.base import check_page
from leptonic.storage.metadata.endpoint_base import (
    EndpointStore,
    changed_endpoint,
    check_alert,
    check_alert_endpoint,
    check_alert_status,
    check_before,
    check_delivered,
    check_endpoint_changes,
    check_feedback,
    check_policy,
    check_prediction_route,
    check_predictions,
    check_window,
    json_copy,
    new_endpoint,
    policy_replaced,
)

__all__ = ["MemoryEndpointsMixin"]

_Key = tuple[str, str]  # (workspace, endpoint)


def _in_window(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


def _order(p: Prediction) -> tuple[datetime, str, str]:
    return (p.at, p.request_id, p.route)


class MemoryEndpointsMixin(EndpointStore):
    """Endpoint records in dictionaries, guarded by the store's lock.

    The store calls :meth:`_init_endpoints` from its ``__init__``.
    """

    _lock: threading.RLock

    if TYPE_CHECKING:

        def get_workspace(self, name: str) -> Workspace: ...

        def get_model_version(self, workspace: str, model: str, version: int) -> ModelVersion: ...

    def _init_endpoints(self) -> None:
        self._endpoints: dict[_Key, Endpoint] = {}
        self._policies: dict[_Key, list[PolicyVersion]] = {}
        # (request_id, route) -> prediction, in insertion order
        self._predictions: dict[_Key, dict[tuple[str, str], Prediction]] = {}
        self._feedback: dict[_Key, dict[str, Feedback]] = {}  # by request id
        self._alerts: list[Alert] = []
        self._alert_ids = itertools.count(1)

    # -- endpoints ------------------------------------------------------------
    def create_endpoint(self, endpoint: Endpoint, policy: PolicyVersion) -> Endpoint:
        endpoint, policy = new_endpoint(endpoint, policy)
        with self._lock:
            self.get_workspace(endpoint.workspace)
            key = (endpoint.workspace, endpoint.name)
            if key in self._endpoints:
                raise endpoint_exists(*key)
            self._check_versions(endpoint)
            self._endpoints[key] = copy.deepcopy(endpoint)
            self._policies[key] = [replace(policy, spec=json_copy(policy.spec, "spec"))]
            self._predictions[key] = {}
            self._feedback[key] = {}
            return copy.deepcopy(endpoint)

    def get_endpoint(self, workspace: str, name: str) -> Endpoint:
        with self._lock:
            return copy.deepcopy(self._endpoint(workspace, name))

    def list_endpoints(self, workspace: str) -> list[Endpoint]:
        with self._lock:
            self.get_workspace(workspace)
            found = [e for (w, _), e in self._endpoints.items() if w == workspace]
            return copy.deepcopy(sorted(found, key=lambda e: e.name))

    def update_endpoint(
        self,
        workspace: str,
        name: str,
        *,
        expected_revision: int | None = None,
        **changes: Any,
    ) -> Endpoint:
        check_endpoint_changes(changes)
        with self._lock:
            current = self._endpoint(workspace, name)
            updated = changed_endpoint(
                current, changes, expected_revision=expected_revision, at=utcnow()
            )
            if updated is current:
                return copy.deepcopy(current)
            if "routes" in changes or "shadow" in changes:
                self._check_versions(updated)
            if "policy_version" in changes:
                self._policy(workspace, name, updated.policy_version)
            self._endpoints[(workspace, name)] = copy.deepcopy(updated)
            return copy.deepcopy(updated)

    def add_policy_version(
        self,
        policy: PolicyVersion,
        *,
        activate: bool = True,
        expected_active: int | None = None,
    ) -> PolicyVersion:
        policy = check_policy(policy)
        policy = replace(policy, spec=json_copy(policy.spec, "spec"))
        with self._lock:
            current = self._endpoint(policy.workspace, policy.endpoint)
            if expected_active is not None and current.policy_version != expected_active:
                raise policy_replaced(policy.endpoint, expected_active, current.policy_version)
            key = (policy.workspace, policy.endpoint)
            versions = self._policies[key]
            stored = copy.deepcopy(replace(policy, version=versions[-1].version + 1))
            versions.append(stored)
            if activate:
                self._endpoints[key] = replace(
                    current,
                    policy_version=stored.version,
                    revision=current.revision + 1,
                    updated_at=utcnow(),
                )
            return copy.deepcopy(stored)

    def get_policy_version(self, workspace: str, endpoint: str, version: int) -> PolicyVersion:
        check_whole(version, "version")
        with self._lock:
            self._endpoint(workspace, endpoint)
            return copy.deepcopy(self._policy(workspace, endpoint, version))

    def list_policy_versions(self, workspace: str, endpoint: str) -> list[PolicyVersion]:
        with self._lock:
            self._endpoint(workspace, endpoint)
            return copy.deepcopy(self._policies[(workspace, endpoint)])

    # -- prediction log -------------------------------------------------------------
    def append_predictions(self, predictions: Sequence[Prediction]) -> int:
        checked = check_predictions(predictions)
        batch = [p for p, _, _ in checked]
        with self._lock:
            for key in dict.fromkeys((p.workspace, p.endpoint) for p in batch):
                self._endpoint(*key)
            for p in batch:
                if (p.request_id, p.route) in self._predictions[(p.workspace, p.endpoint)]:
                    raise prediction_exists(p.workspace, p.endpoint, p.request_id, p.route)
            for p, inputs, reasons in checked:
                stored = replace(  # as SQL gives it back (JSON read from its text)
                    p,
                    at=as_utc(p.at),
                    score=float(p.score),
                    latency_ms=float(p.latency_ms),
                    inputs=json.loads(inputs),
                    reasons=json.loads(reasons),
                )
                self._predictions[(p.workspace, p.endpoint)][(p.request_id, p.route)] = stored
            return len(batch)

    def list_predictions(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = "live",
        limit: int | None = 100,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[Prediction]:
        check_page(0 if limit is None else limit, offset)
        with self._lock:
            found = self._select(workspace, endpoint, since, until, route)
            found.sort(key=_order, reverse=newest_first)
            end = None if limit is None else offset + limit
            return copy.deepcopy(found[offset:end])

    def count_predictions(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = "live",
    ) -> int:
        with self._lock:
            return len(self._select(workspace, endpoint, since, until, route))

    def get_prediction(
        self, workspace: str, endpoint: str, request_id: str, *, route: str = "live"
    ) -> Prediction:
        check_prediction_route(route)
        with self._lock:
            self._endpoint(workspace, endpoint)
            found = self._predictions[(workspace, endpoint)].get((request_id, route))
            if found is None:
                raise prediction_not_found(workspace, endpoint, request_id, route)
            return copy.deepcopy(found)

    def latest_prediction_for_entity(
        self, workspace: str, endpoint: str, entity: str
    ) -> Prediction | None:
        with self._lock:
            self._endpoint(workspace, endpoint)
            mine = [
                p
                for p in self._predictions[(workspace, endpoint)].values()
                if p.route == "live" and p.entity == entity
            ]
            return copy.deepcopy(max(mine, key=_order)) if mine else None

    def delete_predictions(self, workspace: str, endpoint: str, *, before: datetime) -> int:
        check_before(before)
        with self._lock:
            old = self._select(workspace, endpoint, None, before, None)
            logged = self._predictions[(workspace, endpoint)]
            outcomes = self._feedback[(workspace, endpoint)]
            for p in old:
                del logged[(p.request_id, p.route)]
                if p.route == "live":
                    outcomes.pop(p.request_id, None)
            return len(old)

    # -- feedback ------------------------------------------------------------------
    def add_feedback(self, items: Sequence[Feedback]) -> int:
        items = list(items)
        latest = check_feedback(items)
        with self._lock:
            for key in dict.fromkeys((f.workspace, f.endpoint) for f in latest):
                self._endpoint(*key)
            for f in latest:
                if (f.request_id, "live") not in self._predictions[(f.workspace, f.endpoint)]:
                    raise feedback_without_prediction(f.workspace, f.endpoint, f.request_id)
            for f in latest:
                stored = replace(f, label=float(f.label), at=check_time(f.at, "at"))
                self._feedback[(f.workspace, f.endpoint)][f.request_id] = stored
            return len(items)

    def labelled_predictions(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[tuple[Prediction, Feedback]]:
        check_page(0 if limit is None else limit, 0)
        with self._lock:
            outcomes = self._feedback.get((workspace, endpoint), {})
            found = [
                (p, outcomes[p.request_id])
                for p in self._select(workspace, endpoint, since, until, "live")
                if p.request_id in outcomes
            ]
            found.sort(key=lambda pair: _order(pair[0]))
            return copy.deepcopy(found[:limit])

    # -- alerts ----------------------------------------------------------------------
    def add_alert(self, alert: Alert) -> Alert:
        alert = check_alert(alert)
        alert = replace(alert, details=json_copy(alert.details, "details"))
        with self._lock:
            self._endpoint(alert.workspace, alert.endpoint)
            stored = copy.deepcopy(
                replace(
                    alert,
                    value=float(alert.value),
                    threshold=float(alert.threshold),
                    id=next(self._alert_ids),
                )
            )
            self._alerts.append(stored)
            return copy.deepcopy(stored)

    def list_alerts(
        self,
        workspace: str,
        endpoint: str | None = None,
        *,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Alert]:
        check_page(limit, offset)
        if status is not None:
            check_alert_status(status)
        with self._lock:
            if endpoint is None:
                self.get_workspace(workspace)
            else:
                self._endpoint(workspace, endpoint)
            found = [
                a
                for a in reversed(self._alerts)
                if a.workspace == workspace
                and (endpoint is None or a.endpoint == endpoint)
                and (status is None or a.status == status)
            ]
            return copy.deepcopy(found[offset : offset + limit])

    def set_alert_status(
        self, workspace: str, alert_id: int, status: str, *, endpoint: str | None = None
    ) -> Alert:
        check_alert_status(status)
        with self._lock:
            self.get_workspace(workspace)
            for i, alert in enumerate(self._alerts):
                if alert.id == alert_id and alert.workspace == workspace:
                    check_alert_endpoint(alert_id, alert.endpoint, endpoint)
                    self._alerts[i] = replace(alert, status=status)
                    return copy.deepcopy(self._alerts[i])
            raise alert_not_found(workspace, alert_id)

    def set_alerts_delivered(
        self, workspace: str, endpoint: str, alert_ids: Sequence[int], at: datetime
    ) -> int:
        ids = set(check_delivered(alert_ids, at))
        at = check_time(at, "at")
        with self._lock:
            self._endpoint(workspace, endpoint)
            marked = 0
            for i, alert in enumerate(self._alerts):
                if alert.id in ids and (alert.workspace, alert.endpoint) == (workspace, endpoint):
                    self._alerts[i] = replace(alert, delivered_at=at)
                    marked += 1
            return marked

    # -- helpers ---------------------------------------------------------------------
    def _endpoint(self, workspace: str, name: str) -> Endpoint:
        """The stored endpoint (not a copy); NotFound for it or its workspace."""
        self.get_workspace(workspace)
        try:
            return self._endpoints[(workspace, name)]
        except KeyError:
            raise endpoint_not_found(workspace, name) from None

    def _policy(self, workspace: str, endpoint: str, version: int) -> PolicyVersion:
        for policy in self._policies[(workspace, endpoint)]:
            if policy.version == version:
                return policy
        raise policy_version_not_found(workspace, endpoint, version)

    def _check_versions(self, endpoint: Endpoint) -> None:
        """NotFound unless every routed (and the shadow) model version exists."""
        served = [(r, "routes") for r in endpoint.routes]
        if endpoint.shadow is not None:
            served.append((endpoint.shadow, "shadow"))
        for route, field in served:
            try:
                self.get_model_version(endpoint.workspace, route.model, route.version)
            except NotFound:
                raise routed_version_not_found(
                    endpoint.workspace, endpoint.name, route.model, route.version, field
                ) from None

    def _select(
        self,
        workspace: str,
        endpoint: str,
        since: datetime | None,
        until: datetime | None,
        route: str | None,
    ) -> list[Prediction]:
        """The stored predictions (not copies) in the window, of the route (None: all)."""
        check_prediction_route(route)
        check_window(since, until)
        since = None if since is None else as_utc(since)
        until = None if until is None else as_utc(until)
        with self._lock:
            self._endpoint(workspace, endpoint)
            return [
                p
                for p in self._predictions[(workspace, endpoint)].values()
                if (route is None or p.route == route) and _in_window(p.at, since, until)
            ]
