"""Model metrics for binary, multiclass and regression tasks, in vectorised numpy.

Every binary metric is computed from one sort of the scores (``O(n log n)``);
ties between scores are handled the way scikit-learn handles them, which the
tests use as the reference. Functions that return a ``dict`` return plain
Python ``float``/``int``/``list`` values, ready for JSON.

A score ``s`` is predicted positive at threshold ``t`` when ``s >= t``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from leptonic.errors import InvalidInput, TargetError

__all__ = [
    "binary_metrics",
    "brier_score",
    "calibration_curve",
    "choose_threshold",
    "confusion_at",
    "gini",
    "ks_statistic",
    "log_loss",
    "multiclass_metrics",
    "pr_auc",
    "regression_metrics",
    "roc_auc",
    "roc_curve",
]

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


def roc_curve(y_true: ArrayLike, y_score: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The ROC curve at every distinct score.

    Returns
    -------
    tuple of numpy.ndarray
        ``(fpr, tpr, thresholds)``; the first point is ``(0, 0)`` at threshold
        ``inf``; then one point per distinct score, highest first (no points are
        dropped, unlike scikit-learn's default ``drop_intermediate=True``).
    """
    y, s = _binary(y_true, y_score)
    _need_both(y, "the ROC curve")
    c = _curve(y, s)
    return (
        np.r_[0.0, c.fps] / c.n_neg,
        np.r_[0.0, c.tps] / c.n_pos,
        np.r_[np.inf, c.thresholds],
    )


def roc_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve; tied scores count one half.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = _binary(y_true, y_score)
    _need_both(y, "AUC")
    return _auc(_curve(y, s))


def gini(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """The Gini coefficient, ``2 * AUC - 1``."""
    return 2.0 * roc_auc(y_true, y_score) - 1.0


def ks_statistic(y_true: ArrayLike, y_score: ArrayLike) -> tuple[float, float]:
    """The Kolmogorov–Smirnov statistic: the largest ``|TPR - FPR|`` over thresholds.

    Equal to the two-sample KS statistic between the scores of positives and
    negatives.

    Returns
    -------
    tuple of float
        ``(ks, threshold)``, the threshold where the gap is largest (the
        highest one on ties).
    """
    y, s = _binary(y_true, y_score)
    _need_both(y, "the KS statistic")
    return _ks(_curve(y, s))


def pr_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the precision-recall curve, as average precision (no interpolation)."""
    y, s = _binary(y_true, y_score)
    _need_positive(y, "PR-AUC")
    return _average_precision(_curve(y, s))


def brier_score(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Mean squared difference between the predicted probability and the 0/1 label."""
    y, p = _binary(y_true, y_prob)
    p = _probabilities(p, "y_score")
    return float(np.mean((p - y) ** 2))


def _log_loss(y: NDArray[np.int64], p: FloatArray, eps: float = _EPS) -> float:
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def log_loss(y_true: ArrayLike, y_prob: ArrayLike, *, eps: float = _EPS) -> float:
    """Mean binary cross-entropy, with probabilities clipped to ``[eps, 1 - eps]``."""
    y, p = _binary(y_true, y_prob)
    return _log_loss(y, _probabilities(p, "y_score"), eps)


def calibration_curve(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
) -> dict[str, list[Any]]:
    """Observed frequency of positives against the mean predicted probability, per bin.

    Parameters
    ----------
    n_bins
        Number of bins; empty bins are left out of the result.
    strategy
        ``"quantile"``: bins holding equal numbers of predictions;
        ``"uniform"``: equal-width bins over ``[0, 1]``.

    Returns
    -------
    dict
        ``mean_predicted``, ``fraction_positive`` and ``count`` lists, one item
        per non-empty bin.
    """
    if not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise InvalidInput(f"n_bins must be a positive integer, got {n_bins!r}", field="n_bins")
    y, p = _binary(y_true, y_prob)
    p = _probabilities(p, "y_prob")
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0.0, 100.0, n_bins + 1))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise InvalidInput(
            f"unknown calibration strategy {strategy!r}; use 'quantile' or 'uniform'",
            field="strategy",
        )
    ids = np.searchsorted(edges[1:-1], p)
    count = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    sum_y = np.bincount(ids, weights=y, minlength=n_bins)
    keep = count > 0
    return {
        "mean_predicted": (sum_p[keep] / count[keep]).tolist(),
        "fraction_positive": (sum_y[keep] / count[keep]).tolist(),
        "count": count[keep].tolist(),
    }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def _confusion(y: NDArray[np.int64], s: FloatArray, threshold: float) -> dict[str, Any]:
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred)) - tp
    fn = int(y.sum()) - tp
    tn = int(y.size) - tp - fp - fn
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, y.size),
        "specificity": _ratio(tn, tn + fp),
    }


