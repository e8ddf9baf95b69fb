"""Helpers shared by the metric modules: input checks and the score curve.

The checks turn what callers pass (lists, arrays, booleans) into 1-D numpy
arrays and refuse empty, misaligned, non-finite or non-binary input with an
error that names the argument. ``_curve`` sorts the scores once and counts the
positives and negatives at or above each distinct score; AUC, KS and average
precision are read off those counts.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from leptonic.errors import InvalidInput, TargetError

_EPS = 1e-15
FloatArray = NDArray[np.float64]


def _vector(values: ArrayLike, name: str) -> NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be 1-D, got an array of shape {arr.shape}", field=name)
    if arr.size == 0:
        raise InvalidInput(f"{name} is empty; pass at least one row", field=name)
    return arr


def _finite(values: ArrayLike, name: str, n: int | None = None) -> FloatArray:
    arr = _vector(values, name)
    if n is not None and arr.size != n:
        raise InvalidInput(
            f"y_true has {n} rows but {name} has {arr.size}; pass arrays of the same length",
            field=name,
        )
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be numeric, got dtype {arr.dtype}", field=name) from None
    bad = ~np.isfinite(out)
    if bad.any():
        raise InvalidInput(
            f"{name} holds {int(bad.sum())} NaN or infinite values (first at index "
            f"{int(np.argmax(bad))}); impute or drop those rows before evaluating",
            field=name,
        )
    return out


def _binary_target(y_true: ArrayLike) -> NDArray[np.int64]:
    y = _vector(y_true, "y_true")
    if y.dtype == bool:
        return y.astype(np.int64)
    if np.issubdtype(y.dtype, np.number):
        yf = y.astype(np.float64)
        bad = ~((yf == 0) | (yf == 1))
        if not bad.any():
            return yf.astype(np.int64)
        seen = np.unique(yf[bad])[:5].tolist()
    else:
        seen = [v for v in dict.fromkeys(y.tolist()) if v not in (0, 1)][:5]
        if not seen:
            return y.astype(np.int64)
    raise TargetError(
        f"y_true must hold binary 0/1 labels, got other values such as {seen}; "
        "encode the positive class as 1 and the negative class as 0",
        field="y_true",
    )


def _binary(y_true: ArrayLike, y_score: ArrayLike) -> tuple[NDArray[np.int64], FloatArray]:
    y = _binary_target(y_true)
    return y, _finite(y_score, "y_score", y.size)


def _probabilities(p: FloatArray, name: str) -> FloatArray:
    if p.min() < 0.0 or p.max() > 1.0:
        raise InvalidInput(
            f"{name} must hold probabilities in [0, 1], got values in "
            f"[{p.min():.6g}, {p.max():.6g}]; pass predicted probabilities, not raw scores",
            field=name,
        )
    return p


def _need_positive(y: NDArray[np.int64], what: str) -> None:
    if not y.any():
        raise TargetError(
            f"{what} needs at least one positive label in y_true; evaluate on a sample with "
            "positives",
            field="y_true",
        )


def _need_both(y: NDArray[np.int64], what: str) -> None:
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        raise TargetError(
            f"{what} needs both classes in y_true, but all {y.size} labels are "
            f"{int(y[0])}; evaluate on a sample that holds positives and negatives",
            field="y_true",
        )


class _Curve(NamedTuple):
    """Counts at each distinct threshold, from the highest score down."""

    thresholds: FloatArray
    tps: FloatArray
    fps: FloatArray
    n_pos: int
    n_neg: int


def _curve(y: NDArray[np.int64], s: FloatArray) -> _Curve:
    order = np.argsort(s, kind="mergesort")[::-1]
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s.size - 1]
    tps = np.cumsum(y_sorted)[last].astype(np.float64)
    fps = (last + 1) - tps
    n_pos = int(y.sum())
    return _Curve(s_sorted[last], tps, fps, n_pos, int(y.size) - n_pos)


def _auc(c: _Curve) -> float:
    fpr = np.r_[0.0, c.fps] / c.n_neg
    tpr = np.r_[0.0, c.tps] / c.n_pos
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def _ks(c: _Curve) -> tuple[float, float]:
    gap = np.abs(c.tps / c.n_pos - c.fps / c.n_neg)
    i = int(np.argmax(gap))
    return float(gap[i]), float(c.thresholds[i])


def _average_precision(c: _Curve) -> float:
    precision = c.tps / (c.tps + c.fps)
    recall = c.tps / c.n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
