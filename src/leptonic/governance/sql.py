"""SQL over stored Parquet snapshots, through DuckDB.

:func:`connect_duckdb` opens a connection with bounded memory that spills to
a private folder; :func:`parquet_sql` and :func:`sample_sql` make table
expressions over a Parquet file (the whole file, or evenly spaced rows) and
:func:`quote_ident` quotes a column name. Shared by schema inference, quality
checks and PII detection.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["connect_duckdb", "parquet_sql", "quote_ident", "sample_sql"]


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier.

    Examples
    --------
    >>> print(quote_ident("net income"))
    "net income"
    """
    return '"' + name.replace('"', '""') + '"'


def parquet_sql(path: str | os.PathLike[str], **options: bool) -> str:
    """A ``read_parquet('<path>')`` table expression with the path safely quoted."""
    literal = "'" + os.fspath(path).replace("'", "''") + "'"
    extra = "".join(f", {k}={'true' if v else 'false'}" for k, v in options.items())
    return f"read_parquet({literal}{extra})"


def sample_sql(path: str | os.PathLike[str], num_rows: int, sample_size: int) -> str:
    """A subquery over about ``sample_size`` evenly spaced rows of a Parquet file.

    Every k-th row is taken, so the sample spans the file and is the same on
    every run; ``num_rows`` is the file's row count.
    """
    step = max(1, -(-num_rows // max(sample_size, 1)))
    if step == 1:
        return parquet_sql(path)
    source = parquet_sql(path, file_row_number=True)
    return f"(SELECT * EXCLUDE (file_row_number) FROM {source} WHERE file_row_number % {step} = 0)"


@contextlib.contextmanager
def connect_duckdb(
    *, memory_limit: str = "512MB", temp_directory: str | os.PathLike[str] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a fresh in-memory DuckDB connection with bounded memory, as a context manager.

    Parameters
    ----------
    memory_limit
        DuckDB's own memory cap; larger work spills to disk.
    temp_directory
        The folder in which a private spill folder is made; the system temp
        folder when ``None``. The spill folder is removed on exit.

    Examples
    --------
    >>> with connect_duckdb() as con:
    ...     con.execute("SELECT 1 + 1").fetchone()
    (2,)
    """
    import duckdb

    spill = tempfile.mkdtemp(prefix="leptonic-duckdb-", dir=temp_directory)
    try:
        con = duckdb.connect(
            config={
                "memory_limit": memory_limit,
                "temp_directory": spill,
                "preserve_insertion_order": False,
            }
        )
        try:
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)
