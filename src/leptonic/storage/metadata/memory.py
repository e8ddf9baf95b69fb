"""An in-memory metadata store, for fast tests. Same semantics as the SQL store."""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal, TypeVar

from leptonic.core._time import utcnow
from leptonic.core.access import ApiToken, Membership, User
from leptonic.core.audit import AuditEvent
from leptonic.core.dataset import Dataset, DatasetVersion
from leptonic.core.job import Job, JobStatus
from leptonic.core.model_version import Model, ModelVersion, Stage, StageTransition
from leptonic.core.names import validate_name
from leptonic.core.run import Run, RunStatus
from leptonic.core.uri import ObjectRef
from leptonic.core.workspace import Workspace
from leptonic.errors import AlreadyExists, NotFound
from leptonic.storage.metadata._errors import (
    job_exists,
    job_not_found,
    token_exists,
    token_hash_taken,
    token_not_found,
    user_exists,
    user_not_found,
)
from leptonic.storage.metadata._memory_endpoints import MemoryEndpointsMixin
from leptonic.storage.metadata._memory_events import MemoryEventsMixin
from leptonic.storage.metadata.base import (
    ORPHANED_JOB_ERROR,
    MetadataStore,
    check_create,
    check_job_changes,
    check_job_status,
    check_job_statuses,
    check_page,
    check_role,
    check_run_changes,
    check_run_status,
    check_run_statuses,
    check_same_workspace,
    check_stage,
    check_text,
    check_time,
    check_transition,
    check_version_task,
    check_whole,
    checked_record,
    ref_sort_key,
)
from leptonic.storage.metadata.endpoint_base import json_copy

__all__ = ["MemoryMetadataStore"]


R = TypeVar("R")


def _checked(record: R, *fields: str, ignore: Sequence[str] = ()) -> R:
    """``record`` as SQL would give it back: checked like every store checks it
    (:func:`~leptonic.storage.metadata.base.checked_record`), its times in UTC (a
    naive time is read as UTC), and its JSON ``fields`` replaced by what JSON gives
    back (tuples become lists, mappings dicts; a tuple field stays a tuple of those)
    after checking that they could go to SQL. Nothing is shared with the caller's
    objects."""
    record = checked_record(record, ignore=ignore)
    copies = {}
    for name in fields:
        value = getattr(record, name)
        if isinstance(value, tuple):
            copies[name] = tuple(json_copy(list(value), name))
        else:
            copies[name] = json_copy(value, name)
    return copy.deepcopy(replace(record, **copies) if copies else record)  # type: ignore[type-var]


