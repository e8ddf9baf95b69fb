"""Data contracts and schema inference.

A :class:`Contract` is what a team declares about a dataset: the target, a
role for some columns, which columns are (or are not) personal data. It is
read from a small TOML (or JSON) file by :func:`load_contract`::

    target = "default"
    description = "loan applicants"

    [roles]
    customer_id = "id"
    notes = "text"

    [pii]
    email = "email"                 # declare a column PII of a kind
    age = false                     # declare a column NOT PII (overrides detection)
    allow_in_training = ["age"]     # PII columns that keep a feature role

:func:`infer_schema` gives every column of a Parquet snapshot a
:class:`~leptonic.core.dataset.Column` (type, role, PII kind, nullability)
from DuckDB aggregates over the file. The rules, first match wins:

1. a role declared in the contract;
2. the target (from the contract or the ``target`` argument; a target is never guessed);
3. ``pii`` when the column holds personal data and is not in ``allow_in_training``;
4. ``ignore`` for a column with no values (NaN counts as none), or of a type no role
   fits (binary, nested, durations and times of day: declare a role, or convert
   them to numbers, e.g. a duration in days);
5. ``timestamp`` for timestamp and date types, and for strings that all parse as ISO
   dates/times;
6. ``id`` for an integer or string column named like an id (``id``, ``*_id``,
   ``uuid``, ``*_key``...) whose values are all present and all distinct;
7. ``categorical`` for booleans;
8. ``numeric`` for integer, floating-point and decimal columns, including
   integers with few distinct values (ratings, counts): they keep their order;
9. ``text`` for strings with more than :data:`CATEGORICAL_MAX_DISTINCT` distinct
   values, mostly distinct (at least :data:`TEXT_MIN_DISTINCT_RATIO`) and on
   average at least :data:`TEXT_MIN_AVG_LENGTH` characters long;
10. ``categorical`` for every other string column.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from leptonic.core.dataset import Column, ColumnRole
from leptonic.errors import SchemaError
from leptonic.governance.pii import PII_KINDS, _snake
from leptonic.governance.sql import (
    connect_duckdb,
    parquet_sql,
    quote_ident,
    sample_sql,
    value_sql,
)

__all__ = [
    "CATEGORICAL_MAX_DISTINCT",
    "CONTRACT_PII_KINDS",
    "TEXT_MIN_AVG_LENGTH",
    "TEXT_MIN_DISTINCT_RATIO",
    "Contract",
    "infer_schema",
    "load_contract",
]

#: String columns with at most this many distinct values are categorical.
CATEGORICAL_MAX_DISTINCT = 50
#: Strings must average at least this many characters to be text.
TEXT_MIN_AVG_LENGTH = 20
#: ... and at least this share of their values must be distinct.
TEXT_MIN_DISTINCT_RATIO = 0.5
#: PII kinds a contract may declare: the detected ones, plus ``other``.
CONTRACT_PII_KINDS: tuple[str, ...] = (*PII_KINDS, "other")

_SCREEN_ROWS = 10_000
_TOP_KEYS = ("target", "description", "roles", "pii")
_ID_NAME = re.compile(r"^(?:id|uuid|guid|key)$|_(?:id|uuid|guid|key)$|^id_")


def _roles_help() -> str:
    return ", ".join(r.value for r in ColumnRole)


@dataclass(frozen=True)
class Contract:
    """What a team declares about a dataset.

    Parameters
    ----------
    target
        The label column, if any.
    description
        Free text.
    roles
        Column → declared role; overrides inference.
    pii
        Column → declared PII kind, or ``None`` for "not PII" (overrides detection).
    allow_in_training
        PII columns that keep their inferred feature role (they are still
        masked in previews).
    """

    target: str | None = None
    description: str = ""
    roles: Mapping[str, ColumnRole] = field(default_factory=dict)
    pii: Mapping[str, str | None] = field(default_factory=dict)
    allow_in_training: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", MappingProxyType(dict(self.roles)))
        object.__setattr__(self, "pii", MappingProxyType(dict(self.pii)))
        object.__setattr__(self, "allow_in_training", tuple(self.allow_in_training))

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def columns(self) -> list[str]:
        """Every column the contract names, sorted."""
        names = set(self.roles) | set(self.pii) | set(self.allow_in_training)
        if self.target is not None:
            names.add(self.target)
        return sorted(names)

    def to_dict(self) -> dict[str, Any]:
        """The contract in the shape of its file (JSON-serialisable)."""
        pii: dict[str, Any] = {k: (v if v is not None else False) for k, v in self.pii.items()}
        if self.allow_in_training:
            pii["allow_in_training"] = list(self.allow_in_training)
        out: dict[str, Any] = {}
        if self.target is not None:
            out["target"] = self.target
        if self.description:
            out["description"] = self.description
        out["roles"] = {k: v.value for k, v in self.roles.items()}
        out["pii"] = pii
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "contract") -> Contract:
        """Build a contract from its file's content, checking it strictly.

        Raises
        ------
        SchemaError
            For an unknown key, role or PII kind, or a value of the wrong type,
            naming the key and the fix.
        """
        if not isinstance(data, Mapping):
            raise SchemaError(f"{origin}: expected a table of keys, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_TOP_KEYS))
        if unknown:
            raise SchemaError(
                f"{origin}: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"allowed keys: {', '.join(_TOP_KEYS)}",
                field=unknown[0],
            )
        target = data.get("target")
        if target is not None and (not isinstance(target, str) or not target):
            raise SchemaError(
                f"{origin}: 'target' must be a column name, got {target!r}", field="target"
            )
        description = data.get("description", "")
        if not isinstance(description, str):
            raise SchemaError(f"{origin}: 'description' must be text", field="description")
        roles = _parse_roles(data.get("roles", {}), origin)
        pii, allow = _parse_pii(data.get("pii", {}), origin)
        declared_targets = sorted(c for c, r in roles.items() if r is ColumnRole.TARGET)
        if len(declared_targets) > 1 or (
            declared_targets and target not in (None, *declared_targets)
        ):
            raise SchemaError(
                f"{origin}: more than one target ({', '.join(filter(None, [target, *declared_targets]))}); "
                f"keep one 'target'",
                field="target",
            )
        if declared_targets:
            target = declared_targets[0]
        for column, kind in pii.items():
            if kind is None and roles.get(column) is ColumnRole.PII:
                raise SchemaError(
                    f"{origin}: column {column!r} has role 'pii' but [pii] says it is not PII; "
                    f"remove one of the two",
                    field=column,
                )
        return cls(target, description, roles, pii, allow)

    def check_columns(self, names: Sequence[str]) -> None:
        """Raise :class:`SchemaError` if the contract names a column not in ``names``."""
        present = set(names)
        missing = [c for c in self.columns if c not in present]
        if missing:
            raise SchemaError(
                f"the contract names column(s) {', '.join(map(repr, missing))} that the data "
                f"does not have; fix the contract (columns are: {', '.join(names)})",
                field=missing[0],
            )

    def apply_pii(self, detected: Mapping[str, str]) -> dict[str, str]:
        """``detected`` with the contract's declarations applied.

        Declared kinds are added, columns declared not PII are removed, and a
        column given role ``pii`` without a kind becomes ``other``.
        """
        out = dict(detected)
        for column, kind in self.pii.items():
            if kind is None:
                out.pop(column, None)
            else:
                out[column] = kind
        for column, role in self.roles.items():
            if role is ColumnRole.PII and column not in out:
                out[column] = "other"
        return out


def _parse_roles(raw: Any, origin: str) -> dict[str, ColumnRole]:
    if not isinstance(raw, Mapping):
        raise SchemaError(
            f'{origin}: [roles] must map column names to roles, e.g. customer_id = "id"',
            field="roles",
        )
    roles: dict[str, ColumnRole] = {}
    for column, role in raw.items():
        try:
            roles[column] = ColumnRole(role)
        except (ValueError, TypeError):
            raise SchemaError(
                f"{origin}: [roles] {column} = {role!r} is not a role; use one of {_roles_help()}",
                field=column,
            ) from None
    return roles


def _parse_pii(raw: Any, origin: str) -> tuple[dict[str, str | None], tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise SchemaError(
            f'{origin}: [pii] must map column names to a kind or false, e.g. email = "email"',
            field="pii",
        )
    pii: dict[str, str | None] = {}
    allow: tuple[str, ...] = ()
    for column, kind in raw.items():
        if column == "allow_in_training":
            if not isinstance(kind, list) or not all(isinstance(c, str) for c in kind):
                raise SchemaError(
                    f"{origin}: [pii] allow_in_training must be a list of column names, "
                    f'e.g. ["age"]',
                    field="allow_in_training",
                )
            allow = tuple(kind)
        elif kind is False:
            pii[column] = None
        elif isinstance(kind, str) and kind in CONTRACT_PII_KINDS:
            pii[column] = kind
        else:
            raise SchemaError(
                f"{origin}: [pii] {column} = {kind!r} is not a PII kind; use one of "
                f"{', '.join(CONTRACT_PII_KINDS)}, or false for 'not PII'",
                field=column,
            )
    return pii, allow


def load_contract(path: str | os.PathLike[str]) -> Contract:
    """Read and check a contract from a ``.toml`` or ``.json`` file.

    Raises
    ------
    SchemaError
        For a missing or unparsable file, or content that does not hold.
    """
    p = Path(path)
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "not found"
        raise SchemaError(f"contract file {p} {what}; check the path", field="contract")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
        raise SchemaError(
            f"contract file {p} is not valid {kind} ({exc}); fix the syntax", field="contract"
        ) from None
    return Contract.from_dict(data, origin=f"contract {p.name}")


# -- inference -----------------------------------------------------------------


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _is_numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _column_stats(
    parquet_path: str | os.PathLike[str],
    schema: pa.Schema,
    *,
    undecided: set[str],
    exact_distinct: set[str],
    temp_directory: str | os.PathLike[str] | None,
) -> dict[str, dict[str, Any]]:
    """Per column: non-null count; for ``undecided`` columns also distinct count and string facts.

    NaN counts as missing in floating-point columns (as in the quality report).

    Whether strings parse as timestamps is first screened on a sample; only
    the columns whose sampled values all parse are checked in full.
    """
    rows = pq.read_metadata(parquet_path).num_rows
    strings = [f.name for f in schema if f.name in undecided and _is_string(f.type)]
    with connect_duckdb(temp_directory=temp_directory) as con:
        # NaN is missing, as in the quality report: keep DuckDB from folding isnan()
        # to false from the Parquet statistics (which leave NaN out).
        con.execute("SET disabled_optimizers = 'statistics_propagation'")
        maybe_time: set[str] = set()
        if strings:
            screen = ", ".join(
                f"count({quote_ident(n)}) = count(TRY_CAST({quote_ident(n)} AS TIMESTAMP))"
                for n in strings
            )
            sample = sample_sql(parquet_path, rows, _SCREEN_ROWS)
            flags = con.execute(f"SELECT {screen} FROM {sample}").fetchone() or ()
            maybe_time = {n for n, ok in zip(strings, flags, strict=True) if ok}
        exprs: list[str] = ["count(*)"]
        keys: list[tuple[str, str]] = []
        for f in schema:
            q = value_sql(f)
            exprs.append(f"count({q})")
            keys.append((f.name, "count"))
            if f.name not in undecided or not (_is_string(f.type) or _is_numeric(f.type)):
                continue
            exprs.append(
                f"count(DISTINCT {q})"
                if f.name in exact_distinct
                else f"approx_count_distinct({q})"
            )
            keys.append((f.name, "distinct"))
            if _is_string(f.type):
                exprs.append(f"avg(length({q}))")
                keys.append((f.name, "avg_length"))
            if f.name in maybe_time:
                exprs.append(f"count(TRY_CAST({q} AS TIMESTAMP))")
                keys.append((f.name, "timestamps"))
        row = con.execute(f"SELECT {', '.join(exprs)} FROM {parquet_sql(parquet_path)}").fetchone()
    if row is None:  # pragma: no cover - an aggregate always returns a row
        row = (0,) * len(exprs)
    stats: dict[str, dict[str, Any]] = {f.name: {"rows": row[0]} for f in schema}
    for (name, key), value in zip(keys, row[1:], strict=True):
        stats[name][key] = value
    return stats


def _infer_role(f: pa.Field, s: Mapping[str, Any]) -> ColumnRole:
    t = f.type
    count = int(s.get("count") or 0)
    if count == 0 or pa.types.is_null(t):
        return ColumnRole.IGNORE
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return ColumnRole.TIMESTAMP
    if _is_string(t) and s.get("timestamps") == count:
        return ColumnRole.TIMESTAMP
    distinct = int(s.get("distinct") or 0)
    if (
        (pa.types.is_integer(t) or _is_string(t))
        and _ID_NAME.search(_snake(f.name))
        and count == s["rows"]
        and distinct == count
    ):
        return ColumnRole.ID
    if pa.types.is_boolean(t):
        return ColumnRole.CATEGORICAL
    if _is_numeric(t):
        return ColumnRole.NUMERIC
    if _is_string(t):
        if (
            distinct > CATEGORICAL_MAX_DISTINCT
            and distinct >= TEXT_MIN_DISTINCT_RATIO * count
            and float(s.get("avg_length") or 0.0) >= TEXT_MIN_AVG_LENGTH
        ):
            return ColumnRole.TEXT
        return ColumnRole.CATEGORICAL
    return ColumnRole.IGNORE


def infer_schema(
    parquet_path: str | os.PathLike[str],
    *,
    pii: Mapping[str, str] | None = None,
    contract: Contract | None = None,
    target: str | None = None,
    temp_directory: str | os.PathLike[str] | None = None,
) -> tuple[Column, ...]:
    """One :class:`Column` per column of a Parquet file, in file order.

    Parameters
    ----------
    parquet_path
        The snapshot to describe.
    pii
        Column → detected PII kind (see :func:`~leptonic.governance.pii.detect_pii`);
        the contract's declarations are applied on top.
    contract
        Declared roles, target and PII; its columns must exist.
    target
        The target column; must agree with the contract's, if both are given.
    temp_directory
        Where DuckDB may spill.

    Raises
    ------
    SchemaError
        If the contract names a column the file lacks, or two targets disagree.
    """
    schema = pq.read_schema(parquet_path)
    names = schema.names
    if contract is not None:
        contract.check_columns(names)
        if target is not None and contract.target is not None and target != contract.target:
            raise SchemaError(
                f"target {target!r} disagrees with the contract's target {contract.target!r}; "
                f"pass one of them",
                field="target",
            )
        target = target or contract.target
        pii_map = contract.apply_pii(pii or {})
        declared = dict(contract.roles)
        allowed = set(contract.allow_in_training)
    else:
        pii_map, declared, allowed = dict(pii or {}), {}, set()
    id_like = {
        f.name
        for f in schema
        if f.name not in declared
        and (pa.types.is_integer(f.type) or _is_string(f.type))
        and _ID_NAME.search(_snake(f.name))
    }
    undecided = {
        f.name
        for f in schema
        if f.name not in declared
        and f.name != target
        and not (f.name in pii_map and f.name not in allowed)
    }
    stats = _column_stats(
        parquet_path,
        schema,
        undecided=undecided,
        exact_distinct=id_like,
        temp_directory=temp_directory,
    )
    columns: list[Column] = []
    for f in schema:
        s = stats[f.name]
        kind = pii_map.get(f.name)
        if f.name in declared:
            role = declared[f.name]
        elif f.name == target:
            role = ColumnRole.TARGET
        elif kind is not None and f.name not in allowed:
            role = ColumnRole.PII
        else:
            role = _infer_role(f, s)
        columns.append(
            Column(
                name=f.name,
                dtype=str(f.type),
                role=role,
                pii=kind,
                nullable=int(s.get("count") or 0) < int(s["rows"]),
            )
        )
    return tuple(columns)
