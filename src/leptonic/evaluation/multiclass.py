"""Metrics of a multiclass classifier from its predicted probabilities.

:func:`multiclass_metrics` gives accuracy, macro and weighted F1, log loss,
one-vs-rest AUC, a per-class report and the confusion matrix, in vectorised
numpy; the tests check it against scikit-learn.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from leptonic.errors import InvalidInput, TargetError
from leptonic.evaluation._common import _EPS, _auc, _curve, _probabilities, _vector

__all__ = ["class_indices", "class_labels", "confusion_report", "multiclass_metrics"]


def confusion_report(cm: NDArray[Any], names: list[str]) -> dict[str, Any]:
    """Accuracy, macro/weighted F1, the per-class report and the matrix itself, of a
    confusion matrix ``cm`` (rows: true class) of the classes ``names``."""
    k = len(names)
    n = int(cm.sum())
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    den = precision + recall
    f1 = np.divide(2 * precision * recall, den, out=np.zeros(k), where=den > 0)
    return {
        "n": n,
        "classes": names,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1.mean()),
        "weighted_f1": float(np.sum(f1 * support) / n) if n else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[j]),
                "recall": float(recall[j]),
                "f1": float(f1[j]),
                "support": int(support[j]),
            }
            for j, name in enumerate(names)
        },
        "confusion_matrix": cm.astype(np.int64).tolist(),
    }


def class_labels(classes: Sequence[Any]) -> list[Any]:
    """``classes`` as a list; :class:`InvalidInput` for fewer than two."""
    labels = list(classes)
    if len(labels) < 2:
        raise InvalidInput(f"classes needs at least two labels, got {labels}", field="classes")
    return labels


def class_indices(
    y_true: ArrayLike, classes: Sequence[Any], name: str = "y_true"
) -> NDArray[np.int64]:
    """The position in ``classes`` of each label of ``y_true`` (named ``name`` in errors).

    When no class label is a number, integer values are taken as positions
    already (as trainers encode targets); otherwise they are labels.
    """
    y = _vector(y_true, name)
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise InvalidInput(f"classes must be distinct, got {list(classes)}", field="classes")
    numeric_labels = any(isinstance(c, numbers.Number) for c in classes)
    if np.issubdtype(y.dtype, np.integer) and not numeric_labels:
        # Integer codes for non-numeric labels: positions in ``classes``, as trainers encode.
        bad = (y < 0) | (y >= len(classes))
        if bad.any():
            raise TargetError(
                f"{name} holds class positions outside 0..{len(classes) - 1}, such as "
                f"{int(y[np.argmax(bad)])}; pass labels from classes or their positions",
                field=name,
            )
        return y.astype(np.int64)
    values, inverse = np.unique(y, return_inverse=True)
    unknown = [v for v in values.tolist() if v not in index]
    if unknown:
        raise TargetError(
            f"{name} holds labels {unknown[:5]} that are not among classes {list(classes)}; "
            "pass the classes the model was trained on, in the order of the proba columns",
            field=name,
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
        True labels, each one of ``classes``; or, when no class label is a
        number, integer positions in ``classes`` (as trainers encode targets).
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
    labels = class_labels(classes)
    idx = class_indices(y_true, labels)
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
    support = cm.sum(axis=1)
    clipped = np.clip(p, _EPS, 1.0 - _EPS)
    clipped /= clipped.sum(axis=1, keepdims=True)
    aucs = [
        _auc(_curve((idx == j).astype(np.int64), p[:, j])) for j in range(k) if 0 < support[j] < n
    ]
    report = confusion_report(cm, [str(c) for c in labels])
    return {
        **{key: report[key] for key in ("n", "classes", "accuracy", "macro_f1", "weighted_f1")},
        "log_loss": float(-np.mean(np.log(clipped[np.arange(n), idx]))),
        "auc_ovr": float(np.mean(aucs)) if aucs else None,
        "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"],
    }
