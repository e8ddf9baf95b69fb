"""Helpers shared by the feature transformers: value coercion, fit checks, JSON floats.

The record path (``transform_record`` / ``transform_value``) and the table path
(``transform``) must agree value for value, so both coerce through the same two
functions here: :func:`to_float` for numeric columns and :func:`category_key`
for categorical ones. The table path applies them once per distinct value
(after :func:`pandas.factorize`), never once per row.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from leptonic.errors import DataError, InvalidInput, NotFitted, SchemaError

__all__ = [
    "MISSING",
    "OTHER",
    "ParamsMixin",
    "category_codes",
    "category_key",
    "check_fitted",
    "check_reserved_categories",
    "check_saved",
    "check_unique_names",
    "decode_float",
    "encode_float",
    "fit_numeric_column",
    "numeric_column",
    "require_columns",
    "to_float",
]

MISSING = "__missing__"
"""Label of the bin / category that holds missing values."""

OTHER = "__other__"
"""Label of the bin / category that holds rare (and, where stated, unseen) categories."""

_NA = pd.NA
_NAT = pd.NaT
_FLOAT_TOKENS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class ParamsMixin:
    """``get_params`` for estimators whose ``__init__`` stores each argument as is."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor arguments, as scikit-learn's ``get_params`` does.

        Parameters
        ----------
        deep
            Accepted for scikit-learn compatibility; there are no nested estimators.

        Returns
        -------
        dict
            Argument name to value.
        """
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def _json_params(self) -> dict[str, Any]:
        """``get_params()`` with numpy scalars made plain and tuples made lists."""
        out: dict[str, Any] = {}
        for name, value in self.get_params().items():
            if isinstance(value, np.generic):
                value = value.item()
            elif isinstance(value, tuple | list):
                value = [v.item() if isinstance(v, np.generic) else v for v in value]
            out[name] = value
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def check_fitted(estimator: object, attribute: str) -> None:
    """Raise :class:`~leptonic.errors.NotFitted` unless ``estimator`` has ``attribute``.

    Parameters
    ----------
    estimator
        The transformer to check.
    attribute
        A learned attribute that ``fit`` (or ``from_dict``) always sets.
    """
    if not hasattr(estimator, attribute):
        name = type(estimator).__name__
        raise NotFitted(
            f"This {name} is not fitted yet: call fit(...) with training data first, "
            f"or load a fitted one with {name}.from_dict(...)."
        )


def to_float(value: Any) -> float:
    """Coerce one value of a numeric column to ``float``; missing or unparseable → NaN.

    ``None``, NaN, ``pandas.NA`` and strings that do not parse as a number are
    all missing. Booleans become 0.0 / 1.0. A float32 / float16 number becomes
    the float64 of its shortest decimal form (``float32(0.7)`` → ``0.7``), as in
    :func:`numeric_column`.
    """
    if value is None:
        return math.nan
    if isinstance(value, np.floating) and value.itemsize < 8:
        return float(str(value))
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def category_key(value: Any) -> str | None:
    """Normalise one value of a categorical column to its string key, ``None`` if missing.

    Strings are kept as they are. Numbers that compare equal get the same key,
    as they do in Python (and in :func:`pandas.factorize`): integers, integral
    floats and booleans become their integer text (``3`` and ``3.0`` → ``"3"``,
    ``True`` → ``"1"``), so a category seen as an int in training matches a
    float at serving time. A float32 / float16 number is read as the float64 of
    its shortest decimal form first (``float32(0.7)`` → ``"0.7"``), so it
    matches the same number sent as JSON. ``None``, NaN, ``pandas.NA`` and
    ``NaT`` are missing.
    """
    if value is None or value is _NA or value is _NAT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        narrow = isinstance(value, np.floating) and value.itemsize < 8
        x = float(str(value)) if narrow else float(value)
        if math.isnan(x):
            return None
        if x.is_integer():
            return str(int(x))
        return repr(x)
    return str(value)


def _narrow_float(dtype: Any) -> np.dtype[Any] | None:
    """The numpy dtype of a float32 / float16 column (numpy, nullable or Arrow), else None."""
    np_dtype = getattr(dtype, "numpy_dtype", dtype)
    if isinstance(np_dtype, np.dtype) and np_dtype.kind == "f" and np_dtype.itemsize < 8:
        return np_dtype
    return None


def _widen(values: np.ndarray) -> np.ndarray:
    """float32 / float16 values as the float64 of their shortest decimal form.

    ``float32(0.7)`` is ``0.699999988…`` when widened as is; its shortest
    decimal form ``"0.7"`` gives the float64 ``0.7`` that JSON and Python
    send at serving time. Each distinct value is converted once.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup = np.append(np.asarray(uniques).astype(str).astype(np.float64), math.nan)
    return lookup[codes]


def _factorize(series: pd.Series) -> tuple[np.ndarray, Any]:
    """:func:`pandas.factorize`, with a clear error for cells that hold lists or dicts."""
    try:
        return pd.factorize(series, use_na_sentinel=True)
    except TypeError:
        column = str(series.name)
        example = next((v for v in series if not isinstance(v, str) and not _hashable(v)), None)
        raise DataError(
            f"column {column!r} holds values that are not single numbers or strings "
            f"(e.g. {example!r}, a {type(example).__name__}); give one value per cell: "
            "spread the items over separate columns or join them into a string.",
            field=column,
        ) from None


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def numeric_column(series: pd.Series) -> np.ndarray:
    """Return a column as a float64 array, coercing exactly as :func:`to_float` does.

    float32 / float16 values become the float64 of their shortest decimal form
    (see :func:`to_float`), so a value stored as float32 in training matches the
    same number sent as JSON at serving time.

    Raises
    ------
    DataError
        If a cell holds a list, dict or other unhashable value.
    """
    if pd.api.types.is_numeric_dtype(series.dtype):
        narrow = _narrow_float(series.dtype)
        if narrow is not None:
            return _widen(series.to_numpy(dtype=narrow, na_value=np.nan))
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    codes, uniques = _factorize(series)
    lookup = np.array([to_float(u) for u in uniques] + [math.nan], dtype=np.float64)
    return lookup[codes]


