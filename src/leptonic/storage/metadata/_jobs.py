"""Background jobs of the SQL metadata store.

A part of :class:`~leptonic.storage.metadata.sql.SQLMetadataStore`; the
semantics are those of :class:`~leptonic.storage.metadata.base.MetadataStore`.

:meth:`JobsMixin.claim_next_job` takes the oldest queued job with
``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that concurrent
workers pass over a job another one is taking instead of waiting for it; on
SQLite the write transaction (``BEGIN IMMEDIATE``) already holds the database
lock, and SQLAlchemy leaves the ``FOR UPDATE`` out. The same locks make
:meth:`JobsMixin.update_job_if` (check, then change) and
:meth:`JobsMixin.fail_stale_jobs` atomic with respect to each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from leptonic.core.job import Job, JobStatus
from leptonic.storage.metadata import _tables as t
from leptonic.storage.metadata._errors import job_exists, job_not_found
from leptonic.storage.metadata._records import job_column, json_value, to_job
from leptonic.storage.metadata._sqlbase import (
    SQLStoreBase,
    insert_row,
    require_workspace,
    row_exists,
)
from leptonic.storage.metadata.base import (
    ORPHANED_JOB_ERROR,
    check_job_changes,
    check_job_status,
    check_job_statuses,
    check_page,
    check_text,
    check_time,
    checked_record,
)

__all__ = ["JobsMixin"]

_j = t.jobs
#: Oldest first: the order in which queued jobs are handed out.
_OLDEST_FIRST = (_j.c.created_at, _j.c.id)


class JobsMixin(SQLStoreBase):
    """Jobs kept in the ``jobs`` table."""

    def create_job(self, job: Job) -> Job:
        job = checked_record(replace(job, status=check_job_status(job.status)))
        values = {
            "id": job.id,
            "workspace": job.workspace,
            "kind": job.kind,
            "payload": json_value(job.payload, "payload"),
            "status": job.status.value,
            "created_by": job.created_by,
            "run_id": job.run_id,
            "owner": job.owner,
            "progress": json_value(job.progress, "progress"),
            "result": json_value(job.result, "result"),
            "error": job.error,
            "cancel_requested": job.cancel_requested,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "heartbeat_at": job.heartbeat_at,
        }
        with self._write() as conn:
            require_workspace(conn, job.workspace)
            if row_exists(conn, _j, id=job.id):
                raise job_exists(job.id)
            insert_row(conn, _j, job_exists(job.id), **values)
        return job

    def get_job(self, workspace: str, job_id: str) -> Job:
        with self._read() as conn:
            require_workspace(conn, workspace)
            return to_job(_require_job(conn, workspace, job_id))

    def find_job_by_run(self, workspace: str, run_id: str) -> Job | None:
        j = t.jobs
        query = sa.select(j).where(j.c.workspace == workspace, j.c.run_id == run_id)
        query = query.order_by(*_OLDEST_FIRST).limit(1)  # the first, as the memory store
        with self._read() as conn:
            require_workspace(conn, workspace)
            row = conn.execute(query).first()
            return None if row is None else to_job(row)

    def list_jobs(
        self,
        workspace: str,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        check_page(limit, offset)
        query = sa.select(_j).where(_j.c.workspace == workspace)
        if status is not None:
            query = query.where(_j.c.status == check_job_status(status).value)
        query = query.order_by(_j.c.created_at.desc(), _j.c.id.desc()).limit(limit).offset(offset)
        with self._read() as conn:
            require_workspace(conn, workspace)
            return [to_job(row) for row in conn.execute(query)]

    def update_job(self, workspace: str, job_id: str, **changes: Any) -> Job:
        check_job_changes(changes)
        values = _values(changes)
        with self._write() as conn:
            require_workspace(conn, workspace)
            _require_job(conn, workspace, job_id)
            return _change(conn, workspace, job_id, values)

    def update_job_if(
        self,
        workspace: str,
        job_id: str,
        *,
        when_status: JobStatus | Iterable[JobStatus],
        when_owner: str | None = None,
        **changes: Any,
    ) -> Job | None:
        check_job_changes(changes)
        statuses = {s.value for s in check_job_statuses(when_status)}
        values = _values(changes)
        with self._write() as conn:
            require_workspace(conn, workspace)
            # The row lock (PostgreSQL) or the write lock (SQLite) holds until the change.
            row = _require_job(conn, workspace, job_id, lock=True)
            if row.status not in statuses or when_owner not in (None, row.owner):
                return None
            return _change(conn, workspace, job_id, values)

    def claim_next_job(self, owner: str, at: datetime) -> Job | None:
        check_text(owner, "owner")
        at = check_time(at, "at")
        next_queued = (
            sa.select(_j)
            .where(_j.c.status == JobStatus.QUEUED.value)
            .order_by(*_OLDEST_FIRST)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._write() as conn:
            while (row := conn.execute(next_queued).first()) is not None:
                if row.cancel_requested:
                    _set(conn, row.id, status=JobStatus.CANCELLED.value, finished_at=at)
                    continue
                _set(
                    conn,
                    row.id,
                    status=JobStatus.RUNNING.value,
                    owner=owner,
                    started_at=at,
                    heartbeat_at=at,
                )
                return to_job(_require_job(conn, row.workspace, row.id))
        return None

    def fail_stale_jobs(self, stale_before: datetime, at: datetime) -> list[Job]:
        stale_before = check_time(stale_before, "stale_before")
        at = check_time(at, "at")
        stale = (
            sa.select(_j.c.id)
            .where(
                _j.c.status == JobStatus.RUNNING.value,
                sa.or_(_j.c.heartbeat_at.is_(None), _j.c.heartbeat_at < stale_before),
            )
            .order_by(*_OLDEST_FIRST)
            .with_for_update()
        )
        with self._write() as conn:
            ids = list(conn.execute(stale).scalars())
            if not ids:
                return []
            conn.execute(
                sa.update(_j)
                .where(_j.c.id.in_(ids))
                .values(status=JobStatus.FAILED.value, error=ORPHANED_JOB_ERROR, finished_at=at)
            )
            rows = conn.execute(sa.select(_j).where(_j.c.id.in_(ids)).order_by(*_OLDEST_FIRST))
            return [to_job(r) for r in rows]


def _require_job(
    conn: sa.Connection, workspace: str, job_id: str, *, lock: bool = False
) -> Row[Any]:
    query = sa.select(_j).where(_j.c.workspace == workspace, _j.c.id == job_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise job_not_found(workspace, job_id)
    return row


def _values(changes: dict[str, Any]) -> dict[str, Any]:
    """The column values of checked job ``changes``."""
    return {name: job_column(name, value) for name, value in changes.items()}


def _change(conn: sa.Connection, workspace: str, job_id: str, values: dict[str, Any]) -> Job:
    """Write ``values`` to the (existing) job; return its new record."""
    if values:
        conn.execute(
            sa.update(_j).where(_j.c.workspace == workspace, _j.c.id == job_id).values(**values)
        )
    return to_job(_require_job(conn, workspace, job_id))


def _set(conn: sa.Connection, job_id: str, **values: Any) -> None:
    conn.execute(sa.update(_j).where(_j.c.id == job_id).values(**values))
