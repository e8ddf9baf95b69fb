"""New decision thresholds from recent decisions.

A credit decision policy cuts the score (P(bad)) into three bands::

    score <  approve_edge                  approve
    approve_edge <= score < reject_edge    review (a person decides)
    score >= reject_edge                   reject

When the score distribution or the bad rate moves, the edges are moved to
hold a business target:

- :func:`thresholds_for_approval_rate`: approve the lowest-risk
  ``target_rate`` of recent applicants;
- :func:`thresholds_for_bad_rate`: approve as many as possible while the bad
  rate among the approved stays at or below ``target_bad_rate``, on
  decisions whose outcomes came back.

Edges are observed scores, and ties are never split: the achieved rate is
the closest to the target that does not exceed it, and is reported with the
sample size in a :class:`Recalibration`.

The review band
---------------
The review band is sized by the share of decisions it holds, not in score
units (scores of different models are scaled differently): ``reject_edge`` is
placed so that about ``review_share`` (10% by default) of the sample falls
between the edges, right above the approved share. Pass ``review_share=0``
for no review band. When approved plus review would cover the whole sample,
``reject_edge`` is None: nothing in the sample would be rejected, so the
current reject edge should be kept or set by hand.

Caveat: outcomes exist mostly for approved applicants, so a bad rate
measured on them says little about scores above the current approve edge;
:func:`thresholds_for_bad_rate` only reads the sample it is given.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from leptonic.errors import InvalidInput

__all__ = ["Recalibration", "thresholds_for_approval_rate", "thresholds_for_bad_rate"]


@dataclass(frozen=True)
class Recalibration:
    """New band edges and what they achieve on the sample they were computed on.

    Attributes
    ----------
    method
        ``"approval_rate"`` or ``"bad_rate"``.
    target
        The target approval rate or approved bad rate.
    approve_edge
        Approve when ``score < approve_edge``.
    reject_edge
        Reject when ``score >= reject_edge``; review in between. None when no
        decision of the sample would be rejected.
    achieved
        The approval rate (``approval_rate`` method) or the bad rate of the
        approved (``bad_rate`` method) on the sample, in-sample: measured on
        the decisions the edges were chosen on. A bad rate so measured is
        optimistic; expect a higher one on new decisions.
    approval_rate, review_rate
        Shares of the sample approved and sent to review with these edges.
    bad_rate
        Bad rate among the approved, when labels were given.
    n
        Sample size.
    """

    method: Literal["approval_rate", "bad_rate"]
    target: float
    approve_edge: float
    reject_edge: float | None
    achieved: float
    approval_rate: float
    review_rate: float
    bad_rate: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scores(values: ArrayLike, name: str = "scores") -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a list of numbers", field=name) from None
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be 1-D, got shape {arr.shape}", field=name)
    if not np.isfinite(arr).all():
        raise InvalidInput(f"{name} holds NaN or infinite values; drop them first", field=name)
    return arr


def _share(value: Any, name: str, *, low_open: bool, high: float = 1.0) -> float:
    """``value`` as a float in ``(0, high)`` (``[0, high)`` unless ``low_open``): any real
    number (``0.6``, ``np.float32(0.6)``, ``Fraction(3, 5)``) but a boolean."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    try:
        share = float(value) if real else math.nan
    except OverflowError:  # an int too large for a float
        share = math.inf
    ok = math.isfinite(share) and (share > 0 if low_open else share >= 0) and share < high
    if not ok:
        bounds = f"{'(' if low_open else '['}0, {high:g})"
        raise InvalidInput(f"{name} must lie in {bounds}, got {value!r}", field=name)
    return share


def _edge(s: NDArray[np.float64], j: int) -> float:
    """The edge below which exactly the ``j`` lowest of sorted ``s`` fall."""
    return float(s[j]) if j < s.size else float(np.nextafter(s[-1], np.inf))


def _split(s: NDArray[np.float64], k: int) -> int:
    """The most of the lowest ``k`` of sorted ``s`` that an edge can separate (no tie split)."""
    return s.size if k >= s.size else int(np.searchsorted(s, s[k], side="left"))


def _review(s: NDArray[np.float64], approved: int, review_share: float) -> tuple[float | None, int]:
    """The reject edge and the count in review for a review band of ``review_share``."""
    n = s.size
    upper = approved + math.floor(review_share * n + 1e-9)
    if upper >= n:
        return None, n - approved
    upper = max(approved, _split(s, upper))
    return _edge(s, upper), upper - approved


