"""Evaluation plots as small PNG images, drawn with matplotlib's Agg renderer.

Each function returns the PNG bytes of one figure, built with
:class:`matplotlib.figure.Figure` directly (no ``pyplot``, no global state), so
it is safe in servers and threads; matplotlib is imported on first use.
:func:`png_data_uri` turns the bytes into a ``data:`` URI for self-contained HTML.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from leptonic.errors import InvalidInput
from leptonic.evaluation._common import _binary, _curve, _ks, _need_both
from leptonic.evaluation.metrics import calibration_curve, roc_auc
from leptonic.evaluation.regression import regression_metrics

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "calibration_plot",
    "class_f1_plot",
    "confusion_plot",
    "ks_plot",
    "png_data_uri",
    "regression_plot",
    "residual_plot",
    "roc_plot",
    "score_distribution_plot",
]

_DPI = 90
_SIZE = (5.0, 3.5)
_MAX_POINTS = 2000
_POS, _NEG, _GREY = "#d62728", "#1f77b4", "#7f7f7f"


def _plain(value: Any) -> str:
    """``value`` as literal text: matplotlib would read ``$...$`` as TeX math."""
    return str(value).replace("$", r"\$")


def png_data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI holding ``png``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(size: tuple[float, float] = _SIZE) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure  # imported on first use: it is slow to import

    fig = Figure(figsize=size, dpi=_DPI, layout="constrained")
    return fig, fig.add_subplot()


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def _thin(n: int, keep: Sequence[int] = ()) -> np.ndarray:
    """Indices of at most ``_MAX_POINTS`` evenly spread points of ``n``, plus ``keep``."""
    if n <= _MAX_POINTS:
        return np.arange(n)
    idx = np.linspace(0, n - 1, _MAX_POINTS).round().astype(np.int64)
    return np.unique(np.r_[idx, np.asarray(keep, dtype=np.int64)])


def _edges(values: np.ndarray, bins: int) -> list[float]:
    """Histogram bin edges that also work for (nearly) constant values."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1).tolist()


def roc_plot(y_true: ArrayLike, y_score: ArrayLike, *, title: str = "ROC curve") -> bytes:
    """The ROC curve, with the AUC in the legend and the chance diagonal."""
    y, s = _binary(y_true, y_score)
    _need_both(y, "the ROC curve")
    c = _curve(y, s)
    fpr, tpr = np.r_[0.0, c.fps / c.n_neg], np.r_[0.0, c.tps / c.n_pos]
    idx = _thin(fpr.size)
    fig, ax = _figure()
    ax.plot(fpr[idx], tpr[idx], color=_NEG, lw=2, label=f"model (AUC = {roc_auc(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color=_GREY, lw=1, ls="--", label="chance (AUC = 0.5)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def ks_plot(y_true: ArrayLike, y_score: ArrayLike, *, title: str = "KS") -> bytes:
    """Cumulative share of positives and negatives below each score, largest gap marked."""
    y, s = _binary(y_true, y_score)
    _need_both(y, "the KS plot")
    c = _curve(y, s)
    ks, threshold = _ks(c)
    # Distinct scores ascending; F(x) = share of the class scoring at most x.
    x = c.thresholds[::-1]
    cdf_pos = (1.0 - np.r_[0.0, c.tps[:-1]] / c.n_pos)[::-1]
    cdf_neg = (1.0 - np.r_[0.0, c.fps[:-1]] / c.n_neg)[::-1]
    i = int(np.searchsorted(-c.thresholds, -threshold))
    # The gap is between the shares scoring strictly below the threshold.
    lo, hi = sorted((1.0 - c.tps[i] / c.n_pos, 1.0 - c.fps[i] / c.n_neg))
    j = x.size - 1 - i
    idx = _thin(x.size, keep=[max(j - 1, 0), j])
    fig, ax = _figure()
    ax.step(x[idx], cdf_neg[idx], where="post", color=_NEG, lw=2, label="negatives")
    ax.step(x[idx], cdf_pos[idx], where="post", color=_POS, lw=2, label="positives")
    ax.vlines(threshold, lo, hi, color="black", lw=2, label=f"KS = {ks:.3f} at {threshold:.4g}")
    ax.axvline(threshold, color=_GREY, lw=0.8, ls=":")
    ax.set(ylim=(0, 1.01), title=title)
    ax.set_xlabel("Score")
    ax.set_ylabel("Cumulative share")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def calibration_plot(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
    title: str = "Calibration",
) -> bytes:
    """Reliability diagram: observed rate against mean predicted probability, with bin counts."""
    cal = calibration_curve(y_true, y_prob, n_bins=n_bins, strategy=strategy)
    mean_p, frac, count = cal["mean_predicted"], cal["fraction_positive"], cal["count"]
    fig, ax = _figure()
    top = max(max(mean_p), max(frac))
    lim = min(1.0, top * 1.1) if top > 0 else 1.0
    ax.plot([0, lim], [0, lim], color=_GREY, lw=1, ls="--", label="perfectly calibrated")
    ax.plot(mean_p, frac, marker="o", color=_POS, lw=2, label="model")
    for xp, yp, n in zip(mean_p, frac, count, strict=True):
        ax.annotate(
            f"{n}",
            (xp, yp),
            textcoords="offset points",
            xytext=(0, 6),
            fontsize=6,
            ha="center",
            color="#333333",
        )
    ax.set(xlim=(0, lim), ylim=(0, lim), title=f"{title} ({strategy} bins, n per bin shown)")
    ax.set_xlabel("Mean predicted probability")
    ax.set_ylabel("Observed positive rate")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def score_distribution_plot(
    y_true: ArrayLike, y_score: ArrayLike, *, bins: int = 30, title: str = "Score distribution"
) -> bytes:
    """Histograms of the scores of each class, each normalised to its own total."""
    y, s = _binary(y_true, y_score)
    edges = _edges(s, bins)
    fig, ax = _figure()
    for label, colour, mask in (("negatives", _NEG, y == 0), ("positives", _POS, y == 1)):
        if mask.any():
            weights = np.full(int(mask.sum()), 1.0 / mask.sum())
            ax.hist(
                s[mask],
                bins=edges,
                weights=weights,
                color=colour,
                alpha=0.5,
                label=f"{label} (n = {int(mask.sum())})",
            )
    ax.set_title(title)
    ax.set_xlabel("Score")
    ax.set_ylabel("Share of class")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def confusion_plot(
    matrix: ArrayLike, classes: Sequence[Any], *, title: str = "Confusion matrix"
) -> bytes:
    """Heatmap of a confusion matrix (rows: true class), shaded by share of the row."""
    cm = np.asarray(matrix, dtype=np.float64)
    k = len(classes)
    if cm.shape != (k, k):
        raise InvalidInput(
            f"matrix must be {k}x{k} for {k} classes, got shape {cm.shape}", field="matrix"
        )
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    side = min(9.0, max(4.0, 0.5 * k + 2.5))
    fig, ax = _figure((side + 1.0, side))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of true class", shrink=0.8)
    names = [_plain(c) for c in classes]
    ax.set_xticks(range(k), names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), names)
    if k <= 15:
        for i in range(k):
            for j in range(k):
                colour = "white" if share[i, j] > 0.6 else "black"
                ax.text(
                    j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8, color=colour
                )
    ax.set_title(title)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    return _png(fig)


