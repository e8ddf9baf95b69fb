"""SQL over stored Parquet snapshots, through DuckDB.

:func:`connect_duckdb` opens a connection with bounded memory that spills to
a private folder; :func:`parquet_sql` and :func:`sample_sql` make table
expressions over a Parquet file (the whole file, or evenly spaced rows),
:func:`quote_ident` quotes a column name and :func:`value_sql` selects a
column's values with NaN as missing. Shared by schema inference, quality
checks and PII detection.

DuckDB matches identifiers without regard to case, even quoted ones: the
columns of a snapshot never differ only in case (ingestion refuses such
names), so a quoted name always selects the column it names.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import duckdb

__all__ = ["connect_duckdb", "parquet_sql", "quote_ident", "sample_sql", "value_sql"]

#: The column DuckDB's ``file_row_number`` option adds to a Parquet scan.
_ROW_NUMBER = "file_row_number"


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier.

    Examples
    --------
    >>> print(quote_ident("net income"))
    "net income"
    """
    return '"' + name.replace('"', '""') + '"'


def value_sql(f: pa.Field) -> str:
    """SQL for the values of column ``f``: NaN counts as missing (NULL) in a float column.

    Parquet statistics leave NaN out, and DuckDB's statistics propagation then
    folds ``isnan()`` to false: run ``SET disabled_optimizers =
    'statistics_propagation'`` on the connection before using it.

    Examples
    --------
    >>> print(value_sql(pa.field("x", pa.float64())))
    (CASE WHEN isnan("x") THEN NULL ELSE "x" END)
    """
    q = quote_ident(f.name)
    if pa.types.is_floating(f.type):
        return f"(CASE WHEN isnan({q}) THEN NULL ELSE {q} END)"
    return q


def parquet_sql(path: str | os.PathLike[str], **options: bool) -> str:
    """A ``read_parquet('<path>')`` table expression with the path safely quoted."""
    literal = "'" + os.fspath(path).replace("'", "''") + "'"
    extra = "".join(f", {k}={'true' if v else 'false'}" for k, v in options.items())
    return f"read_parquet({literal}{extra})"


def sample_sql(path: str | os.PathLike[str], num_rows: int, sample_size: int) -> str:
    """A subquery over about ``sample_size`` evenly spaced rows of a Parquet file.

    Every k-th row is taken, so the sample spans the file and is the same on
    every run; ``num_rows`` is the file's row count. Rows are numbered by
    DuckDB's ``file_row_number`` option, or, when the file has a column of
    that name, by ``row_number()`` over the scan (which keeps the file's order)
    under a generated name that no column has.
    """
    step = max(1, -(-num_rows // max(sample_size, 1)))
    if step == 1:
        return parquet_sql(path)
    taken = {name.casefold() for name in pq.read_schema(path).names}
    if _ROW_NUMBER not in taken:
        source = parquet_sql(path, file_row_number=True)
        return f"(SELECT * EXCLUDE ({_ROW_NUMBER}) FROM {source} WHERE {_ROW_NUMBER} % {step} = 0)"
    row = "_leptonic_row"
    while row in taken:
        row = "_" + row
    numbered = f"(SELECT *, row_number() OVER () - 1 AS {row} FROM {parquet_sql(path)})"
    return f"(SELECT * EXCLUDE ({row}) FROM {numbered} WHERE {row} % {step} = 0)"


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
