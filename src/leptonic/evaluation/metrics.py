"""Metrics of a binary classifier's scores, in vectorised numpy.

Every binary metric is computed from one sort of the scores (``O(n log n)``);
ties between scores are handled the way scikit-learn handles them, which the
tests use as the reference. Functions that return a ``dict`` return plain
Python ``float``/``int``/``list`` values, ready for JSON.

A score ``s`` is predicted positive at threshold ``t`` when ``s >= t``.

Multiclass and regression metrics live in :mod:`~leptonic.evaluation.multiclass`
and :mod:`~leptonic.evaluation.regression`, and can be imported from here too.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from leptonic.errors import InvalidInput
from leptonic.evaluation._common import (
    _EPS,
    FloatArray,
    _auc,
    _average_precision,
    _binary,
    _curve,
    _ks,
    _need_both,
    _need_positive,
    _probabilities,
)
from leptonic.evaluation.multiclass import multiclass_metrics
from leptonic.evaluation.regression import regression_metrics

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
