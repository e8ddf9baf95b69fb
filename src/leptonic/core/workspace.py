"""Workspace: one per business line; every object belongs to exactly one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from leptonic.core._time import utcnow

__all__ = ["Workspace"]


@dataclass(frozen=True)
class Workspace:
    """A business line's space (credit risk, fraud, retail, ...)."""

    name: str
    description: str = ""
    created_at: datetime = field(default_factory=utcnow)
