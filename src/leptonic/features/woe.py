"""Weight-of-evidence (WoE) binning and information value (IV) for binary targets.

This is the credit-scorecard standard: each column is cut into a few bins, every
bin is replaced by its weight of evidence, and the information value ranks the
columns by how well they separate events (defaults) from non-events.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from leptonic.errors import InvalidInput, SchemaError, TargetError
from leptonic.features._common import (
    MISSING,
    OTHER,
    ParamsMixin,
    category_codes,
    category_key,
    check_fitted,
    check_reserved_categories,
    check_saved,
    decode_float,
    encode_float,
    fit_numeric_column,
    numeric_column,
    require_columns,
    to_float,
)

__all__ = ["WoEBinner"]

_FORMAT_VERSION = 1

# A fitted column, laid out for the hot path:
# (is_numeric, edges, woes, missing_woe, lookup, edges_array, woes_array)
_Plan = tuple[bool, list[float], list[float], float, dict[str, float], np.ndarray, np.ndarray]


class WoEBinner(ParamsMixin):
    """Bin columns against a binary target and replace each value by its bin's WoE.

    **Sign convention.** For bin *i*, with smoothing *s*, the overall event rate
    *r* of the fitted rows and *K* bins in the column (the missing-value bin
    included), every bin gets ``2 * s`` pseudo-rows at the overall event rate::

        p_good_i = (non_events_i + 2 * s * (1 - r)) / (non_events_total + 2 * s * (1 - r) * K)
        p_bad_i  = (events_i     + 2 * s * r)       / (events_total     + 2 * s * r * K)
        WoE_i    = ln(p_good_i / p_bad_i)
        IV_i     = (p_good_i - p_bad_i) * WoE_i        IV = sum of IV_i

    so a **higher WoE means a lower event rate (lower risk)**: the usual scorecard
    convention, under which a logistic regression on WoE features gets negative
    coefficients when the event is "default". IV is never negative. Smoothing
    pulls a small bin's WoE towards 0 (the overall rate), never past it: a bin
    without events never gets a lower WoE than the whole population.

    **Numeric columns** start from ``max_bins`` quantile bins, right-closed
    ``(lower, upper]``; adjacent bins holding fewer than ``min_bin_frac`` of the
    rows (and empty ones) are merged into their smaller neighbour; with
    ``monotonic=True`` adjacent bins are then merged until both the event rate
    and the WoE move monotonically across the bins, in opposite directions
    (whichever direction keeps more bins). Missing values get their own bin.

    **Categorical columns** get one bin per category; categories holding fewer
    than ``min_bin_frac`` of the rows are grouped into one ``"__other__"`` bin;
    missing values get their own ``"__missing__"`` bin. Category values are
    compared as text, with integral numbers written without a decimal point
    (``3``, ``3.0`` and ``"3"`` are the same category); the values
    ``"__missing__"`` and ``"__other__"`` are refused (rename them).

    **At transform time** a category never seen in training, and a missing
    value in a column that had no missing values in training, get WoE 0: the
    neutral value, evidence neither way.

    Parameters
    ----------
    max_bins
        Number of quantile bins numeric columns start from (before merging).
    min_bin_frac
        Smallest share of the fitted rows a numeric bin or a category may hold.
    smoothing
        Half the pseudo-rows added to every bin at the overall event rate (see
        above; with as many events as non-events, ``s`` of each), so that a bin
        without events (or without non-events) gets a finite WoE. ``0`` gives
        the textbook (possibly infinite) WoE.
    monotonic
        Merge numeric bins until the event rate and the WoE are monotonic.

    Attributes
    ----------
    columns_ : list of str
        Fitted columns, in order; ``transform`` returns them in this order.
    kinds_ : dict of str to str
        ``"numeric"`` or ``"categorical"`` per column.
    bins_ : dict of str to list of dict
        Per column, its bins in order. Every bin has ``"label"``, ``"count"``,
        ``"events"``, ``"event_rate"``, ``"woe"`` and ``"iv"``; numeric bins also
        ``"lower"`` and ``"upper"`` (the bin is ``lower < x <= upper``; ``None``
        for the ``"__missing__"`` bin); categorical bins ``"categories"`` (the
        list of category keys, empty for ``"__missing__"``).
    information_value_ : dict of str to float
        IV per column.
    n_samples_, n_events_ : int
        Rows and events the binner was fitted on.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [22, 35, 47, 51, 63, 29], "home": list("rorooo")})
    >>> binner = WoEBinner(max_bins=2, min_bin_frac=0.0).fit(X, [1, 0, 0, 0, 0, 1])
    >>> binner.bins_["home"][0]["categories"]
    ['o']
    >>> round(binner.transform_value("home", "r"), 4)  # riskier than "o": negative
    -0.47
    """

    def __init__(
        self,
        max_bins: int = 8,
        min_bin_frac: float = 0.05,
        smoothing: float = 0.5,
        monotonic: bool = True,
    ) -> None:
        self.max_bins = max_bins
        self.min_bin_frac = min_bin_frac
        self.smoothing = smoothing
        self.monotonic = monotonic

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        X: pd.DataFrame | pd.Series | ArrayLike,
        y: ArrayLike,
        *,
        categorical: Sequence[str] | None = None,
    ) -> WoEBinner:
        """Learn the bins of every column of ``X`` against the binary target ``y``.

        Parameters
        ----------
        X
            A DataFrame (one binning per column), a Series (named by its name,
            ``"x"`` if unnamed) or a 1-D array (named ``"x"``).
        y
            Binary target, 0/1 (or booleans); 1 is the event (e.g. default).
        categorical
            Columns to bin as categories. When given, every other column is
            binned as numeric (values coerced to numbers, unparseable → missing);
            when ``None``, columns of a numeric dtype (booleans excepted) are
            numeric and the others categorical.

        Returns
        -------
        WoEBinner
            ``self``, fitted.

        Raises
        ------
        TargetError
            If ``y`` is not 0/1 or holds only one class.
        InvalidInput
            If a parameter is out of range or ``X`` and ``y`` differ in length.
        SchemaError
            If ``X`` has several columns of one name.
        DataError
            If a categorical column holds the value ``"__missing__"`` or
            ``"__other__"`` (the labels of the missing and rare bins), a column
            binned as numeric holds dates, durations or text that is not a
            number, or a cell holds a list or a dict.
        """
        self._check_params()
        frame = _as_frame(X)
        target = _binary_target(y, len(frame))
        columns = [str(c) for c in frame.columns]
        require_columns(frame, columns, what="WoEBinner.fit")  # refuses repeated names
        forced = None if categorical is None else set(categorical)
        if forced is not None:
            unknown = sorted(forced - set(columns))
            if unknown:
                raise SchemaError(
                    f"categorical names column(s) {unknown} that X does not have; X has {columns}.",
                    field=unknown[0],
                )
        n = len(frame)
        n_events = int(target.sum())
        min_count = self.min_bin_frac * n
        kinds: dict[str, str] = {}
        bins: dict[str, list[dict[str, Any]]] = {}
        for name in columns:
            series = frame[name]
            if forced is not None:
                numeric = name not in forced
            else:
                numeric = pd.api.types.is_numeric_dtype(
                    series.dtype
                ) and not pd.api.types.is_bool_dtype(series.dtype)
            if numeric:
                kinds[name] = "numeric"
                x = fit_numeric_column(series, name, what="WoEBinner.fit")
                bins[name] = self._fit_numeric(x, target, min_count)
            else:
                kinds[name] = "categorical"
                bins[name] = self._fit_categorical(name, series, target, min_count)
            _fill_woe(bins[name], n_events, n - n_events, float(self.smoothing))
        self.columns_ = columns
        self.kinds_ = kinds
        self.bins_ = bins
        self.information_value_ = {name: _column_iv(bins[name]) for name in columns}
        self.n_samples_ = n
        self.n_events_ = n_events
        self._build_plans()
        return self

    def fit_transform(
        self,
        X: pd.DataFrame | pd.Series | ArrayLike,
        y: ArrayLike,
        *,
        categorical: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Fit, then transform the same data (see :meth:`fit` and :meth:`transform`)."""
        return self.fit(X, y, categorical=categorical).transform(X)

    def _check_params(self) -> None:
        if isinstance(self.max_bins, bool) or not isinstance(self.max_bins, int | np.integer):
            raise InvalidInput(
                f"max_bins must be an integer >= 1, got {self.max_bins!r}.", field="max_bins"
            )
        if self.max_bins < 1:
            raise InvalidInput(f"max_bins must be >= 1, got {self.max_bins}.", field="max_bins")
        if not _is_number(self.min_bin_frac) or not 0.0 <= float(self.min_bin_frac) < 1.0:
            raise InvalidInput(
                f"min_bin_frac must be in [0, 1), got {self.min_bin_frac!r}; 0.05 is usual.",
                field="min_bin_frac",
            )
        if not _is_number(self.smoothing) or not float(self.smoothing) >= 0.0:
            raise InvalidInput(
                f"smoothing must be >= 0, got {self.smoothing!r}; 0.5 is usual.",
                field="smoothing",
            )

    def _fit_numeric(self, x: np.ndarray, y: np.ndarray, min_count: float) -> list[dict[str, Any]]:
        present = ~np.isnan(x)
        xv, yv = x[present], y[present]
        bins: list[dict[str, Any]] = []
        if xv.size:
            finite = xv[np.isfinite(xv)]
            edges = np.empty(0)
            if finite.size and self.max_bins > 1:
                probs = np.linspace(0.0, 1.0, int(self.max_bins) + 1)[1:-1]
                edges = np.unique(np.quantile(finite, probs))
                edges = edges[edges < xv.max()]  # a cut at the maximum leaves an empty bin
            idx = np.searchsorted(edges, xv, side="left")
            k = edges.size + 1
            cuts = edges.tolist()
            counts = np.bincount(idx, minlength=k).astype(np.float64).tolist()
            events = np.bincount(idx, weights=yv, minlength=k).tolist()
            _merge_small(cuts, counts, events, max(min_count, 1.0))
            if self.monotonic and len(counts) > 2:
                prior = (float(y.mean()), float(self.smoothing))
                up = _merge_monotone(list(cuts), list(counts), list(events), 1.0, prior)
                down = _merge_monotone(list(cuts), list(counts), list(events), -1.0, prior)
                cuts, counts, events = up if len(up[1]) >= len(down[1]) else down
            lowers = [-math.inf, *cuts]
            uppers = [*cuts, math.inf]
            for lo, hi, c, e in zip(lowers, uppers, counts, events, strict=True):
                right = "]" if math.isfinite(hi) else ")"
                bins.append(
                    {
                        "label": f"({_fmt(lo)}, {_fmt(hi)}{right}",
                        "lower": lo,
                        "upper": hi,
                        "count": int(c),
                        "events": int(e),
                    }
                )
        n_missing = int(x.size - xv.size)
        if n_missing:
            events_missing = int(y[~present].sum())
            bins.append(
                {
                    "label": MISSING,
                    "lower": None,
                    "upper": None,
                    "count": n_missing,
                    "events": events_missing,
                }
            )
        return bins

    def _fit_categorical(
        self, name: str, series: pd.Series, y: np.ndarray, min_count: float
    ) -> list[dict[str, Any]]:
        codes, keys = category_codes(series)
        check_reserved_categories(keys, name, what="WoEBinner.fit")
        present = codes >= 0
        counts_u = np.bincount(codes[present], minlength=len(keys))
        events_u = np.bincount(codes[present], weights=y[present], minlength=len(keys))
        stats: dict[str, list[int]] = {}
        n_missing = int((~present).sum())
        events_missing = int(y[~present].sum())
        for key, c, e in zip(keys, counts_u.tolist(), events_u.tolist(), strict=True):
            if key is None:
                n_missing += int(c)
                events_missing += int(e)
                continue
            entry = stats.setdefault(key, [0, 0])
            entry[0] += int(c)
            entry[1] += int(e)
        ordered = sorted(stats.items(), key=lambda kv: (-kv[1][0], kv[0]))
        bins: list[dict[str, Any]] = []
        rare: list[str] = []
        rare_count = rare_events = 0
        for key, (c, e) in ordered:
            if c < min_count:
                rare.append(key)
                rare_count += c
                rare_events += e
            else:
                bins.append({"label": key, "categories": [key], "count": c, "events": e})
        if rare:
            bins.append(
                {
                    "label": OTHER,
                    "categories": sorted(rare),
                    "count": rare_count,
                    "events": rare_events,
                }
            )
        if n_missing:
            bins.append(
                {"label": MISSING, "categories": [], "count": n_missing, "events": events_missing}
            )
        return bins

    def _build_plans(self) -> None:
        plans: dict[str, _Plan] = {}
        for name in self.columns_:
            bins = self.bins_[name]
            missing_woe = next((b["woe"] for b in bins if b["label"] == MISSING), 0.0)
            values = [b for b in bins if b["label"] != MISSING]
            if self.kinds_[name] == "numeric":
                edges = [float(b["upper"]) for b in values[:-1]]
                woes = [float(b["woe"]) for b in values]
                plans[name] = (
                    True,
                    edges,
                    woes,
                    float(missing_woe),
                    {},
                    np.asarray(edges, dtype=np.float64),
                    np.asarray(woes, dtype=np.float64),
                )
            else:
                lookup = {cat: float(b["woe"]) for b in values for cat in b["categories"]}
                empty = np.empty(0)
                plans[name] = (False, [], [], float(missing_woe), lookup, empty, empty)
        self._plans = plans

    # ------------------------------------------------------------ transform

    def transform(self, X: pd.DataFrame | pd.Series | ArrayLike) -> np.ndarray:
        """Replace every value by the WoE of its bin.

        Parameters
        ----------
        X
            A DataFrame holding (at least) the fitted columns, or a Series /
            1-D array for a single fitted column (matched by the Series name,
            or the only fitted column).

        Returns
        -------
        numpy.ndarray
            float64, shape ``(n_rows, n_columns)`` for a DataFrame (columns in
            ``columns_`` order), ``(n_rows,)`` for a Series or 1-D array.
        """
        check_fitted(self, "_plans")
        if isinstance(X, pd.DataFrame):
            require_columns(X, self.columns_, what="WoEBinner.transform")
            out = np.empty((len(X), len(self.columns_)), dtype=np.float64)
            for j, name in enumerate(self.columns_):
                out[:, j] = _transform_column(self._plans[name], X[name])
            return out
        series = X if isinstance(X, pd.Series) else pd.Series(np.asarray(X, dtype=object))
        name = str(series.name) if series.name is not None else ""
        if name not in self._plans:
            if len(self.columns_) != 1:
                raise SchemaError(
                    f"cannot tell which fitted column the values are for (Series name "
                    f"{series.name!r}); name the Series after one of {self.columns_} "
                    "or pass a DataFrame.",
                    field="X",
                )
            name = self.columns_[0]
        return _transform_column(self._plans[name], series)

    def transform_value(self, column: str, value: Any) -> float:
        """Return the WoE of one value of one column: the serving hot path.

        Parameters
        ----------
        column
            A fitted column.
        value
            The raw value; ``None`` / NaN is missing; strings in a numeric column
            are parsed as numbers (missing if they do not parse).

        Returns
        -------
        float
            The bin's WoE; 0.0 for an unseen category, and for a missing value
            when the column had none in training.
        """
        try:
            plan = self._plans[column]
        except AttributeError:
            check_fitted(self, "_plans")
            raise
        except KeyError:
            raise SchemaError(
                f"column {column!r} was not fitted; fitted columns are {self.columns_}.",
                field=column,
            ) from None
        return _value_woe(plan, value)

    # --------------------------------------------------------------- report

    def iv_table(self) -> list[dict[str, Any]]:
        """Return one row per column and bin, columns sorted by IV, highest first.

        Returns
        -------
        list of dict
            Each row has ``"column"``, ``"kind"``, ``"column_iv"`` (the column's
            IV), ``"label"``, ``"count"``, ``"share"`` (count / fitted rows),
            ``"events"``, ``"non_events"``, ``"event_rate"``, ``"woe"`` and
            ``"iv"`` (the bin's share of the IV). Bins keep their order within
            a column; columns with equal IV keep their fitted order.
        """
        check_fitted(self, "_plans")
        order = sorted(self.columns_, key=lambda c: -self.information_value_[c])
        rows: list[dict[str, Any]] = []
        for name in order:
            for b in self.bins_[name]:
                rows.append(
                    {
                        "column": name,
                        "kind": self.kinds_[name],
                        "column_iv": self.information_value_[name],
                        "label": b["label"],
                        "count": b["count"],
                        "share": b["count"] / self.n_samples_ if self.n_samples_ else 0.0,
                        "events": b["events"],
                        "non_events": b["count"] - b["events"],
                        "event_rate": b["event_rate"],
                        "woe": b["woe"],
                        "iv": b["iv"],
                    }
                )
        return rows

    # ---------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """Return the fitted binner as a JSON-compatible dict (no NaN/inf floats).

        Non-finite numbers are written as the strings ``"nan"``, ``"inf"`` and
        ``"-inf"``; :meth:`from_dict` reads them back.
        """
        check_fitted(self, "_plans")
        return {
            "type": "WoEBinner",
            "version": _FORMAT_VERSION,
            "params": {
                "max_bins": int(self.max_bins),
                "min_bin_frac": float(self.min_bin_frac),
                "smoothing": float(self.smoothing),
                "monotonic": bool(self.monotonic),
            },
            "columns": list(self.columns_),
            "kinds": dict(self.kinds_),
            "n_samples": int(self.n_samples_),
            "n_events": int(self.n_events_),
            "bins": {name: [_encode_bin(b) for b in self.bins_[name]] for name in self.columns_},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WoEBinner:
        """Rebuild a fitted binner from :meth:`to_dict` output; it transforms identically."""
        saved = check_saved(dict(d), "WoEBinner")
        try:
            binner = cls(**saved["params"])
            binner.columns_ = [str(c) for c in saved["columns"]]
            binner.kinds_ = {str(k): str(v) for k, v in saved["kinds"].items()}
            binner.bins_ = {
                name: [_decode_bin(b) for b in saved["bins"][name]] for name in binner.columns_
            }
            binner.n_samples_ = int(saved["n_samples"])
            binner.n_events_ = int(saved["n_events"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"WoEBinner.from_dict: the dict is incomplete or malformed ({exc!r}); "
                "pass the unchanged output of WoEBinner.to_dict().",
                field="d",
            ) from exc
        binner.information_value_ = {
            name: _column_iv(binner.bins_[name]) for name in binner.columns_
        }
        binner._build_plans()
        return binner


# ---------------------------------------------------------------- helpers


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X
    elif isinstance(X, pd.Series):
        frame = X.to_frame(name="x" if X.name is None else str(X.name))
    else:
        arr = np.asarray(X)
        if arr.ndim != 1:
            raise InvalidInput(
                f"X must be a DataFrame, a Series or a 1-D array; got an array of shape "
                f"{arr.shape}. Wrap 2-D data in a pandas DataFrame with column names.",
                field="X",
            )
        frame = pd.DataFrame({"x": arr})
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad:
        raise InvalidInput(
            f"column names must be strings, got {bad[:5]}; rename them, "
            "e.g. X.columns = X.columns.astype(str).",
            field="X",
        )
    if len(frame) == 0:
        raise InvalidInput("X has no rows; WoE binning needs training data.", field="X")
    return frame


def _binary_target(y: Any, n: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InvalidInput(
            f"y must be 1-D with one value per row of X ({n}), got shape {arr.shape}.",
            field="y",
        )
    try:
        values = arr.astype(np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or not np.isin(values, (0.0, 1.0)).all():
        seen = pd.unique(pd.Series(arr, dtype=object)).tolist()[:5]
        raise TargetError(
            f"y must be a binary 0/1 target (1 = event), got values such as {seen}; "
            "map the classes to 0 and 1 first.",
            field="y",
        )
    if values.min() == values.max():
        raise TargetError(
            f"y holds only the class {int(values[0])}; WoE needs both events (1) and "
            "non-events (0) in the training data.",
            field="y",
        )
    return values


def _merge(cuts: list[float], counts: list[float], events: list[float], i: int) -> None:
    """Merge bin ``i`` with bin ``i + 1`` in place."""
    counts[i] += counts.pop(i + 1)
    events[i] += events.pop(i + 1)
    del cuts[i]


def _merge_small(
    cuts: list[float], counts: list[float], events: list[float], min_count: float
) -> None:
    while len(counts) > 1:
        i = min(range(len(counts)), key=counts.__getitem__)
        if counts[i] >= min_count:
            return
        if i == 0:
            _merge(cuts, counts, events, 0)
        elif i == len(counts) - 1 or counts[i - 1] <= counts[i + 1]:
            _merge(cuts, counts, events, i - 1)
        else:
            _merge(cuts, counts, events, i)


def _merge_monotone(
    cuts: list[float],
    counts: list[float],
    events: list[float],
    direction: float,
    prior: tuple[float, float],
) -> tuple[list[float], list[float], list[float]]:
    """Merge adjacent bins until the event rate moves in ``direction`` (±1) throughout.

    Both the raw rate and the smoothed rate the WoE is computed from (``prior``
    is the overall event rate and the smoothing, see :func:`_fill_woe`) must
    move that way: the WoE falls exactly as the smoothed rate rises.
    """
    rate, s = prior
    while len(counts) > 1:
        raw = [e / c for e, c in zip(events, counts, strict=True)]
        smooth = [(e + 2 * s * rate) / (c + 2 * s) for e, c in zip(events, counts, strict=True)]
        for i in range(len(raw) - 1):
            if direction * (raw[i + 1] - raw[i]) < 0 or direction * (smooth[i + 1] - smooth[i]) < 0:
                _merge(cuts, counts, events, i)
                break
        else:
            break
    return cuts, counts, events


def _fill_woe(
    bins: list[dict[str, Any]], n_events: int, n_non_events: int, smoothing: float
) -> None:
    """Add ``event_rate``, ``woe`` and ``iv`` to each bin (see the class docstring)."""
    k = len(bins)
    counts = np.array([b["count"] for b in bins], dtype=np.float64)
    events = np.array([b["events"] for b in bins], dtype=np.float64)
    rate = n_events / (n_events + n_non_events)
    s_bad, s_good = 2 * smoothing * rate, 2 * smoothing * (1 - rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_bad = (events + s_bad) / (n_events + s_bad * k)
        p_good = (counts - events + s_good) / (n_non_events + s_good * k)
        woe = np.log(p_good / p_bad)
        iv = (p_good - p_bad) * woe
    iv = np.where(np.isnan(iv), 0.0, iv)
    for b, w, v in zip(bins, woe.tolist(), iv.tolist(), strict=True):
        b["event_rate"] = b["events"] / b["count"] if b["count"] else 0.0
        b["woe"] = w
        b["iv"] = v


def _column_iv(bins: list[dict[str, Any]]) -> float:
    return float(math.fsum(b["iv"] for b in bins))


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def _value_woe(plan: _Plan, value: Any) -> float:
    numeric, edges, woes, missing_woe, lookup, _, _ = plan
    if numeric:
        x = value if type(value) is float else to_float(value)
        if x != x:
            return missing_woe
        if not woes:
            return 0.0
        return woes[bisect_left(edges, x)]
    key = value if type(value) is str else category_key(value)
    if key is None:
        return missing_woe
    return lookup.get(key, 0.0)


def _transform_column(plan: _Plan, series: pd.Series) -> np.ndarray:
    numeric, _, woes, missing_woe, lookup, edges_arr, woes_arr = plan
    if numeric:
        x = numeric_column(series)
        if woes:
            out = woes_arr[np.searchsorted(edges_arr, x, side="left")]
        else:
            out = np.zeros(x.shape[0], dtype=np.float64)
        out[np.isnan(x)] = missing_woe
        return out
    codes, keys = category_codes(series)
    values = [missing_woe if k is None else lookup.get(k, 0.0) for k in keys]
    values.append(missing_woe)  # code -1: missing
    return np.asarray(values, dtype=np.float64)[codes]


def _encode_bin(b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(b)
    for key in ("lower", "upper"):
        if key in out and out[key] is not None:
            out[key] = encode_float(out[key])
    for key in ("event_rate", "woe", "iv"):
        out[key] = encode_float(out[key])
    if "categories" in out:
        out["categories"] = list(out["categories"])
    return out


def _decode_bin(b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(b)
    for key in ("lower", "upper"):
        if key in out and out[key] is not None:
            out[key] = decode_float(out[key])
    for key in ("event_rate", "woe", "iv"):
        out[key] = decode_float(out[key])
    out["count"] = int(out["count"])
    out["events"] = int(out["events"])
    if "categories" in out:
        out["categories"] = [str(c) for c in out["categories"]]
    return out
