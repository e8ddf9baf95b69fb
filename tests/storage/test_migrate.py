"""Schema migrations of the SQL metadata store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from leptonic.core import Job, Run, RunStatus, User, Workspace
from leptonic.errors import StoreError
from leptonic.storage.metadata import _tables as t
from leptonic.storage.metadata._engine import make_engine
from leptonic.storage.metadata._tables import VERSION_TABLE, metadata
from leptonic.storage.metadata.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)
from leptonic.storage.metadata.sql import SQLMetadataStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leptonic.db'}"
    return str(request.getfixturevalue("postgres_db"))


@pytest.fixture
def engine(db_uri: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_uri)
    yield engine
    engine.dispose()


def _set_revision(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = :rev"), {"rev": revision})


def test_migrations_ship_with_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0002_access_audit_jobs.py").is_file()
    assert head_revision() == "0006"


def test_fresh_sqlite_database_has_no_revision(tmp_path: Path) -> None:
    assert current_revision(f"sqlite:///{tmp_path / 'new.db'}") is None


def test_upgrade_twice_is_idempotent(db_uri: str, engine: sa.Engine) -> None:
    upgrade(db_uri)
    assert current_revision(db_uri) == head_revision()
    with SQLMetadataStore.from_uri(db_uri) as store:
        store.create_workspace(Workspace("credit"))
    upgrade(db_uri)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with SQLMetadataStore.from_uri(db_uri) as store:
        assert [w.name for w in store.list_workspaces()] == ["credit"]


def test_migrated_schema_matches_the_tables(db_uri: str, engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        assert compare_metadata(context, metadata) == []


def test_newer_schema_is_refused(db_uri: str, engine: sa.Engine) -> None:
    upgrade(engine)
    _set_revision(engine, "9999_from_the_future")
    try:
        assert current_revision(engine) == "9999_from_the_future"
        with pytest.raises(StoreError, match=r"'9999_from_the_future'.*newer.*pip install -U"):
            SQLMetadataStore.from_uri(db_uri)
        with pytest.raises(StoreError, match="Upgrade leptonic"):
            upgrade(db_uri)
    finally:
        _set_revision(engine, head_revision())


def test_store_opens_and_creates_its_schema(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'deep' / 'er' / 'leptonic.db'}"
    with SQLMetadataStore.from_uri(uri) as store:
        assert store.list_workspaces() == []
    assert current_revision(uri) == head_revision()


def _empty(engine: sa.Engine) -> None:
    """Drop every table, as in a database Leptonic never saw."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    else:
        engine.dispose()
        Path(str(engine.url.database)).unlink(missing_ok=True)


def test_concurrent_first_opens_migrate_once(db_uri: str, engine: sa.Engine) -> None:
    """Several processes starting at once on an empty database all get the schema."""
    _empty(engine)
    assert current_revision(engine) is None
    barrier = threading.Barrier(4, timeout=60)

    def open_store(_: int) -> str:
        barrier.wait()
        with SQLMetadataStore.from_uri(db_uri) as store:
            return str(store.list_workspaces())

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(open_store, range(4))) == ["[]"] * 4
    assert current_revision(engine) == head_revision()


def _migrate(engine: sa.Engine, action: str, revision: str) -> None:
    """Run ``alembic upgrade|downgrade revision`` on ``engine`` in one transaction."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


NEW_TABLES = {"users", "api_tokens", "memberships", "audit_events", "jobs"}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_from_0001_keeps_the_data(db_uri: str, engine: sa.Engine) -> None:
    _empty(engine)
    _migrate(engine, "upgrade", "0001")
    assert current_revision(engine) == "0001"
    assert not NEW_TABLES & _tables(engine)
    with engine.begin() as conn:  # rows written by a Leptonic at revision 0001
        conn.execute(
            sa.insert(t.workspaces).values(
                name="credit", description="Crédit", pii_salt="salt", created_at=T0
            )
        )
        conn.execute(
            sa.insert(t.runs).values(
                id="r1",
                workspace="credit",
                status="succeeded",
                spec={"task": "binary"},
                seed=7,
                params={},
                metrics={"auc": 0.8},
                timings={},
                artifacts={},
                inputs=[],
                created_by="ana",
                created_at=T0,
            )
        )

    with SQLMetadataStore.from_uri(db_uri) as store:
        assert current_revision(engine) == head_revision()
        assert store.get_workspace("credit") == Workspace("credit", "Crédit", "salt", T0)
        assert store.get_run("credit", "r1") == Run(
            "r1",
            "credit",
            RunStatus.SUCCEEDED,
            {"task": "binary"},
            7,
            metrics={"auc": 0.8},
            created_by="ana",
            created_at=T0,
        )
        store.create_user(User("ana", created_at=T0))
        store.create_job(Job("j1", "credit", "train", {"spec": {}}, created_at=T0))
        assert store.get_user("ana").created_at == T0
        assert [j.id for j in store.list_jobs("credit")] == ["j1"]


def test_downgrade_to_0001_and_back(db_uri: str, engine: sa.Engine) -> None:
    with SQLMetadataStore.from_uri(db_uri) as store:
        store.create_workspace(Workspace("credit", created_at=T0))
        store.create_user(User("ana", created_at=T0))
    _migrate(engine, "downgrade", "0001")
    try:
        assert current_revision(engine) == "0001"
        assert not NEW_TABLES & _tables(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.select(t.workspaces.c.name)).scalars().all() == ["credit"]
    finally:
        upgrade(engine)
    assert _tables(engine) >= NEW_TABLES
    with SQLMetadataStore.from_uri(db_uri) as store:
        assert store.list_users() == []
        assert [w.name for w in store.list_workspaces()] == ["credit"]
