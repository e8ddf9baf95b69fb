"""Background jobs (training, scoring) run by the server's worker pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from leptonic.core._time import utcnow

__all__ = ["Job", "JobStatus"]


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class Job:
    """A unit of background work.

    ``owner`` is the id of the server process that runs it, which writes
    ``heartbeat_at`` regularly; a ``running`` job whose heartbeat has gone
    stale (its server died) is failed by any server's next sweep.
    ``payload`` holds the request (e.g. a training spec and dataset);
    ``progress`` is ``{"done": int, "total": int, "message": str}``.
    """

    id: str
    workspace: str
    kind: str
    payload: dict[str, Any]
    status: JobStatus = JobStatus.QUEUED
    created_by: str = "local"
    run_id: str | None = None
    owner: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cancel_requested: bool = False
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
