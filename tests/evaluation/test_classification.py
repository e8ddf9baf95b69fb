"""Classification metrics against scikit-learn, the trusted reference."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from leptonic.errors import InvalidInput, TargetError
from leptonic.evaluation.classification import (
    classification_metrics,
    classification_plots,
    classification_report,
    label_metrics,
    multilabel_metrics,
    top_k_accuracy,
)

CLASSES = ["cancel", "card_lost", "refund", "top_up", "never_seen"]


def _data(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)  # the last class never occurs
    logits = rng.normal(size=(n, len(CLASSES)))
    logits[np.arange(n), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba, proba.argmax(axis=1)


@pytest.mark.parametrize("seed", range(3))
def test_label_metrics_match_sklearn(seed: int) -> None:
    y, _, pred = _data(seed)
    names = np.array(CLASSES)
    m = label_metrics(names[y], names[pred], CLASSES)
    labels = list(range(len(CLASSES)))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(
        skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0)
    )
    assert m["weighted_f1"] == pytest.approx(
        skm.f1_score(y, pred, labels=labels, average="weighted", zero_division=0)
    )
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for j, name in enumerate(CLASSES):
        row = m["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[j], r[j], f[j]))
        assert row["support"] == s[j]
    np.testing.assert_array_equal(
        m["confusion_matrix"], skm.confusion_matrix(y, pred, labels=labels)
    )


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_accuracy_matches_sklearn(k: int) -> None:
    y, proba, _ = _data(7)
    expected = skm.top_k_accuracy_score(y, proba, k=k, labels=range(len(CLASSES)))
    assert top_k_accuracy(y, proba, CLASSES, k) == pytest.approx(expected)
    assert top_k_accuracy(y, proba, CLASSES, len(CLASSES)) == 1.0


def test_classification_metrics_from_probabilities() -> None:
    y, proba, pred = _data(1)
    m = classification_metrics(y, proba, CLASSES, top_k=(3, 5, 9))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert set(m["top_k_accuracy"]) == {"3"}  # k ≥ number of classes is left out
    two = classification_metrics([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], ["neg", "pos"])
    assert two["accuracy"] == pytest.approx(2 / 3)
    assert two["top_k_accuracy"] == {}


def test_report_and_plots() -> None:
    y, proba, _ = _data(2)
    m = classification_metrics(y, proba, CLASSES)
    text = classification_report(m)
    assert "macro avg" in text and "refund" in text
    assert f"{m['macro_f1']:.3f}" in text
    images = classification_plots(m, title="test")
    assert set(images) == {"confusion_matrix", "f1_per_class"}
    assert all(png.startswith(b"\x89PNG") for png in images.values())


def test_bad_input_is_named() -> None:
    with pytest.raises(TargetError, match="not among classes"):
        label_metrics(["cancel", "oops"], ["cancel", "cancel"], CLASSES)
    with pytest.raises(InvalidInput, match="one prediction per row"):
        label_metrics(["cancel", "refund"], ["cancel"], CLASSES)
    with pytest.raises(InvalidInput, match="at least two labels"):
        label_metrics(["a"], ["a"], ["a"])
    with pytest.raises(InvalidInput, match="shape"):
        top_k_accuracy([0, 1], [[0.5, 0.5]], ["a", "b"], 1)


def test_a_bad_prediction_is_named_as_y_pred() -> None:
    with pytest.raises(TargetError, match=r"y_pred holds labels \['zzz'\]") as info:
        label_metrics(["a", "b"], ["a", "zzz"], ["a", "b"])
    assert info.value.field == "y_pred"


@pytest.mark.parametrize(
    ("proba", "match"),
    [([[np.nan, 0.2], [np.nan, 0.9]], "NaN"), ([[5.0, 0.2], [-3.0, 0.9]], r"\[0, 1\]")],
)
def test_multilabel_metrics_refuses_what_is_not_a_probability(
    proba: list[list[float]], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        multilabel_metrics([[1, 0], [1, 1]], proba, ["a", "b"])
    assert info.value.field == "proba"
