"""Endpoints: model versions served in real time, their decision policies,
the prediction log, outcomes fed back and monitoring alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leptonic.core._time import utcnow

__all__ = ["Alert", "Endpoint", "Feedback", "PolicyVersion", "Prediction", "Route"]


@dataclass(frozen=True)
class Route:
    """A share of live traffic sent to one model version (``percent`` in 0–100)."""

    model: str
    version: int
    percent: float


@dataclass(frozen=True)
class Endpoint:
    """A named real-time service of one workspace.

    ``routes`` split live traffic between model versions by percentage (they
    sum to 100; the first route is the primary, the others canaries); requests
    with the same value of ``entity_key`` always go to the same route.
    ``shadow`` names a version that is scored and logged for every request but
    never returned. ``policy_version`` is the active
    :class:`PolicyVersion`. ``revision`` grows with every change, so that a
    serving process can tell that it must reload.
    """

    workspace: str
    name: str
    routes: tuple[Route, ...]
    policy_version: int = 1
    shadow: Route | None = None
    entity_key: str | None = None
    description: str = ""
    revision: int = 1
    created_by: str = "local"
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class PolicyVersion:
    """One immutable version of an endpoint's decision policy.

    ``spec`` is the JSON form read by :mod:`leptonic.serving.policy`;
    ``version`` is assigned by the store (1, 2, ...).
    """

    workspace: str
    endpoint: str
    version: int
    spec: dict[str, Any]
    reason: str = ""
    created_by: str = "local"
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Prediction:
    """One logged decision (or one shadow score).

    ``inputs`` are masked as the workspace's PII policy requires before they
    are logged. ``route`` is ``"live"`` for the answer returned and
    ``"shadow"`` for a shadow version's score of the same request.
    """

    workspace: str
    endpoint: str
    request_id: str
    model: str
    version: int
    score: float
    decision: str
    at: datetime
    route: str = "live"
    policy_version: int = 1
    entity: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0


@dataclass(frozen=True)
class Feedback:
    """An observed outcome for a logged decision (``label`` 1 = bad / positive)."""

    workspace: str
    endpoint: str
    request_id: str
    label: float
    at: datetime = field(default_factory=utcnow)
    entity: str | None = None


@dataclass(frozen=True)
class Alert:
    """A monitoring rule that fired.

    ``rule`` is e.g. ``psi`` or ``auc_drop``; ``subject`` the feature (or
    ``score``) it fired on; ``id`` is assigned by the store.
    """

    workspace: str
    endpoint: str
    rule: str
    subject: str
    value: float
    threshold: float
    message: str
    window_start: datetime
    window_end: datetime
    at: datetime = field(default_factory=utcnow)
    status: str = "open"
    details: dict[str, Any] = field(default_factory=dict)
    #: when a webhook took the alert; None: never delivered (see ``monitor``)
    delivered_at: datetime | None = None
    id: int | None = None
