"""What is particular to the SQL metadata store: URIs, connection settings, errors.

Behaviour shared with the other stores is in tests/conformance/test_metadata_store.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
    # a NOT NULL violation is the caller's mistake, not a concurrent writer's name
    with SQLMetadataStore.from_uri(sql_uri) as store:
        with pytest.raises(InvalidInput, match="a required field is missing"):
            store.create_workspace(Workspace("credit", description=None))  # type: ignore[arg-type]
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