def class_f1_plot(
    per_class: Mapping[str, Mapping[str, float]], *, title: str = "F1 per class"
) -> bytes:
    """Horizontal bars of F1 per class (the ``per_class`` of multiclass metrics)."""
    names = [_plain(name) for name in per_class]
    f1 = [float(per_class[name]["f1"]) for name in per_class]
    fig, ax = _figure((5.0, max(2.5, 0.3 * len(names) + 1.2)))
    ax.barh(range(len(names)), f1, color=_NEG)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    for i, value in enumerate(f1):
        ax.text(min(value + 0.01, 0.9), i, f"{value:.3f}", va="center", fontsize=8)
    ax.set(xlim=(0, 1), title=title)
    ax.set_xlabel("F1")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def regression_plot(
    y_true: ArrayLike, y_pred: ArrayLike, *, title: str = "Predicted vs actual"
) -> bytes:
    """Scatter of predictions against targets (at most 2000 points), with the identity line."""
    regression_metrics(y_true, y_pred)  # validates
    y, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if y.size > _MAX_POINTS:
        idx = np.random.default_rng(0).choice(y.size, _MAX_POINTS, replace=False)
        y, p = y[idx], p[idx]
        title = f"{title} (sample of {_MAX_POINTS})"
    lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    fig, ax = _figure()
    ax.scatter(y, p, s=6, alpha=0.4, color=_NEG, linewidths=0, label="rows")
    ax.plot([lo, hi], [lo, hi], color=_GREY, lw=1, ls="--", label="perfect prediction")
    ax.set_title(title)
    ax.set_xlabel("Actual")
    ax.set_ylabel("Predicted")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def residual_plot(
    y_true: ArrayLike, y_pred: ArrayLike, *, bins: int = 40, title: str = "Residuals"
) -> bytes:
    """Histogram of the residuals ``predicted - actual``."""
    regression_metrics(y_true, y_pred)  # validates
    r = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    fig, ax = _figure()
    ax.hist(r, bins=_edges(r, bins), color=_NEG, alpha=0.7)
    ax.axvline(0.0, color="black", lw=1, ls="--")
    ax.set_title(f"{title} (mean {r.mean():.3g}, sd {r.std():.3g})")
    ax.set_xlabel("Predicted − actual")
    ax.set_ylabel("Rows")
    ax.grid(alpha=0.3)
    return _png(fig)
