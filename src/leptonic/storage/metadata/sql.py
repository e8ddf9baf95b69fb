"""The SQL metadata store: SQLite (the embedded default) and PostgreSQL.

Same semantics as :class:`~leptonic.storage.metadata.memory.MemoryMetadataStore`
(the conformance suite runs on both), with the records kept in the tables of
:mod:`leptonic.storage.metadata._tables` through SQLAlchemy Core. Each method is
one transaction. Version numbers are assigned under a lock on the parent row
(``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) and
guarded by unique constraints, with a retry should two writers still collide.
Users, tokens, roles and the audit log live in ``_access``, background jobs in
``_jobs``, endpoints and their prediction log in ``_endpoints``; transactions in
``_sqlbase``.

Dictionaries are stored as JSON, so they must hold only JSON values: strings,
finite numbers, booleans, ``None``, lists and string-keyed dicts. Timestamps
are stored in UTC and read back timezone-aware.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Row

from leptonic.core._time import utcnow
from leptonic.core.dataset import Dataset, DatasetVersion
from leptonic.core.model_version import Model, ModelVersion, Stage, StageTransition
from leptonic.core.run import Run, RunStatus
from leptonic.core.uri import ObjectRef
from leptonic.core.workspace import Workspace
from leptonic.errors import AlreadyExists, NotFound, StoreError
from leptonic.storage.metadata import _tables as t
from leptonic.storage.metadata._access import AccessMixin
from leptonic.storage.metadata._endpoints import EndpointsMixin
from leptonic.storage.metadata._engine import display_uri, make_engine
from leptonic.storage.metadata._events import EventsMixin
from leptonic.storage.metadata._jobs import JobsMixin
from leptonic.storage.metadata._records import (
    RUN_JSON_FIELDS,
    json_value,
    run_column,
    to_dataset,
    to_dataset_version,
    to_model,
    to_model_version,
    to_run,
    to_transition,
    to_workspace,
)
from leptonic.storage.metadata._sqlbase import insert_row, require_workspace, row_exists
from leptonic.storage.metadata.base import (
    MetadataStore,
    check_create,
    check_page,
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
from leptonic.storage.metadata.migrate import upgrade

__all__ = ["SQLMetadataStore"]

#: How many times a version insert is retried after losing a race.
_VERSION_RETRIES = 5


class _Retry(Exception):
    """Another writer took the version number; start the transaction again."""


class SQLMetadataStore(AccessMixin, JobsMixin, EndpointsMixin, EventsMixin, MetadataStore):
    """Metadata in a SQL database: ``sqlite:///path/to.db`` or ``postgresql://...``.

    Parameters
    ----------
    engine
        An engine made by :meth:`from_uri` (which also configures SQLite
        connections and migrates the schema). The store disposes of it on
        :meth:`close`.
    uri
        The URI the engine was made from, kept as :attr:`uri`.

    Examples
    --------
    >>> from leptonic.core import Workspace
    >>> store = SQLMetadataStore.from_uri("sqlite:////tmp/leptonic-doc/meta.db")  # doctest: +SKIP
    >>> store.create_workspace(Workspace("credit"))  # doctest: +SKIP
    >>> store.close()  # doctest: +SKIP
    """

    @classmethod
    def from_uri(cls, uri: str) -> SQLMetadataStore:
        """Open the store at ``uri``, creating or migrating its schema as needed.

        Raises :class:`~leptonic.errors.StoreError` when the database cannot be
        reached or was migrated by a newer Leptonic, and
        :class:`~leptonic.errors.MissingExtra` when psycopg is not installed.
        """
        engine = make_engine(uri)
        try:
            upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, uri=uri)

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_uri(self.uri)!r})"

    # -- workspaces ---------------------------------------------------------
    def create_workspace(self, workspace: Workspace) -> Workspace:
        workspace = checked_record(workspace)
        with self._write() as conn:
            if row_exists(conn, t.workspaces, name=workspace.name):
                raise _workspace_exists(workspace.name)
            insert_row(
                conn,
                t.workspaces,
                _workspace_exists(workspace.name),
                name=workspace.name,
                description=workspace.description,
                pii_salt=workspace.pii_salt,
                created_at=workspace.created_at,
            )
        return workspace

    def get_workspace(self, name: str) -> Workspace:
        with self._read() as conn:
            return to_workspace(require_workspace(conn, name))

    def list_workspaces(self) -> list[Workspace]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.workspaces).order_by(t.workspaces.c.name))
            return [to_workspace(r) for r in rows]

    # -- datasets -----------------------------------------------------------
    def create_dataset(self, dataset: Dataset) -> Dataset:
        dataset = checked_record(dataset)
        self._create_named(
            t.datasets,
            "dataset",
            dataset.workspace,
            dataset.name,
            description=dataset.description,
            created_at=dataset.created_at,
        )
        return dataset

    def get_dataset(self, workspace: str, name: str) -> Dataset:
        with self._read() as conn:
            return to_dataset(_require_dataset(conn, workspace, name))

    def list_datasets(self, workspace: str) -> list[Dataset]:
        with self._read() as conn:
            require_workspace(conn, workspace)
            rows = conn.execute(
                sa.select(t.datasets)
                .where(t.datasets.c.workspace == workspace)
                .order_by(t.datasets.c.name)
            )
            return [to_dataset(r) for r in rows]

    def add_dataset_version(
        self, version: DatasetVersion, *, create: Dataset | None = None
    ) -> tuple[DatasetVersion, bool]:
        check_create(version, create)
        version = checked_record(version, ignore=("version",))
        create = None if create is None else checked_record(create)
        values = {
            "workspace": version.workspace,
            "dataset": version.dataset,
            "content_hash": version.content_hash,
            "artifact_key": version.artifact_key,
            "num_rows": version.num_rows,
            "num_columns": version.num_columns,
            "size_bytes": version.size_bytes,
            "columns": [c.to_dict() for c in version.columns],
            "quality": json_value(version.quality, "quality"),
            "source": json_value(version.source, "source"),
            "created_by": version.created_by,
            "created_at": version.created_at,
        }
        dv = t.dataset_versions
        for _ in range(_VERSION_RETRIES):
            try:
                with self._write() as conn:
                    if create is not None:
                        _create_missing(conn, t.datasets, create)
                    _require_dataset(conn, version.workspace, version.dataset, lock=True)
                    mine = (dv.c.workspace == version.workspace) & (dv.c.dataset == version.dataset)
                    existing = conn.execute(
                        sa.select(dv).where(mine, dv.c.content_hash == version.content_hash)
                    ).first()
                    if existing is not None:
                        return to_dataset_version(existing), False
                    number = _next_version(conn, dv.c.version, mine)
                    insert_row(conn, dv, _Retry(), **values, version=number)
                    return replace(version, version=number), True
            except _Retry:
                continue
        raise _busy(f"dataset {version.dataset!r}")

    def get_dataset_version(
        self, workspace: str, dataset: str, version: int | None = None
    ) -> DatasetVersion:
        check_whole(version, "version", optional=True)
        dv = t.dataset_versions
        with self._read() as conn:
            _require_dataset(conn, workspace, dataset)
            mine = (dv.c.workspace == workspace) & (dv.c.dataset == dataset)
            query = sa.select(dv).where(mine)
            if version is None:
                query = query.order_by(dv.c.version.desc()).limit(1)
            else:
                query = query.where(dv.c.version == version)
            row = conn.execute(query).first()
            if row is not None:
                return to_dataset_version(row)
            count = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
            raise NotFound(
                f"dataset {dataset!r} in workspace {workspace!r} has no "
                f"{'versions yet' if version is None else f'version {version}'}; "
                f"it has {count} version(s)",
                field="version",
            )

    def list_dataset_versions(self, workspace: str, dataset: str) -> list[DatasetVersion]:
        dv = t.dataset_versions
        with self._read() as conn:
            _require_dataset(conn, workspace, dataset)
            rows = conn.execute(
                sa.select(dv)
                .where(dv.c.workspace == workspace, dv.c.dataset == dataset)
                .order_by(dv.c.version)
            )
            return [to_dataset_version(r) for r in rows]

    # -- runs ---------------------------------------------------------------
    def create_run(self, run: Run) -> Run:
        run = checked_record(run)
        exists = AlreadyExists(f"run {run.id!r} already exists", field="id")
        values = {
            "id": run.id,
            "workspace": run.workspace,
            "status": check_run_status(run.status).value,
            "spec": json_value(run.spec, "spec"),
            "seed": run.seed,
            "inputs": json_value(list(run.inputs), "inputs"),
            "error": run.error,
            "created_by": run.created_by,
            "created_at": run.created_at,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
        }
        values.update({f: json_value(getattr(run, f), f) for f in RUN_JSON_FIELDS})
        with self._write() as conn:
            require_workspace(conn, run.workspace)
            if row_exists(conn, t.runs, id=run.id):
                raise exists
            insert_row(conn, t.runs, exists, **values)
        return run

    def get_run(self, workspace: str, run_id: str) -> Run:
        with self._read() as conn:
            require_workspace(conn, workspace)
            return to_run(_require_run(conn, workspace, run_id))

    def find_run_ids(self, workspace: str, prefix: str, *, limit: int = 2) -> list[str]:
        check_page(limit, 0)
        check_text(prefix, "prefix")
        r = t.runs
        with self._read() as conn:
            require_workspace(conn, workspace)
            # A range of the primary key (id >= prefix AND id < the next string after
            # every id with that prefix) is an index range scan; in code point order,
            # which is the order of ids: binary (C) collation on PostgreSQL, said
            # explicitly so a column of another collation still compares that way, and
            # SQLite's default BINARY. The substr test (not LIKE: case-insensitive on
            # SQLite, with % and _ special) keeps exactly the ids with the prefix.
            postgresql = conn.dialect.name == "postgresql"
            rid = r.c.id.collate("C") if postgresql else r.c.id
            # SQLite, without statistics, would rather scan the workspace's runs by the
            # (workspace, created_at, id) index and sort them: `workspace || ''` keeps
            # that index out, so it takes the range of the primary key.
            mine = r.c.workspace if postgresql else r.c.workspace.concat("")
            where = [mine == workspace]
            if prefix:
                where += [rid >= prefix, sa.func.substr(r.c.id, 1, len(prefix)) == prefix]
                bound = _after_prefix(prefix)
                if bound is not None:
                    where.append(rid < bound)
            query = sa.select(r.c.id).where(*where).order_by(rid).limit(limit)
            return [row.id for row in conn.execute(query)]

    def list_runs(
        self,
        workspace: str,
        *,
        status: RunStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        check_page(limit, offset)
        r = t.runs
        query = sa.select(r).where(r.c.workspace == workspace)
        if status is not None:
            query = query.where(r.c.status == str(status))
        query = query.order_by(r.c.created_at.desc(), r.c.id.desc()).limit(limit).offset(offset)
        with self._read() as conn:
            require_workspace(conn, workspace)
            return [to_run(row) for row in conn.execute(query)]

    def update_run(self, workspace: str, run_id: str, **changes: Any) -> Run:
        changed = self._change_run(workspace, run_id, None, changes)
        assert changed is not None  # no condition: always changed
        return changed

    def update_run_if(
        self,
        workspace: str,
        run_id: str,
        *,
        when_status: RunStatus | Iterable[RunStatus],
        **changes: Any,
    ) -> Run | None:
        statuses = {s.value for s in check_run_statuses(when_status)}
        return self._change_run(workspace, run_id, statuses, changes)

    def _change_run(
        self, workspace: str, run_id: str, statuses: set[str] | None, changes: dict[str, Any]
    ) -> Run | None:
        """Apply checked ``changes``, only while the run's status is in ``statuses`` (None:
        whatever it is); None when it is not."""
        check_run_changes(changes)
        values = {name: run_column(name, value) for name, value in changes.items()}
        with self._write() as conn:
            require_workspace(conn, workspace)
            # The row lock (PostgreSQL) or the write lock (SQLite) holds until the change.
            row = _require_run(conn, workspace, run_id, lock=statuses is not None)
            if statuses is not None and row.status not in statuses:
                return None
            if values:
                conn.execute(
                    sa.update(t.runs)
                    .where(t.runs.c.workspace == workspace, t.runs.c.id == run_id)
                    .values(**values)
                )
            return to_run(_require_run(conn, workspace, run_id))

    # -- models -------------------------------------------------------------
    def create_model(self, model: Model) -> Model:
        model = checked_record(model)
        self._create_named(
            t.models,
            "model",
            model.workspace,
            model.name,
            task=model.task,
            description=model.description,
            created_at=model.created_at,
        )
        return model

    def _create_named(
        self, table: sa.Table, kind: str, workspace: str, name: str, **values: Any
    ) -> None:
        """Insert a named object of a workspace; AlreadyExists if the name is taken there."""
        exists = AlreadyExists(
            f"{kind} {name!r} already exists in workspace {workspace!r}", field="name"
        )
        with self._write() as conn:
            require_workspace(conn, workspace)
            if row_exists(conn, table, workspace=workspace, name=name):
                raise exists
            insert_row(conn, table, exists, workspace=workspace, name=name, **values)

    def get_model(self, workspace: str, name: str) -> Model:
        with self._read() as conn:
            return to_model(_require_model(conn, workspace, name))

    def list_models(self, workspace: str) -> list[Model]:
        with self._read() as conn:
            require_workspace(conn, workspace)
            rows = conn.execute(
                sa.select(t.models)
                .where(t.models.c.workspace == workspace)
                .order_by(t.models.c.name)
            )
            return [to_model(r) for r in rows]

    def add_model_version(
        self,
        version: ModelVersion,
        *,
        lineage_from: Sequence[ObjectRef] = (),
        create: Model | None = None,
    ) -> ModelVersion:
        check_create(version, create)
        for source in lineage_from:
            check_same_workspace(source, ObjectRef(version.workspace, "model", version.model))
        version = checked_record(version, ignore=("version", "stage"))
        create = None if create is None else checked_record(create)
        values = {
            "workspace": version.workspace,
            "model": version.model,
            "task": version.task,
            "flavor": version.flavor,
            "run_id": version.run_id,
            "dataset": version.dataset,
            "artifact_key": version.artifact_key,
            "artifact_digest": version.artifact_digest,
            "signature": json_value(version.signature, "signature"),
            "metrics": json_value(version.metrics, "metrics"),
            "model_card": version.model_card,
            "stage": Stage.CANDIDATE.value,
            "created_by": version.created_by,
            "created_at": version.created_at,
        }
        mv = t.model_versions
        for _ in range(_VERSION_RETRIES):
            try:
                with self._write() as conn:
                    if create is not None:
                        _create_missing(conn, t.models, create, task=create.task)
                    row = _require_model(conn, version.workspace, version.model, lock=True)
                    check_version_task(version.model, row.task, version)
                    mine = (mv.c.workspace == version.workspace) & (mv.c.model == version.model)
                    number = _next_version(conn, mv.c.version, mine)
                    insert_row(conn, mv, _Retry(), **values, version=number)
                    stored = replace(version, version=number, stage=Stage.CANDIDATE)
                    target = ObjectRef(version.workspace, "model", version.model, number)
                    for source in lineage_from:
                        _insert_edge(conn, source, target)
                    _record_transition(
                        conn,
                        StageTransition(
                            workspace=stored.workspace,
                            model=stored.model,
                            version=stored.version,
                            from_stage=None,
                            to_stage=Stage.CANDIDATE,
                            actor=stored.created_by,
                            reason="registered",
                            at=stored.created_at,
                        ),
                    )
                    return stored
            except _Retry:
                continue
        raise _busy(f"model {version.model!r}")

    def get_model_version(self, workspace: str, model: str, version: int) -> ModelVersion:
        check_whole(version, "version")
        with self._read() as conn:
            _require_model(conn, workspace, model)
            return to_model_version(_require_model_version(conn, workspace, model, version))

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
        mv = t.model_versions
        query = sa.select(mv).where(mv.c.workspace == workspace, mv.c.model == model)
        if stage is not None:
            query = query.where(mv.c.stage == str(stage))
        query = query.order_by(mv.c.version).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            _require_model(conn, workspace, model)
            return [to_model_version(r) for r in conn.execute(query)]

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
        mv = t.model_versions
        with self._write() as conn:
            _require_model(conn, workspace, model, lock=True)
            current = to_model_version(_require_model_version(conn, workspace, model, version))
            check_transition(current, stage)
            mine = (mv.c.workspace == workspace) & (mv.c.model == model)
            if stage == Stage.PRODUCTION:
                others = conn.execute(
                    sa.select(mv.c.version)
                    .where(mine, mv.c.stage == Stage.PRODUCTION.value, mv.c.version != version)
                    .order_by(mv.c.version)
                ).scalars()
                for other in list(others):
                    _set_stage_row(conn, mine, other, Stage.ARCHIVED)
                    _record_transition(
                        conn,
                        StageTransition(
                            workspace,
                            model,
                            other,
                            Stage.PRODUCTION,
                            Stage.ARCHIVED,
                            actor,
                            f"replaced by v{version} in production",
                            at,
                        ),
                    )
            _set_stage_row(conn, mine, version, stage)
            _record_transition(
                conn,
                StageTransition(workspace, model, version, current.stage, stage, actor, reason, at),
            )
            return replace(current, stage=stage)

    def list_stage_transitions(
        self, workspace: str, model: str, version: int | None = None
    ) -> list[StageTransition]:
        check_whole(version, "version", optional=True)
        st = t.stage_transitions
        query = sa.select(st).where(st.c.workspace == workspace, st.c.model == model)
        if version is not None:
            query = query.where(st.c.version == version)
        with self._read() as conn:
            _require_model(conn, workspace, model)
            return [to_transition(r) for r in conn.execute(query.order_by(st.c.id))]

    # -- lineage ------------------------------------------------------------
    def add_lineage(self, source: ObjectRef, target: ObjectRef) -> None:
        check_same_workspace(source, target)
        with self._write() as conn:
            _insert_edge(conn, source, target)

    def lineage(
        self, ref: ObjectRef, direction: Literal["upstream", "downstream"] = "downstream"
    ) -> list[ObjectRef]:
        le = t.lineage_edges
        mine, other = ("source", "target") if direction == "downstream" else ("target", "source")
        query = sa.select(
            le.c[f"{other}_kind"], le.c[f"{other}_name"], le.c[f"{other}_version"]
        ).where(le.c.workspace == ref.workspace, le.c[f"{mine}_key"] == _ref_key(ref))
        with self._read() as conn:
            refs = [
                ObjectRef(ref.workspace, kind, name, version)
                for kind, name, version in conn.execute(query)
            ]
        return sorted(refs, key=ref_sort_key)


# -- helpers: lookups ---------------------------------------------------------


def _require_dataset(
    conn: sa.Connection, workspace: str, name: str, *, lock: bool = False
) -> Row[Any]:
    require_workspace(conn, workspace)
    d = t.datasets
    query = sa.select(d).where(d.c.workspace == workspace, d.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(
            f"dataset {name!r} not found in workspace {workspace!r}; "
            f"add it with `leptonic data add FILE --name {name}`",
            field="dataset",
        )
    return row


def _create_missing(
    conn: sa.Connection, table: sa.Table, record: Dataset | Model, **values: Any
) -> None:
    """Insert the dataset or model ``record`` unless it exists; one created meanwhile
    raises :class:`_Retry` (the next try finds it)."""
    if row_exists(conn, table, workspace=record.workspace, name=record.name):
        return
    require_workspace(conn, record.workspace)
    insert_row(
        conn,
        table,
        _Retry(),
        workspace=record.workspace,
        name=record.name,
        description=record.description,
        created_at=record.created_at,
        **values,
    )


def _require_run(
    conn: sa.Connection, workspace: str, run_id: str, *, lock: bool = False
) -> Row[Any]:
    r = t.runs
    query = sa.select(r).where(r.c.workspace == workspace, r.c.id == run_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(
            f"run {run_id!r} not found in workspace {workspace!r}; "
            f"list runs with `leptonic runs list --workspace {workspace}`",
            field="run",
        )
    return row


def _require_model(
    conn: sa.Connection, workspace: str, name: str, *, lock: bool = False
) -> Row[Any]:
    require_workspace(conn, workspace)
    m = t.models
    query = sa.select(m).where(m.c.workspace == workspace, m.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(
            f"model {name!r} not found in workspace {workspace!r}; "
            f"list models with `leptonic models list --workspace {workspace}`",
            field="model",
        )
    return row


def _require_model_version(
    conn: sa.Connection, workspace: str, model: str, version: int
) -> Row[Any]:
    mv = t.model_versions
    row = conn.execute(
        sa.select(mv).where(
            mv.c.workspace == workspace, mv.c.model == model, mv.c.version == version
        )
    ).first()
    if row is None:
        raise NotFound(
            f"model {model!r} in workspace {workspace!r} has no version {version}",
            field="version",
        )
    return row


def _next_version(
    conn: sa.Connection, column: sa.Column[int], where: sa.ColumnElement[bool]
) -> int:
    highest = conn.execute(sa.select(sa.func.max(column)).where(where)).scalar()
    return int(highest or 0) + 1


def _set_stage_row(
    conn: sa.Connection, where: sa.ColumnElement[bool], version: int, stage: Stage
) -> None:
    mv = t.model_versions
    conn.execute(sa.update(mv).where(where, mv.c.version == version).values(stage=stage.value))


def _record_transition(conn: sa.Connection, tr: StageTransition) -> None:
    conn.execute(
        sa.insert(t.stage_transitions).values(
            workspace=tr.workspace,
            model=tr.model,
            version=tr.version,
            from_stage=None if tr.from_stage is None else tr.from_stage.value,
            to_stage=tr.to_stage.value,
            actor=tr.actor,
            reason=tr.reason,
            at=tr.at,
        )
    )


def _after_prefix(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``, in code point
    order (``"ab"`` → ``"ac"``); None when there is none (``prefix`` is all U+10FFFF)."""
    head = prefix
    while head:
        following = ord(head[-1]) + 1
        head = head[:-1]
        if following <= 0x10FFFF:
            if 0xD800 <= following <= 0xDFFF:  # surrogates are no characters of valid text
                following = 0xE000
            return head + chr(following)
    return None


def _busy(what: str) -> StoreError:
    return StoreError(
        f"could not assign a version number to {what} after {_VERSION_RETRIES} attempts: "
        "too many concurrent writers; try again"
    )


def _ref_key(ref: ObjectRef) -> str:
    return json.dumps([ref.kind, ref.name, ref.version], ensure_ascii=False)


def _workspace_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"workspace {name!r} already exists; pick another name", field="name")


def _insert_edge(conn: sa.Connection, source: ObjectRef, target: ObjectRef) -> None:
    """Record a lineage edge inside an open transaction (idempotent)."""
    values = {
        "workspace": source.workspace,
        "source_key": _ref_key(source),
        "target_key": _ref_key(target),
        "source_kind": source.kind,
        "source_name": source.name,
        "source_version": source.version,
        "target_kind": target.kind,
        "target_name": target.name,
        "target_version": target.version,
    }
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(t.lineage_edges).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(t.lineage_edges).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        keys = {k: values[k] for k in ("workspace", "source_key", "target_key")}
        if not row_exists(conn, t.lineage_edges, **keys):
            conn.execute(sa.insert(t.lineage_edges).values(values))
