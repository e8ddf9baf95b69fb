"""DuckDB over stored Parquet: quoting, sampling, and a spill folder that goes away."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from leptonic.governance.sql import (
    connect_duckdb,
    parquet_sql,
    quote_ident,
    sample_sql,
    value_sql,
)


def test_sql_quoting(tmp_path: Path) -> None:
    path = tmp_path / "it's here.parquet"
    pq.write_table(pa.table({'we"ird': [1, 2, 3]}), path)
    with connect_duckdb() as con:
        column = quote_ident('we"ird')
        row = con.execute(f"SELECT sum({column}) FROM {parquet_sql(path)}")
        assert row.fetchone() == (6,)


def test_sample_sql_takes_every_kth_row(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"x": list(range(1000))}), path)
    with connect_duckdb() as con:
        rows = con.execute(f"SELECT x FROM {sample_sql(path, 1000, 100)} ORDER BY x").fetchall()
    assert [r[0] for r in rows] == list(range(0, 1000, 10))


def test_duckdb_spill_folder_is_removed(tmp_path: Path) -> None:
    with connect_duckdb(temp_directory=tmp_path) as con:
        con.execute("SELECT 1").fetchone()
        assert len(os.listdir(tmp_path)) == 1
    assert os.listdir(tmp_path) == []


def test_sample_sql_on_a_file_with_a_file_row_number_column(tmp_path: Path) -> None:
    for name in ("file_row_number", "FILE_ROW_NUMBER"):
        path = tmp_path / f"{name}.parquet"
        table = pa.table({name: [7] * 1000, "x": list(range(1000))})
        pq.write_table(table, path, row_group_size=100)
        with connect_duckdb() as con:
            result = con.execute(f"SELECT * FROM {sample_sql(path, 1000, 100)} ORDER BY x")
            rows = result.fetchall()
            names = [d[0] for d in result.description]
        assert names == [name, "x"]
        assert rows == [(7, x) for x in range(0, 1000, 10)]


def test_value_sql_makes_nan_missing(tmp_path: Path) -> None:
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"f": [1.0, float("nan"), None], "s": ["a", "b", None]}), path)
    schema = pq.read_schema(path)
    with connect_duckdb() as con:
        con.execute("SET disabled_optimizers = 'statistics_propagation'")
        counts = ", ".join(f"count({value_sql(f)})" for f in schema)
        assert con.execute(f"SELECT {counts} FROM {parquet_sql(path)}").fetchone() == (1, 2)
