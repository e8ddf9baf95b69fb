"""Interaction tables → integer codes, sparse matrices and confidences.

An interactions table has one row per event: a user, an item, optionally a
timestamp and a weight (a rating, a quantity, a dwell time...). Users and
items get dense integer codes (sorted external ids), events of the same
(user, item) pair are summed into one raw weight, and a :class:`Confidence`
turns raw weights into the confidences the models learn from.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from leptonic.errors import DataError, InvalidInput, SchemaError

__all__ = ["Confidence", "Ids", "Interactions", "parse_timestamps"]

#: Confidence schemes: c = 1, c = 1 + alpha·r, c = 1 + alpha·log(1 + r/eps).
SCHEMES = ("binary", "linear", "log")

_INTEGER = re.compile(r"-?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Confidence:
    """How much a positive interaction counts, from its raw weight ``r`` (≥ 0).

    ``binary``: c = 1 · ``linear``: c = 1 + alpha·r · ``log``: c = 1 + alpha·log(1 + r/eps)
    (Hu, Koren & Volinsky, 2008). Raw weights of repeated (user, item) events
    are summed first.
    """

    scheme: str = "binary"
    alpha: float = 1.0
    eps: float = 1.0

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise InvalidInput(
                f"confidence scheme is {self.scheme!r}; use one of {', '.join(SCHEMES)}",
                field="confidence",
            )
        for name in ("alpha", "eps"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise InvalidInput(
                    f"confidence {name} is {value!r}; it must be a positive number", field=name
                )

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        r = np.asarray(raw, dtype=np.float64)
        if self.scheme == "binary":
            return np.ones_like(r)
        if self.scheme == "linear":
            return 1.0 + self.alpha * r
        return 1.0 + self.alpha * np.log1p(r / self.eps)

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "alpha": self.alpha, "eps": self.eps}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Confidence:
        return cls(str(data["scheme"]), float(data["alpha"]), float(data["eps"]))


class Ids:
    """External ids ↔ dense codes, for users or items.

    Ids are integers or strings (decided by the training data); a lookup
    accepts either spelling of an integer id (``5`` or ``"5"``).
    """

    def __init__(self, values: Iterable[Any], kind: str) -> None:
        self.kind = kind
        self.values: list[Any] = list(values)
        self.index: dict[Any, int] = {v: i for i, v in enumerate(self.values)}
        if len(self.index) != len(self.values):
            raise DataError("ids must be unique", field="ids")

    def __len__(self) -> int:
        return len(self.values)

    def key(self, value: Any) -> Any:
        """``value`` in this table's id type, or None when it cannot be one.

        Integer ids are int64 (what a saved model holds): text of ASCII digits
        with an optional ``-``, or a whole number, from -2**63 to 2**63 - 1.
        """
        if isinstance(value, bool | np.bool_) or value is None:
            return None
        if self.kind == "int":
            number: int | None = None
            if isinstance(value, numbers.Integral):
                number = int(value)
            elif isinstance(value, str):
                text = value.strip()
                # at most 19 significant digits: int() of longer text is refused or slow
                if _INTEGER.fullmatch(text) and len(text.lstrip("-").lstrip("0")) <= 19:
                    number = int(text)
            elif isinstance(value, float) and value.is_integer():
                number = int(value)
            return number if number is not None and _INT64_MIN <= number <= _INT64_MAX else None
        if isinstance(value, str):
            return value
        if isinstance(value, numbers.Integral):
            return str(int(value))
        return None

    def code(self, value: Any) -> int | None:
        key = self.key(value)
        return None if key is None else self.index.get(key)

    def add(self, value: Any) -> int:
        """Append a new id; return its code."""
        key = self.key(value)
        if key is None:
            raise InvalidInput(
                f"id {value!r} is not a valid {self.kind} id for this model", field="id"
            )
        self.index[key] = len(self.values)
        self.values.append(key)
        return self.index[key]

    def array(self) -> np.ndarray:
        """The ids as a numpy array (int64 or unicode), for saving without pickle."""
        if self.kind == "int":
            return np.asarray(self.values, dtype=np.int64)
        return np.asarray(self.values, dtype=np.str_)

    @classmethod
    def from_array(cls, values: np.ndarray) -> Ids:
        kind = "int" if np.issubdtype(values.dtype, np.integer) else "str"
        return cls(values.tolist(), kind)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _frame(table: Any, what: str) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, pa.Table):
        return table.to_pandas()
    raise InvalidInput(
        f"the {what} table must be a pyarrow Table or a pandas DataFrame, got {type(table).__name__}",
        field=what,
    )


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"the {what} table has no column {missing[0]!r}; its columns are: "
            f"{', '.join(map(str, frame.columns))} — name the right column in the spec",
            field=missing[0],
        )


def _codes(values: pd.Series, column: str) -> tuple[np.ndarray, Ids]:
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(
            f"column {column!r} has missing values (first at row {row}); drop those rows",
            field=column,
        )
    if pd.api.types.is_bool_dtype(values.dtype):
        raise DataError(f"column {column!r} holds booleans, not ids", field=column)
    if pd.api.types.is_integer_dtype(values.dtype) or (
        pd.api.types.is_float_dtype(values.dtype) and bool((values % 1 == 0).all())
    ):
        kind, clean = "int", values.astype(np.int64)
    else:
        kind, clean = "str", values.astype(str)
    codes, uniques = pd.factorize(clean, sort=True)
    return codes.astype(np.int64), Ids(uniques.tolist(), kind)


def parse_timestamps(values: Any, field: str = "timestamp") -> np.ndarray:
    """Timestamps as float seconds since the Unix epoch (UTC).

    Accepts numbers (already epoch seconds), datetimes and ISO 8601 strings.
    Missing or unparseable values raise :class:`InvalidInput` naming ``field``.
    """
    if isinstance(values, list) and all(_is_number(v) for v in values):
        out = np.asarray(values, dtype=np.float64)  # the common online case, without pandas
        if not np.isfinite(out).all():
            raise InvalidInput(f"{field} holds a non-finite number", field=field)
        return out
    series = values if isinstance(values, pd.Series) else pd.Series(list(np.atleast_1d(values)))
    if series.isna().any():
        row = int(np.flatnonzero(series.isna().to_numpy())[0])
        raise InvalidInput(
            f"{field} has a missing value at position {row}; every event needs a time",
            field=field,
        )
    if pd.api.types.is_bool_dtype(series.dtype):
        raise InvalidInput(f"{field} holds booleans, not times", field=field)
    if pd.api.types.is_numeric_dtype(series.dtype):
        out = series.to_numpy(dtype=np.float64)
    elif pd.api.types.is_datetime64_any_dtype(series.dtype):
        out = _epoch_seconds(pd.to_datetime(series, utc=True))
    else:
        items = series.tolist()
        numeric = np.fromiter((_is_number(v) for v in items), dtype=bool, count=len(items))
        out = np.empty(len(items), dtype=np.float64)
        out[numeric] = [float(v) for v, n in zip(items, numeric, strict=True) if n]
        rest = [
            v if isinstance(v, str) else str(v)
            for v, n in zip(items, numeric, strict=True)
            if not n
        ]
        if rest:
            try:
                ts = pd.to_datetime(pd.Series(rest, dtype=object), utc=True, format="ISO8601")
            except (ValueError, TypeError, OverflowError):
                bad = _first_bad_time(rest)
                raise InvalidInput(
                    f"{field} value {bad!r} is not a time; use epoch seconds or ISO 8601 "
                    "(e.g. 2024-05-01T12:30:00Z)",
                    field=field,
                ) from None
            out[~numeric] = _epoch_seconds(ts)
    if not np.isfinite(out).all():
        raise InvalidInput(f"{field} holds a non-finite number", field=field)
    return out


def _epoch_seconds(ts: pd.Series) -> np.ndarray:
    """UTC datetimes (any resolution) → float seconds since the epoch."""
    delta = ts - pd.Timestamp(0, tz="UTC")
    return np.asarray(delta / pd.Timedelta(seconds=1), dtype=np.float64)


def _first_bad_time(items: list[Any]) -> Any:
    for v in items:
        try:
            pd.to_datetime(pd.Series([v], dtype=object), utc=True, format="ISO8601")
        except (ValueError, TypeError, OverflowError):
            return v
    return items[0]


def check_weights(values: Any, field: str = "weight") -> np.ndarray:
    """Raw weights as floats; missing, non-finite or negative values raise."""
    try:
        w = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{field} must hold numbers", field=field) from None
    if w.size and (not np.isfinite(w).all() or (w < 0).any()):
        bad = w[~np.isfinite(w) | (w < 0)][0]
        raise InvalidInput(
            f"{field} has the value {bad!r}; weights must be finite and ≥ 0", field=field
        )
    return w


@dataclass
class Interactions:
    """Events as integer codes: the input of every recommender trainer."""

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray | None
    user_ids: Ids
    item_ids: Ids

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return int(self.users.size)

    @classmethod
    def from_table(
        cls,
        table: Any,
        *,
        user: str = "user",
        item: str = "item",
        timestamp: str | None = None,
        weight: str | None = None,
        min_weight: float | None = None,
    ) -> Interactions:
        """Read an interactions table, checking every column.

        Rows with a weight below ``min_weight`` are dropped (e.g. keep ratings
        ≥ 4 only). Rows that repeat a (user, item, timestamp) triple are an
        error: the same event recorded twice would count twice.
        """
        frame = _frame(table, "interactions")
        columns = [c for c in (user, item, timestamp, weight) if c is not None]
        _require(frame, columns, "interactions")
        if len(frame) == 0:
            raise DataError("the interactions table has no rows", field="interactions")
        w = (
            check_weights(frame[weight].to_numpy(), field=weight)
            if weight is not None
            else np.ones(len(frame))
        )
        ts = parse_timestamps(frame[timestamp], field=timestamp) if timestamp else None
        keep = np.ones(len(frame), dtype=bool)
        if min_weight is not None:
            keep = w >= min_weight
            if not keep.any():
                raise DataError(
                    f"no interaction has {weight} ≥ {min_weight}; lower min_weight",
                    field="min_weight",
                )
            frame = frame.loc[keep].reset_index(drop=True)
            w = w[keep]
            ts = ts[keep] if ts is not None else None
        u, user_ids = _codes(frame[user], user)
        i, item_ids = _codes(frame[item], item)
        if ts is not None:
            triples = pd.DataFrame({"u": u, "i": i, "t": ts})
            dup = triples.duplicated()
            if dup.any():
                row = int(np.flatnonzero(dup.to_numpy())[0])
                raise DataError(
                    f"{int(dup.sum())} duplicate event(s): the same {user}, {item} and "
                    f"{timestamp} appear more than once (first repeat: {user}="
                    f"{user_ids.values[u[row]]!r}, {item}={item_ids.values[i[row]]!r}); "
                    "drop the duplicates before training",
                    field=timestamp,
                )
        if len(user_ids) < 2 or len(item_ids) < 2:
            raise DataError(
                f"a recommender needs at least 2 users and 2 items; got {len(user_ids)} "
                f"and {len(item_ids)}",
                field="interactions",
            )
        return cls(u, i, w, ts, user_ids, item_ids)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The events where ``mask`` is True, with the same id tables."""
        ts = self.timestamps[mask] if self.timestamps is not None else None
        return Interactions(
            self.users[mask], self.items[mask], self.weights[mask], ts, self.user_ids, self.item_ids
        )

    def matrix(self) -> Any:
        """Users × items CSR of summed raw weights (sorted indices)."""
        import scipy.sparse as sp

        m = sp.csr_matrix(
            (self.weights, (self.users, self.items)), shape=(self.n_users, self.n_items)
        )
        m.sum_duplicates()
        m.sort_indices()
        return m

    def presence(self) -> Any:
        """Users × items CSR with 1 where the pair has at least one event."""
        m = self.matrix()
        m.data = np.ones_like(m.data)
        return m

    def last_times(self, like: Any) -> np.ndarray | None:
        """The latest timestamp of each stored pair of ``like`` (a CSR from :meth:`matrix`)."""
        if self.timestamps is None:
            return None
        key = self.users * self.n_items + self.items
        order = np.lexsort((self.timestamps, key))
        k_sorted = key[order]
        last = np.r_[k_sorted[1:] != k_sorted[:-1], True]
        keys, times = k_sorted[last], self.timestamps[order][last]
        rows = np.repeat(np.arange(like.shape[0]), np.diff(like.indptr))
        want = rows.astype(np.int64) * self.n_items + like.indices
        return np.asarray(times[np.searchsorted(keys, want)], dtype=np.float64)


