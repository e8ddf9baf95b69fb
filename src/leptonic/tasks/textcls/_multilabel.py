"""Multi-label pieces shared by every mode: sigmoid, the decision threshold, validation scores."""

from __future__ import annotations

import numpy as np
from scipy.special import expit as sigmoid

__all__ = ["THRESHOLDS", "choose_threshold", "f1_scores", "multilabel_validation", "sigmoid"]

#: The thresholds a multi-label model chooses from on validation texts.
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)


def _micro_f1(y: np.ndarray, proba: np.ndarray, threshold: float) -> float:
    truth, pred = y > 0.5, proba >= threshold
    tp = float((truth & pred).sum())
    wrong = float((truth != pred).sum())
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0


def f1_scores(y: np.ndarray, proba: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(macro-F1, micro-F1)`` of labels given from ``threshold`` up."""
    truth, pred = y > 0.5, proba >= threshold
    tp = (truth & pred).sum(axis=0).astype(np.float64)
    den = tp + (truth != pred).sum(axis=0)
    f1 = np.divide(2 * tp, tp + den, out=np.zeros_like(tp), where=den > 0)
    return float(f1.mean()), _micro_f1(y, proba, threshold)


def choose_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    """The threshold of :data:`THRESHOLDS` with the best micro-F1 on ``(y, proba)``;
    on a tie, the one nearest 0.5."""
    if len(y) == 0:
        return 0.5
    scores = [(_micro_f1(y, proba, float(t)), -abs(float(t) - 0.5), float(t)) for t in THRESHOLDS]
    return max(scores)[2]


def multilabel_validation(
    logits: np.ndarray, y: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Per-epoch validation scores of a multi-label network: binary cross-entropy, subset
    accuracy, macro- and micro-F1 (labels from ``threshold``)."""
    z = np.asarray(logits, dtype=np.float64)
    # log(1 + e^-|z|) + max(z, 0) - y z: binary cross-entropy on logits, stable
    bce = np.logaddexp(0.0, -np.abs(z)) + np.maximum(z, 0.0) - y * z
    proba = sigmoid(z)
    macro, micro = f1_scores(y, proba, threshold)
    return {
        "valid_loss": float(bce.mean()),
        "valid_accuracy": float(np.mean(((y > 0.5) == (proba >= threshold)).all(axis=1))),
        "valid_macro_f1": macro,
        "valid_micro_f1": micro,
    }
