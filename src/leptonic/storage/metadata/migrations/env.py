"""Alembic environment for the Leptonic metadata store.

Run through :func:`leptonic.storage.metadata.migrate.upgrade`, which passes an
open connection in ``config.attributes["connection"]``; no ``alembic.ini`` is
needed. Called without one (plain ``alembic`` with ``sqlalchemy.url`` set), it
opens an engine for that URL itself.
"""

from __future__ import annotations

from alembic import context

from leptonic.errors import ConfigError
from leptonic.storage.metadata._engine import make_engine
from leptonic.storage.metadata._tables import VERSION_TABLE, metadata


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise ConfigError("no database to migrate: set sqlalchemy.url or pass a connection")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise ConfigError(
        "offline (--sql) migrations are not supported; run `leptonic db upgrade` against the database"
    )
run_migrations_online()