class MemoryMetadataStore(MemoryEndpointsMixin, MemoryEventsMixin, MetadataStore):
    """Keeps everything in dictionaries guarded by one lock. ``memory://``.

    Endpoints and their prediction log, feedback and alerts are kept by
    :class:`~leptonic.storage.metadata._memory_endpoints.MemoryEndpointsMixin`.
    """

    def __init__(self) -> None:
        self.uri = "memory://"
        self._lock = threading.RLock()
        self._workspaces: dict[str, Workspace] = {}
        self._datasets: dict[tuple[str, str], Dataset] = {}
        self._dataset_versions: dict[tuple[str, str], list[DatasetVersion]] = {}
        self._runs: dict[tuple[str, str], Run] = {}
        self._models: dict[tuple[str, str], Model] = {}
        self._model_versions: dict[tuple[str, str], list[ModelVersion]] = {}
        self._transitions: list[StageTransition] = []
        self._edges: set[tuple[ObjectRef, ObjectRef]] = set()
        self._users: dict[str, User] = {}
        self._tokens: dict[str, ApiToken] = {}  # by id
        self._memberships: dict[tuple[str, str], Membership] = {}
        self._audit: list[AuditEvent] = []
        self._audit_ids = itertools.count(1)
        self._jobs: dict[str, Job] = {}  # by id (ids are unique across workspaces)
        self._init_endpoints()
        self._init_events()

    @classmethod
    def from_uri(cls, uri: str) -> MemoryMetadataStore:
        return cls()

    # -- workspaces ---------------------------------------------------------
    def create_workspace(self, workspace: Workspace) -> Workspace:
        workspace = _checked(workspace)
        with self._lock:
            if workspace.name in self._workspaces:
                raise AlreadyExists(
                    f"workspace {workspace.name!r} already exists; pick another name",
                    field="name",
                )
            self._workspaces[workspace.name] = workspace
            return copy.deepcopy(workspace)

    def get_workspace(self, name: str) -> Workspace:
        with self._lock:
            try:
                return self._workspaces[name]
            except KeyError:
                raise NotFound(
                    f"workspace {name!r} not found; create it with "
                    f"`leptonic workspace create {name}`",
                    field="workspace",
                ) from None

    def list_workspaces(self) -> list[Workspace]:
        with self._lock:
            return sorted(self._workspaces.values(), key=lambda w: w.name)

    # -- datasets -----------------------------------------------------------
    def create_dataset(self, dataset: Dataset) -> Dataset:
        dataset = _checked(dataset)
        with self._lock:
            self.get_workspace(dataset.workspace)
            key = (dataset.workspace, dataset.name)
            if key in self._datasets:
                raise AlreadyExists(
                    f"dataset {dataset.name!r} already exists in workspace {dataset.workspace!r}",
                    field="name",
                )
            self._datasets[key] = dataset
            self._dataset_versions[key] = []
            return copy.deepcopy(dataset)

    def get_dataset(self, workspace: str, name: str) -> Dataset:
        with self._lock:
            self.get_workspace(workspace)
            try:
                return self._datasets[(workspace, name)]
            except KeyError:
                raise NotFound(
                    f"dataset {name!r} not found in workspace {workspace!r}; "
                    f"add it with `leptonic data add FILE --name {name}`",
                    field="dataset",
                ) from None

    def list_datasets(self, workspace: str) -> list[Dataset]:
        with self._lock:
            self.get_workspace(workspace)
            return sorted(
                (d for (w, _), d in self._datasets.items() if w == workspace),
                key=lambda d: d.name,
            )

    def add_dataset_version(
        self, version: DatasetVersion, *, create: Dataset | None = None
    ) -> tuple[DatasetVersion, bool]:
        check_create(version, create)
        # checked before a dataset is created for it
        version = _checked(version, "quality", "source", ignore=("version",))
        with self._lock:
            if create is not None and (version.workspace, version.dataset) not in self._datasets:
                self.create_dataset(create)
            self.get_dataset(version.workspace, version.dataset)
            versions = self._dataset_versions[(version.workspace, version.dataset)]
            for existing in versions:
                if existing.content_hash == version.content_hash:
                    return copy.deepcopy(existing), False
            stored = _checked(replace(version, version=len(versions) + 1), "quality", "source")
            versions.append(stored)
            return copy.deepcopy(stored), True

    def get_dataset_version(
        self, workspace: str, dataset: str, version: int | None = None
    ) -> DatasetVersion:
        check_whole(version, "version", optional=True)
        with self._lock:
            self.get_dataset(workspace, dataset)
            versions = self._dataset_versions[(workspace, dataset)]
            if version is None and versions:
                return copy.deepcopy(versions[-1])
            for v in versions:
                if v.version == version:
                    return copy.deepcopy(v)
            raise NotFound(
                f"dataset {dataset!r} in workspace {workspace!r} has no "
                f"{'versions yet' if version is None else f'version {version}'}; "
                f"it has {len(versions)} version(s)",
                field="version",
            )

    def list_dataset_versions(self, workspace: str, dataset: str) -> list[DatasetVersion]:
        with self._lock:
            self.get_dataset(workspace, dataset)
            return copy.deepcopy(self._dataset_versions[(workspace, dataset)])

    # -- runs ---------------------------------------------------------------
    def create_run(self, run: Run) -> Run:
        stored = _checked(
            replace(run, status=check_run_status(run.status)),
            "spec",
            "params",
            "metrics",
            "timings",
            "artifacts",
            "inputs",
        )
        with self._lock:
            self.get_workspace(run.workspace)
            if any(rid == run.id for (_, rid) in self._runs):
                raise AlreadyExists(f"run {run.id!r} already exists", field="id")
            self._runs[(run.workspace, run.id)] = stored
            return copy.deepcopy(stored)

    def get_run(self, workspace: str, run_id: str) -> Run:
        with self._lock:
            self.get_workspace(workspace)
            try:
                return copy.deepcopy(self._runs[(workspace, run_id)])
            except KeyError:
                raise NotFound(
                    f"run {run_id!r} not found in workspace {workspace!r}; "
                    f"list runs with `leptonic runs list --workspace {workspace}`",
                    field="run",
                ) from None

    def find_run_ids(self, workspace: str, prefix: str, *, limit: int = 2) -> list[str]:
        check_page(limit, 0)
        check_text(prefix, "prefix")
        with self._lock:
            self.get_workspace(workspace)
            ids = sorted(
                rid for (w, rid) in self._runs if w == workspace and rid.startswith(prefix)
            )
            return ids[:limit]

    def list_runs(
        self,
        workspace: str,
        *,
        status: RunStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        check_page(limit, offset)
        with self._lock:
            self.get_workspace(workspace)
            runs = [
                r
                for (w, _), r in self._runs.items()
                if w == workspace and (status is None or r.status == status)
            ]
            runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
            return copy.deepcopy(runs[offset : offset + limit])

    def update_run(self, workspace: str, run_id: str, **changes: Any) -> Run:
        check_run_changes(changes)
        with self._lock:
            run = self.get_run(workspace, run_id)
            updated = _checked(replace(run, **changes), "params", "metrics", "timings", "artifacts")
            self._runs[(workspace, run_id)] = updated
            return copy.deepcopy(updated)

    def update_run_if(
        self,
        workspace: str,
        run_id: str,
        *,
        when_status: RunStatus | Iterable[RunStatus],
        **changes: Any,
    ) -> Run | None:
        check_run_changes(changes)
        statuses = check_run_statuses(when_status)
        with self._lock:
            if self.get_run(workspace, run_id).status not in statuses:
                return None
            return self.update_run(workspace, run_id, **changes)

    # -- models -------------------------------------------------------------
    def create_model(self, model: Model) -> Model:
        model = _checked(model)
        with self._lock:
            self.get_workspace(model.workspace)
            key = (model.workspace, model.name)
            if key in self._models:
                raise AlreadyExists(
                    f"model {model.name!r} already exists in workspace {model.workspace!r}",
                    field="name",
                )
            self._models[key] = model
            self._model_versions[key] = []
            return copy.deepcopy(model)

    def get_model(self, workspace: str, name: str) -> Model:
        with self._lock:
            self.get_workspace(workspace)
            try:
                return self._models[(workspace, name)]
            except KeyError:
                raise NotFound(
                    f"model {name!r} not found in workspace {workspace!r}; "
                    f"list models with `leptonic models list --workspace {workspace}`",
                    field="model",
                ) from None

    def list_models(self, workspace: str) -> list[Model]:
        with self._lock:
            self.get_workspace(workspace)
            return sorted(
                (m for (w, _), m in self._models.items() if w == workspace),
                key=lambda m: m.name,
            )

    def add_model_version(
        self,
        version: ModelVersion,
        *,
        lineage_from: Sequence[ObjectRef] = (),
        create: Model | None = None,
    ) -> ModelVersion:
        check_create(version, create)
        target = ObjectRef(version.workspace, "model", version.model)
        for source in lineage_from:
            check_same_workspace(source, target)
        # checked before a model is created for it
        version = _checked(version, "signature", "metrics", ignore=("version", "stage"))
        with self._lock:
            if create is not None and (version.workspace, version.model) not in self._models:
                # a version of another task creates no (empty) model
                check_version_task(version.model, create.task, version)
                self.create_model(create)
            model = self.get_model(version.workspace, version.model)
            check_version_task(version.model, model.task, version)
            versions = self._model_versions[(version.workspace, version.model)]
            stored = _checked(
                replace(version, version=len(versions) + 1, stage=Stage.CANDIDATE),
                "signature",
                "metrics",
            )
            versions.append(stored)
            self._transitions.append(
                StageTransition(
                    workspace=stored.workspace,
                    model=stored.model,
                    version=stored.version,
                    from_stage=None,
                    to_stage=Stage.CANDIDATE,
                    actor=stored.created_by,
                    reason="registered",
                    at=stored.created_at,
                )
            )
            for source in lineage_from:
                self._edges.add((source, replace(target, version=stored.version)))
            return copy.deepcopy(stored)

    def get_model_version(self, workspace: str, model: str, version: int) -> ModelVersion:
        check_whole(version, "version")
        with self._lock:
            self.get_model(workspace, model)
            for v in self._model_versions[(workspace, model)]:
                if v.version == version:
                    return copy.deepcopy(v)
            raise NotFound(
                f"model {model!r} in workspace {workspace!r} has no version {version}",
                field="version",
            )

    def list_model_versions(
        self,
        workspace: str,
        model: str,
        *,
        stage: Stage | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModelVersion]:
        check_page(1 if limit is None else limit, offset)
        with self._lock:
            self.get_model(workspace, model)
            versions = [
                v
                for v in self._model_versions[(workspace, model)]
                if stage is None or v.stage == stage
            ]
            end = None if limit is None else offset + limit
            return copy.deepcopy(versions[offset:end])

    def set_stage(
        self,
        workspace: str,
        model: str,
        version: int,
        stage: Stage,
        *,
        actor: str,
        reason: str,
        at: datetime | None = None,
    ) -> ModelVersion:
        stage = check_stage(stage)
        check_whole(version, "version")
        check_text(actor, "actor")
        check_text(reason, "reason")
        at = check_time(at, "at", optional=True) or utcnow()
        with self._lock:
            mv = self.get_model_version(workspace, model, version)
            check_transition(mv, stage)
            versions = self._model_versions[(workspace, model)]
            if stage == Stage.PRODUCTION:
                for i, other in enumerate(versions):
                    if other.stage == Stage.PRODUCTION and other.version != version:
                        versions[i] = replace(other, stage=Stage.ARCHIVED)
                        self._transitions.append(
                            StageTransition(
                                workspace,
                                model,
                                other.version,
                                Stage.PRODUCTION,
                                Stage.ARCHIVED,
                                actor,
                                f"replaced by v{version} in production",
                                at,
                            )
                        )
            updated = replace(mv, stage=stage)
            versions[versions.index(mv)] = updated
            self._transitions.append(
                StageTransition(workspace, model, version, mv.stage, stage, actor, reason, at)
            )
            return copy.deepcopy(updated)

    def list_stage_transitions(
        self, workspace: str, model: str, version: int | None = None
    ) -> list[StageTransition]:
        check_whole(version, "version", optional=True)
        with self._lock:
            self.get_model(workspace, model)
            return [
                t
                for t in self._transitions
                if t.workspace == workspace
                and t.model == model
                and (version is None or t.version == version)
            ]

    # -- lineage ------------------------------------------------------------
    def add_lineage(self, source: ObjectRef, target: ObjectRef) -> None:
        check_same_workspace(source, target)
        with self._lock:
            self._edges.add((source, target))

    def lineage(
        self, ref: ObjectRef, direction: Literal["upstream", "downstream"] = "downstream"
    ) -> list[ObjectRef]:
        with self._lock:
            if direction == "downstream":
                return sorted((t for s, t in self._edges if s == ref), key=ref_sort_key)
            return sorted((s for s, t in self._edges if t == ref), key=ref_sort_key)

    # -- users, tokens and roles ------------------------------------------------
    def create_user(self, user: User) -> User:
        validate_name(user.name, "user")
        user = _checked(user)
        with self._lock:
            if user.name in self._users:
                raise user_exists(user.name)
            self._users[user.name] = user
            return copy.deepcopy(user)

    def get_user(self, name: str) -> User:
        with self._lock:
            try:
                return self._users[name]
            except KeyError:
                raise user_not_found(name) from None

    def list_users(self) -> list[User]:
        with self._lock:
            return sorted(self._users.values(), key=lambda u: u.name)

    def create_token(self, token: ApiToken) -> ApiToken:
        token = _checked(token)
        with self._lock:
            self.get_user(token.user)
            if token.id in self._tokens:
                raise token_exists(token.id)
            if any(tk.token_hash == token.token_hash for tk in self._tokens.values()):
                raise token_hash_taken()
            self._tokens[token.id] = token
            return copy.deepcopy(token)

    def get_token_by_hash(self, token_hash: str) -> ApiToken:
        with self._lock:
            for token in self._tokens.values():
                if token.token_hash == token_hash:
                    return token
            raise token_not_found()

    def list_tokens(self, user: str) -> list[ApiToken]:
        with self._lock:
            self.get_user(user)
            tokens = [tk for tk in self._tokens.values() if tk.user == user]
            return sorted(tokens, key=lambda tk: (tk.created_at, tk.id))

    def revoke_token(self, token_id: str, at: datetime) -> ApiToken:
        at = check_time(at, "at")
        with self._lock:
            try:
                token = self._tokens[token_id]
            except KeyError:
                raise token_not_found(token_id) from None
            if token.revoked_at is None:
                token = self._tokens[token_id] = replace(token, revoked_at=at)
            return token

    def set_membership(self, membership: Membership) -> Membership:
        membership = _checked(replace(membership, role=check_role(membership.role)))
        with self._lock:
            self.get_workspace(membership.workspace)
            self.get_user(membership.user)
            self._memberships[(membership.workspace, membership.user)] = membership
            return copy.deepcopy(membership)

    def get_membership(self, workspace: str, user: str) -> Membership | None:
        with self._lock:
            return self._memberships.get((workspace, user))

    def list_memberships(
        self, *, workspace: str | None = None, user: str | None = None
    ) -> list[Membership]:
        with self._lock:
            return [
                m
                for (w, u), m in sorted(self._memberships.items())
                if (workspace is None or w == workspace) and (user is None or u == user)
            ]

    def remove_membership(self, workspace: str, user: str) -> None:
        with self._lock:
            self._memberships.pop((workspace, user), None)

    # -- audit log ------------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> AuditEvent:
        checked = _checked(
            replace(event, objects=tuple(event.objects)), "objects", "details", ignore=("id",)
        )
        with self._lock:
            stored = replace(checked, id=next(self._audit_ids))
            self._audit.append(stored)
            return copy.deepcopy(stored)

    def list_audit(
        self,
        *,
        workspace: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AuditEvent]:
        check_page(limit, offset)
        with self._lock:
            events = [
                e
                for e in reversed(self._audit)
                if (workspace is None or e.workspace == workspace)
                and (actor is None or e.actor == actor)
                and (action is None or e.action == action)
            ]
            return copy.deepcopy(events[offset : offset + limit])

    # -- background jobs --------------------------------------------------------
    def create_job(self, job: Job) -> Job:
        job = _checked(
            replace(job, status=check_job_status(job.status)), "payload", "progress", "result"
        )
        with self._lock:
            self.get_workspace(job.workspace)
            if job.id in self._jobs:
                raise job_exists(job.id)
            self._jobs[job.id] = job
            return copy.deepcopy(job)

    def get_job(self, workspace: str, job_id: str) -> Job:
        with self._lock:
            return copy.deepcopy(self._job(workspace, job_id))

    def find_job_by_run(self, workspace: str, run_id: str) -> Job | None:
        with self._lock:
            self.get_workspace(workspace)
            found = [
                j for j in self._jobs.values() if j.workspace == workspace and j.run_id == run_id
            ]
            first = min(found, key=lambda j: (j.created_at, j.id), default=None)
            return copy.deepcopy(first)

    def list_jobs(
        self,
        workspace: str,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        check_page(limit, offset)
        if status is not None:
            status = check_job_status(status)
        with self._lock:
            self.get_workspace(workspace)
            jobs = [
                j
                for j in self._jobs.values()
                if j.workspace == workspace and (status is None or j.status == status)
            ]
            jobs.sort(key=lambda j: (j.created_at, j.id), reverse=True)
            return copy.deepcopy(jobs[offset : offset + limit])

    def update_job(self, workspace: str, job_id: str, **changes: Any) -> Job:
        check_job_changes(changes)
        with self._lock:
            return self._change_job(self._job(workspace, job_id), changes)

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
        statuses = check_job_statuses(when_status)
        with self._lock:
            job = self._job(workspace, job_id)
            if job.status not in statuses or when_owner not in (None, job.owner):
                return None
            return self._change_job(job, changes)

    def _change_job(self, job: Job, changes: dict[str, Any]) -> Job:
        """Store ``job`` with ``changes`` (checked, lock held); return a copy."""
        updated = _checked(replace(job, **changes), "progress", "result")
        self._jobs[job.id] = updated
        return copy.deepcopy(updated)

    def claim_next_job(self, owner: str, at: datetime) -> Job | None:
        check_text(owner, "owner")
        at = check_time(at, "at")
        with self._lock:
            queued = [j for j in self._jobs.values() if j.status == JobStatus.QUEUED]
            for job in sorted(queued, key=lambda j: (j.created_at, j.id)):
                if job.cancel_requested:
                    self._jobs[job.id] = replace(job, status=JobStatus.CANCELLED, finished_at=at)
                    continue
                claimed = replace(
                    job, status=JobStatus.RUNNING, owner=owner, started_at=at, heartbeat_at=at
                )
                self._jobs[job.id] = claimed
                return copy.deepcopy(claimed)
            return None

    def fail_stale_jobs(self, stale_before: datetime, at: datetime) -> list[Job]:
        stale_before = check_time(stale_before, "stale_before")
        at = check_time(at, "at")
        with self._lock:
            stale = [
                j
                for j in self._jobs.values()
                if j.status == JobStatus.RUNNING
                and (j.heartbeat_at is None or j.heartbeat_at < stale_before)
            ]
            failed = []
            for job in sorted(stale, key=lambda j: (j.created_at, j.id)):
                updated = replace(
                    job, status=JobStatus.FAILED, error=ORPHANED_JOB_ERROR, finished_at=at
                )
                self._jobs[job.id] = updated
                failed.append(updated)
            return copy.deepcopy(failed)

    def _job(self, workspace: str, job_id: str) -> Job:
        """The stored job (not a copy); NotFound for another workspace's job."""
        self.get_workspace(workspace)
        job = self._jobs.get(job_id)
        if job is None or job.workspace != workspace:
            raise job_not_found(workspace, job_id)
        return job
