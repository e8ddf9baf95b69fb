"""The caller, users and API tokens, and the platform-wide audit log."""

from __future__ import annotations

from fastapi import APIRouter, status

from leptonic.api.auth import CurrentCaller, scope_of
from leptonic.api.schemas import (
    AuditOut,
    Limit,
    MemberOut,
    MeOut,
    NewTokenOut,
    Offset,
    Page,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    page_of,
    probe_page,
)
from leptonic.core.access import Role
from leptonic.core.audit import AuditEvent
from leptonic.errors import NotFound, PermissionDenied

__all__ = ["router"]

router = APIRouter(tags=["access"])


@router.get("/me", response_model=MeOut)
def me(caller: CurrentCaller) -> object:
    """The caller and their roles."""
    memberships = caller.platform.memberships(user=caller.user.name)
    return {
        "user": UserOut.model_validate(caller.user),
        "memberships": [MemberOut.model_validate(m) for m in memberships],
    }


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, caller: CurrentCaller) -> object:
    """Create a user (platform admins)."""
    caller.require_admin()
    user = caller.platform.create_user(body.name, admin=body.admin, display_name=body.display_name)
    return UserOut.model_validate(user)


@router.get("/users", response_model=Page[UserOut])
def list_users(caller: CurrentCaller, limit: Limit = 50, offset: Offset = 0) -> object:
    caller.require_admin()
    return page_of(caller.platform.list_users(), limit, offset, UserOut.model_validate)


def _require_self_or_admin(caller: CurrentCaller, user: str) -> None:
    if user != caller.user.name:
        caller.require_admin()


@router.post(
    "/users/{user}/tokens", response_model=NewTokenOut, status_code=status.HTTP_201_CREATED
)
def create_token(user: str, body: TokenIn, caller: CurrentCaller) -> object:
    """Create an API token; the response holds its secret, shown this once only."""
    caller.require_admin()
    token, secret = caller.platform.create_token(
        user, body.name, expires_in_days=body.expires_in_days
    )
    return NewTokenOut(**TokenOut.model_validate(token).model_dump(), secret=secret)


@router.get("/users/{user}/tokens", response_model=Page[TokenOut])
def list_tokens(user: str, caller: CurrentCaller, limit: Limit = 50, offset: Offset = 0) -> object:
    """A user's tokens, without secrets (platform admins, or the user)."""
    _require_self_or_admin(caller, user)
    return page_of(caller.platform.list_tokens(user), limit, offset, TokenOut.model_validate)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: str, caller: CurrentCaller) -> object:
    """Revoke a token (platform admins, or the token's owner)."""
    if not caller.is_admin and token_id not in {
        t.id for t in caller.platform.list_tokens(caller.user.name)
    }:
        raise NotFound(f"no API token with id {token_id!r}", field="token")
    return TokenOut.model_validate(caller.platform.revoke_token(token_id))


@router.get("/audit", response_model=Page[AuditOut])
def audit(
    caller: CurrentCaller,
    workspace: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> object:
    """The audit log, newest first: everything for platform admins, else the
    workspaces where the caller is admin."""
    lp = caller.platform
    if caller.is_admin:
        events = lp.audit_log(
            workspace=workspace, actor=actor, action=action, limit=limit + 1, offset=offset
        )
        return probe_page(events, limit, offset, AuditOut.model_validate)
    if workspace is not None:
        scope_of(caller, workspace).require(Role.ADMIN)
        allowed = [workspace]
    else:
        allowed = [
            m.workspace for m in lp.memberships(user=caller.user.name) if m.role.allows(Role.ADMIN)
        ]
    if not allowed:
        raise PermissionDenied("the audit log needs the admin role in a workspace")
    merged: list[AuditEvent] = []
    for ws in allowed:
        merged += lp.audit_log(
            workspace=ws, actor=actor, action=action, limit=offset + limit + 1, offset=0
        )
    merged.sort(key=lambda e: e.id or 0, reverse=True)
    return probe_page(merged[offset:], limit, offset, AuditOut.model_validate)
