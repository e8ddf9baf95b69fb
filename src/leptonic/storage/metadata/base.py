"""The metadata store interface.

Every method takes the workspace explicitly; an object in another workspace
is simply not found. Methods that change several rows do so atomically.
Version numbers of dataset and model versions are assigned by the store.

Every backend checks what it is given alike, before it keeps anything: records
with :func:`checked_record`, changes and arguments with :func:`check_text`,
:func:`check_time` and :func:`check_whole` (from ``_fields``), so text with NUL,
None in a required field or a value of the wrong type is the same
:class:`~leptonic.errors.InvalidInput` naming the field on each; times come back
in UTC and JSON values as JSON gives them back (lists, not tuples).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from leptonic.core.access import ApiToken, Membership, Role, User
from leptonic.core.audit import AuditEvent
from leptonic.core.dataset import Dataset, DatasetVersion
from leptonic.core.job import Job, JobStatus
from leptonic.core.model_version import (
    ALLOWED_TRANSITIONS,
    Model,
    ModelVersion,
    Stage,
    StageTransition,
)
from leptonic.core.run import Run, RunStatus
from leptonic.core.uri import ObjectRef
from leptonic.core.workspace import Workspace
from leptonic.errors import Conflict, InvalidInput
from leptonic.storage.metadata._fields import (
    check_text,
    check_time,
    check_whole,
    checked_record,
    safe_text,
)
from leptonic.storage.metadata.endpoint_base import EndpointStore
from leptonic.storage.metadata.event_base import EventStore

__all__ = [
    "JOB_MUTABLE_FIELDS",
    "ORPHANED_JOB_ERROR",
    "RUN_MUTABLE_FIELDS",
    "MetadataStore",
    "check_job_changes",
    "check_job_status",
    "check_job_statuses",
    "check_page",
    "check_role",
    "check_run_status",
    "check_run_statuses",
    "check_stage",
    "check_text",
    "check_time",
    "check_transition",
    "check_whole",
    "checked_record",
    "json_value",
    "ref_sort_key",
    "safe_text",
]

#: Fields of a :class:`Run` that :meth:`MetadataStore.update_run` may change.
RUN_MUTABLE_FIELDS = frozenset(
    {"status", "params", "metrics", "timings", "artifacts", "error", "started_at", "finished_at"}
)

#: Fields of a :class:`Job` that :meth:`MetadataStore.update_job` may change.
JOB_MUTABLE_FIELDS = frozenset(
    {
        "status",
        "run_id",
        "owner",
        "progress",
        "result",
        "error",
        "cancel_requested",
        "started_at",
        "finished_at",
        "heartbeat_at",
    }
)

#: Error recorded on running jobs whose heartbeat stopped (their server crashed or hung).
ORPHANED_JOB_ERROR = (
    "interrupted: the server running this job stopped sending heartbeats (it stopped, hung "
    "or lost the database); start it again"
)


def json_value(value: Any, field: str) -> Any:
    """Return ``value`` if it can be stored as JSON and read back equal, else raise."""
    _check_json(value, field, field)
    return value


def _check_json(value: Any, field: str, where: str) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(
                f"{where} is {value!r}, which cannot be stored as JSON; "
                "store None (or leave the entry out) instead",
                field=field,
            )
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(
                    f"{where} has the key {key!r} of type {type(key).__name__}; "
                    "keys must be strings (convert them with str())",
                    field=field,
                )
            _check_json(item, field, f"{where}[{key!r}]")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, field, f"{where}[{i}]")
        return
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise InvalidInput(
        f"{where} holds a {type(value).__name__} ({shown}), which cannot be stored as JSON; "
        "use str, int, float, bool, None, list or dict (for numpy numbers call .item())",
        field=field,
    )


def check_transition(mv: ModelVersion, to_stage: Stage) -> None:
    """Raise :class:`Conflict` unless ``mv`` may move to ``to_stage``."""
    allowed = ALLOWED_TRANSITIONS[mv.stage]
    if to_stage not in allowed:
        raise Conflict(
            f"model {mv.model!r} v{mv.version} is in stage {mv.stage.value!r} and cannot move "
            f"to {to_stage.value!r}; allowed: {', '.join(sorted(s.value for s in allowed))}",
            field="stage",
        )


def check_stage(stage: str) -> Stage:
    """``stage`` as a :class:`Stage`, or :class:`InvalidInput` naming the stages."""
    try:
        return Stage(stage)
    except ValueError:
        raise InvalidInput(
            f"unknown stage {stage!r}; stages are: {', '.join(s.value for s in Stage)}",
            field="stage",
        ) from None


def check_run_status(status: str) -> RunStatus:
    """``status`` as a :class:`RunStatus`, or :class:`InvalidInput` naming the statuses."""
    try:
        return RunStatus(status)
    except ValueError:
        raise InvalidInput(
            f"unknown run status {status!r}; statuses are: {', '.join(s.value for s in RunStatus)}",
            field="status",
        ) from None


def check_job_status(status: str) -> JobStatus:
    """``status`` as a :class:`JobStatus`, or :class:`InvalidInput` naming the statuses."""
    try:
        return JobStatus(status)
    except ValueError:
        raise InvalidInput(
            f"unknown job status {status!r}; statuses are: {', '.join(s.value for s in JobStatus)}",
            field="status",
        ) from None


S = TypeVar("S", RunStatus, JobStatus)


def _statuses(
    statuses: str | Iterable[str], check: Callable[[str], S], kind: str, example: str
) -> frozenset[S]:
    """The statuses of a ``when_status`` condition (one or several), each read by ``check``;
    :class:`InvalidInput` naming ``when_status``."""
    given = (statuses,) if isinstance(statuses, str) else tuple(statuses)
    if not given:
        raise InvalidInput(
            f"when_status must name at least one {kind} status, e.g. ({example},)",
            field="when_status",
        )
    try:
        return frozenset(check(s) for s in given)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="when_status") from None


def check_run_statuses(statuses: str | Iterable[str]) -> frozenset[RunStatus]:
    """The statuses of an ``update_run_if`` condition (one or several), or :class:`InvalidInput`."""
    return _statuses(statuses, check_run_status, "run", "RunStatus.RUNNING")


def check_job_statuses(statuses: str | Iterable[str]) -> frozenset[JobStatus]:
    """The statuses of an ``update_job_if`` condition (one or several), or :class:`InvalidInput`."""
    return _statuses(statuses, check_job_status, "job", "JobStatus.RUNNING")


def check_role(role: str) -> Role:
    """``role`` as a :class:`Role`, or :class:`InvalidInput` naming the roles."""
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role {role!r}; roles are: {', '.join(r.value for r in Role)}",
            field="role",
        ) from None


def check_page(limit: int, offset: int) -> None:
    """Raise :class:`InvalidInput` unless ``limit`` and ``offset`` are non-negative."""
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name} must be a whole number >= 0, got {value!r}", field=name)


def ref_sort_key(ref: ObjectRef) -> tuple[str, str, str, int]:
    """Sort key for refs: like their natural order, with unversioned refs first."""
    return (ref.workspace, ref.kind, ref.name, -1 if ref.version is None else ref.version)


def check_run_changes(changes: dict[str, Any]) -> None:
    """Check the changes of an ``update_run`` call in place: ``status`` becomes a
    RunStatus and times become UTC. Raises :class:`InvalidInput` naming the first
    field that may not change or holds a bad value (text with NUL, say)."""
    bad = sorted(set(changes) - RUN_MUTABLE_FIELDS)
    if bad:
        raise InvalidInput(
            f"run field(s) {', '.join(bad)} cannot be changed; "
            f"changeable: {', '.join(sorted(RUN_MUTABLE_FIELDS))}",
            field=bad[0],
        )
    if "status" in changes:
        changes["status"] = check_run_status(changes["status"])
    for name in ("started_at", "finished_at"):
        if name in changes:
            changes[name] = check_time(changes[name], name, optional=True, name=f"run field {name}")
    if "error" in changes:
        check_text(changes["error"], "error", optional=True, name="run field error")
    for name in ("params", "metrics", "timings", "artifacts"):
        if name in changes and changes[name] is None:
            raise InvalidInput(f"run field {name} must be a dict, got None", field=name)


#: What each job field other than ``status`` must hold, as (types, description).
_JOB_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "run_id": ((str, type(None)), "a str or None"),
    "owner": ((str, type(None)), "a str or None"),
    "error": ((str, type(None)), "a str or None"),
    "progress": ((dict,), "a dict"),
    "result": ((dict,), "a dict"),
    "cancel_requested": ((bool,), "True or False"),
    "started_at": ((datetime, type(None)), "a datetime or None"),
    "finished_at": ((datetime, type(None)), "a datetime or None"),
    "heartbeat_at": ((datetime, type(None)), "a datetime or None"),
}


def check_job_changes(changes: dict[str, Any]) -> None:
    """Check the changes of an ``update_job`` call in place (``status`` becomes a
    JobStatus, times become UTC).

    Raises :class:`InvalidInput` naming the first field that may not change or
    holds a value of the wrong type (or text with NUL).
    """
    bad = sorted(set(changes) - JOB_MUTABLE_FIELDS)
    if bad:
        raise InvalidInput(
            f"job field(s) {', '.join(bad)} cannot be changed; "
            f"changeable: {', '.join(sorted(JOB_MUTABLE_FIELDS))}",
            field=bad[0],
        )
    for name, value in changes.items():
        if name == "status":
            continue
        types, expected = _JOB_FIELD_TYPES[name]
        if not isinstance(value, types):
            raise InvalidInput(
                f"job field {name} must be {expected}, got {type(value).__name__}", field=name
            )
        if isinstance(value, str):
            check_text(value, name, name=f"job field {name}")
        elif isinstance(value, datetime):
            changes[name] = check_time(value, name, name=f"job field {name}")
    if "status" in changes:
        changes["status"] = check_job_status(changes["status"])


class MetadataStore(EndpointStore, EventStore):
    """Abstract metadata store. Implementations: SQL (SQLite, PostgreSQL) and memory."""

    uri: str

    @classmethod
    @abc.abstractmethod
    def from_uri(cls, uri: str) -> MetadataStore:
        """Open (and create or migrate, for embedded stores) the store at ``uri``."""

    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workspaces ---------------------------------------------------------
    @abc.abstractmethod
    def create_workspace(self, workspace: Workspace) -> Workspace:
        """Store a new workspace; :class:`AlreadyExists` if the name is taken."""

    @abc.abstractmethod
    def get_workspace(self, name: str) -> Workspace:
        """The workspace called ``name``; :class:`NotFound` if there is none."""

    @abc.abstractmethod
    def list_workspaces(self) -> list[Workspace]:
        """All workspaces, by name."""

    # -- datasets -----------------------------------------------------------
    @abc.abstractmethod
    def create_dataset(self, dataset: Dataset) -> Dataset:
        """Store a new dataset in an existing workspace."""

    @abc.abstractmethod
    def get_dataset(self, workspace: str, name: str) -> Dataset: ...

    @abc.abstractmethod
    def list_datasets(self, workspace: str) -> list[Dataset]:
        """The workspace's datasets, by name."""

    @abc.abstractmethod
    def add_dataset_version(
        self, version: DatasetVersion, *, create: Dataset | None = None
    ) -> tuple[DatasetVersion, bool]:
        """Store a version of a dataset, atomically.

        The store assigns the next version number (``version.version`` is
        ignored). If the dataset already has a version with the same
        ``content_hash``, that version is returned instead and nothing is
        written. When the dataset does not exist, ``create`` (a record with
        the same workspace and name) is stored in the same transaction;
        without it :class:`NotFound` is raised. Returns ``(version, created)``.
        """

    @abc.abstractmethod
    def get_dataset_version(
        self, workspace: str, dataset: str, version: int | None = None
    ) -> DatasetVersion:
        """One version (the latest when ``version`` is None)."""

    @abc.abstractmethod
    def list_dataset_versions(self, workspace: str, dataset: str) -> list[DatasetVersion]:
        """The dataset's versions, oldest first."""

    # -- runs ---------------------------------------------------------------
    @abc.abstractmethod
    def create_run(self, run: Run) -> Run:
        """Store a new run (its id is chosen by the caller and must be new)."""

    @abc.abstractmethod
    def get_run(self, workspace: str, run_id: str) -> Run: ...

    @abc.abstractmethod
    def find_run_ids(self, workspace: str, prefix: str, *, limit: int = 2) -> list[str]:
        """Ids of the workspace's runs that start with ``prefix`` (at most ``limit``), sorted."""

    @abc.abstractmethod
    def list_runs(
        self,
        workspace: str,
        *,
        status: RunStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        """Runs, newest first, optionally of one status."""

    @abc.abstractmethod
    def update_run(self, workspace: str, run_id: str, **changes: Any) -> Run:
        """Change the fields named in :data:`RUN_MUTABLE_FIELDS`; return the new record."""

    @abc.abstractmethod
    def update_run_if(
        self,
        workspace: str,
        run_id: str,
        *,
        when_status: RunStatus | Iterable[RunStatus],
        **changes: Any,
    ) -> Run | None:
        """:meth:`update_run`, but only while the run is in one of the ``when_status``
        statuses.

        The check and the change are one atomic step, so a worker finishing a
        run and a sweep failing it as orphaned never both win. Returns the new
        record, or None when the run is in another state (nothing changes). An
        unknown run is :class:`NotFound`; bad changes, or no or unknown
        ``when_status``, are :class:`InvalidInput`.
        """

    # -- models -------------------------------------------------------------
    @abc.abstractmethod
    def create_model(self, model: Model) -> Model: ...

    @abc.abstractmethod
    def get_model(self, workspace: str, name: str) -> Model: ...

    @abc.abstractmethod
    def list_models(self, workspace: str) -> list[Model]: ...

    @abc.abstractmethod
    def add_model_version(
        self,
        version: ModelVersion,
        *,
        lineage_from: Sequence[ObjectRef] = (),
        create: Model | None = None,
    ) -> ModelVersion:
        """Store a version of a model, atomically, with its first stage transition.

        The store assigns the next version number; the version starts in stage
        ``candidate`` with a transition ``None → candidate`` by its creator.
        A lineage edge from each ref in ``lineage_from`` (same workspace) to the
        new version is written in the same transaction. With ``create``, the
        model is created first when it does not exist, in the same transaction:
        a version that fails leaves no empty model behind.
        """

    @abc.abstractmethod
    def get_model_version(self, workspace: str, model: str, version: int) -> ModelVersion: ...

    @abc.abstractmethod
    def list_model_versions(
        self,
        workspace: str,
        model: str,
        *,
        stage: Stage | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModelVersion]:
        """The model's versions, oldest first, optionally of one stage; ``limit`` None: all."""

    @abc.abstractmethod
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
        """Move a version to ``stage``, atomically, recording who and why.

        Raises :class:`Conflict` for a transition not in
        :data:`~leptonic.core.model_version.ALLOWED_TRANSITIONS`. Moving a version
        to ``production`` archives the model's current production version(s) in
        the same transaction, each with its own recorded transition.
        """

    @abc.abstractmethod
    def list_stage_transitions(
        self, workspace: str, model: str, version: int | None = None
    ) -> list[StageTransition]:
        """Transitions, oldest first, of one version or of all the model's versions."""

    # -- lineage ------------------------------------------------------------
    @abc.abstractmethod
    def add_lineage(self, source: ObjectRef, target: ObjectRef) -> None:
        """Record that ``target`` was made from ``source`` (idempotent).

        Both must be in the same workspace.
        """

    @abc.abstractmethod
    def lineage(
        self, ref: ObjectRef, direction: Literal["upstream", "downstream"] = "downstream"
    ) -> list[ObjectRef]:
        """Direct neighbours of ``ref``: what it was made from, or what was made from it."""

    # -- users, tokens and roles ------------------------------------------------
    @abc.abstractmethod
    def create_user(self, user: User) -> User:
        """Store a new user (name validated like other names); AlreadyExists if taken."""

    @abc.abstractmethod
    def get_user(self, name: str) -> User:
        """The user called ``name``; :class:`NotFound` if there is none."""

    @abc.abstractmethod
    def list_users(self) -> list[User]:
        """All users, by name."""

    @abc.abstractmethod
    def create_token(self, token: ApiToken) -> ApiToken:
        """Store a token of an existing user.

        :class:`NotFound` if the user does not exist; :class:`AlreadyExists` if
        the ``id`` or the ``token_hash`` is taken.
        """

    @abc.abstractmethod
    def get_token_by_hash(self, token_hash: str) -> ApiToken:
        """The token with this SHA-256 hex digest (active or not); NotFound otherwise.

        The error message never repeats the hash.
        """

    @abc.abstractmethod
    def list_tokens(self, user: str) -> list[ApiToken]:
        """A user's tokens, oldest first; :class:`NotFound` for an unknown user."""

    @abc.abstractmethod
    def revoke_token(self, token_id: str, at: datetime) -> ApiToken:
        """Mark a token revoked (idempotent: a revoked token keeps its first time).

        :class:`NotFound` for an unknown ``token_id``. Returns the token.
        """

    @abc.abstractmethod
    def set_membership(self, membership: Membership) -> Membership:
        """Give a user a role in a workspace, replacing any role they had there.

        Both must exist (:class:`NotFound`); an unknown role is
        :class:`InvalidInput`. The membership is stored as given.
        """

    @abc.abstractmethod
    def get_membership(self, workspace: str, user: str) -> Membership | None:
        """The user's role in the workspace, or None when they have none.

        Also None when the workspace or the user does not exist.
        """

    @abc.abstractmethod
    def list_memberships(
        self, *, workspace: str | None = None, user: str | None = None
    ) -> list[Membership]:
        """Memberships, filtered by workspace and/or user, by (workspace, user)."""

    @abc.abstractmethod
    def remove_membership(self, workspace: str, user: str) -> None:
        """Take a user's role in a workspace away (absent: nothing happens)."""

    # -- audit log ------------------------------------------------------------
    @abc.abstractmethod
    def append_audit(self, event: AuditEvent) -> AuditEvent:
        """Append an event; the store assigns an increasing ``id``. Events never change."""

    @abc.abstractmethod
    def list_audit(
        self,
        *,
        workspace: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AuditEvent]:
        """Events, newest first (by id), optionally filtered.

        ``workspace=None`` means events of every workspace (and of none).
        """

    # -- background jobs --------------------------------------------------------
    @abc.abstractmethod
    def create_job(self, job: Job) -> Job:
        """Store a new job (id chosen by the caller, must be new) in an existing workspace."""

    @abc.abstractmethod
    def get_job(self, workspace: str, job_id: str) -> Job:
        """One job; :class:`NotFound` for an unknown workspace or a job of another."""

    @abc.abstractmethod
    def find_job_by_run(self, workspace: str, run_id: str) -> Job | None:
        """The job whose ``run_id`` is ``run_id`` (exactly), or None."""

    @abc.abstractmethod
    def list_jobs(
        self,
        workspace: str,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs of a workspace, newest first (by ``created_at``, then ``id``)."""

    @abc.abstractmethod
    def update_job(self, workspace: str, job_id: str, **changes: Any) -> Job:
        """Change the fields in :data:`JOB_MUTABLE_FIELDS`; return the new record.

        Any other field, a value of the wrong type or an unknown status is
        :class:`InvalidInput` naming the field, and nothing changes.
        """

    @abc.abstractmethod
    def update_job_if(
        self,
        workspace: str,
        job_id: str,
        *,
        when_status: JobStatus | Iterable[JobStatus],
        when_owner: str | None = None,
        **changes: Any,
    ) -> Job | None:
        """:meth:`update_job`, but only while the job is in one of the ``when_status``
        statuses and, when ``when_owner`` is given, owned by ``when_owner``.

        The check and the change are one atomic step, so two callers racing
        (a worker finishing a job, a sweep failing it, a cancel) never both
        win. Returns the new record, or None when the job is in another state
        (nothing changes). An unknown job is :class:`NotFound`; bad changes,
        or no or unknown ``when_status``, are :class:`InvalidInput`.
        """

    @abc.abstractmethod
    def claim_next_job(self, owner: str, at: datetime) -> Job | None:
        """Atomically take the oldest queued job of any workspace.

        It becomes ``running`` with ``owner``, ``started_at`` and
        ``heartbeat_at`` set to ``at``. Two concurrent callers never get the
        same job. Returns None when nothing is queued. A queued job whose
        ``cancel_requested`` is set is not handed out: it becomes
        ``cancelled`` (``finished_at=at``) and the next one is taken.
        """

    @abc.abstractmethod
    def fail_stale_jobs(self, stale_before: datetime, at: datetime) -> list[Job]:
        """Fail every ``running`` job whose ``heartbeat_at`` is before ``stale_before``.

        Its server stopped beating for it: it crashed, hung, lost the database,
        or could not record the job's end. Whoever owns it, each such job
        becomes ``failed`` with ``finished_at=at`` and
        :data:`ORPHANED_JOB_ERROR`; a running job without a heartbeat counts as
        stale. Queued and finished jobs are left alone. Atomic with
        :meth:`update_job_if`: a job finished meanwhile is not failed. Returns
        the updated jobs, oldest first.
        """


def check_create(version: DatasetVersion | ModelVersion, create: Dataset | Model | None) -> None:
    """Refuse a ``create`` record that names another dataset (or model) than ``version``."""
    if create is None:
        return
    kind, owner = (
        ("model", version.model)
        if isinstance(version, ModelVersion)
        else ("dataset", version.dataset)
    )
    if (create.workspace, create.name) != (version.workspace, owner):
        raise InvalidInput(
            f"create names {kind} {create.workspace}/{create.name} but the version belongs "
            f"to {version.workspace}/{owner}",
            field="create",
        )


def check_version_task(model: str, model_task: str, version: ModelVersion) -> None:
    """Refuse (:class:`Conflict`) a version of another task than its model's."""
    if model_task != version.task:
        raise Conflict(
            f"model {model!r} holds {model_task} models; this one is {version.task} — "
            "register it under another name",
            field="model",
        )


def check_same_workspace(source: ObjectRef, target: ObjectRef) -> None:
    if source.workspace != target.workspace:
        raise InvalidInput(
            f"lineage links objects of one workspace only; got {source} → {target}",
            field="target",
        )