def thresholds_for_approval_rate(
    scores: ArrayLike,
    target_rate: float,
    *,
    review_share: float = 0.10,
    min_samples: int = 100,
) -> Recalibration:
    """The approve edge that approves the lowest-risk ``target_rate`` of ``scores``.

    Parameters
    ----------
    scores
        Scores (P(bad)) of recent applicants, all of them, whatever was decided.
    target_rate
        Share to approve, in ``(0, 1)``; ties at the edge make the achieved
        share the closest below it.
    review_share
        Share of the sample to put in the review band above the approved (see
        the module notes).
    min_samples
        Fewest scores accepted.

    Examples
    --------
    >>> import numpy as np
    >>> r = thresholds_for_approval_rate(np.arange(1000) / 1000, 0.6)
    >>> r.approve_edge, r.achieved, r.reject_edge, r.review_rate
    (0.6, 0.6, 0.7, 0.1)
    """
    s = np.sort(_scores(scores))
    target = _share(target_rate, "target_rate", low_open=True)
    review = _share(review_share, "review_share", low_open=False)
    if s.size < max(min_samples, 1):
        raise InvalidInput(
            f"only {s.size} scores; recalibrating needs at least {min_samples} recent decisions",
            field="scores",
        )
    k = math.floor(target * s.size + 1e-9)
    if k < 1:
        raise InvalidInput(
            f"target_rate {target:g} of {s.size} scores approves no one; "
            "use more decisions or a higher target",
            field="target_rate",
        )
    approved = _split(s, k)
    if approved == 0:
        raise InvalidInput(
            f"the lowest score {s[0]:.6g} is shared by more than {target:.1%} of the sample, "
            "so no edge approves that share without approving more; check the scores",
            field="scores",
        )
    reject_edge, in_review = _review(s, approved, review)
    rate = approved / s.size
    return Recalibration(
        method="approval_rate",
        target=target,
        approve_edge=_edge(s, approved),
        reject_edge=reject_edge,
        achieved=rate,
        approval_rate=rate,
        review_rate=in_review / s.size,
        bad_rate=None,
        n=int(s.size),
    )


def thresholds_for_bad_rate(
    scores: ArrayLike,
    labels: ArrayLike,
    target_bad_rate: float,
    *,
    review_share: float = 0.10,
    min_labels: int = 200,
    min_approved: int = 30,
) -> Recalibration:
    """The highest approve edge whose approved bad rate is at most ``target_bad_rate``.

    The edge is chosen on ``scores`` and ``labels``, and ``achieved`` is the bad
    rate of the approved among these same outcomes: an in-sample figure, the
    best of the edges tried, so an optimistic one; a new sample will most likely
    read higher.

    Parameters
    ----------
    scores
        Scores of decisions whose outcomes came back.
    labels
        Their outcomes, 1 = bad, 0 = good.
    target_bad_rate
        Highest acceptable bad rate among the approved, in ``[0, 1)``.
    review_share
        Share of the sample to put in the review band (see the module notes).
    min_labels
        Fewest outcomes accepted.
    min_approved
        Fewest approvals an edge must give to count: the bad rate of a handful
        of decisions means nothing.

    Raises
    ------
    InvalidInput
        Too few outcomes, or no edge approving at least ``min_approved``
        decisions reaches the target (the message gives the best one).
    """
    raw = _scores(scores)
    try:
        y = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput("labels must be 0 (good) or 1 (bad)", field="labels") from None
    if y.shape != raw.shape:
        raise InvalidInput(
            f"{raw.size} scores but {y.size} labels; pass one label per score", field="labels"
        )
    if not ((y == 0) | (y == 1)).all():
        raise InvalidInput("labels must be 0 (good) or 1 (bad)", field="labels")
    target = _share(target_bad_rate, "target_bad_rate", low_open=False)
    review = _share(review_share, "review_share", low_open=False)
    if raw.size < max(min_labels, 1):
        raise InvalidInput(
            f"only {raw.size} labelled decisions; a bad-rate target needs at least "
            f"{min_labels} outcomes: wait for more feedback",
            field="labels",
        )
    order = np.argsort(raw, kind="stable")
    s, y = raw[order], y[order]
    n = s.size
    counts = np.arange(1, n + 1)
    rates = np.cumsum(y) / counts
    separable = np.r_[s[:-1] < s[1:], True]  # approving the lowest j splits no tie
    usable = separable & (counts >= min_approved)
    if not usable.any():
        raise InvalidInput(
            f"no edge approves at least {min_approved} of the {n} decisions without splitting "
            "tied scores; lower min_approved or use more decisions",
            field="scores",
        )
    ok = np.flatnonzero(usable & (rates <= target + 1e-12))
    if ok.size == 0:
        best = float(rates[usable].min())
        raise InvalidInput(
            f"no approve edge keeps the approved bad rate at or below {target:.2%} on these "
            f"{n} outcomes: the lowest reachable with at least {min_approved} approvals is "
            f"{best:.2%}; raise the target or retrain the model",
            field="target_bad_rate",
        )
    approved = int(ok[-1]) + 1
    reject_edge, in_review = _review(s, approved, review)
    return Recalibration(
        method="bad_rate",
        target=target,
        approve_edge=_edge(s, approved),
        reject_edge=reject_edge,
        achieved=float(rates[approved - 1]),
        approval_rate=approved / n,
        review_rate=in_review / n,
        bad_rate=float(rates[approved - 1]),
        n=int(n),
    )