def confusion_at(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> dict[str, Any]:
    """Confusion counts and rates when ``score >= threshold`` is predicted positive.

    Ratios with a zero denominator are reported as ``0.0``.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``tn``, ``fn``, ``precision``, ``recall``, ``f1``,
        ``accuracy``, ``specificity``.
    """
    y, s = _binary(y_true, y_score)
    return _confusion(y, s, _threshold(threshold))


def _threshold(threshold: Any) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        t = float("nan")
    if np.isnan(t):
        raise InvalidInput(f"threshold must be a number, got {threshold!r}", field="threshold")
    return t


def choose_threshold(
    y_true: ArrayLike,
    y_score: ArrayLike,
    method: Literal["ks", "f1", "rate"] = "ks",
    target_rate: float | None = None,
) -> float:
    """A decision threshold, picked among the observed scores.

    Parameters
    ----------
    method
        ``"ks"``: where ``|TPR - FPR|`` is largest; ``"f1"``: where F1 is largest;
        ``"rate"``: the lowest threshold that flags at most ``target_rate`` of
        the rows (the highest score when ties make even that flag more).
    target_rate
        Share of rows to flag as positive, in ``(0, 1]``; only for ``"rate"``.
    """
    y, s = _binary(y_true, y_score)
    if method == "ks":
        _need_both(y, "choosing a KS threshold")
        return _ks(_curve(y, s))[1]
    if method == "f1":
        _need_positive(y, "choosing an F1 threshold")
        c = _curve(y, s)
        return float(c.thresholds[int(np.argmax(2 * c.tps / (c.tps + c.fps + c.n_pos)))])
    if method == "rate":
        if not isinstance(target_rate, numbers.Real) or not 0.0 < target_rate <= 1.0:
            raise InvalidInput(
                f"method='rate' needs target_rate in (0, 1], got {target_rate!r}",
                field="target_rate",
            )
        c = _curve(y, s)
        ok = np.flatnonzero((c.tps + c.fps) / y.size <= float(target_rate) + 1e-12)
        return float(c.thresholds[ok[-1] if ok.size else 0])
    raise InvalidInput(
        f"unknown threshold method {method!r}; use 'ks', 'f1' or 'rate'", field="method"
    )


def binary_metrics(
    y_true: ArrayLike, y_score: ArrayLike, threshold: float | None = None
) -> dict[str, Any]:
    """Every binary metric at once, from one sort of the scores.

    Parameters
    ----------
    y_true
        0/1 labels; both classes must be present.
    y_score
        Scores, higher meaning more likely positive. ``brier`` and ``log_loss``
        are ``None`` when the scores are not probabilities in ``[0, 1]``.
    threshold
        Decision threshold for the confusion fields; the KS-optimal one if ``None``.

    Returns
    -------
    dict
        ``auc``, ``ks``, ``ks_threshold``, ``gini``, ``pr_auc``, ``brier``,
        ``log_loss``, ``positive_rate`` (share of positive labels), ``n``,
        ``threshold``, and the fields of :func:`confusion_at` at that threshold.
    """
    y, s = _binary(y_true, y_score)
    _need_both(y, "AUC")
    c = _curve(y, s)
    auc = _auc(c)
    ks, ks_threshold = _ks(c)
    is_prob = bool(s.min() >= 0.0 and s.max() <= 1.0)
    t = ks_threshold if threshold is None else _threshold(threshold)
    return {
        "auc": auc,
        "ks": ks,
        "ks_threshold": ks_threshold,
        "gini": 2.0 * auc - 1.0,
        "pr_auc": _average_precision(c),
        "brier": float(np.mean((s - y) ** 2)) if is_prob else None,
        "log_loss": _log_loss(y, s) if is_prob else None,
        "positive_rate": c.n_pos / y.size,
        "n": int(y.size),
        "threshold": t,
        **_confusion(y, s, t),
    }


def _class_indices(y_true: ArrayLike, classes: Sequence[Any]) -> NDArray[np.int64]:
    y = _vector(y_true, "y_true")
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise InvalidInput(f"classes must be distinct, got {list(classes)}", field="classes")
    integer_labels = any(isinstance(c, numbers.Integral) for c in classes)
    if np.issubdtype(y.dtype, np.integer) and not integer_labels:
        # Integer codes for non-integer labels: positions in ``classes``, as trainers encode.
        bad = (y < 0) | (y >= len(classes))
        if bad.any():
            raise TargetError(
                f"y_true holds class positions outside 0..{len(classes) - 1}, such as "
                f"{int(y[np.argmax(bad)])}; pass labels from classes or their positions",
                field="y_true",
            )
        return y.astype(np.int64)
    values, inverse = np.unique(y, return_inverse=True)
    unknown = [v for v in values.tolist() if v not in index]
    if unknown:
        raise TargetError(
            f"y_true holds labels {unknown[:5]} that are not among classes {list(classes)}; "
            "pass the classes the model was trained on, in the order of the proba columns",
            field="y_true",
        )
    lookup = np.array([index[v] for v in values.tolist()], dtype=np.int64)
    return lookup[inverse.reshape(-1)]


def multiclass_metrics(
    y_true: ArrayLike, proba: ArrayLike, classes: Sequence[Any]
) -> dict[str, Any]:
    """Metrics of a multiclass classifier from its predicted probabilities.

    Parameters
    ----------
    y_true
        True labels, each one of ``classes``; or, when no class label is an
        integer, integer positions in ``classes`` (as trainers encode targets).
    proba
        Array of shape ``(n, len(classes))``; column ``j`` is the probability of ``classes[j]``.
    classes
        Class labels in the order of the columns of ``proba``.

    Returns
    -------
    dict
        ``n``, ``classes`` (as strings), ``accuracy``, ``macro_f1``,
        ``weighted_f1``, ``log_loss``, ``auc_ovr`` (macro one-vs-rest AUC over
        the classes that are in ``y_true`` but not all of it; ``None`` if there
        is no such class), ``per_class`` (label → ``precision``, ``recall``,
        ``f1``, ``support``) and ``confusion_matrix`` (rows: true class,
        columns: predicted class).
    """
    labels = list(classes)
    if len(labels) < 2:
        raise InvalidInput(f"classes needs at least two labels, got {labels}", field="classes")
    idx = _class_indices(y_true, labels)
    p = np.asarray(proba, dtype=np.float64)
    k, n = len(labels), idx.size
    if p.ndim != 2 or p.shape != (n, k):
        raise InvalidInput(
            f"proba must have shape ({n}, {k}) (rows of y_true, one column per class), "
            f"got {p.shape}",
            field="proba",
        )
    if not np.isfinite(p).all():
        raise InvalidInput("proba holds NaN or infinite values", field="proba")
    _probabilities(p.ravel(), "proba")
    off = np.abs(p.sum(axis=1) - 1.0)
    if off.max() > 1e-3:
        i = int(np.argmax(off))
        raise InvalidInput(
            f"proba rows must sum to 1, but row {i} sums to {p[i].sum():.6g}; "
            "pass predict_proba output",
            field="proba",
        )
    pred = np.argmax(p, axis=1)
    cm = np.bincount(idx * k + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    den = precision + recall
    f1 = np.divide(2 * precision * recall, den, out=np.zeros(k), where=den > 0)
    clipped = np.clip(p, _EPS, 1.0 - _EPS)
    clipped /= clipped.sum(axis=1, keepdims=True)
    aucs = [
        _auc(_curve((idx == j).astype(np.int64), p[:, j])) for j in range(k) if 0 < support[j] < n
    ]
    names = [str(c) for c in labels]
    return {
        "n": int(n),
        "classes": names,
        "accuracy": float(tp.sum() / n),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float(np.sum(f1 * support) / n),
        "log_loss": float(-np.mean(np.log(clipped[np.arange(n), idx]))),
        "auc_ovr": float(np.mean(aucs)) if aucs else None,
        "per_class": {
            name: {
                "precision": float(precision[j]),
                "recall": float(recall[j]),
                "f1": float(f1[j]),
                "support": int(support[j]),
            }
            for j, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
    }


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, Any]:
    """Error metrics of a regression model.

    Returns
    -------
    dict
        ``n``, ``rmse``, ``mae``, ``r2`` (``1.0`` for a perfect fit of a constant
        target, else ``0.0`` when the target is constant) and ``mape``: the mean
        absolute percentage error over the rows whose target is not zero
        (``None`` if all are zero), as a fraction.
    """
    y = _finite(y_true, "y_true")
    p = _finite(y_pred, "y_pred", y.size)
    err = p - y
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float(ss_res == 0)
    nonzero = y != 0
    return {
        "n": int(y.size),
        "rmse": float(np.sqrt(ss_res / y.size)),
        "mae": float(np.mean(np.abs(err))),
        "r2": r2,
        "mape": float(np.mean(np.abs(err[nonzero] / y[nonzero]))) if nonzero.any() else None,
    }
