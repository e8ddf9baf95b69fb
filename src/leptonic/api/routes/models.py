"""Registered models: versions with cards and metrics, stage changes and their history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, status
from fastapi import Path as PathParam

from leptonic.api import jobs
from leptonic.api.auth import Developer, Viewer
from leptonic.api.schemas import (
    JobOut,
    Limit,
    ModelOut,
    ModelVersionOut,
    Offset,
    Page,
    ScoreRequest,
    StageIn,
    TransitionOut,
    page_of,
    probe_page,
)
from leptonic.core.access import Role
from leptonic.core.model_version import Stage

__all__ = ["ADMIN_STAGES", "router"]

router = APIRouter(tags=["models"])

#: Stages only workspace admins may move a version to, or out of.
ADMIN_STAGES = frozenset({Stage.PRODUCTION, Stage.ARCHIVED})

VersionPath = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


@router.get("/workspaces/{ws}/models", response_model=Page[ModelOut])
def list_models(scope: Viewer, limit: Limit = 50, offset: Offset = 0) -> object:
    models = scope.platform.list_models(scope.workspace)
    return page_of(models, limit, offset, ModelOut.model_validate)


@router.get("/workspaces/{ws}/models/{name}/versions", response_model=Page[ModelVersionOut])
def list_versions(scope: Viewer, name: str, limit: Limit = 50, offset: Offset = 0) -> object:
    """The model's versions, oldest first."""
    versions = scope.platform.model_versions(scope.workspace, name, limit=limit + 1, offset=offset)
    return probe_page(versions, limit, offset, ModelVersionOut.model_validate)


@router.get("/workspaces/{ws}/models/{name}/versions/{version}", response_model=ModelVersionOut)
def get_version(scope: Viewer, name: str, version: VersionPath) -> object:
    """One version with its model card, metrics, signature and stage."""
    mv = scope.platform.model_version(scope.workspace, name, version)
    return ModelVersionOut.model_validate(mv)


@router.get(
    "/workspaces/{ws}/models/{name}/versions/{version}/history",
    response_model=Page[TransitionOut],
)
def version_history(
    scope: Viewer, name: str, version: VersionPath, limit: Limit = 50, offset: Offset = 0
) -> object:
    """The version's stage changes, oldest first: who, when, why."""
    history = scope.platform.stage_history(scope.workspace, name, version)
    return page_of(history, limit, offset, TransitionOut.model_validate)


@router.get("/workspaces/{ws}/models/{name}/history", response_model=Page[TransitionOut])
def model_history(scope: Viewer, name: str, limit: Limit = 50, offset: Offset = 0) -> object:
    """The stage changes of all the model's versions, oldest first."""
    history = scope.platform.stage_history(scope.workspace, name)
    return page_of(history, limit, offset, TransitionOut.model_validate)


@router.post(
    "/workspaces/{ws}/models/{name}/versions/{version}/stage", response_model=ModelVersionOut
)
def set_stage(scope: Developer, name: str, version: VersionPath, body: StageIn) -> object:
    """Promote or demote a version; moving it to or out of production or archived needs
    the admin role."""
    if body.stage in ADMIN_STAGES:
        scope.require(Role.ADMIN)
    elif not scope.allows(Role.ADMIN):
        current = scope.platform.model_version(scope.workspace, name, version).stage
        if current in ADMIN_STAGES:
            scope.require(Role.ADMIN)
    mv = scope.platform.promote(scope.workspace, name, version, body.stage, reason=body.reason)
    return ModelVersionOut.model_validate(mv)


@router.post(
    "/workspaces/{ws}/models/{name}/versions/{version}/score",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
)
def score(
    request: Request, scope: Developer, name: str, version: VersionPath, body: ScoreRequest
) -> object:
    """Queue batch scoring of a dataset version; the scores become a new dataset version.

    Follow the job at ``/jobs/{id}``; its result names the output dataset and version.
    """
    job = jobs.submit_scoring(
        scope.platform,
        scope.workspace,
        name,
        version,
        body.dataset,
        dataset_version=body.dataset_version,
        output=body.output,
    )
    request.app.state.runner.wake()
    return JobOut.model_validate(job)
