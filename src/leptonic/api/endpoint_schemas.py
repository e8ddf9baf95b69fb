"""Request and response bodies of the endpoint routes (deploy, traffic, policy,
decisions, outcomes, monitoring)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leptonic.serving.service import MAX_RETENTION_DAYS

__all__ = [
    "AlertOut",
    "AlertStatusIn",
    "CanaryIn",
    "DeployIn",
    "EndpointIn",
    "EndpointOut",
    "MonitorIn",
    "PolicyIn",
    "PolicyOut",
    "PredictionOut",
    "PruneIn",
    "ReasonIn",
    "RecalibrateIn",
    "RetrainIn",
    "RouteOut",
    "ShadowIn",
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RouteOut(_Out):
    model: str
    version: int
    percent: float


class EndpointIn(_In):
    name: str = Field(description="1-63 lowercase letters, digits, '-' or '_'.")
    model: str
    version: int = Field(ge=1, le=2**31 - 1)
    policy: dict[str, Any] | None = Field(
        None, description="A decision policy spec; default: bands around the model's threshold."
    )
    entity_key: str | None = Field(
        None, max_length=200, description="Request field that keeps an entity on one route."
    )
    description: str = Field("", max_length=2000)


class EndpointOut(_Out):
    workspace: str
    name: str
    routes: list[RouteOut]
    shadow: RouteOut | None
    policy_version: int
    entity_key: str | None
    description: str
    revision: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class ReasonIn(_In):
    reason: str = Field(min_length=1, max_length=2000, description="Why (recorded).")


class CanaryIn(ReasonIn):
    model: str
    version: int = Field(ge=1, le=2**31 - 1)
    percent: float = Field(gt=0, lt=100)


class DeployIn(ReasonIn):
    model: str
    version: int = Field(ge=1, le=2**31 - 1)


class PruneIn(ReasonIn):
    older_than_days: float = Field(
        gt=0,
        le=MAX_RETENTION_DAYS,
        description="Predictions logged longer ago than this are deleted.",
    )


class ShadowIn(ReasonIn):
    model: str | None = Field(None, description="None stops shadowing.")
    version: int | None = Field(None, ge=1, le=2**31 - 1)


class PolicyIn(ReasonIn):
    spec: dict[str, Any]


class PolicyOut(_Out):
    workspace: str
    endpoint: str
    version: int
    spec: dict[str, Any]
    reason: str
    created_by: str
    created_at: datetime


class PredictionOut(_Out):
    request_id: str
    at: datetime
    route: str
    model: str
    version: int
    policy_version: int
    score: float
    decision: str
    entity: str | None
    inputs: dict[str, Any]
    reasons: list[dict[str, Any]]
    latency_ms: float


class AlertOut(_Out):
    id: int
    workspace: str
    endpoint: str
    rule: str
    subject: str
    value: float
    threshold: float
    message: str
    window_start: datetime
    window_end: datetime
    at: datetime
    status: str
    details: dict[str, Any]
    delivered_at: datetime | None = None


class AlertStatusIn(_In):
    status: Literal["open", "acknowledged", "resolved"]


class MonitorIn(_In):
    since: datetime | None = Field(None, description="Start of the window (default: 24 h ago).")
    until: datetime | None = None
    last: int | None = Field(
        None, ge=1, le=1_000_000, description="Only the newest N decisions of the window."
    )
    rules: dict[str, Any] | None = Field(None, description="Alert rules; default PSI > 0.25 …")
    webhook: str | None = Field(None, max_length=2000, description="POST alerts here.")


class RecalibrateIn(ReasonIn):
    target_approval_rate: float | None = Field(None, gt=0, lt=1)
    target_bad_rate: float | None = Field(None, gt=0, lt=1)
    since: datetime | None = None
    last: int | None = Field(None, ge=1, le=1_000_000)


class RetrainIn(_In):
    dataset: str | None = Field(None, description="Default: the primary model's dataset.")
    dataset_version: int | None = Field(None, ge=1)
    model: str | None = Field(None, description="Register as; default: the primary's model.")
    min_new_events: int = Field(
        1, ge=0, description="Recommendation endpoints: retrain only after this many new events."
    )
    promote: bool = Field(
        True, description="Recommendation endpoints: serve the new version when it is registered."
    )
    reason: str = Field(
        "retrain", min_length=1, max_length=2000, description="Why (recorded in the audit log)."
    )
