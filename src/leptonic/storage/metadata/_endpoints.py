"""Endpoints, policy versions, the prediction log, feedback and alerts of the
SQL metadata store.

A part of :class:`~leptonic.storage.metadata.sql.SQLMetadataStore`; the
semantics are those of :class:`~leptonic.storage.metadata.endpoint_base.EndpointStore`.

The prediction log is written by serving processes in batches of thousands:
:meth:`EndpointsMixin.append_predictions` checks the batch in Python, looks
each endpoint up once and inserts every row with one ``executemany``; the
primary key ``(workspace, endpoint, request_id, route)`` refuses repeats, and
only then (on the error path) is the repeated request looked up to name it.
Changes of an endpoint lock its row (``SELECT ... FOR UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), so revisions and policy version numbers are
assigned one writer at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from leptonic.core._time import utcnow
from leptonic.core.endpoint import Alert, Endpoint, Feedback, PolicyVersion, Prediction
from leptonic.errors import AlreadyExists, Conflict
from leptonic.storage.metadata import _tables as t
from leptonic.storage.metadata._errors import (
    alert_not_found,
    endpoint_exists,
    endpoint_not_found,
    feedback_without_prediction,
    policy_version_not_found,
    prediction_exists,
    prediction_not_found,
    routed_version_not_found,
)
from leptonic.storage.metadata._records import (
    alert_values,
    endpoint_values,
    feedback_values,
    policy_values,
    prediction_row,
    to_alert,
    to_endpoint,
    to_policy_version,
    to_prediction,
)
from leptonic.storage.metadata._sqlbase import (
    SQLStoreBase,
    insert_row,
    require_workspace,
    row_exists,
)
from leptonic.storage.metadata.base import check_page, check_whole
from leptonic.storage.metadata.endpoint_base import (
    PREDICTION_ROUTES,
    changed_endpoint,
    check_alert,
    check_alert_endpoint,
    check_alert_status,
    check_before,
    check_delivered,
    check_endpoint_changes,
    check_feedback,
    check_policy,
    check_prediction_route,
    check_predictions,
    check_window,
    new_endpoint,
    policy_replaced,
)

__all__ = ["PRUNE_BATCH", "EndpointsMixin"]

#: Predictions deleted per transaction by ``delete_predictions`` (more where the
#: batch's last time is shared by the next ones: those go with it).
PRUNE_BATCH = 10_000

_e = t.endpoints
_pv = t.endpoint_policies
_p = t.predictions
_f = t.feedback
_a = t.alerts

#: Request ids per ``IN (...)`` lookup (well under SQLite's parameter limit).
_CHUNK = 500


class _Repeated(Exception):
    """The batch repeats a logged prediction; the transaction is rolled back."""


class EndpointsMixin(SQLStoreBase):
    """Endpoint records kept in the ``endpoints``, ``endpoint_policies``,
    ``predictions``, ``feedback`` and ``alerts`` tables."""

    # -- endpoints ------------------------------------------------------------
    def create_endpoint(self, endpoint: Endpoint, policy: PolicyVersion) -> Endpoint:
        endpoint, policy = new_endpoint(endpoint, policy)
        exists = endpoint_exists(endpoint.workspace, endpoint.name)
        with self._write() as conn:
            require_workspace(conn, endpoint.workspace)
            if row_exists(conn, _e, workspace=endpoint.workspace, name=endpoint.name):
                raise exists
            _require_versions(conn, endpoint)
            insert_row(conn, _e, exists, **endpoint_values(endpoint))
            conn.execute(sa.insert(_pv).values(**policy_values(policy)))
        return endpoint

    def get_endpoint(self, workspace: str, name: str) -> Endpoint:
        with self._read() as conn:
            return to_endpoint(_require_endpoint(conn, workspace, name))

    def list_endpoints(self, workspace: str) -> list[Endpoint]:
        query = sa.select(_e).where(_e.c.workspace == workspace).order_by(_e.c.name)
        with self._read() as conn:
            require_workspace(conn, workspace)
            return [to_endpoint(r) for r in conn.execute(query)]

    def update_endpoint(
        self,
        workspace: str,
        name: str,
        *,
        expected_revision: int | None = None,
        **changes: Any,
    ) -> Endpoint:
        check_endpoint_changes(changes)
        with self._write() as conn:
            current = to_endpoint(_require_endpoint(conn, workspace, name, lock=True))
            updated = changed_endpoint(
                current, changes, expected_revision=expected_revision, at=utcnow()
            )
            if updated is current:
                return current
            if "routes" in changes or "shadow" in changes:
                _require_versions(conn, updated)
            if "policy_version" in changes:
                _require_policy(conn, workspace, name, updated.policy_version)
            values = endpoint_values(updated)
            for key in ("workspace", "name", "created_by", "created_at"):
                del values[key]
            conn.execute(sa.update(_e).where(*_endpoint_is(workspace, name)).values(**values))
            return updated

    def add_policy_version(
        self,
        policy: PolicyVersion,
        *,
        activate: bool = True,
        expected_active: int | None = None,
    ) -> PolicyVersion:
        policy = check_policy(policy)
        ws, name = policy.workspace, policy.endpoint
        with self._write() as conn:
            current = _require_endpoint(conn, ws, name, lock=True)
            if expected_active is not None and current.policy_version != expected_active:
                raise policy_replaced(name, expected_active, current.policy_version)
            highest = conn.execute(
                sa.select(sa.func.max(_pv.c.version)).where(*_policy_of(ws, name))
            ).scalar()
            stored = replace(policy, version=int(highest or 0) + 1)
            busy = Conflict(
                f"another policy version of endpoint {name!r} was added at the same time; "
                "try again",
                field="version",
            )
            insert_row(conn, _pv, busy, **policy_values(stored))
            if activate:
                conn.execute(
                    sa.update(_e)
                    .where(*_endpoint_is(ws, name))
                    .values(
                        policy_version=stored.version,
                        revision=current.revision + 1,
                        updated_at=utcnow(),
                    )
                )
            return stored

    def get_policy_version(self, workspace: str, endpoint: str, version: int) -> PolicyVersion:
        check_whole(version, "version")
        with self._read() as conn:
            _require_endpoint(conn, workspace, endpoint)
            return to_policy_version(_require_policy(conn, workspace, endpoint, version))

    def list_policy_versions(self, workspace: str, endpoint: str) -> list[PolicyVersion]:
        query = sa.select(_pv).where(*_policy_of(workspace, endpoint)).order_by(_pv.c.version)
        with self._read() as conn:
            _require_endpoint(conn, workspace, endpoint)
            return [to_policy_version(r) for r in conn.execute(query)]

    # -- prediction log -------------------------------------------------------------
    def append_predictions(self, predictions: Sequence[Prediction]) -> int:
        checked = check_predictions(predictions)
        if not checked:
            return 0
        rows = [prediction_row(p, inputs, reasons) for p, inputs, reasons in checked]
        try:
            with self._write() as conn:
                for ws, name in dict.fromkeys((r["workspace"], r["endpoint"]) for r in rows):
                    _require_endpoint(conn, ws, name)
                try:
                    _insert_many(conn, _p, rows, encoded=("inputs", "reasons"))
                except sa.exc.IntegrityError:
                    raise _Repeated from None
        except _Repeated:
            raise self._repeated([p for p, _, _ in checked]) from None
        return len(rows)

    def _repeated(self, batch: list[Prediction]) -> AlreadyExists:
        """The error naming the first prediction of ``batch`` that is already logged."""
        groups: dict[tuple[str, str, str], list[str]] = {}
        for p in batch:
            groups.setdefault((p.workspace, p.endpoint, p.route), []).append(p.request_id)
        logged: set[tuple[str, str, str, str]] = set()
        with self._read() as conn:
            for (ws, name, route), ids in groups.items():
                mine = (_p.c.workspace == ws, _p.c.endpoint == name, _p.c.route == route)
                for chunk in _chunks(ids):
                    query = sa.select(_p.c.request_id).where(*mine, _p.c.request_id.in_(chunk))
                    logged.update((ws, name, rid, route) for rid in conn.execute(query).scalars())
        for p in batch:
            if (p.workspace, p.endpoint, p.request_id, p.route) in logged:
                return prediction_exists(p.workspace, p.endpoint, p.request_id, p.route)
        first = batch[0]  # another writer's batch was rolled back meanwhile
        return prediction_exists(first.workspace, first.endpoint, first.request_id, first.route)

    def list_predictions(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = "live",
        limit: int | None = 100,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[Prediction]:
        check_page(0 if limit is None else limit, offset)
        order = (_p.c.at, _p.c.request_id)  # then route: constant in one route's listing

        def listing(one: str | None) -> sa.Select[Any]:
            return sa.select(_p).where(*_window(workspace, endpoint, since, until, one))

        def ordered(query: sa.Select[Any]) -> sa.Select[Any]:
            return query.order_by(*(c.desc() for c in order) if newest_first else order)

        if route is None:
            # Both routes: one index scan of (workspace, endpoint, route, at) per route,
            # each the first offset + limit of its route in this order, merged and paged
            # by the database (one statement, one snapshot, only the page comes back);
            # ordering both routes at once would read and sort the endpoint's whole log.
            parts = [
                (
                    listing(one) if limit is None else ordered(listing(one)).limit(offset + limit)
                ).subquery()
                for one in PREDICTION_ROUTES
            ]
            both = sa.union_all(*(sa.select(part) for part in parts)).subquery()
            merged = (both.c.at, both.c.request_id, both.c.route)
            query = sa.select(both).order_by(
                *(c.desc() for c in merged) if newest_first else merged
            )
        else:
            query = ordered(listing(route))
        query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            _require_endpoint(conn, workspace, endpoint)
            return [to_prediction(r) for r in conn.execute(query)]

    def count_predictions(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = "live",
    ) -> int:
        routes = PREDICTION_ROUTES if route is None else (route,)
        # a count per route (each an index scan), summed in one statement
        counts = [
            sa.select(sa.func.count())
            .select_from(_p)
            .where(*_window(workspace, endpoint, since, until, one))
            .scalar_subquery()
            for one in routes
        ]
        total: sa.ColumnElement[Any] = counts[0]
        for count in counts[1:]:
            total = total + count
        query = sa.select(total)
        with self._read() as conn:
            _require_endpoint(conn, workspace, endpoint)
            return int(conn.execute(query).scalar_one())

    def get_prediction(
        self, workspace: str, endpoint: str, request_id: str, *, route: str = "live"
    ) -> Prediction:
        check_prediction_route(route)
        query = sa.select(_p).where(
            _p.c.workspace == workspace,
            _p.c.endpoint == endpoint,
            _p.c.request_id == request_id,
            _p.c.route == route,
        )
        with self._read() as conn:
            _require_endpoint(conn, workspace, endpoint)
            row = conn.execute(query).first()
        if row is None:
            raise prediction_not_found(workspace, endpoint, request_id, route)
        return to_prediction(row)

    def latest_prediction_for_entity(
        self, workspace: str, endpoint: str, entity: str
    ) -> Prediction | None:
        query = (
            sa.select(_p)
            .where(
                _p.c.workspace == workspace,
                _p.c.endpoint == endpoint,
                _p.c.entity == entity,
                _p.c.route == "live",
            )
            .order_by(_p.c.at.desc(), _p.c.request_id.desc())
            .limit(1)
        )
        with self._read() as conn:
            _require_endpoint(conn, workspace, endpoint)
            row = conn.execute(query).first()
        return None if row is None else to_prediction(row)

    def delete_predictions(self, workspace: str, endpoint: str, *, before: datetime) -> int:
        check_before(before)
        deleted = 0
        for route in PREDICTION_ROUTES:
            # (one route at a time: the (workspace, endpoint, route, at) index serves it)
            where = _window(workspace, endpoint, None, before, route)
            # the time of the batch's last prediction (None: fewer left than a batch)
            last = sa.select(_p.c.at).where(*where).order_by(_p.c.at)
            last = last.offset(PRUNE_BATCH - 1).limit(1)
            while True:
                # a batch per transaction: the write lock (SQLite's is the database's) is
                # held for one batch, and each outcome goes with its answer
                with self._write() as conn:
                    # the endpoint's row lock orders this after (or before) an outcome
                    # being recorded (add_feedback takes it too)
                    _require_endpoint(conn, workspace, endpoint, log=True)
                    cut = conn.execute(last).scalar()
                    batch = [*where, _p.c.at <= cut] if cut is not None else where
                    if route == "live":
                        gone = sa.select(_p.c.request_id).where(*batch)
                        conn.execute(
                            sa.delete(_f).where(
                                _f.c.workspace == workspace,
                                _f.c.endpoint == endpoint,
                                _f.c.request_id.in_(gone),
                            )
                        )
                    deleted += int(conn.execute(sa.delete(_p).where(*batch)).rowcount)
                if cut is None:
                    break
        return deleted

    # -- feedback ------------------------------------------------------------------
    def add_feedback(self, items: Sequence[Feedback]) -> int:
        items = list(items)
        latest = check_feedback(items)
        if not latest:
            return 0
        groups: dict[tuple[str, str], list[str]] = {}
        for f in latest:
            groups.setdefault((f.workspace, f.endpoint), []).append(f.request_id)
        with self._write() as conn:
            known: set[tuple[str, str, str]] = set()
            for (ws, name), ids in sorted(groups.items()):  # locks in one order
                _require_endpoint(conn, ws, name, log=True)
                mine = (_p.c.workspace == ws, _p.c.endpoint == name, _p.c.route == "live")
                for chunk in _chunks(ids):
                    query = sa.select(_p.c.request_id).where(*mine, _p.c.request_id.in_(chunk))
                    known.update((ws, name, rid) for rid in conn.execute(query).scalars())
            for f in latest:
                if (f.workspace, f.endpoint, f.request_id) not in known:
                    raise feedback_without_prediction(f.workspace, f.endpoint, f.request_id)
            conn.execute(_upsert_feedback(conn), [feedback_values(f) for f in latest])
        return len(items)

    def labelled_predictions(
        self,
        workspace: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[tuple[Prediction, Feedback]]:
        check_page(0 if limit is None else limit, 0)
        joined = _p.join(
            _f,
            (_f.c.workspace == _p.c.workspace)
            & (_f.c.endpoint == _p.c.endpoint)
            & (_f.c.request_id == _p.c.request_id),
        )
        query = (
            sa.select(
                _p,
                _f.c.label,
                _f.c.at.label("feedback_at"),
                _f.c.entity.label("feedback_entity"),
            )
            .select_from(joined)
            .where(*_window(workspace, endpoint, since, until, "live"))
            .order_by(_p.c.at, _p.c.request_id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            _require_endpoint(conn, workspace, endpoint)
            rows = conn.execute(query).all()
        return [
            (
                to_prediction(r),
                Feedback(
                    workspace=r.workspace,
                    endpoint=r.endpoint,
                    request_id=r.request_id,
                    label=r.label,
                    at=r.feedback_at,
                    entity=r.feedback_entity,
                ),
            )
            for r in rows
        ]

    # -- alerts ----------------------------------------------------------------------
    def add_alert(self, alert: Alert) -> Alert:
        alert = check_alert(alert)
        with self._write() as conn:
            _require_endpoint(conn, alert.workspace, alert.endpoint)
            insert = sa.insert(_a).values(**alert_values(alert)).returning(_a.c.id)
            alert_id = int(conn.execute(insert).scalar_one())
            return replace(
                alert, value=float(alert.value), threshold=float(alert.threshold), id=alert_id
            )

    def list_alerts(
        self,
        workspace: str,
        endpoint: str | None = None,
        *,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Alert]:
        check_page(limit, offset)
        query = sa.select(_a).where(_a.c.workspace == workspace)
        if endpoint is not None:
            query = query.where(_a.c.endpoint == endpoint)
        if status is not None:
            query = query.where(_a.c.status == check_alert_status(status))
        query = query.order_by(_a.c.id.desc()).limit(limit).offset(offset)
        with self._read() as conn:
            if endpoint is None:
                require_workspace(conn, workspace)
            else:
                _require_endpoint(conn, workspace, endpoint)
            return [to_alert(r) for r in conn.execute(query)]

    def set_alert_status(
        self, workspace: str, alert_id: int, status: str, *, endpoint: str | None = None
    ) -> Alert:
        check_alert_status(status)
        with self._write() as conn:
            require_workspace(conn, workspace)
            row = _require_alert(conn, workspace, alert_id)
            check_alert_endpoint(alert_id, row.endpoint, endpoint)
            conn.execute(
                sa.update(_a)
                .where(_a.c.workspace == workspace, _a.c.id == alert_id)
                .values(status=status)
            )
            return to_alert(_require_alert(conn, workspace, alert_id))

    def set_alerts_delivered(
        self, workspace: str, endpoint: str, alert_ids: Sequence[int], at: datetime
    ) -> int:
        ids = check_delivered(alert_ids, at)
        with self._write() as conn:
            _require_endpoint(conn, workspace, endpoint)
            if not ids:
                return 0
            changed = conn.execute(
                sa.update(_a)
                .where(_a.c.workspace == workspace, _a.c.endpoint == endpoint, _a.c.id.in_(ids))
                .values(delivered_at=at)
            )
            return int(changed.rowcount)


# -- helpers ---------------------------------------------------------------------------


def _endpoint_is(workspace: str, name: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (_e.c.workspace == workspace, _e.c.name == name)


def _policy_of(workspace: str, endpoint: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (_pv.c.workspace == workspace, _pv.c.endpoint == endpoint)


def _require_endpoint(
    conn: sa.Connection, workspace: str, name: str, *, lock: bool = False, log: bool = False
) -> Row[Any]:
    """The endpoint row; NotFound for it or for its workspace.

    ``lock``: locked for an update of the row (``FOR UPDATE`` on PostgreSQL).
    ``log``: locked by a change to its log that must not interleave with another
    (deleting old predictions, recording outcomes): ``FOR NO KEY UPDATE``, which
    waits for such a change and for an update of the row, but not for the
    appends of predictions (whose foreign key takes ``FOR KEY SHARE``)."""
    query = sa.select(_e).where(*_endpoint_is(workspace, name))
    if lock or log:
        query = query.with_for_update(key_share=not lock)
    row = conn.execute(query).first()
    if row is None:
        require_workspace(conn, workspace)
        raise endpoint_not_found(workspace, name)
    return row


def _require_policy(conn: sa.Connection, workspace: str, endpoint: str, version: int) -> Row[Any]:
    query = sa.select(_pv).where(*_policy_of(workspace, endpoint), _pv.c.version == version)
    row = conn.execute(query).first()
    if row is None:
        raise policy_version_not_found(workspace, endpoint, version)
    return row


def _require_versions(conn: sa.Connection, endpoint: Endpoint) -> None:
    """NotFound unless every routed (and the shadow) model version exists."""
    mv = t.model_versions
    served = [(r, "routes") for r in endpoint.routes]
    if endpoint.shadow is not None:
        served.append((endpoint.shadow, "shadow"))
    for route, field in served:
        found = row_exists(
            conn, mv, workspace=endpoint.workspace, model=route.model, version=route.version
        )
        if not found:
            raise routed_version_not_found(
                endpoint.workspace, endpoint.name, route.model, route.version, field
            )


def _require_alert(conn: sa.Connection, workspace: str, alert_id: int) -> Row[Any]:
    if isinstance(alert_id, bool) or not isinstance(alert_id, int):
        raise alert_not_found(workspace, alert_id)
    query = sa.select(_a).where(_a.c.workspace == workspace, _a.c.id == alert_id)
    row = conn.execute(query).first()
    if row is None:
        raise alert_not_found(workspace, alert_id)
    return row


def _window(
    workspace: str,
    endpoint: str,
    since: datetime | None,
    until: datetime | None,
    route: str | None,
) -> list[sa.ColumnElement[bool]]:
    """Conditions on ``predictions`` for one endpoint, time window and route."""
    check_prediction_route(route)
    check_window(since, until)
    where = [_p.c.workspace == workspace, _p.c.endpoint == endpoint]
    if route is not None:
        where.append(_p.c.route == route)
    if since is not None:
        where.append(_p.c.at >= since)
    if until is not None:
        where.append(_p.c.at < until)
    return where


def _insert_many(
    conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], *, encoded: Sequence[str]
) -> None:
    """INSERT ``rows`` with one ``executemany`` of the database driver.

    SQLAlchemy's own ``executemany`` processes every parameter of every row in
    Python; this does the same work once per column instead: the ``encoded``
    columns hold JSON text already, the others get their type's bind
    processing (timestamps to UTC, ...) here. The statement is SQLAlchemy's,
    compiled for the connection's dialect (with PostgreSQL's ``::JSON`` casts).
    Rows are changed in place.
    """
    dialect = conn.dialect
    compiled = sa.insert(table).compile(dialect=dialect)
    for column in table.columns:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and column.key not in encoded:
            key = column.key
            for row in rows:
                row[key] = process(row[key])
    if compiled.positional:
        as_tuple = itemgetter(*(compiled.positiontup or ()))
        conn.exec_driver_sql(str(compiled), [as_tuple(row) for row in rows])
    else:
        conn.exec_driver_sql(str(compiled), rows)


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _upsert_feedback(conn: sa.Connection) -> sa.Insert:
    """INSERT of feedback rows that replaces the outcome of a request already there."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # SQLite: the only other supported backend; same API
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(_f)
    replaced = {name: statement.excluded[name] for name in ("label", "at", "entity")}
    return statement.on_conflict_do_update(
        index_elements=["workspace", "endpoint", "request_id"], set_=replaced
    )
