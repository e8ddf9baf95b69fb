"""Records to SQL column values and back, for the SQL metadata store.

Dictionaries are stored as JSON; :func:`json_value` refuses values that JSON
cannot hold or would not give back equal (NaN, non-string keys, numpy
scalars...), naming the field and the fix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row

from leptonic.core.access import ApiToken, Membership, Role, User
from leptonic.core.audit import AuditEvent
from leptonic.core.dataset import Column, Dataset, DatasetVersion
from leptonic.core.job import Job, JobStatus
from leptonic.core.model_version import Model, ModelVersion, Stage, StageTransition
from leptonic.core.run import Run, RunStatus
from leptonic.core.workspace import Workspace
from leptonic.errors import InvalidInput
from leptonic.storage.metadata.base import json_value

__all__ = [
    "JOB_JSON_FIELDS",
    "RUN_JSON_FIELDS",
    "job_column",
    "json_value",
    "run_column",
    "to_audit_event",
    "to_dataset",
    "to_dataset_version",
    "to_job",
    "to_membership",
    "to_model",
    "to_model_version",
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
    if name in ("started_at", "finished_at") and not isinstance(value, datetime | None):
        raise InvalidInput(
            f"run field {name} must be a datetime or None, got {type(value).__name__}",
            field=name,
        )
    if name == "error" and not isinstance(value, str | None):
        raise InvalidInput(
            f"run field error must be a str or None, got {type(value).__name__}", field=name
        )
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
