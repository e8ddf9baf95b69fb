"""Workspace: one per business line; every object belongs to exactly one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from leptonic.core._time import utcnow

__all__ = ["Workspace"]


@dataclass(frozen=True)
class Workspace:
    """A business line's space (credit risk, fraud, retail, ...).

    ``pii_salt`` salts the hashes that mask personal data in this workspace,
    so the same e-mail hashes differently in two workspaces.
    """

    name: str
    description: str = ""
    pii_salt: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    created_at: datetime = field(default_factory=utcnow)
