"""Workspaces, their members, lineage and audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from leptonic.api.auth import CurrentCaller, Viewer, WorkspaceAdmin
from leptonic.api.schemas import (
    AuditOut,
    Direction,
    Limit,
    LineageItem,
    MemberIn,
    MemberOut,
    Offset,
    Page,
    WorkspaceIn,
    WorkspaceOut,
    page_of,
    probe_page,
)
from leptonic.core.uri import ObjectRef
from leptonic.errors import NotFound

__all__ = ["router"]

router = APIRouter(tags=["workspaces"])


@router.get("/workspaces", response_model=Page[WorkspaceOut])
def list_workspaces(caller: CurrentCaller, limit: Limit = 50, offset: Offset = 0) -> object:
    """The workspaces the caller can see (all of them for platform admins)."""
    workspaces = caller.platform.list_workspaces()
    if not caller.is_admin:
        mine = {m.workspace for m in caller.platform.memberships(user=caller.user.name)}
        workspaces = [w for w in workspaces if w.name in mine]
    return page_of(workspaces, limit, offset, WorkspaceOut.model_validate)


@router.post("/workspaces", response_model=WorkspaceOut, status_code=status.HTTP_201_CREATED)
def create_workspace(body: WorkspaceIn, caller: CurrentCaller) -> object:
    """Create a workspace (platform admins only)."""
    caller.require_admin()
    return WorkspaceOut.model_validate(
        caller.platform.create_workspace(body.name, body.description)
    )


@router.get("/workspaces/{ws}", response_model=WorkspaceOut)
def get_workspace(scope: Viewer) -> object:
    return WorkspaceOut.model_validate(scope.platform.get_workspace(scope.workspace))


# -- members ---------------------------------------------------------------------------
@router.get("/workspaces/{ws}/members", response_model=Page[MemberOut])
def list_members(scope: Viewer, limit: Limit = 50, offset: Offset = 0) -> object:
    members = scope.platform.memberships(workspace=scope.workspace)
    return page_of(members, limit, offset, MemberOut.model_validate)


@router.put("/workspaces/{ws}/members/{user}", response_model=MemberOut)
def set_member(scope: WorkspaceAdmin, user: str, body: MemberIn) -> object:
    """Give a user a role in the workspace (workspace or platform admins)."""
    member = scope.platform.set_member(scope.workspace, user, body.role, raw_pii=body.raw_pii)
    return MemberOut.model_validate(member)


@router.delete("/workspaces/{ws}/members/{user}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(scope: WorkspaceAdmin, user: str) -> None:
    scope.platform.remove_member(scope.workspace, user)


# -- lineage ---------------------------------------------------------------------------
@router.get("/workspaces/{ws}/lineage", response_model=Page[LineageItem])
def lineage(
    scope: Viewer,
    ref: Annotated[str, Query(description="leptonic://<ws>/<kind>/<name>[/<version>]")],
    direction: Direction = "downstream",
    limit: Limit = 50,
    offset: Offset = 0,
) -> object:
    """Everything made from ``ref`` (downstream) or that it was made from (upstream)."""
    obj = ObjectRef.parse(ref)
    if obj.workspace != scope.workspace:
        raise NotFound(f"{ref} is not in workspace {scope.workspace!r}", field="ref")
    found = scope.platform.lineage(obj, direction)
    return page_of(found, limit, offset, lambda item: LineageItem(depth=item[0], ref=str(item[1])))


# -- audit -------------------------------------------------------------------------------
@router.get("/workspaces/{ws}/audit", response_model=Page[AuditOut])
def workspace_audit(
    scope: WorkspaceAdmin,
    actor: str | None = None,
    action: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> object:
    """The workspace's audit log, newest first (workspace admins)."""
    events = scope.platform.audit_log(
        workspace=scope.workspace, actor=actor, action=action, limit=limit + 1, offset=offset
    )
    return probe_page(events, limit, offset, AuditOut.model_validate)
