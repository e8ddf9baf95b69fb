"""The metadata store interface.

Every method takes the workspace explicitly; an object in another workspace
is simply not found. Methods that change several rows do so atomically.
Version numbers of dataset and model versions are assigned by the store.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any, Literal

from leptonic.core.dataset import Dataset, DatasetVersion
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

__all__ = [
    "RUN_MUTABLE_FIELDS",
    "MetadataStore",
    "check_page",
    "check_run_status",
    "check_stage",
    "check_transition",
    "ref_sort_key",
]

#: Fields of a :class:`Run` that :meth:`MetadataStore.update_run` may change.
RUN_MUTABLE_FIELDS = frozenset(
    {"status", "params", "metrics", "timings", "artifacts", "error", "started_at", "finished_at"}
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


def check_page(limit: int, offset: int) -> None:
    """Raise :class:`InvalidInput` unless ``limit`` and ``offset`` are non-negative."""
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name} must be a whole number >= 0, got {value!r}", field=name)


def ref_sort_key(ref: ObjectRef) -> tuple[str, str, str, int]:
    """Sort key for refs: like their natural order, with unversioned refs first."""
    return (ref.workspace, ref.kind, ref.name, -1 if ref.version is None else ref.version)


def check_run_changes(changes: dict[str, Any]) -> None:
    bad = sorted(set(changes) - RUN_MUTABLE_FIELDS)
    if bad:
        raise InvalidInput(
            f"run field(s) {', '.join(bad)} cannot be changed; "
            f"changeable: {', '.join(sorted(RUN_MUTABLE_FIELDS))}",
            field=bad[0],
        )
    if "status" in changes:
        changes["status"] = check_run_status(changes["status"])


class MetadataStore(abc.ABC):
    """Abstract metadata store. Implementations: SQL (SQLite, PostgreSQL) and memory."""

    uri: str

    @classmethod
    @abc.abstractmethod
    def from_uri(cls, uri: str) -> MetadataStore:
        """Open (and create or migrate, for embedded stores) the store at ``uri``."""

    def close(self) -> None:  # noqa: B027 - optional hook
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
    def add_dataset_version(self, version: DatasetVersion) -> tuple[DatasetVersion, bool]:
        """Store a version of an existing dataset, atomically.

        The store assigns the next version number (``version.version`` is
        ignored). If the dataset already has a version with the same
        ``content_hash``, that version is returned instead and nothing is
        written. Returns ``(version, created)``.
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

    # -- models -------------------------------------------------------------
    @abc.abstractmethod
    def create_model(self, model: Model) -> Model: ...

    @abc.abstractmethod
    def get_model(self, workspace: str, name: str) -> Model: ...

    @abc.abstractmethod
    def list_models(self, workspace: str) -> list[Model]: ...

    @abc.abstractmethod
    def add_model_version(self, version: ModelVersion) -> ModelVersion:
        """Store a version of an existing model, atomically, with its first stage transition.

        The store assigns the next version number; the version starts in stage
        ``candidate`` with a transition ``None → candidate`` by its creator.
        """

    @abc.abstractmethod
    def get_model_version(self, workspace: str, model: str, version: int) -> ModelVersion: ...

    @abc.abstractmethod
    def list_model_versions(
        self, workspace: str, model: str, *, stage: Stage | None = None
    ) -> list[ModelVersion]:
        """The model's versions, oldest first, optionally of one stage."""

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


def check_same_workspace(source: ObjectRef, target: ObjectRef) -> None:
    if source.workspace != target.workspace:
        raise InvalidInput(
            f"lineage links objects of one workspace only; got {source} → {target}",
            field="target",
        )
