"""Who is calling, and what they may do in a workspace.

Callers authenticate with ``Authorization: Bearer lep_<secret>``; the server
keeps only the SHA-256 of each secret (see :meth:`Platform.create_token`).
Roles are per workspace (:class:`~leptonic.core.access.Role`): viewers read;
developers also upload data, start and cancel runs and jobs and move models
between ``candidate`` and ``staging``; admins also move models to or out of
``production`` or ``archived``, manage members and read the workspace's audit
log. Platform admins (``User.is_admin``) may do everything.

A caller without a role in a workspace gets the same ``404`` for everything
in it as for a workspace that does not exist, so names do not leak; a member
whose role is too low gets ``403``.

Bootstrap: when a server starts on a store without users, it creates the
platform admin ``admin`` with a token, prints the token once to stderr and
writes it to ``<LEPTONIC_HOME>/bootstrap-token`` (mode 0600) unless that file
exists. Later starts show nothing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TextIO

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from leptonic.core.access import ApiToken, Membership, Role, User
from leptonic.errors import AlreadyExists, NotFound, PermissionDenied, Unauthenticated
from leptonic.platform import TOKEN_PREFIX, Platform, hash_token

__all__ = [
    "BOOTSTRAP_TOKEN_FILE",
    "Caller",
    "CurrentCaller",
    "Developer",
    "Viewer",
    "WorkspaceAdmin",
    "WorkspaceScope",
    "authenticate",
    "bootstrap_admin",
    "requires",
]

#: File (under LEPTONIC_HOME) that receives the first admin token.
BOOTSTRAP_TOKEN_FILE = "bootstrap-token"

_bearer = HTTPBearer(
    auto_error=False,
    description="An API token: `Authorization: Bearer lep_...` "
    "(create one with `leptonic tokens create USER`).",
)


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the user, their token and a platform acting as them."""

    user: User
    token: ApiToken
    platform: Platform

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin

    def require_admin(self) -> None:
        """Raise :class:`PermissionDenied` unless the caller is a platform admin."""
        if not self.user.is_admin:
            raise PermissionDenied("only platform admins may do this; ask one of them")


@dataclass(frozen=True)
class WorkspaceScope:
    """A caller inside one workspace, with their role there (None for platform admins)."""

    caller: Caller
    workspace: str
    membership: Membership | None

    @property
    def platform(self) -> Platform:
        return self.caller.platform

    @property
    def raw_pii(self) -> bool:
        """Whether the caller may see personal data unmasked here."""
        return self.caller.is_admin or bool(self.membership and self.membership.raw_pii)

    def allows(self, role: Role) -> bool:
        if self.caller.is_admin:
            return True
        return self.membership is not None and self.membership.role.allows(role)

    def require(self, role: Role) -> None:
        """Raise :class:`PermissionDenied` unless the caller's role reaches ``role``."""
        if not self.allows(role):
            have = self.membership.role.value if self.membership else "none"
            raise PermissionDenied(
                f"this needs the {role.value} role in workspace {self.workspace!r}; "
                f"{self.caller.user.name!r} has {have}: ask a workspace admin"
            )


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller of a request; :class:`Unauthenticated` without a usable token."""
    if credentials is None:
        raise Unauthenticated(
            "missing API token: send the header 'Authorization: Bearer lep_...'",
            field="authorization",
        )
    secret = credentials.credentials
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise Unauthenticated("malformed API token: tokens start with 'lep_'")
    platform = _platform(request)
    try:
        token = platform.metadata.get_token_by_hash(hash_token(secret))
    except NotFound:
        raise Unauthenticated(
            "unknown API token; create one with `leptonic tokens create`"
        ) from None
    if not token.is_active():
        state = "revoked" if token.revoked_at is not None else "expired"
        raise Unauthenticated(f"API token {token.prefix}… is {state}; create a new one")
    user = platform.get_user(token.user)
    return Caller(user, token, platform.as_user(user.name))


CurrentCaller = Annotated[Caller, Depends(authenticate)]


def scope_of(caller: Caller, ws: str) -> WorkspaceScope:
    """The caller inside workspace ``ws``; :class:`NotFound` unless it is visible to them."""
    membership = caller.platform.membership(ws, caller.user.name)
    if caller.is_admin:
        caller.platform.get_workspace(ws)
    elif membership is None:
        raise NotFound(f"workspace {ws!r} not found", field="workspace")
    return WorkspaceScope(caller, ws, membership)


def requires(role: Role) -> object:
    """A dependency: the caller's scope in the ``{ws}`` of the path, with at least ``role``."""

    def dependency(ws: str, caller: CurrentCaller) -> WorkspaceScope:
        scope = scope_of(caller, ws)
        scope.require(role)
        return scope

    return Depends(dependency)


Viewer = Annotated[WorkspaceScope, requires(Role.VIEWER)]
Developer = Annotated[WorkspaceScope, requires(Role.DEVELOPER)]
WorkspaceAdmin = Annotated[WorkspaceScope, requires(Role.ADMIN)]


def bootstrap_admin(platform: Platform, home: Path, *, stream: TextIO | None = None) -> str | None:
    """Create the first platform admin and token when the store has no users.

    The token is printed to ``stream`` (stderr) and written to
    ``home / BOOTSTRAP_TOKEN_FILE`` with mode 0600 unless that file exists.
    Returns the secret, or None when users already exist.
    """
    if platform.list_users():
        return None
    system = platform.as_user("system")
    try:
        system.create_user("admin", admin=True, display_name="Platform admin")
    except AlreadyExists:  # another server bootstrapped at the same moment
        return None
    _, secret = system.create_token("admin", "bootstrap")
    path = home / BOOTSTRAP_TOKEN_FILE
    written = False
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        written = True
    out = stream or sys.stderr
    where = f" (also written to {path}, mode 0600)" if written else ""
    print(
        f"leptonic: created platform admin 'admin'; its API token{where} is shown only now:\n"
        f"    {secret}",
        file=out,
        flush=True,
    )
    return secret
