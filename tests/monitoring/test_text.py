"""Drift of a text classifier's answers (``monitoring.text``): a TF-IDF intent model
profiled on its training texts, then fed answers like its training mix and answers
that are all one intent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from leptonic.core.endpoint import Prediction
from leptonic.errors import DataError
from leptonic.monitoring import drift_report
from leptonic.monitoring.text import labels_given, text_baseline, text_profile, text_records
from leptonic.synthetic import support_tickets
from leptonic.tasks.textcls import TextClassificationSpec, TextClassifier, TextPredictor
from support import INTENTS, intent_utterances


@pytest.fixture(scope="module")
def model() -> tuple[TextPredictor, list[str]]:
    rows = intent_utterances(per_intent=30)
    texts = [t for t, _ in rows]
    clf = TextClassifier(TextClassificationSpec(mode="tfidf", C=10.0))
    return clf.fit(texts, [i for _, i in rows]).predictor_, texts


def _answers(predictor: TextPredictor, texts: list[str]) -> list[Prediction]:
    """What a text endpoint logs for each text (no text: its length and hash; a
    multi-label model's answers: their number of labels)."""
    out = []
    for i, (text, p) in enumerate(zip(texts, predictor.predict_batch(texts), strict=True)):
        answer = predictor.answer(p, top_k=3)
        inputs: dict[str, Any] = {"chars": len(text), "text_hash": "0123456789abcdef"}
        if predictor.multi_label:
            inputs["n_labels"] = len(answer["labels"])
        out.append(
            Prediction(
                workspace="w",
                endpoint="intents",
                request_id=f"r{i}",
                model="intents",
                version=1,
                score=answer["probability"],
                decision="uncertain",  # a confidence floor's decision is not the label
                at=datetime.now(UTC),
                inputs=inputs,
                reasons=answer["top_k"],
            )
        )
    return out


def test_the_baseline_holds_the_label_shares_confidence_and_length(
    model: tuple[TextPredictor, list[str]],
) -> None:
    predictor, texts = model
    profile = text_baseline(predictor, texts)
    assert set(profile.features) == {"label", "chars"}
    label = profile.features["label"]
    shares = dict(zip(label.categories, label.proportions, strict=False))
    assert set(INTENTS) <= set(shares) and label.n == len(texts)
    # the training mix is even: each intent holds about its share of the texts
    assert all(abs(shares[i] - 1 / len(INTENTS)) < 0.05 for i in INTENTS)
    assert profile.score.edges  # the confidence is binned
    # above the sample size, a seeded sample is profiled, the same each time
    again = text_baseline(predictor, texts, rows=50)
    assert again.features["chars"].n == 50
    assert again.to_json() == text_baseline(predictor, texts, rows=50).to_json()
    with pytest.raises(DataError, match="no text to profile"):
        text_baseline(predictor, [])


def test_answers_like_training_do_not_drift_and_one_intent_does(
    model: tuple[TextPredictor, list[str]],
) -> None:
    predictor, texts = model
    profile = text_baseline(predictor, texts)
    same = text_records(_answers(predictor, texts))
    assert same[0].inputs == {"chars": len(texts[0]), "label": same[0].reasons[0]["label"]}
    report = drift_report(profile, [p.inputs for p in same], [p.score for p in same])
    assert report.psi["label"] < 0.01 and report.psi["chars"] < 0.01
    # every caller now asks about one thing: the label shares shift, the lengths less so
    lost = [t for t, i in intent_utterances(per_intent=30, seed=5) if i == "lost_card"]
    shifted = text_records(_answers(predictor, lost))
    report = drift_report(profile, [p.inputs for p in shifted], [p.score for p in shifted])
    assert report.psi["label"] > 1.0
    assert report.most_drifted(1)[0].name == "label"
    # a record without a ranked answer keeps its length only
    (bare,) = text_records([replace(same[0], reasons=[])])
    assert bare.inputs == {"chars": len(texts[0])}


def test_a_profile_from_computed_answers_is_the_baseline_of_the_same_texts(
    model: tuple[TextPredictor, list[str]],
) -> None:
    predictor, texts = model
    p = predictor.predict_batch(texts)
    made = text_profile(texts, p, predictor.classes)
    assert made.to_json() == text_baseline(predictor, texts).to_json()
    # the same seeded sample above the sample size
    sampled = text_profile(texts, p, predictor.classes, rows=50)
    assert sampled.to_json() == text_baseline(predictor, texts, rows=50).to_json()
    with pytest.raises(DataError, match="one row per text"):
        text_profile(texts[:-1], p, predictor.classes)
    with pytest.raises(DataError, match="one column per class"):
        text_profile(texts, p[:, :-1], predictor.classes)
    with pytest.raises(DataError, match="no text to profile"):
        text_profile([], p[:0], predictor.classes)


def test_a_multi_label_model_is_also_watched_by_the_number_of_labels_it_gives() -> None:
    table = support_tickets(400, seed=3).to_pandas()
    spec = TextClassificationSpec(
        text="message", label="intents", mode="tfidf", multi_label=True, C=10.0
    )
    texts = table["message"].tolist()
    predictor = TextClassifier(spec).fit(texts, table["intents"].tolist()).predictor_
    profile = text_baseline(predictor, texts)
    given = profile.features["n_labels"]
    shares = dict(zip(given.categories, given.proportions, strict=False))
    # about half the tickets raise one intent, a third two, the rest three
    assert shares["1"] > 0.35 and shares["2"] > 0.2 and shares["3+"] > 0.08
    assert [labels_given(n) for n in (0, 1, 2, 3, 7)] == ["0", "1", "2", "3+", "3+"]
    p = predictor.predict_batch(texts)
    made = text_profile(texts, p, predictor.classes, threshold=predictor.label_threshold)
    assert made.to_json() == profile.to_json()

    same = text_records(_answers(predictor, texts))
    assert same[0].inputs["n_labels"] in {"0", "1", "2", "3+"}
    # answers logged before their count was: counted from the decision
    older = [replace(r, inputs={"chars": 9}) for r in _answers(predictor, texts[:2])]
    older = [replace(older[0], decision="card_lost|fees"), replace(older[1], decision="agent")]
    counted = text_records(older, uncertain_label="agent")
    assert [r.inputs["n_labels"] for r in counted] == ["2", "0"]
    assert "n_labels" not in text_records(older)[0].inputs
    report = drift_report(profile, [r.inputs for r in same], [r.score for r in same])
    assert report.psi["n_labels"] < 0.01
    # tickets that each raise one intent: the count of labels moves
    single = [t for t, n in zip(texts, table["intents"].str.count("[|]"), strict=True) if n == 0]
    moved = text_records(_answers(predictor, single))
    report = drift_report(profile, [r.inputs for r in moved], [r.score for r in moved])
    assert report.psi["n_labels"] > 0.5
