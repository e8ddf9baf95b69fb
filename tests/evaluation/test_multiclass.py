"""Our multiclass metrics against scikit-learn, the trusted reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sklearn.metrics as skm

import leptonic.evaluation as ev
from leptonic.errors import InvalidInput, TargetError


def test_multiclass_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    classes = ["low", "mid", "high"]
    n = 900
    idx = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[idx]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array(classes)[idx]
    got = ev.multiclass_metrics(y, proba, classes)
    pred = np.array(classes)[proba.argmax(axis=1)]
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    f1 = {
        avg: skm.f1_score(y, pred, labels=classes, average=avg, zero_division=0)
        for avg in ("macro", "weighted")
    }
    assert got["macro_f1"] == pytest.approx(f1["macro"])
    assert got["weighted_f1"] == pytest.approx(f1["weighted"])
    # sklearn wants probability columns in sorted label order: give it the column indices.
    assert got["log_loss"] == pytest.approx(skm.log_loss(idx, proba))
    sk_auc = skm.roc_auc_score(idx, proba, multi_class="ovr", average="macro")
    assert got["auc_ovr"] == pytest.approx(sk_auc)
    assert got["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=classes).tolist()
    report = skm.classification_report(y, pred, labels=classes, output_dict=True)
    for label in classes:
        for key in ("precision", "recall", "f1"):
            sk_key = "f1-score" if key == "f1" else key
            assert got["per_class"][label][key] == pytest.approx(report[label][sk_key])
        assert got["per_class"][label]["support"] == report[label]["support"]
    json.dumps(got)


def test_multiclass_accepts_positions_for_named_classes() -> None:
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 3, 300)
    proba = rng.dirichlet(np.ones(3), 300)
    classes = ["a", "b", "c"]
    by_label = ev.multiclass_metrics(np.array(classes)[idx], proba, classes)
    assert ev.multiclass_metrics(idx, proba, classes) == by_label
    with pytest.raises(TargetError, match=r"positions outside 0\.\.2"):
        ev.multiclass_metrics(idx + 1, proba, classes)
    # Integer class labels are matched as labels, not positions.
    as_ints = ev.multiclass_metrics(idx + 10, proba, [10, 11, 12])
    assert as_ints["confusion_matrix"] == by_label["confusion_matrix"]


def test_multiclass_rejects_unknown_labels_and_bad_shapes() -> None:
    proba = np.full((3, 2), 0.5)
    with pytest.raises(TargetError, match="not among classes"):
        ev.multiclass_metrics(["a", "b", "c"], proba, ["a", "b"])
    with pytest.raises(InvalidInput, match="shape"):
        ev.multiclass_metrics(["a", "b", "a"], proba[:, :1], ["a", "b"])
    with pytest.raises(InvalidInput, match="sum to 1"):
        ev.multiclass_metrics(["a", "b", "a"], proba * 0.5, ["a", "b"])


def test_integer_labels_of_float_classes_are_labels_not_positions() -> None:
    proba = [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.9, 0.05]]
    m = ev.multiclass_metrics(np.array([1, 2, 2]), proba, [1.0, 2.0, 3.0])
    assert m["accuracy"] == 1.0
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 2, 0], [0, 0, 0]]
