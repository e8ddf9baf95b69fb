"""Performance on outcomes: AUC and KS per window against scikit-learn, bands, edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sklearn.metrics as skm

from leptonic.core.endpoint import Feedback, Prediction
from leptonic.errors import InvalidInput
from leptonic.monitoring import Outcome, outcomes_from_labelled, performance_report

T0 = datetime(2025, 3, 3, tzinfo=UTC)
WEEK = timedelta(weeks=1)


def _outcomes(n: int, seed: int, start: datetime = T0, span: timedelta = 4 * WEEK) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.15).astype(int)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 2)))
    score = np.round(score, 3)  # ties, as a scorecard gives
    seconds = rng.uniform(0, span.total_seconds(), n)
    decision = np.where(score < 0.2, "approve", np.where(score < 0.35, "review", "reject"))
    return [
        (float(s), int(label), str(d), start + timedelta(seconds=float(t)))
        for s, label, d, t in zip(score, y, decision, seconds, strict=True)
    ]


def _ks_reference(y: np.ndarray, s: np.ndarray) -> float:
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    return float(np.max(np.abs(tpr - fpr)))


def test_auc_and_ks_per_window_match_sklearn() -> None:
    outcomes = _outcomes(4000, seed=1)
    report = performance_report(outcomes, WEEK)
    assert report.window == WEEK
    assert sum(w.n for w in report.windows) == 4000
    for w in report.windows:
        assert w.start is not None and w.end == w.start + WEEK
        rows = [o for o in outcomes if w.start <= o[3] < w.end]
        y = np.array([o[1] for o in rows])
        s = np.array([o[0] for o in rows])
        assert w.n == len(rows) and w.n_bad == int(y.sum())
        assert w.bad_rate == pytest.approx(y.mean())
        assert w.auc == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
        assert w.ks == pytest.approx(_ks_reference(y, s), abs=1e-12)
    y = np.array([o[1] for o in outcomes])
    s = np.array([o[0] for o in outcomes])
    assert report.overall.auc == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert report.overall.ks == pytest.approx(_ks_reference(y, s), abs=1e-12)


def test_weekly_windows_start_on_the_epoch_grid() -> None:
    report = performance_report(_outcomes(500, seed=2), timedelta(days=1))
    starts = [w.start for w in report.windows if w.start is not None]
    assert len(starts) == len(report.windows)
    assert all(s.hour == 0 and s.minute == 0 for s in starts)
    assert starts == sorted(starts)


def test_bands_have_counts_and_bad_rates() -> None:
    outcomes = _outcomes(3000, seed=3)
    report = performance_report(outcomes, WEEK)
    assert report.bands == ["approve", "review", "reject"]
    for band in report.bands:
        rows = [o for o in outcomes if o[2] == band]
        b = report.overall.bands[band]
        assert b.n == len(rows)
        assert b.n_bad == sum(o[1] for o in rows)
        assert b.bad_rate == pytest.approx(b.n_bad / b.n)
    assert sum(w.bands["reject"].n for w in report.windows) == report.overall.bands["reject"].n
    rates = [report.overall.bands[b].bad_rate or 0.0 for b in report.bands]
    assert rates == sorted(rates)  # riskier bands go bad more often


def test_one_class_windows_have_no_auc_and_empty_windows_no_rates() -> None:
    good = [(0.1, 0, "approve", T0 + timedelta(hours=i)) for i in range(20)]
    later = [(0.9, 1, "reject", T0 + 2 * WEEK), (0.1, 0, "approve", T0 + 2 * WEEK)]
    report = performance_report(good + later, WEEK)
    first, empty, last = report.windows
    assert first.n == 20 and first.auc is None and first.ks is None and first.bad_rate == 0.0
    assert empty.n == 0 and empty.bad_rate is None and empty.auc is None
    assert empty.bands["approve"].bad_rate is None
    assert last.auc == 1.0 and last.ks == 1.0
    assert report.overall.auc == 1.0
    assert report.to_dict()["windows"][1]["bands"]["reject"] == {
        "n": 0,
        "n_bad": 0,
        "bad_rate": None,
    }


def test_without_a_window_only_overall_figures() -> None:
    report = performance_report(_outcomes(300, seed=4))
    assert report.windows == () and report.window is None
    assert report.overall.n == 300
    empty = performance_report([])
    assert empty.overall.n == 0 and empty.overall.auc is None and empty.overall.start is None


def test_other_decision_names_follow_the_known_bands() -> None:
    rows: list[Outcome] = [
        (0.1, 0, "approve", T0),
        (0.5, 1, "manual", T0),
        (0.9, 1, "reject", T0),
        (0.2, 0, "approve", T0),
    ]
    assert performance_report(rows).bands == ["approve", "reject", "manual"]


def test_bad_outcomes_are_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        performance_report([(0.1, 2, "approve", T0)])
    assert info.value.field == "label"
    with pytest.raises(InvalidInput) as info:
        performance_report([(float("nan"), 1, "approve", T0)])
    assert info.value.field == "score"
    with pytest.raises(InvalidInput) as info:
        performance_report([(0.1, 1, "approve", "2025-01-01")])  # type: ignore[list-item]
    assert info.value.field == "at"
    with pytest.raises(InvalidInput):
        performance_report([(0.1, 1, "approve")])  # type: ignore[list-item]


def test_naive_and_aware_times_mix_as_utc() -> None:
    naive = datetime(2025, 3, 3, 12)  # read as UTC: after T0, before the aware one
    rows: list[Outcome] = [
        (0.1, 0, "approve", T0 + timedelta(hours=13)),
        (0.9, 1, "reject", naive),
        (0.2, 0, "approve", T0),
    ]
    report = performance_report(rows, timedelta(days=1))
    assert report.overall.start == T0 and report.overall.end == T0 + timedelta(hours=13)
    assert report.windows[0].n == 3


def test_outcomes_from_labelled_pairs() -> None:
    p = Prediction("credit", "decide", "r1", "m", 1, 0.3, "review", T0)
    f = Feedback("credit", "decide", "r1", 1.0, at=T0 + WEEK)
    assert outcomes_from_labelled([(p, f)]) == [(0.3, 1.0, "review", T0)]
