"""Runs: one training job each, with everything needed to reproduce it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from leptonic.core._time import utcnow

__all__ = ["Run", "RunStatus"]


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


@dataclass(frozen=True)
class Run:
    """A training job: spec, parameters, metrics, timings, artifacts and lineage.

    ``inputs`` holds the :class:`~leptonic.core.uri.ObjectRef` strings of the
    dataset versions the run read; ``artifacts`` maps a name (``report.html``,
    ``log.txt``...) to an artifact key.
    """

    id: str
    workspace: str
    status: RunStatus
    spec: dict[str, Any]
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    error: str | None = None
    created_by: str = "local"
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
