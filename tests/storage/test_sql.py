"""What is particular to the SQL metadata store: URIs, connection settings, errors.

Behaviour shared with the other stores is in tests/conformance/test_metadata_store.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from leptonic.core import Workspace
from leptonic.errors import ConfigError, InvalidInput, MissingExtra, StoreError
from leptonic.storage.metadata.sql import SQLMetadataStore


def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'a' / 'b' / 'leptonic.db'}"
    with SQLMetadataStore.from_uri(uri) as store:
        assert (tmp_path / "a" / "b" / "leptonic.db").is_file()
        assert store.uri == uri
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_sqlite_data_survives_reopening(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'leptonic.db'}"
    workspace = Workspace("credit")
    with SQLMetadataStore.from_uri(uri) as store:
        store.create_workspace(workspace)
    with SQLMetadataStore.from_uri(uri) as store:
        assert store.get_workspace("credit") == workspace


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///:memory:", "sqlite:///"])
def test_sqlite_needs_a_file(uri: str) -> None:
    with pytest.raises(ConfigError, match="memory://"):
        SQLMetadataStore.from_uri(uri)


def test_unsupported_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sqlite:///.*postgresql://"):
        SQLMetadataStore.from_uri("mysql://root@localhost/leptonic")


def test_postgresql_without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtra, match=r"pip install 'leptonic\[postgres\]'") as info:
        SQLMetadataStore.from_uri("postgresql://postgres@127.0.0.1:5432/leptonic")
    assert (info.value.package, info.value.extra) == ("psycopg", "postgres")
    assert isinstance(info.value, ImportError)


def test_unreachable_postgresql_is_a_store_error() -> None:
    pytest.importorskip("psycopg")
    uri = "postgresql://leptonic:s3cret@127.0.0.1:1/leptonic"
    with pytest.raises(StoreError, match=r"cannot connect.*LEPTONIC_DB") as info:
        SQLMetadataStore.from_uri(uri)
    assert "s3cret" not in str(info.value)


@pytest.mark.postgres
def test_postgresql_uri_uses_psycopg(postgres_db: str) -> None:
    with SQLMetadataStore.from_uri(postgres_db) as store:
        assert store.engine.url.drivername == "postgresql+psycopg"
        assert store.uri == postgres_db
        assert store.list_workspaces() == []


def test_repr_hides_the_password(tmp_path: Path) -> None:
    with SQLMetadataStore.from_uri(f"sqlite:///{tmp_path / 'x.db'}") as store:
        assert "x.db" in repr(store)
    store = SQLMetadataStore.__new__(SQLMetadataStore)
    store.uri = "postgresql://ana:s3cret@db.example/leptonic"
    assert "s3cret" not in repr(store)


def test_database_errors_name_the_backend_not_its_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "secret-folder" / "leptonic.db"
    with SQLMetadataStore.from_uri(f"sqlite:///{db}") as store:
        store.create_workspace(Workspace("credit"))
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE jobs")  # broken behind the store's back
        with caplog.at_level("ERROR", logger="leptonic.store"), pytest.raises(StoreError) as info:
            store.list_jobs("credit")
    message = str(info.value)
    assert message.startswith("the SQLite metadata store failed") and "server log" in message
    assert "secret-folder" not in message and "no such table" not in message
    assert "secret-folder" in caplog.text and "no such table: jobs" in caplog.text


def test_postgresql_errors_hide_host_user_and_database(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("psycopg")
    from leptonic.storage.metadata._engine import make_engine

    uri = "postgresql://payroll_admin:s3cret@127.0.0.1:1/payroll_db"
    store = SQLMetadataStore(make_engine(uri), uri=uri)  # opened before the server went away
    try:
        with caplog.at_level("ERROR", logger="leptonic.store"), pytest.raises(StoreError) as info:
            store.list_workspaces()
    finally:
        store.close()
    message = str(info.value)
    assert message.startswith("the PostgreSQL metadata store failed") and "LEPTONIC_DB" in message
    for secret in ("payroll_admin", "payroll_db", "127.0.0.1", "s3cret", "refused"):
        assert secret not in message
    assert "payroll_db" in caplog.text and "s3cret" not in caplog.text


def test_a_sqlite_uri_may_start_in_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with SQLMetadataStore.from_uri("sqlite:///~/sub/x.db") as store:
        store.create_workspace(Workspace("credit"))
    assert (tmp_path / "sub" / "x.db").is_file()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sql_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'x.db'}"
    return str(request.getfixturevalue("postgres_db"))


def test_a_missing_required_value_is_not_taken_for_a_name_in_use(sql_uri: str) -> None:
    # a NOT NULL violation is the caller's mistake, not a concurrent writer's name (the
    # store's own checks name such a field first: this is the database's last word)
    from leptonic.errors import AlreadyExists
    from leptonic.storage.metadata import _tables as t
    from leptonic.storage.metadata._sqlbase import insert_row

    with SQLMetadataStore.from_uri(sql_uri) as store:
        values = {"description": None, "pii_salt": "s", "created_at": datetime.now(UTC)}
        missing = pytest.raises(InvalidInput, match="a required field is missing")
        with missing, store._write() as conn:
            insert_row(conn, t.workspaces, AlreadyExists("taken"), name="credit", **values)
        assert store.list_workspaces() == []


@pytest.mark.postgres
def test_text_postgresql_cannot_store_is_refused_not_retried(postgres_db: str) -> None:
    with SQLMetadataStore.from_uri(postgres_db) as store:
        with pytest.raises(InvalidInput, match="NUL character"):
            store.create_workspace(Workspace("credit", description="a\x00b"))
        assert store.list_workspaces() == []


def test_a_unique_conflict_is_recognised_with_psycopg2_too() -> None:
    import sqlalchemy as sa

    from leptonic.storage.metadata._sqlbase import _unique_violation

    class Psycopg2Error(Exception):
        pgcode = "23505"

    class NotNull(Exception):
        pgcode = "23502"

    assert _unique_violation(sa.exc.IntegrityError("INSERT", {}, Psycopg2Error()))
    assert not _unique_violation(sa.exc.IntegrityError("INSERT", {}, NotNull()))


def test_the_store_names_a_missing_required_field(sql_uri: str) -> None:
    with SQLMetadataStore.from_uri(sql_uri) as store:
        with pytest.raises(InvalidInput, match=r"Workspace\.description") as info:
            store.create_workspace(Workspace("credit", description=None))  # type: ignore[arg-type]
        assert info.value.field == "description"
        assert store.list_workspaces() == []


def test_a_value_that_cannot_be_bound_is_invalid_input(sql_uri: str) -> None:
    # a value past the store's checks that SQLAlchemy cannot bind (StatementError, not a
    # driver error) is the caller's mistake: InvalidInput, without the SQL statement
    import sqlalchemy as sa

    from leptonic.storage.metadata import _tables as t

    with SQLMetadataStore.from_uri(sql_uri) as store:
        insert = sa.insert(t.workspaces).values(
            name="credit", description="", pii_salt="s", created_at="now"
        )
        refused = pytest.raises(InvalidInput, match=r"wrong type.*expected a datetime")
        with refused as info, store._write() as conn:
            conn.execute(insert)
        assert "INSERT" not in str(info.value)
        assert store.list_workspaces() == []


@contextmanager
def _statements(store: SQLMetadataStore, marker: str) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and parameters) holding ``marker`` that ``store`` runs meanwhile."""
    import sqlalchemy as sa

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if marker in statement:
            seen.append((statement, params))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)


