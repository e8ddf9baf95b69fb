"""Recalibrated band edges hit their targets on synthetic decisions."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from leptonic.errors import InvalidInput
from leptonic.monitoring import thresholds_for_approval_rate, thresholds_for_bad_rate


def _decisions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores: each applicant goes bad with probability = score."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(1.2, 8.0, n)
    labels = (rng.uniform(size=n) < scores).astype(int)
    return scores, labels


@pytest.mark.parametrize("target", [0.3, 0.55, 0.8])
def test_approval_rate_target_is_hit(target: float) -> None:
    scores, _ = _decisions(20_000, seed=1)
    r = thresholds_for_approval_rate(scores, target)
    approved = np.mean(scores < r.approve_edge)
    assert r.method == "approval_rate" and r.n == 20_000 and r.target == target
    assert r.achieved == r.approval_rate == pytest.approx(approved)
    assert target - 1 / r.n <= r.achieved <= target
    assert r.reject_edge is not None and r.reject_edge > r.approve_edge
    in_review = np.mean((scores >= r.approve_edge) & (scores < r.reject_edge))
    assert r.review_rate == pytest.approx(in_review) == pytest.approx(0.10, abs=1e-3)
    assert r.bad_rate is None


def test_ties_are_never_split() -> None:
    scores = np.round(_decisions(5000, seed=2)[0], 2)  # few distinct values
    r = thresholds_for_approval_rate(scores, 0.5)
    assert r.achieved <= 0.5
    assert r.achieved == pytest.approx(np.mean(scores < r.approve_edge))
    assert not np.any(scores[scores < r.approve_edge] == r.approve_edge)
    below = np.unique(scores[scores >= r.approve_edge])[0]
    assert np.mean(scores <= below) > 0.5  # the next tie group would overshoot


def test_review_band_width() -> None:
    scores, _ = _decisions(2000, seed=3)
    none = thresholds_for_approval_rate(scores, 0.6, review_share=0.0)
    assert none.reject_edge == none.approve_edge and none.review_rate == 0.0
    wide = thresholds_for_approval_rate(scores, 0.6, review_share=0.25)
    assert wide.review_rate == pytest.approx(0.25, abs=1e-3)
    everything = thresholds_for_approval_rate(scores, 0.95, review_share=0.1)
    assert everything.reject_edge is None  # no rejections left in the sample
    assert everything.review_rate == pytest.approx(1 - everything.approval_rate)


@pytest.mark.parametrize("target", [0.03, 0.05, 0.08])
def test_bad_rate_target_is_hit_with_the_highest_edge(target: float) -> None:
    scores, labels = _decisions(20_000, seed=4)
    r = thresholds_for_bad_rate(scores, labels, target)
    approved = scores < r.approve_edge
    assert r.method == "bad_rate" and r.n == 20_000
    assert r.achieved == r.bad_rate == pytest.approx(labels[approved].mean())
    assert r.achieved <= target
    assert r.approval_rate == pytest.approx(approved.mean())
    # every higher edge (at an observed score) approves a bad rate above the target
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], labels[order]
    rates = np.cumsum(y) / np.arange(1, s.size + 1)
    j = int(approved.sum())
    separable = np.r_[s[:-1] < s[1:], True]
    assert np.all(rates[j:][separable[j:]] > target)


def test_bad_rate_on_calibrated_scores_tracks_the_score() -> None:
    scores, labels = _decisions(50_000, seed=5)
    r = thresholds_for_bad_rate(scores, labels, 0.05)
    # with calibrated scores, the approved bad rate is the mean score of the approved
    assert np.mean(scores[scores < r.approve_edge]) == pytest.approx(0.05, abs=0.005)


def test_bad_rate_errors_are_clear() -> None:
    scores, labels = _decisions(5000, seed=6)
    with pytest.raises(InvalidInput, match=r"lowest reachable") as info:
        thresholds_for_bad_rate(scores, np.ones_like(labels), 0.1)
    assert info.value.field == "target_bad_rate"
    with pytest.raises(InvalidInput, match="at least 200 outcomes") as info:
        thresholds_for_bad_rate(scores[:150], labels[:150], 0.05)
    assert info.value.field == "labels"
    with pytest.raises(InvalidInput) as info:
        thresholds_for_bad_rate(scores, labels[:-1], 0.05)
    assert info.value.field == "labels"
    with pytest.raises(InvalidInput) as info:
        thresholds_for_bad_rate(scores, labels * 2, 0.05)
    assert info.value.field == "labels"
    # all good: approve everyone
    r = thresholds_for_bad_rate(scores, np.zeros_like(labels), 0.0)
    assert r.approval_rate == 1.0 and r.approve_edge > scores.max()
    assert r.reject_edge is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_rate": 0.0}, "target_rate"),
        ({"target_rate": 1.0}, "target_rate"),
        ({"target_rate": float("nan")}, "target_rate"),
        ({"target_rate": 0.5, "review_share": -0.1}, "review_share"),
        ({"target_rate": 0.001}, "target_rate"),
    ],
)
def test_approval_rate_arguments_are_checked(kwargs: dict[str, Any], field: str) -> None:
    scores, _ = _decisions(500, seed=7)
    with pytest.raises(InvalidInput) as info:
        thresholds_for_approval_rate(scores, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    "rate", [np.float32(0.6), np.float64(0.6), np.int64(3) / 5, Fraction(3, 5), 0.6]
)
def test_shares_may_be_any_real_number(rate: Any) -> None:
    # np.float32(0.6) was refused: "target_rate must lie in (0, 1), got np.float32(0.6)"
    scores, labels = _decisions(1000, seed=9)
    expected = thresholds_for_approval_rate(scores, float(rate), review_share=0.1)
    r = thresholds_for_approval_rate(scores, rate, review_share=np.float32(0.1))
    assert r == expected and type(r.target) is float
    bad = thresholds_for_bad_rate(scores, labels, rate / 6, review_share=np.float16(0))
    assert bad == thresholds_for_bad_rate(scores, labels, float(rate / 6), review_share=0.0)


@pytest.mark.parametrize("rate", [True, np.bool_(True), "0.6", None, 10**400, np.float32("inf")])
def test_shares_that_are_not_real_numbers_are_refused(rate: Any) -> None:
    scores, labels = _decisions(500, seed=7)
    with pytest.raises(InvalidInput, match=r"target_rate must lie in \(0, 1\)") as info:
        thresholds_for_approval_rate(scores, rate)
    assert info.value.field == "target_rate"
    with pytest.raises(InvalidInput, match=r"review_share must lie in \[0, 1\)"):
        thresholds_for_bad_rate(scores, labels, 0.05, review_share=rate)


def test_too_few_or_bad_scores() -> None:
    with pytest.raises(InvalidInput, match="at least 100") as info:
        thresholds_for_approval_rate(np.linspace(0, 1, 50), 0.5)
    assert info.value.field == "scores"
    with pytest.raises(InvalidInput) as info:
        thresholds_for_approval_rate(np.r_[np.linspace(0, 1, 200), np.nan], 0.5)
    assert info.value.field == "scores"
    with pytest.raises(InvalidInput, match="shared by more than"):
        thresholds_for_approval_rate(np.r_[np.zeros(300), np.linspace(0, 1, 100)], 0.5)


def test_result_serialises() -> None:
    scores, labels = _decisions(1000, seed=8)
    d = thresholds_for_bad_rate(scores, labels, 0.08).to_dict()
    assert set(d) == {
        "method",
        "target",
        "approve_edge",
        "reject_edge",
        "achieved",
        "approval_rate",
        "review_rate",
        "bad_rate",
        "n",
    }
