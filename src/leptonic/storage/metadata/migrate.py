"""Schema migrations of the SQL metadata store, run with Alembic from Python.

The migration scripts ship inside the package (``migrations/``); no
``alembic.ini`` is needed. :func:`upgrade` brings a database to the newest
schema this version of Leptonic knows and is safe to run at every start:
it does nothing when the database is already there, and refuses a database
migrated by a newer Leptonic.

Examples
--------
>>> from leptonic.storage.metadata.migrate import upgrade, current_revision, head_revision
>>> upgrade("sqlite:////tmp/leptonic-doc.db")  # doctest: +SKIP
>>> current_revision("sqlite:////tmp/leptonic-doc.db") == head_revision()  # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from leptonic.errors import StoreError
from leptonic.storage.metadata._engine import display_uri, driver_message, make_engine, writer
from leptonic.storage.metadata._tables import VERSION_TABLE

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "head_revision", "upgrade"]

#: Folder of the Alembic environment and its ``versions/`` scripts.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Key of the PostgreSQL advisory lock held while migrating ("LEPT" in ASCII),
# so that several processes starting at once do not migrate concurrently.
_PG_LOCK_KEY = 0x4C455054


def alembic_config() -> Config:
    """An Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest schema revision this version of Leptonic knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships migrations
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}; reinstall leptonic")
    return head


def current_revision(engine_or_uri: sa.Engine | str) -> str | None:
    """The database's schema revision, or ``None`` for a database never migrated."""
    with _engine(engine_or_uri) as engine, _connect(engine) as conn:
        return _revision(conn)


def upgrade(engine_or_uri: sa.Engine | str) -> None:
    """Migrate the database to :func:`head_revision` (``alembic upgrade head``).

    Idempotent. Raises :class:`StoreError` if the database is at a revision
    this version of Leptonic does not know (it was migrated by a newer one).
    """
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    with _engine(engine_or_uri) as engine:
        with _connect(engine) as conn:
            current = _revision(conn)
        _check_known(current, script, engine)
        if current == script.get_current_head():
            return
        with _connect(writer(engine)) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "head")
            except CommandError as exc:
                raise StoreError(
                    f"could not migrate the metadata store {display_uri(engine.url)}: {exc}"
                ) from exc


def _revision(conn: sa.Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    heads = context.get_current_heads()
    return heads[0] if heads else None


def _check_known(current: str | None, script: ScriptDirectory, engine: sa.Engine) -> None:
    if current is None:
        return
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise StoreError(
            f"the metadata store {display_uri(engine.url)} is at schema revision {current!r}, "
            f"which this version of Leptonic does not know (its newest is "
            f"{script.get_current_head()!r}): it was upgraded by a newer Leptonic. "
            f"Upgrade leptonic (pip install -U leptonic) to use it."
        )


@contextmanager
def _engine(engine_or_uri: sa.Engine | str) -> Iterator[sa.Engine]:
    if isinstance(engine_or_uri, sa.Engine):
        yield engine_or_uri
        return
    engine = make_engine(engine_or_uri)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _connect(engine: sa.Engine) -> Iterator[sa.Connection]:
    try:
        conn = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise StoreError(
            f"cannot connect to the metadata store {display_uri(engine.url)}: "
            f"{driver_message(exc)}; check LEPTONIC_DB and that the database server is running"
        ) from exc
    with conn:
        yield conn
