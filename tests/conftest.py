"""Fixtures shared by the whole test suite.

Keep each group under its own heading; fixtures used by one package belong in
that package's ``conftest.py``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

# --- PostgreSQL --------------------------------------------------------------
# ``postgres_uri`` (session): a fresh, empty database created for this test
# session and dropped after it. ``postgres_db`` (per test): the same database
# with every table emptied, for tests that need a clean store. Both skip when
# PostgreSQL is not reachable. The admin URI comes from LEPTONIC_TEST_PG.

PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_HOW_TO = (
    "start PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) "
    "or set LEPTONIC_TEST_PG=postgresql://user:password@host:port/postgres"
)


def _libpq_uri(uri: str) -> str:
    """``uri`` without a SQLAlchemy driver suffix (``postgresql+psycopg://``)."""
    scheme, sep, rest = uri.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg", reason=f"psycopg is not installed; {PG_HOW_TO}")
    from psycopg import sql
    from sqlalchemy.engine import make_url

    admin_uri = _libpq_uri(os.environ.get("LEPTONIC_TEST_PG", PG_ADMIN_DEFAULT))
    try:
        admin = psycopg.connect(admin_uri, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        pytest.skip(f"PostgreSQL is not reachable ({reason}); {PG_HOW_TO}")
    name = f"leptonic_test_{secrets.token_hex(6)}"
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(admin_uri).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        admin.close()


@pytest.fixture
def postgres_db(postgres_uri: str) -> str:
    """The session's PostgreSQL database with all tables emptied (schema kept)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT LIKE '%alembic_version'"
            )
        ]
        if tables:
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )
    return postgres_uri


# --- S3 ----------------------------------------------------------------------
# ``s3_endpoint`` (session): the address of an S3-compatible server for this
# test session, LEPTONIC_TEST_S3 when set (a MinIO, say), else moto's S3
# server started in this process. ``s3_uri`` (per test): an ``s3://`` artifact
# URI on a fresh, empty bucket, with its own local cache folder.

S3_HOW_TO = "install the dev extra (moto[s3,server]) or set LEPTONIC_TEST_S3=http://host:port"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("boto3", reason=f"boto3 is not installed; {S3_HOW_TO}")
    if os.environ.get("LEPTONIC_TEST_S3"):
        yield os.environ["LEPTONIC_TEST_S3"]
        return
    server_module = pytest.importorskip("moto.server", reason=f"moto is not installed; {S3_HOW_TO}")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_uri(
    s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    import boto3

    if not os.environ.get("LEPTONIC_TEST_S3"):
        # moto takes any credentials; a real server reads them from the environment.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "leptonic-test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leptonic-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"leptonic-test-{secrets.token_hex(6)}"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=bucket)
    cache = tmp_path_factory.mktemp("s3-cache")
    yield f"s3://{bucket}/artifacts?endpoint={s3_endpoint}&cache={cache}"
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", ()):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


# --- Ray ---------------------------------------------------------------------
# ``ray_executor`` (session): Ray started in this process with 2 CPUs, once for
# the whole session (a start takes seconds); skips when the ray extra is absent.


@pytest.fixture(scope="session")
def ray_executor() -> Iterator[Any]:
    pytest.importorskip("ray", reason="the Ray compute backend needs the ray extra")
    from leptonic.compute import open_executor

    executor = open_executor("ray://local?cpus=2")
    yield executor
    executor.close()
