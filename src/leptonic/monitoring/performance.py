"""Model performance on fed-back outcomes: AUC, KS and bad rates, per window.

The input is one ``(score, label, decision, at)`` tuple per decision whose
outcome came back (:func:`outcomes_from_labelled` builds them from the
store's ``labelled_predictions``): the score given (P(bad)), the outcome
(1 = bad), the decision band (``approve``, ``review``, ``reject``...) and the
decision time. AUC and KS come from :mod:`leptonic.evaluation.metrics`; a
window whose outcomes are all of one class has AUC and KS ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from leptonic.core._time import as_utc
from leptonic.core.endpoint import Feedback, Prediction
from leptonic.errors import InvalidInput
from leptonic.evaluation.metrics import ks_statistic, roc_auc
from leptonic.monitoring._windows import assign_windows, epoch_seconds

__all__ = [
    "BAND_ORDER",
    "BandPerformance",
    "Outcome",
    "PerformanceReport",
    "PerformanceWindow",
    "outcomes_from_labelled",
    "performance_report",
]

#: One decision with its outcome: ``(score, label, decision, at)``.
Outcome = tuple[float, float, str, datetime]

#: Decision bands listed first, in this order; others follow alphabetically.
BAND_ORDER = ("approve", "review", "reject")


def outcomes_from_labelled(pairs: Sequence[tuple[Prediction, Feedback]]) -> list[Outcome]:
    """``(score, label, decision, at)`` tuples from ``(Prediction, Feedback)`` pairs."""
    return [(p.score, f.label, p.decision, p.at) for p, f in pairs]


@dataclass(frozen=True)
class BandPerformance:
    """Outcomes of the decisions of one band (``bad_rate`` None when ``n`` is 0)."""

    n: int
    n_bad: int
    bad_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "n_bad": self.n_bad, "bad_rate": self.bad_rate}


@dataclass(frozen=True)
class PerformanceWindow:
    """Performance over one window (or overall).

    ``start``/``end`` bound a window (``start <= at < end``); for the overall
    figures they are the first and last decision times. ``auc`` and ``ks`` are
    None unless both classes are present; ``bands`` holds every band seen in
    the report, in :data:`BAND_ORDER`.
    """

    start: datetime | None
    end: datetime | None
    n: int
    n_bad: int
    bad_rate: float | None
    auc: float | None
    ks: float | None
    bands: Mapping[str, BandPerformance]

    @property
    def n_good(self) -> int:
        return self.n - self.n_bad

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes in ISO 8601)."""
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "n": self.n,
            "n_bad": self.n_bad,
            "bad_rate": self.bad_rate,
            "auc": self.auc,
            "ks": self.ks,
            "bands": {name: b.to_dict() for name, b in self.bands.items()},
        }


@dataclass(frozen=True)
class PerformanceReport:
    """Overall performance and, when a window was given, one entry per window
    from the first decision's to the last one's (empty windows included)."""

    overall: PerformanceWindow
    windows: tuple[PerformanceWindow, ...]
    window: timedelta | None

    @property
    def bands(self) -> list[str]:
        return list(self.overall.bands)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_seconds": self.window.total_seconds() if self.window else None,
            "overall": self.overall.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
        }


def _band_order(names: Sequence[str]) -> list[str]:
    known = [b for b in BAND_ORDER if b in names]
    return known + sorted(b for b in names if b not in BAND_ORDER)