def attribute_table(
    table: Any, key: str, ids: Ids, what: str
) -> tuple[dict[str, list[Any]], list[str]]:
    """Attribute columns of ``table`` aligned to ``ids`` (None where unknown).

    Returns the columns and the names of rows' keys that are not in ``ids``
    (they are ignored: attributes of users or items without interactions).
    """
    frame = _frame(table, what)
    _require(frame, [key], what)
    if frame[key].duplicated().any():
        dup = frame[key][frame[key].duplicated()].iloc[0]
        raise DataError(f"the {what} table lists {key}={dup!r} twice", field=key)
    codes = [ids.code(v) for v in frame[key].tolist()]
    unknown = [str(v) for v, c in zip(frame[key].tolist(), codes, strict=True) if c is None]
    columns: dict[str, list[Any]] = {}
    for name in frame.columns:
        if name == key:
            continue
        values: list[Any] = [None] * len(ids)
        for c, v in zip(codes, frame[name].tolist(), strict=True):
            if c is not None:
                values[c] = plain_value(v)
        columns[str(name)] = values
    return columns, unknown


def plain_value(value: Any) -> Any:
    """A JSON-friendly attribute value: scalars, lists of scalars, or None."""
    if value is None:
        return None
    if isinstance(value, np.ndarray | list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)
