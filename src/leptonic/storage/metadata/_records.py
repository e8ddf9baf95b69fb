"""Records to SQL column values and back, for the SQL metadata store.

Dictionaries are stored as JSON; :func:`json_value` refuses values that JSON
cannot hold or would not give back equal (NaN, non-string keys, numpy
scalars...), naming the field and the fix.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from leptonic.core.access import ApiToken, Membership, Role, User
from leptonic.core.audit import AuditEvent
from leptonic.core.dataset import Column, Dataset, DatasetVersion
from leptonic.core.endpoint import Alert, Endpoint, Feedback, PolicyVersion, Prediction, Route
from leptonic.core.job import Job, JobStatus
from leptonic.core.model_version import Model, ModelVersion, Stage, StageTransition
from leptonic.core.run import Run, RunStatus
from leptonic.core.workspace import Workspace
from leptonic.storage.metadata.base import json_value

__all__ = [
    "JOB_JSON_FIELDS",
    "RUN_JSON_FIELDS",
    "alert_values",
    "endpoint_values",
    "feedback_values",
    "job_column",
    "json_value",
    "policy_values",
    "prediction_row",
    "run_column",
    "to_alert",
    "to_audit_event",
    "to_dataset",
    "to_dataset_version",
    "to_endpoint",
    "to_job",
    "to_membership",
    "to_model",
    "to_model_version",
    "to_policy_version",
    "to_prediction",
    "to_run",
    "to_token",
    "to_transition",
    "to_user",
    "to_workspace",
]

#: Run fields kept as JSON and changeable by ``update_run``.
RUN_JSON_FIELDS = frozenset({"params", "metrics", "timings", "artifacts"})


#: Job fields kept as JSON.
JOB_JSON_FIELDS = frozenset({"payload", "progress", "result"})


def job_column(name: str, value: Any) -> Any:
    """The column value for the job field ``name`` (types already checked)."""
    if name in JOB_JSON_FIELDS:
        return json_value(value, name)
    if name == "status":
        return JobStatus(value).value
    return value


def run_column(name: str, value: Any) -> Any:
    """The column value for a change of the run field ``name`` (already checked)."""
    if name in RUN_JSON_FIELDS:
        return json_value(value, name)
    if name == "status":
        return RunStatus(value).value
    return value


def to_workspace(row: Row[Any]) -> Workspace:
    return Workspace(
        name=row.name,
        description=row.description,
        pii_salt=row.pii_salt,
        created_at=row.created_at,
    )


def to_dataset(row: Row[Any]) -> Dataset:
    return Dataset(
        workspace=row.workspace,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
    )


def to_dataset_version(row: Row[Any]) -> DatasetVersion:
    return DatasetVersion(
        workspace=row.workspace,
        dataset=row.dataset,
        version=row.version,
        content_hash=row.content_hash,
        artifact_key=row.artifact_key,
        num_rows=row.num_rows,
        num_columns=row.num_columns,
        size_bytes=row.size_bytes,
        columns=tuple(Column.from_dict(c) for c in row.columns),
        quality=row.quality,
        source=row.source,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def to_run(row: Row[Any]) -> Run:
    return Run(
        id=row.id,
        workspace=row.workspace,
        status=RunStatus(row.status),
        spec=row.spec,
        seed=row.seed,
        params=row.params,
        metrics=row.metrics,
        timings=row.timings,
        artifacts=row.artifacts,
        inputs=tuple(row.inputs),
        error=row.error,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def to_model(row: Row[Any]) -> Model:
    return Model(
        workspace=row.workspace,
        name=row.name,
        task=row.task,
        description=row.description,
        created_at=row.created_at,
    )


def to_model_version(row: Row[Any]) -> ModelVersion:
    return ModelVersion(
        workspace=row.workspace,
        model=row.model,
        version=row.version,
        task=row.task,
        flavor=row.flavor,
        run_id=row.run_id,
        dataset=row.dataset,
        artifact_key=row.artifact_key,
        artifact_digest=row.artifact_digest,
        signature=row.signature,
        metrics=row.metrics,
        model_card=row.model_card,
        stage=Stage(row.stage),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def to_transition(row: Row[Any]) -> StageTransition:
    return StageTransition(
        workspace=row.workspace,
        model=row.model,
        version=row.version,
        from_stage=None if row.from_stage is None else Stage(row.from_stage),
        to_stage=Stage(row.to_stage),
        actor=row.actor,
        reason=row.reason,
        at=row.at,
    )


def to_user(row: Row[Any]) -> User:
    return User(
        name=row.name,
        display_name=row.display_name,
        is_admin=row.is_admin,
        created_at=row.created_at,
    )


def to_token(row: Row[Any]) -> ApiToken:
    return ApiToken(
        id=row.id,
        user=row.user,
        name=row.name,
        token_hash=row.token_hash,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def to_membership(row: Row[Any]) -> Membership:
    return Membership(
        workspace=row.workspace,
        user=row.user,
        role=Role(row.role),
        raw_pii=row.raw_pii,
        created_at=row.created_at,
    )


def to_audit_event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        actor=row.actor,
        action=row.action,
        workspace=row.workspace,
        objects=tuple(row.objects),
        details=row.details,
        at=row.at,
        id=row.id,
    )


def to_job(row: Row[Any]) -> Job:
    return Job(
        id=row.id,
        workspace=row.workspace,
        kind=row.kind,
        payload=row.payload,
        status=JobStatus(row.status),
        created_by=row.created_by,
        run_id=row.run_id,
        owner=row.owner,
        progress=row.progress,
        result=row.result,
        error=row.error,
        cancel_requested=row.cancel_requested,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
    )


# -- endpoints (records already checked by endpoint_base) -----------------------------
def _route_json(route: Route) -> dict[str, Any]:
    return {"model": route.model, "version": route.version, "percent": float(route.percent)}


def _route(value: dict[str, Any]) -> Route:
    return Route(model=value["model"], version=value["version"], percent=float(value["percent"]))


def endpoint_values(endpoint: Endpoint) -> dict[str, Any]:
    """The ``endpoints`` row of an endpoint."""
    return {
        "workspace": endpoint.workspace,
        "name": endpoint.name,
        "routes": [_route_json(r) for r in endpoint.routes],
        "shadow": None if endpoint.shadow is None else _route_json(endpoint.shadow),
        "policy_version": endpoint.policy_version,
        "entity_key": endpoint.entity_key,
        "description": endpoint.description,
        "revision": endpoint.revision,
        "created_by": endpoint.created_by,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def to_endpoint(row: Row[Any]) -> Endpoint:
    return Endpoint(
        workspace=row.workspace,
        name=row.name,
        routes=tuple(_route(r) for r in row.routes),
        policy_version=row.policy_version,
        shadow=None if row.shadow is None else _route(row.shadow),
        entity_key=row.entity_key,
        description=row.description,
        revision=row.revision,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def policy_values(policy: PolicyVersion) -> dict[str, Any]:
    """The ``endpoint_policies`` row of a policy version."""
    return {
        "workspace": policy.workspace,
        "endpoint": policy.endpoint,
        "version": policy.version,
        "spec": policy.spec,
        "reason": policy.reason,
        "created_by": policy.created_by,
        "created_at": policy.created_at,
    }


def to_policy_version(row: Row[Any]) -> PolicyVersion:
    return PolicyVersion(
        workspace=row.workspace,
        endpoint=row.endpoint,
        version=row.version,
        spec=row.spec,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def prediction_row(p: Prediction, inputs: str, reasons: str) -> dict[str, Any]:
    """The ``predictions`` row of a logged prediction whose ``inputs`` and
    ``reasons`` are JSON text already (for the bulk insert of the prediction log)."""
    return {
        "workspace": p.workspace,
        "endpoint": p.endpoint,
        "request_id": p.request_id,
        "route": p.route,
        "model": p.model,
        "version": p.version,
        "score": float(p.score),
        "decision": p.decision,
        "at": p.at,
        "policy_version": p.policy_version,
        "entity": p.entity,
        "inputs": inputs,
        "reasons": reasons,
        "latency_ms": float(p.latency_ms),
    }


def to_prediction(row: Row[Any]) -> Prediction:
    return Prediction(
        workspace=row.workspace,
        endpoint=row.endpoint,
        request_id=row.request_id,
        model=row.model,
        version=row.version,
        score=row.score,
        decision=row.decision,
        at=row.at,
        route=row.route,
        policy_version=row.policy_version,
        entity=row.entity,
        inputs=row.inputs,
        reasons=row.reasons,
        latency_ms=row.latency_ms,
    )


def feedback_values(f: Feedback) -> dict[str, Any]:
    """The ``feedback`` row of an outcome."""
    return {
        "workspace": f.workspace,
        "endpoint": f.endpoint,
        "request_id": f.request_id,
        "label": float(f.label),
        "at": f.at,
        "entity": f.entity,
    }


def alert_values(alert: Alert) -> dict[str, Any]:
    """The ``alerts`` row of an alert, without its id (assigned by the database)."""
    return {
        "workspace": alert.workspace,
        "endpoint": alert.endpoint,
        "rule": alert.rule,
        "subject": alert.subject,
        "value": float(alert.value),
        "threshold": float(alert.threshold),
        "message": alert.message,
        "window_start": alert.window_start,
        "window_end": alert.window_end,
        "at": alert.at,
        "status": alert.status,
        "details": alert.details,
        "delivered_at": alert.delivered_at,
    }


def to_alert(row: Row[Any]) -> Alert:
    return Alert(
        workspace=row.workspace,
        endpoint=row.endpoint,
        rule=row.rule,
        subject=row.subject,
        value=row.value,
        threshold=row.threshold,
        message=row.message,
        window_start=row.window_start,
        window_end=row.window_end,
        at=row.at,
        status=row.status,
        details=row.details,
        delivered_at=row.delivered_at,
        id=row.id,
    )
