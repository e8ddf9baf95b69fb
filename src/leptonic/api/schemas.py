"""Request and response bodies of the REST API (pydantic models), and paging.

Response models are read from the frozen records of :mod:`leptonic.core`
(``from_attributes``); fields that must not leave the server (a workspace's
PII salt, a token's hash) are simply not declared here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leptonic.core.access import Role
from leptonic.core.dataset import ColumnRole
from leptonic.core.job import JobStatus
from leptonic.core.model_version import Stage
from leptonic.core.run import RunStatus
from leptonic.tasks.recsys.spec import RecommenderSpec
from leptonic.tasks.spec import TrainSpec, spec_from_dict
from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = [
    "MAX_PAGE",
    "AuditOut",
    "ColumnOut",
    "DatasetOut",
    "DatasetVersionOut",
    "Direction",
    "JobOut",
    "Limit",
    "LineageItem",
    "MeOut",
    "MemberIn",
    "MemberOut",
    "ModelOut",
    "ModelVersionOut",
    "NewTokenOut",
    "Offset",
    "Page",
    "PreviewOut",
    "ProgressOut",
    "RunOut",
    "StageIn",
    "TokenIn",
    "TokenOut",
    "TrainAccepted",
    "TrainRequest",
    "TransitionOut",
    "UploadOut",
    "UserIn",
    "UserOut",
    "WorkspaceIn",
    "WorkspaceOut",
    "page_of",
    "probe_page",
]

T = TypeVar("T")
R = TypeVar("R")

#: The largest ``limit`` a list route accepts.
MAX_PAGE = 500

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_offset`` is None on the last page."""

    items: list[T]
    limit: int
    offset: int
    next_offset: int | None


def page_of(
    items: Sequence[R], limit: int, offset: int, convert: Callable[[R], Any]
) -> dict[str, Any]:
    """A page cut from a complete list."""
    chunk = items[offset : offset + limit]
    more = offset + limit < len(items)
    return {
        "items": [convert(i) for i in chunk],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


def probe_page(
    items: Sequence[R], limit: int, offset: int, convert: Callable[[R], Any]
) -> dict[str, Any]:
    """A page from a store query asked for ``limit + 1`` items (the extra one means "more")."""
    more = len(items) > limit
    return {
        "items": [convert(i) for i in items[:limit]],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


# -- workspaces, users, tokens, roles ------------------------------------------------
class WorkspaceIn(_In):
    name: str = Field(description="1-63 lowercase letters, digits, '-' or '_'.")
    description: str = Field("", max_length=2000)


class WorkspaceOut(_Out):
    name: str
    description: str
    created_at: datetime


class UserIn(_In):
    name: str
    display_name: str = Field("", max_length=200)
    admin: bool = False


class UserOut(_Out):
    name: str
    display_name: str
    is_admin: bool
    created_at: datetime


class TokenIn(_In):
    name: str = Field("default", min_length=1, max_length=100)
    expires_in_days: float | None = Field(None, gt=0, le=36_500)


class TokenOut(_Out):
    id: str
    user: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    secret: str = Field(description="The token itself; shown only in this response.")


class MemberIn(_In):
    role: Role
    raw_pii: bool = False


class MemberOut(_Out):
    workspace: str
    user: str
    role: Role
    raw_pii: bool
    created_at: datetime


class MeOut(BaseModel):
    user: UserOut
    memberships: list[MemberOut]


class AuditOut(_Out):
    id: int | None
    actor: str
    action: str
    workspace: str | None
    objects: list[str]
    details: dict[str, Any]
    at: datetime


# -- data ---------------------------------------------------------------------------
class DatasetOut(_Out):
    workspace: str
    name: str
    description: str
    created_at: datetime


class ColumnOut(_Out):
    name: str
    dtype: str
    role: ColumnRole
    pii: str | None
    nullable: bool


class DatasetVersionOut(_Out):
    workspace: str
    dataset: str
    version: int
    content_hash: str
    artifact_key: str
    num_rows: int
    num_columns: int
    size_bytes: int
    columns: list[ColumnOut]
    pii: dict[str, str]
    quality: dict[str, Any]
    source: dict[str, Any]
    created_by: str
    created_at: datetime


class UploadOut(BaseModel):
    version: DatasetVersionOut
    created: bool = Field(description="False when the same content was already a version.")


class PreviewOut(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    masked: bool = Field(description="Whether personal data columns were masked.")


# -- runs and jobs -----------------------------------------------------------------
class TrainRequest(_In):
    dataset: str
    version: int | None = Field(None, ge=1, le=2**31 - 1)
    spec: TrainSpec | RecommenderSpec | TextClassificationSpec = Field(
        description="The training spec; its `task` (default `binary`) picks the fields: "
        "`binary`, `multiclass`, `regression` (tabular), `recommendation` or "
        "`text-classification`."
    )
    model: str | None = Field(None, description="Register the result under this model name.")

    @field_validator("spec", mode="before")
    @classmethod
    def _spec_of_its_task(cls, value: Any) -> Any:
        # The task picks the spec class; its own checks name the bad field (a 422).
        if isinstance(value, TrainSpec | RecommenderSpec | TextClassificationSpec):
            return value
        return spec_from_dict(value)


class ScoreRequest(_In):
    dataset: str = Field(description="The dataset to score.")
    dataset_version: int | None = Field(None, ge=1, le=2**31 - 1)
    output: str | None = Field(None, description="Output dataset (default <dataset>-scores).")


class RunOut(_Out):
    id: str
    workspace: str
    status: RunStatus
    spec: dict[str, Any]
    seed: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    timings: dict[str, float]
    artifacts: dict[str, str] = Field(description="Artifact name → content key.")
    inputs: list[str]
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobOut(_Out):
    id: str
    workspace: str
    kind: str
    payload: dict[str, Any]
    status: JobStatus
    created_by: str
    run_id: str | None
    progress: dict[str, Any]
    result: dict[str, Any]
    error: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


class TrainAccepted(BaseModel):
    job: JobOut
    run_id: str


class ProgressOut(BaseModel):
    run_id: str
    job_id: str
    status: JobStatus
    done: int
    total: int
    message: str
    log: list[str]
    error: str | None


# -- models and lineage --------------------------------------------------------------
class ModelOut(_Out):
    workspace: str
    name: str
    task: str
    description: str
    created_at: datetime


class ModelVersionOut(_Out):
    workspace: str
    model: str
    version: int
    task: str
    flavor: str
    run_id: str
    dataset: str
    artifact_key: str
    artifact_digest: str
    signature: dict[str, Any]
    metrics: dict[str, Any]
    model_card: str
    stage: Stage
    created_by: str
    created_at: datetime


class StageIn(_In):
    stage: Stage
    reason: str = Field(min_length=1, max_length=2000, description="Why (recorded).")


class TransitionOut(_Out):
    workspace: str
    model: str
    version: int
    from_stage: Stage | None
    to_stage: Stage
    actor: str
    reason: str
    at: datetime


class LineageItem(BaseModel):
    depth: int
    ref: str


Direction = Literal["upstream", "downstream"]
