"""Registered models, their versions and stage history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from leptonic.core._time import utcnow

__all__ = ["ALLOWED_TRANSITIONS", "Model", "ModelVersion", "Stage", "StageTransition"]


class Stage(StrEnum):
    CANDIDATE = "candidate"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


#: from-stage → the stages a version may move to.
ALLOWED_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.CANDIDATE, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.CANDIDATE}),
}


@dataclass(frozen=True)
class Model:
    workspace: str
    name: str
    task: str
    description: str = ""
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class ModelVersion:
    """An artifact with its signature, metrics, lineage, model card and stage.

    ``artifact_key`` names the bundle manifest in the artifact store and
    ``artifact_digest`` its SHA-256; loading refuses a bundle whose bytes do not
    match.
    """

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
    stage: Stage = Stage.CANDIDATE
    created_by: str = "local"
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class StageTransition:
    """One change of a model version's stage: who, when, why."""

    workspace: str
    model: str
    version: int
    from_stage: Stage | None
    to_stage: Stage
    actor: str
    reason: str
    at: datetime = field(default_factory=utcnow)