def fit_numeric_column(series: pd.Series, column: str, *, what: str) -> np.ndarray:
    """:func:`numeric_column` of a training column, refusing one that holds no numbers.

    Dates, durations and text would otherwise all become missing and the
    column a constant.

    Raises
    ------
    DataError
        If the column's dtype is a date or a duration, or it has values and none
        of them is a number.
    """
    dtype = series.dtype
    if getattr(dtype, "kind", "") in ("M", "m"):  # datetime64, timedelta64 (numpy, tz, Arrow)
        raise DataError(
            f"{what}: numeric column {column!r} holds dates or durations (dtype {dtype}), "
            "not numbers; convert it to a number first (e.g. days since a fixed date, "
            "or a duration in days) or declare it categorical.",
            field=column,
        )
    x = numeric_column(series)
    if np.isnan(x).all() and series.notna().any():
        examples = [str(v) for v in series[series.notna()].unique()[:3]]
        raise DataError(
            f"{what}: numeric column {column!r} holds no numbers (values such as "
            f"{examples}); convert it to numbers or declare it categorical.",
            field=column,
        )
    return x


def category_codes(series: pd.Series) -> tuple[np.ndarray, list[str | None]]:
    """Factorise a column into per-row codes and the :func:`category_key` of each code.

    Returns
    -------
    codes
        Integer code per row; ``-1`` for missing values.
    keys
        Key of each code (several codes may share a key, e.g. ``1`` and ``"1"``;
        a key may be ``None`` for values that are missing only after normalising).

    Raises
    ------
    DataError
        If a cell holds a list, dict or other unhashable value.
    """
    codes, uniques = _factorize(series)
    narrow = _narrow_float(series.dtype)
    if narrow is not None:  # pandas widens float32 uniques as is: key their decimal form
        uniques = _widen(np.asarray(uniques, dtype=narrow)).tolist()
    return np.asarray(codes, dtype=np.intp), [category_key(u) for u in uniques]


def check_reserved_categories(keys: Iterable[str | None], column: str, *, what: str) -> None:
    """Raise :class:`~leptonic.errors.DataError` if a category is named like an internal label.

    ``MISSING`` and ``OTHER`` name the bins of missing values and of rare
    categories; a real category of either name would be mistaken for them.

    Parameters
    ----------
    keys
        The :func:`category_key` of each value of the column.
    column
        The column, named in the message.
    what
        The caller, e.g. ``"WoEBinner.fit"``.
    """
    reserved = sorted({k for k in keys if k in (MISSING, OTHER)})
    if reserved:
        raise DataError(
            f"{what}: categorical column {column!r} holds the value(s) {reserved}, which "
            f"are reserved for missing values ({MISSING!r}) and rare categories "
            f"({OTHER!r}); rename them in the data (e.g. {reserved[0].strip('_')!r}) "
            "and fit again.",
            field=column,
        )


def require_columns(frame: Any, columns: Iterable[str], *, what: str) -> None:
    """Raise :class:`~leptonic.errors.SchemaError` naming the ``columns`` absent from ``frame``.

    Also when one of ``columns`` names several columns of ``frame``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(
            f"{what} expects a pandas DataFrame, got {type(frame).__name__}; "
            "wrap the data with pandas.DataFrame(...).",
            field="X",
        )
    if not frame.columns.is_unique:
        repeated = set(frame.columns[frame.columns.duplicated()])
        duplicated = list(dict.fromkeys(c for c in columns if c in repeated))
        if duplicated:
            raise SchemaError(
                f"{what}: the input has more than one column named {duplicated}; "
                "rename or drop the duplicates so that each name is used once.",
                field=str(duplicated[0]),
            )
    present = set(frame.columns)
    missing = [c for c in columns if c not in present]
    if missing:
        raise SchemaError(
            f"{what}: column(s) {missing} are missing from the input; "
            f"it has {list(map(str, frame.columns))}. Add them (values may be missing).",
            field=missing[0],
        )


def check_unique_names(names: Sequence[str], *, field: str) -> None:
    """Raise :class:`~leptonic.errors.InvalidInput` if ``names`` repeats a column."""
    seen: set[str] = set()
    repeated: list[str] = []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise InvalidInput(f"{field} lists column(s) {repeated} more than once.", field=field)


def encode_float(value: float) -> float | str:
    """Encode a float for strict JSON: NaN and ±inf become ``"nan"``, ``"inf"``, ``"-inf"``."""
    x = float(value)
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "nan"
    return "inf" if x > 0 else "-inf"


def decode_float(value: Any) -> float:
    """Invert :func:`encode_float` (``None`` also decodes to NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        try:
            return _FLOAT_TOKENS[value]
        except KeyError:
            raise InvalidInput(
                f"cannot decode {value!r} as a number in a saved transformer; "
                "the dict was not written by to_dict().",
                field="d",
            ) from None
    return float(value)


def check_saved(d: Any, kind: str) -> dict[str, Any]:
    """Check that ``d`` is a dict written by ``kind.to_dict()`` and return it."""
    if not isinstance(d, dict) or d.get("type") != kind:
        found = d.get("type") if isinstance(d, dict) else type(d).__name__
        raise InvalidInput(
            f"{kind}.from_dict expects the dict written by {kind}.to_dict(), got type {found!r}.",
            field="d",
        )
    return d
