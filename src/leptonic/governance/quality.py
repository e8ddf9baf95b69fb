"""Data quality report of a Parquet snapshot, computed with DuckDB SQL.

:func:`quality_report` scans the file a few times (never loading it into
Python) and returns a JSON-serialisable dict:

``rows``, ``num_columns``
    Size of the table.
``duplicate_rows``, ``duplicate_rate``
    Rows that repeat an earlier row exactly.
``constant_columns``, ``all_null_columns``
    Column names.
``columns``
    Column → ``{dtype, role, missing, missing_rate, distinct}`` (NaN counts
    as missing in floating-point columns, and as no value in any statistic), plus
    ``min, max, mean, std, q1, q3, outliers, outlier_rate`` for numbers
    (outliers lie beyond 1.5 × IQR from the quartiles), ``min, max`` for
    dates and times, and ``type_mismatch`` for a string column whose values
    mostly, but not all, parse as numbers or dates
    (``{kind, parse_rate, examples}``). A column holding personal data
    (``Column.pii``) gets no ``min``, ``max``, ``q1``, ``q3`` or examples:
    the report never quotes a person's value.
``target``
    For a target column: ``{column, missing, kind}`` with class ``counts``
    and ``rates`` when it has at most :data:`MAX_CLASSES` values, else
    ``mean``/``std``. The classes of a target holding personal data are
    named by position (``"#1"`` the most frequent), never by value.
``issues``
    ``[{severity, column, check, message}]``, severity ``error`` or
    ``warning``, in column order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from leptonic.core.dataset import Column, ColumnRole
from leptonic.errors import SchemaError
from leptonic.governance.sql import (
    connect_duckdb,
    parquet_sql,
    quote_ident,
    sample_sql,
    value_sql,
)

__all__ = [
    "HIGH_MISSING_RATE",
    "HIGH_OUTLIER_RATE",
    "MAX_CLASSES",
    "MINORITY_CLASS_RATE",
    "MISMATCH_MIN_RATE",
    "quality_report",
]

#: A column missing at least this share of values gets a warning.
HIGH_MISSING_RATE = 0.3
#: A numeric column with more than this share of IQR outliers gets a warning.
HIGH_OUTLIER_RATE = 0.05
#: A string column is a type mismatch when more than this share (but not all)
#: of its values parse as numbers or dates.
MISMATCH_MIN_RATE = 0.5
#: A target with at most this many distinct values is reported class by class.
MAX_CLASSES = 50
#: A class rarer than this share of labelled rows gets a warning.
MINORITY_CLASS_RATE = 0.05

_SCREEN_ROWS = 10_000
_EXAMPLES = 5


def _num(value: Any) -> float | int | None:
    """A JSON-safe number: ``None`` for null, NaN and infinity."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    f = float(value)
    return f if math.isfinite(f) else None


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _num(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _is_numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _issue(severity: str, column: str | None, check: str, message: str) -> dict[str, Any]:
    return {"severity": severity, "column": column, "check": check, "message": message}


#: Columns whose aggregates one SELECT computes: each distinct count and quantile keeps
#: a state of its own per thread, and a few hundred of them exceed DuckDB's memory cap.
COLUMNS_PER_SCAN = 32


class _Aggregates:
    """Builds SELECTs of many aggregates (:data:`COLUMNS_PER_SCAN` columns each) and
    reads the results back by name."""

    def __init__(self) -> None:
        self.exprs: dict[str, list[tuple[str, str]]] = {}

    def add(self, column: str, key: str, expr: str) -> None:
        self.exprs.setdefault(column, []).append((key, expr))

    def run(self, con: Any, source: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        columns = list(self.exprs)
        for start in range(0, len(columns), COLUMNS_PER_SCAN):
            keys = [
                (c, k, e)
                for c in columns[start : start + COLUMNS_PER_SCAN]
                for k, e in self.exprs[c]
            ]
            row = con.execute(f"SELECT {', '.join(e for _, _, e in keys)} FROM {source}").fetchone()
            for (column, key, _), value in zip(keys, row, strict=True):
                out.setdefault(column, {})[key] = value
        return out


def _mismatch_candidates(
    con: Any, path: str | os.PathLike[str], rows: int, strings: list[str]
) -> list[tuple[str, str]]:
    """(column, "numeric"|"date") pairs whose sampled values mostly parse as that kind."""
    if not strings:
        return []
    agg = _Aggregates()
    for name in strings:
        q = quote_ident(name)
        agg.add(name, "n", f"count({q})")
        agg.add(name, "numeric", f"count(TRY_CAST({q} AS DOUBLE))")
        agg.add(name, "date", f"count(TRY_CAST({q} AS TIMESTAMP))")
    screened = agg.run(con, sample_sql(path, rows, _SCREEN_ROWS))
    out: list[tuple[str, str]] = []
    for name in strings:
        s = screened[name]
        n = s["n"] or 0
        for kind in ("numeric", "date"):
            if n and s[kind] / n > MISMATCH_MIN_RATE:
                out.append((name, kind))
                break
    return out


def _target_report(
    con: Any, source: str, column: Column, q: str, rows: int, stats: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Class balance (or moments) of the target ``column``, whose values ``q`` selects."""
    labelled = int(stats["count"])
    report: dict[str, Any] = {"column": column.name, "missing": rows - labelled}
    issues: list[dict[str, Any]] = []
    if rows - labelled:
        issues.append(
            _issue(
                "warning",
                column.name,
                "target_missing",
                f"target {column.name!r} is missing in {rows - labelled} row(s); those rows "
                f"cannot be used for training: fill or drop them",
            )
        )
    distinct = int(stats.get("distinct") or 0)
    if distinct <= MAX_CLASSES:
        counts = con.execute(
            f"SELECT {q}, count(*) FROM {source} WHERE {q} IS NOT NULL "
            f"GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
        report["kind"] = "classes"
        if column.pii:  # personal data: name the classes by position, never by value
            report["counts"] = {f"#{i}": int(c) for i, (_, c) in enumerate(counts, 1)}
        else:
            report["counts"] = {str(_json_value(v)): int(c) for v, c in counts}
        report["rates"] = {k: c / labelled for k, c in report["counts"].items()} if labelled else {}
        if distinct == 1:
            issues.append(
                _issue(
                    "error",
                    column.name,
                    "target_constant",
                    f"target {column.name!r} has a single value; a model needs at least two "
                    f"classes: check the export or pick another target",
                )
            )
        elif labelled and min(report["rates"].values()) < MINORITY_CLASS_RATE:
            rare = min(report["rates"], key=report["rates"].__getitem__)
            issues.append(
                _issue(
                    "warning",
                    column.name,
                    "target_imbalance",
                    f"target class {rare!r} is only {report['rates'][rare]:.1%} of labelled "
                    f"rows; expect weak recall on it (consider class weights)",
                )
            )
    else:
        report["kind"] = "continuous"
        report["mean"] = _num(stats.get("mean"))
        report["std"] = _num(stats.get("std"))
    return report, issues


def quality_report(
    parquet_path: str | os.PathLike[str],
    columns: Sequence[Column],
    *,
    target: str | None = None,
    temp_directory: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Profile a Parquet snapshot and list its quality issues.

    Parameters
    ----------
    parquet_path
        The snapshot.
    columns
        Its schema (from :func:`~leptonic.governance.schema.infer_schema`);
        roles decide which checks apply (no outlier count on an id).
    target
        The target column, for the class balance.
    temp_directory
        Where DuckDB may spill.

    Returns
    -------
    dict
        See the module docstring; JSON-serialisable.

    Raises
    ------
    SchemaError
        If ``columns`` or ``target`` name a column the file lacks.
    """
    schema = pq.read_schema(parquet_path)
    rows = pq.read_metadata(parquet_path).num_rows
    present = set(schema.names)
    unknown = [c.name for c in columns if c.name not in present]
    if target is not None and target not in present:
        unknown.append(target)
    if unknown:
        raise SchemaError(
            f"column(s) {', '.join(map(repr, unknown))} are not in {parquet_path}; "
            f"columns are: {', '.join(schema.names)}",
            field=unknown[0],
        )
    by_name = {c.name: c for c in columns}
    source = parquet_sql(parquet_path)
    issues: list[dict[str, Any]] = []
    report: dict[str, Any] = {"rows": rows, "num_columns": len(schema)}

    with connect_duckdb(temp_directory=temp_directory) as con:
        # Parquet min/max statistics leave NaN out, and DuckDB's statistics
        # propagation then folds isnan() to false: keep it from doing so.
        con.execute("SET disabled_optimizers = 'statistics_propagation'")
        # 1. one scan: counts, distinct counts, numeric moments and quartiles
        agg = _Aggregates()
        strings: list[str] = []
        for f in schema:
            q = value_sql(f)
            agg.add(f.name, "count", f"count({q})")
            if pa.types.is_null(f.type) or pa.types.is_nested(f.type):
                continue
            agg.add(f.name, "distinct", f"count(DISTINCT {q})")
            if _is_numeric(f.type):
                agg.add(f.name, "min", f"min({q})")
                agg.add(f.name, "max", f"max({q})")
                agg.add(f.name, "mean", f"avg({q})")
                agg.add(f.name, "std", f"stddev_samp({q})")
                agg.add(f.name, "quartiles", f"quantile_cont({q}, [0.25, 0.75])")
            elif pa.types.is_temporal(f.type):
                agg.add(f.name, "min", f"min({q})")
                agg.add(f.name, "max", f"max({q})")
            elif _is_string(f.type):
                strings.append(f.name)
        stats = agg.run(con, source)

        # 2. outliers beyond 1.5 IQR, and string columns that are mostly numbers/dates
        fences: dict[str, tuple[float, float]] = {}
        for name, s in stats.items():
            quartiles = s.get("quartiles")
            role = by_name[name].role if name in by_name else ColumnRole.NUMERIC
            if quartiles and None not in quartiles and role is ColumnRole.NUMERIC:
                q1, q3 = float(quartiles[0]), float(quartiles[1])
                if not (math.isfinite(q1) and math.isfinite(q3)):
                    continue
                fences[name] = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
        mismatch_kinds = _mismatch_candidates(con, parquet_path, rows, strings)
        agg2 = _Aggregates()
        for name, (lo, hi) in fences.items():
            q = value_sql(schema.field(name))
            agg2.add(name, "outliers", f"count(*) FILTER (WHERE {q} < {lo!r} OR {q} > {hi!r})")
        casts = {"numeric": "DOUBLE", "date": "TIMESTAMP"}
        for name, kind in mismatch_kinds:
            agg2.add(name, "parsed", f"count(TRY_CAST({quote_ident(name)} AS {casts[kind]}))")
        second = agg2.run(con, source)

        # 3. duplicate rows
        distinct_rows = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT * FROM {source})")
        unique = int((distinct_rows.fetchone() or (rows,))[0])
        report["duplicate_rows"] = rows - unique
        report["duplicate_rate"] = (rows - unique) / rows if rows else 0.0

        # 4. per column entries and issues
        col_reports: dict[str, dict[str, Any]] = {}
        constant: list[str] = []
        all_null: list[str] = []
        for f in schema:
            name, s = f.name, stats[f.name]
            column = by_name.get(name)
            count = int(s["count"])
            entry: dict[str, Any] = {
                "dtype": str(f.type),
                "role": str(column.role) if column else None,
                "missing": rows - count,
                "missing_rate": (rows - count) / rows if rows else 0.0,
                "distinct": int(s["distinct"]) if "distinct" in s else None,
            }
            # personal data: counts and rates only, never a value (min, max and
            # quartiles are values of someone's record; so are mismatch examples)
            personal = column is not None and bool(column.pii)
            if "min" in s and not personal:
                entry["min"] = _json_value(s["min"])
                entry["max"] = _json_value(s["max"])
            if "mean" in s:
                entry["mean"] = _num(s["mean"])
                entry["std"] = _num(s["std"])
                if not personal:
                    quartiles = s.get("quartiles") or [None, None]
                    entry["q1"], entry["q3"] = _num(quartiles[0]), _num(quartiles[1])
            if name in fences:
                outliers = int(second[name]["outliers"])
                entry["outliers"] = outliers
                entry["outlier_rate"] = outliers / count if count else 0.0
                if entry["outlier_rate"] > HIGH_OUTLIER_RATE:
                    issues.append(
                        _issue(
                            "warning",
                            name,
                            "outliers",
                            f"{entry['outlier_rate']:.1%} of {name!r} lie beyond 1.5 x IQR; "
                            f"check units and entry errors, or clip them in preprocessing",
                        )
                    )
            if count == 0:
                all_null.append(name)
                issues.append(
                    _issue(
                        "error",
                        name,
                        "all_null",
                        f"column {name!r} has no values; drop it from the file or mark it "
                        f"role 'ignore' in the contract",
                    )
                )
            elif entry["distinct"] == 1:
                constant.append(name)
                issues.append(
                    _issue(
                        "warning",
                        name,
                        "constant",
                        f"column {name!r} has a single value; it carries no information "
                        f"(mark it role 'ignore')",
                    )
                )
            if count and entry["missing_rate"] >= HIGH_MISSING_RATE:
                issues.append(
                    _issue(
                        "warning",
                        name,
                        "missing",
                        f"{entry['missing_rate']:.1%} of {name!r} is missing; impute it or "
                        f"check the export",
                    )
                )
            if name in second and "parsed" in second[name]:
                parsed = int(second[name]["parsed"])
                kind = next(k for n, k in mismatch_kinds if n == name)
                if count and MISMATCH_MIN_RATE < parsed / count < 1.0:
                    examples = (
                        []
                        if personal
                        else con.execute(
                            f"SELECT DISTINCT {quote_ident(name)} FROM {source} "
                            f"WHERE {quote_ident(name)} IS NOT NULL "
                            f"AND TRY_CAST({quote_ident(name)} AS {casts[kind]}) IS NULL "
                            f"ORDER BY 1 LIMIT {_EXAMPLES}"
                        ).fetchall()
                    )
                    entry["type_mismatch"] = {
                        "kind": kind,
                        "parse_rate": parsed / count,
                        "examples": [str(e[0]) for e in examples],
                    }
                    shown = ", ".join(map(repr, entry["type_mismatch"]["examples"]))
                    issues.append(
                        _issue(
                            "warning",
                            name,
                            "type_mismatch",
                            f"{parsed / count:.1%} of {name!r} parse as {kind} but some do not"
                            f"{f' (e.g. {shown})' if shown else ''}; "
                            f"fix those values or declare them missing",
                        )
                    )
            if (
                column is not None
                and column.role is ColumnRole.ID
                and entry["distinct"] is not None
                and entry["distinct"] < count
            ):
                issues.append(
                    _issue(
                        "warning",
                        name,
                        "id_not_unique",
                        f"id column {name!r} has {count - entry['distinct']} repeated value(s)",
                    )
                )
            col_reports[name] = entry

        report["target"] = None
        if target is not None and target in stats and target not in all_null:
            column = by_name.get(target) or Column(
                target, str(schema.field(target).type), ColumnRole.TARGET
            )
            report["target"], target_issues = _target_report(
                con, source, column, value_sql(schema.field(target)), rows, stats[target]
            )
            issues.extend(target_issues)

    if report["duplicate_rows"]:
        issues.append(
            _issue(
                "warning",
                None,
                "duplicate_rows",
                f"{report['duplicate_rows']} row(s) repeat an earlier row exactly; "
                f"de-duplicate the export if they are not real repeats",
            )
        )
    report["constant_columns"] = constant
    report["all_null_columns"] = all_null
    report["columns"] = col_reports
    report["issues"] = issues
    return report
