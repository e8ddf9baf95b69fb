"""Transactions and shared lookups of the SQL metadata store.

:class:`SQLStoreBase` holds the engine and opens transactions; the parts of
:class:`~leptonic.storage.metadata.sql.SQLMetadataStore` (``_access``,
``_jobs`` and ``sql`` itself) build on it. Driver errors become
:class:`~leptonic.errors.StoreError` here, once (or
:class:`~leptonic.errors.InvalidInput` when the database refused a value:
retrying would not help): the database's address and the driver's message
go to the log, not into the error, which any API caller may read. A value that
cannot be bound to a statement (``StatementError`` that is no driver error) is
:class:`~leptonic.errors.InvalidInput` too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from leptonic.errors import InvalidInput, NotFound, StoreError
from leptonic.storage.metadata import _tables as t
from leptonic.storage.metadata._engine import display_uri, driver_message, writer

__all__ = ["SQLStoreBase", "insert_row", "require_workspace", "row_exists"]

logger = logging.getLogger("leptonic.store")

#: Dialect name → the backend's name in messages.
_BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


class SQLStoreBase:
    """An engine and its transactions: :meth:`_read` and :meth:`_write`.

    Parameters
    ----------
    engine
        The engine to use; disposed of by the store's ``close``.
    uri
        The URI the engine was made from, kept as :attr:`uri`.
    """

    def __init__(self, engine: sa.Engine, *, uri: str | None = None) -> None:
        self.engine = engine
        self.uri = uri if uri is not None else engine.url.render_as_string(hide_password=False)
        self._writer = writer(engine)

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` on SQLite, committed on success."""
        with self._errors(), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sa.exc.DataError, sa.exc.IntegrityError, OverflowError, UnicodeEncodeError) as exc:
            # the database (or its driver) refused a value: retrying will not help
            logger.info("the metadata store refused a value: %s", _message(exc))
            raise InvalidInput(_refused(exc)) from exc
        except sa.exc.TimeoutError as exc:  # every pooled connection is in use
            logger.error("the metadata store %s: %s", display_uri(self.uri), exc)
            raise StoreError(
                "the metadata store is busy: no database connection came free in time; "
                "try again (an operator may raise the pool size or the server's capacity)"
            ) from exc
        except sa.exc.DBAPIError as exc:
            logger.error(
                "the metadata store %s failed: %s: %s",
                display_uri(self.uri),
                type(exc.orig).__name__,
                driver_message(exc),
            )
            backend = _BACKENDS.get(self.engine.dialect.name, self.engine.dialect.name)
            raise StoreError(
                f"the {backend} metadata store failed; try again. If it keeps failing, an "
                "operator should check the server log for the database's error, that "
                "LEPTONIC_DB names a reachable database, and run `leptonic db upgrade` if "
                "its schema is out of date."
            ) from exc
        except sa.exc.StatementError as exc:
            # not the database's error: a value could not be bound to the statement
            # (a str where a time goes...); the store's own checks name the field first
            reason = " ".join(str(exc.orig).split())  # not str(exc): it holds the SQL
            logger.info("the metadata store could not bind a value: %s", reason)
            raise InvalidInput(
                f"a value of this request has the wrong type ({reason}); check its fields"
            ) from exc


def row_exists(conn: sa.Connection, table: sa.Table, **keys: Any) -> bool:
    """Whether ``table`` has a row with these column values."""
    query = sa.select(sa.literal(1)).select_from(table)
    query = query.where(*(table.c[k] == v for k, v in keys.items()))
    return conn.execute(query).first() is not None


def insert_row(conn: sa.Connection, table: sa.Table, on_conflict: Exception, **values: Any) -> None:
    """Insert one row; raise ``on_conflict`` if a unique key is taken meanwhile (any
    other integrity error, such as a missing required value, propagates)."""
    try:
        conn.execute(sa.insert(table).values(**values))
    except sa.exc.IntegrityError as exc:
        if _unique_violation(exc):
            raise on_conflict from None
        raise


def _unique_violation(exc: sa.exc.IntegrityError) -> bool:
    """Whether ``exc`` is a unique or primary key taken (not NOT NULL, not a foreign key)."""
    orig = exc.orig
    # PostgreSQL: psycopg 3 names it sqlstate, psycopg2 pgcode
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is not None:
        return bool(sqlstate == "23505")
    name = getattr(orig, "sqlite_errorname", "")  # SQLite
    return name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def _message(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return " ".join(str(orig).split())


def _refused(exc: BaseException) -> str:
    """What to tell the caller about a value the database refused (not the driver's
    own words, which name the database's internals)."""
    text = _message(exc)
    if "0x00" in text:  # psycopg: "text fields cannot contain NUL (0x00) bytes"
        return (
            "text may not contain the NUL character (\\x00); remove it from the ids, names "
            "and other text of this request"
        )
    if isinstance(exc, UnicodeEncodeError):
        return (
            "text holds characters that cannot be stored (such as lone surrogates); "
            "send valid Unicode"
        )
    if isinstance(exc, OverflowError) or "out of range" in text:
        return "a number is out of the range the database stores; give a smaller one"
    if isinstance(exc, sa.exc.IntegrityError):
        return (
            "the record is incomplete: a required field is missing (None) or names an "
            "object that does not exist; fill it in"
        )
    return "the database refused a value of this request; check its fields"


def require_workspace(conn: sa.Connection, name: str) -> Row[Any]:
    """The workspace row called ``name``; :class:`NotFound` if there is none."""
    row = conn.execute(sa.select(t.workspaces).where(t.workspaces.c.name == name)).first()
    if row is None:
        raise NotFound(
            f"workspace {name!r} not found; create it with `leptonic workspace create {name}`",
            field="workspace",
        )
    return row