def _parse(
    outcomes: Sequence[Outcome],
) -> tuple[NDArray[np.float64], NDArray[np.int64], list[str], list[datetime]]:
    if isinstance(outcomes, str | bytes | Mapping):
        raise InvalidInput(
            "outcomes must be a list of (score, label, decision, at) tuples", field="outcomes"
        )
    try:
        columns = list(zip(*outcomes, strict=True)) if outcomes else [(), (), (), ()]
    except (TypeError, ValueError):
        columns = []
    if len(columns) != 4:
        raise InvalidInput(
            "each outcome must be a (score, label, decision, at) tuple", field="outcomes"
        )
    raw_scores, raw_labels, decisions, ats = columns
    try:
        scores = np.asarray(raw_scores, dtype=np.float64)
        labels = np.asarray(raw_labels, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput("scores and labels must be numbers", field="outcomes") from None
    if not np.isfinite(scores).all():
        i = int(np.argmax(~np.isfinite(scores)))
        raise InvalidInput(f"outcome {i} has a score that is not finite", field="score")
    bad = ~((labels == 0) | (labels == 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(
            f"outcome {i} has label {raw_labels[i]!r}; labels must be 0 (good) or 1 (bad)",
            field="label",
        )
    for i, (d, at) in enumerate(zip(decisions, ats, strict=True)):
        if not isinstance(d, str):
            raise InvalidInput(f"outcome {i} has decision {d!r}; expected text", field="decision")
        if not isinstance(at, datetime):
            raise InvalidInput(f"outcome {i} has time {at!r}; expected a datetime", field="at")
    # naive times are UTC: made aware so that they compare with aware ones
    return scores, labels.astype(np.int64), list(decisions), [as_utc(at) for at in ats]


def _window(
    scores: NDArray[np.float64],
    labels: NDArray[np.int64],
    band_counts: NDArray[np.int64],
    band_bads: NDArray[np.int64],
    bands: Sequence[str],
    start: datetime | None,
    end: datetime | None,
) -> PerformanceWindow:
    n, n_bad = int(labels.size), int(labels.sum())
    auc = ks = None
    if 0 < n_bad < n:
        auc = roc_auc(labels, scores)
        ks = ks_statistic(labels, scores)[0]
    return PerformanceWindow(
        start=start,
        end=end,
        n=n,
        n_bad=n_bad,
        bad_rate=n_bad / n if n else None,
        auc=auc,
        ks=ks,
        bands={
            name: BandPerformance(n=int(c), n_bad=int(b), bad_rate=float(b / c) if c else None)
            for name, c, b in zip(bands, band_counts, band_bads, strict=True)
        },
    )


def performance_report(
    outcomes: Sequence[Outcome],
    window: timedelta | None = None,
    *,
    origin: datetime | None = None,
) -> PerformanceReport:
    """AUC, KS, bad rate and count, overall and per window and decision band.

    Parameters
    ----------
    outcomes
        ``(score, label, decision, at)`` tuples, in any order; labels 0 or 1;
        a naive ``at`` is read as UTC.
    window
        Window width (``timedelta(weeks=1)``...); None for the overall figures only.
    origin
        A window boundary; the Unix epoch by default (windows start at midnight UTC).

    Examples
    --------
    >>> from datetime import datetime, timedelta, UTC
    >>> t = datetime(2025, 1, 1, tzinfo=UTC)
    >>> rows = [(0.9, 1, "reject", t), (0.2, 0, "approve", t), (0.4, 0, "review", t)]
    >>> report = performance_report(rows, timedelta(days=1))
    >>> report.overall.auc, report.windows[0].bands["approve"].bad_rate
    (1.0, 0.0)
    """
    scores, labels, decisions, ats = _parse(outcomes)
    codes_raw, uniques = pd.factorize(np.asarray(decisions, dtype=object))
    bands = _band_order([str(u) for u in uniques])
    remap = np.array([bands.index(str(u)) for u in uniques] + [0], dtype=np.int64)
    codes = remap[np.asarray(codes_raw, dtype=np.int64)]
    k = len(bands)
    overall = _window(
        scores,
        labels,
        np.bincount(codes, minlength=k),
        np.bincount(codes, weights=labels, minlength=k).astype(np.int64),
        bands,
        min(ats) if ats else None,
        max(ats) if ats else None,
    )
    if window is None:
        return PerformanceReport(overall=overall, windows=(), window=None)
    index, starts = assign_windows(epoch_seconds(ats), window, origin)
    count = len(starts)
    cell = index * k + codes
    per_band = np.bincount(cell, minlength=count * k).reshape(count, k)
    per_band_bad = (
        np.bincount(cell, weights=labels, minlength=count * k).reshape(count, k).astype(np.int64)
    )
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(count + 1))
    windows = []
    for w, start in enumerate(starts):
        rows = order[bounds[w] : bounds[w + 1]]
        windows.append(
            _window(
                scores[rows],
                labels[rows],
                per_band[w],
                per_band_bad[w],
                bands,
                start,
                start + window,
            )
        )
    return PerformanceReport(overall=overall, windows=tuple(windows), window=window)
