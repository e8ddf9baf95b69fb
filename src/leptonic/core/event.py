"""Events: what a user did with an item, posted to a recommendation endpoint.

Events update the served recommender at once and are kept in the metadata
store, so that a restarted endpoint replays them and the next full retrain
learns from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from leptonic.core._time import utcnow

__all__ = ["Event"]


@dataclass(frozen=True)
class Event:
    """One interaction of ``user`` with ``item`` at time ``at``.

    ``id`` is assigned by the endpoint that received the event (time-ordered);
    ``kind`` says what happened (``view``, ``click``, ``purchase``,
    ``rating``...) and ``weight`` how strongly (a rating, a quantity; 1 by
    default). ``at`` is when it happened, ``received_at`` when the endpoint
    accepted it. An endpoint records one event per ``(user, item, at)``.
    User and item ids are kept as text (an integer id ``7`` as ``"7"``).
    """

    workspace: str
    endpoint: str
    id: str
    user: str
    item: str
    at: datetime
    weight: float = 1.0
    kind: str = "interaction"
    received_at: datetime = field(default_factory=utcnow)
