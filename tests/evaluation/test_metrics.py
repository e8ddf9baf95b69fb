"""Our metrics against scikit-learn and scipy, the trusted references."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sklearn.metrics as skm
from scipy.stats import ks_2samp
from sklearn.calibration import calibration_curve as sk_calibration_curve

import leptonic.evaluation as ev
from leptonic.errors import InvalidInput, TargetError
from leptonic.evaluation import metrics


def _binary_data(seed: int, n: int = 2000, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 1.2 * y - 0.5)))
    if ties:
        score = np.round(score, 1)  # about ten distinct values: many ties
    return y, score


CASES = [(seed, ties) for seed in range(4) for ties in (False, True)]


def test_public_api_is_exported() -> None:
    assert set(metrics.__all__) <= set(ev.__all__)
    for name in ev.__all__:
        assert getattr(ev, name) is not None


@pytest.mark.parametrize(("seed", "ties"), CASES)
def test_roc_auc_and_curve_match_sklearn(seed: int, ties: bool) -> None:
    y, s = _binary_data(seed, ties=ties)
    assert ev.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert ev.gini(y, s) == pytest.approx(2 * skm.roc_auc_score(y, s) - 1, abs=1e-12)
    fpr, tpr, thr = ev.roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])
    assert np.isinf(thr[0])


def test_auc_counts_ties_as_one_half() -> None:
    assert ev.roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert ev.roc_auc([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.9]) == pytest.approx(0.875)
    assert ev.roc_auc([True, False], [1, 0]) == 1.0


@pytest.mark.parametrize(("seed", "ties"), CASES)
def test_ks_matches_scipy_two_sample(seed: int, ties: bool) -> None:
    y, s = _binary_data(seed, ties=ties)
    ks, threshold = ev.ks_statistic(y, s)
    assert ks == pytest.approx(ks_2samp(s[y == 1], s[y == 0]).statistic, abs=1e-12)
    # The threshold is where the gap is reached.
    at = ev.confusion_at(y, s, threshold)
    gap = abs(at["recall"] - (1.0 - at["specificity"]))
    assert gap == pytest.approx(ks, abs=1e-12)


@pytest.mark.parametrize(("seed", "ties"), CASES)
def test_pr_auc_matches_average_precision(seed: int, ties: bool) -> None:
    y, s = _binary_data(seed, ties=ties)
    assert ev.pr_auc(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


def test_brier_and_log_loss_match_sklearn() -> None:
    y, p = _binary_data(7)
    assert ev.brier_score(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
    assert ev.log_loss(y, p) == pytest.approx(skm.log_loss(y, p), abs=1e-10)
    assert np.isfinite(ev.log_loss([0, 1], [1.0, 0.0]))  # clipped, not infinite


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("ties", [False, True])
def test_calibration_curve_matches_sklearn(strategy: str, ties: bool) -> None:
    y, p = _binary_data(3, ties=ties)
    got = ev.calibration_curve(y, p, n_bins=10, strategy=strategy)  # type: ignore[arg-type]
    sk_true, sk_pred = sk_calibration_curve(y, p, n_bins=10, strategy=strategy)
    np.testing.assert_allclose(got["fraction_positive"], sk_true)
    np.testing.assert_allclose(got["mean_predicted"], sk_pred)
    assert sum(got["count"]) == y.size
    assert all(c > 0 for c in got["count"])


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.73])
def test_confusion_at_matches_sklearn(threshold: float) -> None:
    y, s = _binary_data(5, ties=True)
    got = ev.confusion_at(y, s, threshold)
    pred = (s >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert (got["tn"], got["fp"], got["fn"], got["tp"]) == (tn, fp, fn, tp)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["specificity"] == pytest.approx(tn / (tn + fp))


def test_confusion_with_nothing_predicted_positive_has_zero_precision() -> None:
    got = ev.confusion_at([0, 1, 1], [0.1, 0.2, 0.3], threshold=0.9)
    assert got["tp"] == got["fp"] == 0
    assert got["precision"] == got["f1"] == 0.0


def test_choose_threshold_methods() -> None:
    y, s = _binary_data(11, ties=True)
    assert ev.choose_threshold(y, s, "ks") == ev.ks_statistic(y, s)[1]
    best_f1 = ev.choose_threshold(y, s, "f1")
    f1_all = [ev.confusion_at(y, s, t)["f1"] for t in np.unique(s)]
    assert ev.confusion_at(y, s, best_f1)["f1"] == pytest.approx(max(f1_all))
    t = ev.choose_threshold(y, s, "rate", target_rate=0.3)
    assert np.mean(s >= t) <= 0.3
    lower = np.unique(s)[np.unique(s) < t]
    assert lower.size == 0 or np.mean(s >= lower.max()) > 0.3
    assert ev.choose_threshold(y, s, "rate", target_rate=1.0) == s.min()
    with pytest.raises(InvalidInput, match="target_rate"):
        ev.choose_threshold(y, s, "rate")
    with pytest.raises(InvalidInput, match="unknown threshold method"):
        ev.choose_threshold(y, s, "youden")  # type: ignore[arg-type]


def test_binary_metrics_is_consistent_and_json_ready() -> None:
    y, s = _binary_data(2)
    got = ev.binary_metrics(y, s)
    expected_keys = {
        "auc",
        "ks",
        "ks_threshold",
        "gini",
        "pr_auc",
        "brier",
        "log_loss",
        "positive_rate",
        "n",
        "threshold",
        "tp",
        "fp",
        "tn",
        "fn",
        "precision",
        "recall",
        "f1",
        "accuracy",
        "specificity",
    }
    assert set(got) == expected_keys
    assert all(type(v) in (float, int) for v in got.values())
    json.dumps(got)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert got["threshold"] == got["ks_threshold"]
    assert got["n"] == y.size
    assert got["positive_rate"] == pytest.approx(y.mean())
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, s))
    fixed = ev.binary_metrics(y, s, threshold=0.5)
    assert fixed["threshold"] == 0.5
    assert fixed["tp"] == int(np.sum((s >= 0.5) & (y == 1)))


def test_binary_metrics_on_non_probability_scores() -> None:
    y, s = _binary_data(2)
    got = ev.binary_metrics(y, 300 + 100 * s)
    assert got["brier"] is None and got["log_loss"] is None
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, s))


def test_single_class_target_says_auc_needs_both_classes() -> None:
    with pytest.raises(TargetError, match="AUC needs both classes"):
        ev.roc_auc([1, 1, 1], [0.2, 0.4, 0.9])
    with pytest.raises(TargetError, match="both classes"):
        ev.binary_metrics([0, 0], [0.2, 0.4])


@pytest.mark.parametrize(
    ("y", "score", "error", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], InvalidInput, "3 rows but y_score has 2"),
        ([0, 1, 1], [0.1, float("nan"), 0.3], InvalidInput, "NaN"),
        ([0, 1, 2], [0.1, 0.2, 0.3], TargetError, "binary 0/1"),
        (["no", "yes"], [0.1, 0.2], TargetError, "binary 0/1"),
        ([], [], InvalidInput, "empty"),
        ([[0, 1]], [[0.1, 0.2]], InvalidInput, "1-D"),
        ([0, 1], ["a", "b"], InvalidInput, "numeric"),
    ],
)
def test_bad_input_is_rejected_clearly(
    y: list[object], score: list[object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ev.roc_auc(y, score)  # type: ignore[arg-type]


def test_probability_metrics_reject_raw_scores() -> None:
    with pytest.raises(InvalidInput, match=r"probabilities in \[0, 1\]"):
        ev.brier_score([0, 1], [-1.0, 3.0])
    with pytest.raises(InvalidInput, match="strategy"):
        ev.calibration_curve([0, 1], [0.1, 0.9], strategy="kmeans")  # type: ignore[arg-type]


def test_scales_to_a_million_rows_quickly() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1_000_000)
    s = rng.random(1_000_000)
    got = ev.binary_metrics(y, s)
    assert 0.49 < got["auc"] < 0.51
