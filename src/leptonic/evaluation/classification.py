"""Metrics and plots of a (text) classifier: accuracy, macro-F1, a per-class report.

:func:`classification_metrics` scores predicted probabilities (it extends
:func:`~leptonic.evaluation.multiclass.multiclass_metrics` with top-k accuracy
and also takes two-class problems); :func:`label_metrics` scores hard label
predictions when no probabilities exist; :func:`multilabel_metrics` scores
texts that may carry several labels each. :func:`classification_report` renders
the per-class table as text, and :func:`classification_plots` draws the
confusion matrix and the F1 of each class.

Examples
--------
>>> m = label_metrics(["a", "b", "b"], ["a", "b", "a"], classes=["a", "b"])
>>> round(m["accuracy"], 3), m["confusion_matrix"]
(0.667, [[1, 0], [1, 1]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from leptonic.errors import InvalidInput
from leptonic.evaluation._common import _probabilities
from leptonic.evaluation.metrics import roc_auc
from leptonic.evaluation.multiclass import (
    class_indices,
    class_labels,
    confusion_report,
    multiclass_metrics,
)

__all__ = [
    "classification_metrics",
    "classification_plots",
    "classification_report",
    "label_metrics",
    "multilabel_metrics",
    "top_k_accuracy",
]


def label_metrics(y_true: ArrayLike, y_pred: ArrayLike, classes: Sequence[Any]) -> dict[str, Any]:
    """Accuracy, macro-F1, weighted-F1, the per-class report and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred
        True and predicted labels, each one of ``classes`` (or, when no class
        label is an integer, integer positions in ``classes``).
    classes
        The class labels; the order of the confusion matrix rows and columns.

    Returns
    -------
    dict
        ``n``, ``classes`` (as strings), ``accuracy``, ``macro_f1``,
        ``weighted_f1``, ``per_class`` (label → ``precision``, ``recall``,
        ``f1``, ``support``) and ``confusion_matrix`` (rows: true class).
        Macro-F1 averages over every class in ``classes``, with F1 = 0 for a
        class that is never predicted nor present.
    """
    labels = class_labels(classes)
    t = class_indices(y_true, labels)
    p = class_indices(y_pred, labels, "y_pred")
    if t.size != p.size:
        raise InvalidInput(
            f"y_true has {t.size} labels but y_pred has {p.size}; pass one prediction per row",
            field="y_pred",
        )
    if t.size == 0:
        raise InvalidInput("y_true is empty; pass at least one labelled row", field="y_true")
    k = len(labels)
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    return confusion_report(cm, [str(c) for c in labels])


def top_k_accuracy(y_true: ArrayLike, proba: ArrayLike, classes: Sequence[Any], k: int) -> float:
    """Share of rows whose true class is among the ``k`` most probable (ties: lower index wins)."""
    labels = class_labels(classes)
    t = class_indices(y_true, labels)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape != (t.size, len(labels)):
        raise InvalidInput(
            f"proba must have shape ({t.size}, {len(labels)}), got {p.shape}", field="proba"
        )
    if not k >= 1:
        raise InvalidInput(f"k must be at least 1, got {k}", field="k")
    if k >= len(labels):
        return 1.0
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == t[:, None], axis=1)))


def classification_metrics(
    y_true: ArrayLike,
    proba: ArrayLike,
    classes: Sequence[Any],
    *,
    top_k: Sequence[int] = (3, 5),
) -> dict[str, Any]:
    """Metrics of a classifier from its predicted probabilities (two or more classes).

    The keys of :func:`~leptonic.evaluation.multiclass.multiclass_metrics`
    (``accuracy``, ``macro_f1``, ``weighted_f1``, ``log_loss``, ``auc_ovr``,
    ``per_class``, ``confusion_matrix``) plus ``top_k_accuracy``: ``{k: share}``
    for each ``k`` in ``top_k`` below the number of classes.
    """
    labels = class_labels(classes)
    out = multiclass_metrics(y_true, proba, labels)
    out["top_k_accuracy"] = {
        str(k): top_k_accuracy(y_true, proba, labels, k) for k in top_k if k < len(labels)
    }
    return out


def multilabel_metrics(
    y_true: ArrayLike, proba: ArrayLike, classes: Sequence[Any], *, threshold: float = 0.5
) -> dict[str, Any]:
    """Metrics of a multi-label classifier: each text may carry any number of the labels.

    Parameters
    ----------
    y_true
        0/1 matrix ``(texts, labels)``: the labels each text carries.
    proba
        The predicted probability of each label, same shape; a label is
        predicted from ``threshold`` up.
    classes
        The label names, in column order.

    Returns
    -------
    dict
        ``n``, ``classes``, ``multi_label`` (True), ``threshold``, ``accuracy``
        (subset accuracy: every label of the text right), ``hamming_loss``
        (share of wrong label decisions), ``micro_f1`` (over all decisions),
        ``macro_f1`` (mean over labels), ``weighted_f1`` (by support),
        ``label_cardinality`` and ``predicted_cardinality`` (labels per text,
        true and predicted), ``per_class`` (label → ``precision``, ``recall``,
        ``f1``, ``support``, ``auc`` where the label is both present and absent).
    """
    labels = class_labels(classes)
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    k = len(labels)
    if t.ndim != 2 or t.shape[1] != k or p.shape != t.shape:
        raise InvalidInput(
            f"y_true and proba must both have shape (texts, {k}); got {t.shape} and {p.shape}",
            field="proba",
        )
    if t.shape[0] == 0:
        raise InvalidInput("y_true is empty; pass at least one labelled row", field="y_true")
    if not np.isin(t, (0.0, 1.0)).all():
        raise InvalidInput("y_true must hold only 0 and 1 (label absent / present)", field="y_true")
    if not np.isfinite(p).all():
        raise InvalidInput("proba holds NaN or infinite values", field="proba")
    _probabilities(p.ravel(), "proba")
    if not 0.0 < threshold < 1.0:
        raise InvalidInput(f"threshold must be between 0 and 1, got {threshold}", field="threshold")
    truth, pred = t > 0.5, p >= threshold
    tp = (truth & pred).sum(axis=0).astype(np.float64)
    fp = (~truth & pred).sum(axis=0).astype(np.float64)
    fn = (truth & ~pred).sum(axis=0).astype(np.float64)
    support = truth.sum(axis=0)
    precision = np.divide(tp, tp + fp, out=np.zeros(k), where=tp + fp > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    den = precision + recall
    f1 = np.divide(2 * precision * recall, den, out=np.zeros(k), where=den > 0)
    n = int(t.shape[0])
    all_tp, all_err = float(tp.sum()), float(fp.sum() + fn.sum())
    per_class: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(labels):
        row: dict[str, Any] = {
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "f1": float(f1[j]),
            "support": int(support[j]),
        }
        if 0 < support[j] < n:
            row["auc"] = roc_auc(truth[:, j].astype(np.int64), p[:, j])
        per_class[str(name)] = row
    total = float(support.sum())
    return {
        "n": n,
        "classes": [str(c) for c in labels],
        "multi_label": True,
        "threshold": float(threshold),
        "accuracy": float(np.mean((truth == pred).all(axis=1))),
        "hamming_loss": float(np.mean(truth != pred)),
        "micro_f1": 2 * all_tp / (2 * all_tp + all_err) if all_tp + all_err else 0.0,
        "macro_f1": float(f1.mean()),
        "weighted_f1": float(np.sum(f1 * support) / total) if total else 0.0,
        "label_cardinality": float(truth.sum() / n),
        "predicted_cardinality": float(pred.sum() / n),
        "per_class": per_class,
    }


def classification_report(metrics: Mapping[str, Any], *, digits: int = 3) -> str:
    """The per-class table of ``metrics`` as plain text, like scikit-learn's report."""
    per_class: Mapping[str, Mapping[str, float]] = metrics["per_class"]
    width = max([len("macro avg"), *(len(str(name)) for name in per_class)])
    head = f"{'':>{width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>7}"
    lines = [head, ""]
    for name, row in per_class.items():
        lines.append(
            f"{name:>{width}}  {row['precision']:>9.{digits}f}  {row['recall']:>9.{digits}f}  "
            f"{row['f1']:>9.{digits}f}  {int(row['support']):>7d}"
        )
    n = int(metrics["n"])
    rows = list(per_class.values())
    mp = float(np.mean([r["precision"] for r in rows]))
    mr = float(np.mean([r["recall"] for r in rows]))
    lines += [
        "",
        f"{'accuracy':>{width}}  {'':>9}  {'':>9}  {metrics['accuracy']:>9.{digits}f}  {n:>7d}",
        f"{'macro avg':>{width}}  {mp:>9.{digits}f}  {mr:>9.{digits}f}  "
        f"{metrics['macro_f1']:>9.{digits}f}  {n:>7d}",
    ]
    if "micro_f1" in metrics:  # multi-label: accuracy above is subset accuracy
        lines.append(
            f"{'micro avg':>{width}}  {'':>9}  {'':>9}  {metrics['micro_f1']:>9.{digits}f}  {n:>7d}"
        )
    return "\n".join(lines)


def classification_plots(metrics: Mapping[str, Any], *, title: str = "") -> dict[str, bytes]:
    """PNG images: ``confusion_matrix`` (not for multi-label metrics, which have none) and
    ``f1_per_class`` (names as in a report's plots)."""
    from leptonic.evaluation.plots import class_f1_plot, confusion_plot

    prefix = f"{title} — " if title else ""
    out = {}
    if "confusion_matrix" in metrics:
        out["confusion_matrix"] = confusion_plot(
            metrics["confusion_matrix"], metrics["classes"], title=f"{prefix}Confusion matrix"
        )
    out["f1_per_class"] = class_f1_plot(metrics["per_class"], title=f"{prefix}F1 per class")
    return out
