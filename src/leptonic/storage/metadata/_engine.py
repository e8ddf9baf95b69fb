"""SQLAlchemy engines for metadata store URIs.

``sqlite:///path/to.db`` gets WAL journal mode, foreign keys and a busy
timeout on every connection, and SQLAlchemy (not the ``sqlite3`` module)
emits ``BEGIN``: ``BEGIN IMMEDIATE`` for writes, so concurrent writers queue
on the database lock instead of failing when a read transaction upgrades.
``postgresql://`` uses psycopg 3.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL

from leptonic.errors import ConfigError, MissingExtra

__all__ = [
    "BUSY_TIMEOUT_MS",
    "WRITE_OPTION",
    "display_uri",
    "driver_message",
    "make_engine",
    "writer",
]

#: How long a SQLite connection waits for the database lock.
BUSY_TIMEOUT_MS = 30_000

#: Execution option marking a connection whose transaction will write.
WRITE_OPTION = "leptonic_write"


def display_uri(uri: str | URL) -> str:
    """``uri`` with any password hidden, for messages."""
    try:
        return sa.make_url(uri).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable URI>"


def driver_message(exc: sa.exc.DBAPIError) -> str:
    """The database driver's message of ``exc``, on one line."""
    return " ".join(str(exc.orig).split())


def _parse(uri: str) -> URL:
    try:
        return sa.make_url(uri)
    except sa.exc.ArgumentError:
        raise ConfigError(
            f"invalid metadata store URI {display_uri(uri)!r}: expected "
            "'sqlite:///path/to/leptonic.db' or 'postgresql://user:password@host:5432/db'"
        ) from None


def make_engine(uri: str) -> sa.Engine:
    """An engine for ``uri``; raises :class:`ConfigError` or :class:`MissingExtra`."""
    url = _parse(uri)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        return _postgresql_engine(url)
    raise ConfigError(
        f"unsupported metadata store URI {display_uri(url)!r}: "
        "use sqlite:///path/to/leptonic.db or postgresql://..."
    )


def writer(engine: sa.Engine) -> sa.Engine:
    """A view of ``engine`` whose transactions are meant to write."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _sqlite_engine(url: URL) -> sa.Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ConfigError(
            f"the metadata store URI {url.render_as_string()!r} names no database file: "
            "use sqlite:///path/to/leptonic.db (or memory:// for a throwaway store)"
        )
    if url.host:  # sqlite://host/x.db: SQLite has no server
        raise ConfigError(
            f"the metadata store URI {url.render_as_string()!r} names a host; SQLite opens a "
            "file: use sqlite:///path/to/leptonic.db (three slashes, then the path)"
        )
    try:
        path = Path(database).expanduser()  # sqlite:///~/leptonic.db: in the home folder
        path.parent.mkdir(parents=True, exist_ok=True)
    except (RuntimeError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"the metadata store's folder for {database!r} cannot be used ({reason}); "
            "point LEPTONIC_DB (or LEPTONIC_HOME) at a writable folder"
        ) from None
    url = url.set(database=str(path))
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN (see _on_begin), not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgresql_engine(url: URL) -> sa.Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername == "postgresql+psycopg" and importlib.util.find_spec("psycopg") is None:
        raise MissingExtra("psycopg", "postgres", "The PostgreSQL metadata store")
    return sa.create_engine(url, pool_pre_ping=True)
