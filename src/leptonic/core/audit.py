"""The audit log: an append-only record of every change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leptonic.core._time import utcnow

__all__ = ["AuditEvent"]


@dataclass(frozen=True)
class AuditEvent:
    """Who did what, when, to which objects.

    ``action`` is a dotted verb such as ``dataset.add`` or ``model.promote``;
    ``objects`` holds :class:`~leptonic.core.uri.ObjectRef` strings; ``id`` is
    assigned by the store (increasing).
    """

    actor: str
    action: str
    workspace: str | None
    objects: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)
    id: int | None = None
