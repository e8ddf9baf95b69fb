"""Users, API tokens and per-workspace roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from leptonic.core._time import utcnow

__all__ = ["ApiToken", "Membership", "Role", "User"]


class Role(StrEnum):
    """What a user may do in one workspace; each role includes the ones before it."""

    VIEWER = "viewer"
    DEVELOPER = "developer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 1, Role.DEVELOPER: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class User:
    """A person or service account. ``is_admin`` users administer the whole platform."""

    name: str
    display_name: str = ""
    is_admin: bool = False
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class ApiToken:
    """An API token; only its SHA-256 is stored, never the secret itself.

    ``prefix`` is the first characters of the secret, shown in listings so a
    user can tell tokens apart.
    """

    id: str
    user: str
    name: str
    token_hash: str
    prefix: str
    created_at: datetime = field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class Membership:
    """A user's role in a workspace; ``raw_pii`` grants unmasked personal data."""

    workspace: str
    user: str
    role: Role
    raw_pii: bool = False
    created_at: datetime = field(default_factory=utcnow)