def _plan(store: SQLMetadataStore, statement: str, params: Any) -> str:
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
        else:  # on a table this small, only an index the query cannot use leaves a seq scan
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql(f"EXPLAIN {statement}", params)
        return "\n".join(str(row[-1]) for row in rows)


def test_run_ids_are_found_by_a_range_of_the_primary_key(sql_uri: str) -> None:
    from leptonic.core import Run, RunStatus

    with SQLMetadataStore.from_uri(sql_uri) as store:
        store.create_workspace(Workspace("credit"))
        for i in range(20):
            store.create_run(Run(f"{i:02}ab", "credit", RunStatus.QUEUED, {}, 7))
        with _statements(store, "substr") as seen:
            assert store.find_run_ids("credit", "1") == ["10ab", "11ab"]
        plan = _plan(store, *seen[-1])
        if store.engine.dialect.name == "sqlite":
            assert "(id>? AND id<?)" in plan, plan
        else:
            assert "pk_runs" in plan and "Index Cond: ((id >=" in plan, plan


def test_both_routes_are_listed_by_the_route_index(sql_uri: str) -> None:
    from leptonic.core import Model, ModelVersion
    from leptonic.core.endpoint import Endpoint, PolicyVersion, Prediction, Route

    with SQLMetadataStore.from_uri(sql_uri) as store:
        store.create_workspace(Workspace("credit"))
        store.add_model_version(
            ModelVersion("credit", "m", 0, "binary", "sk", "r", "d", "k", "ab", {}, {}, ""),
            create=Model("credit", "m", "binary"),
        )
        store.create_endpoint(
            Endpoint("credit", "decide", (Route("m", 1, 100),)),
            PolicyVersion("credit", "decide", 0, {}),
        )
        at = datetime(2024, 5, 1, tzinfo=UTC)
        store.append_predictions(
            [
                Prediction("credit", "decide", f"r{i}", "m", 1, 0.5, "ok", at, route=route)
                for i in range(10)
                for route in ("live", "shadow")
            ]
        )
        with _statements(store, "UNION ALL") as seen:
            assert len(store.list_predictions("credit", "decide", route=None, limit=3)) == 3
        plan = _plan(store, *seen[-1])
        index = "ix_predictions_workspace_endpoint_route_at"
        if store.engine.dialect.name == "sqlite":
            assert plan.count(f"SEARCH predictions USING INDEX {index}") == 2, plan
        else:
            assert plan.count(index) == 2 and "Seq Scan" not in plan, plan
