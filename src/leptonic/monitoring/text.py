"""Drift of a text classifier's traffic: its labels, its confidence, the texts' length.

A text endpoint logs no text by default (a salted hash and the length), so the
drift it can be watched for is in what the model answers and in how long the
texts are. :func:`text_baseline` profiles the model on (a seeded sample of) the
texts its run held out for the test: the share of each predicted label (the
:data:`MAX_LABELS` most frequent; the rest as ``other``), the confidence (the top
probability, the "score" of a text answer) and the length in characters. A
multi-label model is watched by its top label and top probability, and by the
number of labels it gives a text (``n_labels``: 0, 1, 2 or 3+; more texts with
none is a sign of texts unlike the training texts).
:func:`text_records` turns logged text answers into the same fields, so the
ordinary :func:`~leptonic.monitoring.drift.drift_report` and
:func:`~leptonic.monitoring.drift.drift_over_time` compare them, and the PSI
alert rules apply (subjects ``label``, ``chars``, ``score`` and ``n_labels``).

A training run profiles its model on its test texts as it scores them
(:func:`text_profile`) and keeps the profile as the run's
:data:`BASELINE_ARTIFACT`, so monitoring does not score the texts again; a run
without one (of an older release) is profiled on first use by
:func:`text_baseline`, the same way.

A shift in the label shares (more ``card_lost`` than at training) or a falling
confidence (texts unlike the training texts) is a reason to look at recent
texts, label some and retrain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from leptonic.core.endpoint import Prediction
from leptonic.errors import DataError
from leptonic.monitoring.baseline import BASELINE_ARTIFACT, BaselineProfile

__all__ = [
    "BASELINE_ARTIFACT",
    "MAX_LABELS",
    "TEXT_ADVICE",
    "TEXT_BASELINE_ROWS",
    "TEXT_INPUTS",
    "TEXT_SUBJECTS",
    "labels_given",
    "text_baseline",
    "text_profile",
    "text_records",
]

#: Held-out texts scored for a text model's baseline (a seeded sample above it).
TEXT_BASELINE_ROWS = 2_000

#: Labels with a bin of their own in a text baseline (the most frequent; the rest: other).
MAX_LABELS = 20

#: What a text answer is watched for: its top label and the text's length.
TEXT_INPUTS: tuple[dict[str, str], ...] = (
    {"name": "label", "type": "categorical"},
    {"name": "chars", "type": "numeric"},
)

#: What each watched subject of a text endpoint measures, for the alert messages.
TEXT_SUBJECTS = {
    "label": "the share of each predicted label",
    "chars": "the texts' length",
    "score": "the model's confidence",
    "n_labels": "the number of labels given per text",
}

#: What a drift alert on a text endpoint tells to do.
TEXT_ADVICE = (
    "Look at recent texts (an endpoint policy with log_text keeps them), label some, "
    "then consider retraining."
)


def text_baseline(
    predictor: Any, texts: Sequence[str], *, rows: int = TEXT_BASELINE_ROWS, seed: int = 0
) -> BaselineProfile:
    """Profile ``predictor`` (a ``TextPredictor``) on ``texts``: the top label's shares,
    the top probability's bins and the length's bins (a multi-label model: also the
    shares of the number of labels given). Give texts the model was not
    trained on (its run's test split): on its own training texts a model is surer
    than on new ones, and the confidence would read as drifted on every window.

    Raises
    ------
    DataError
        No text to profile.
    """
    chosen = _sample(texts, rows, seed)
    texts = [texts[i] for i in chosen]
    p = np.asarray(predictor.predict_batch(texts), dtype=np.float64)
    return _profile(texts, p, predictor.classes, getattr(predictor, "label_threshold", None))


def text_profile(
    texts: Sequence[str],
    probabilities: Any,
    classes: Sequence[Any],
    *,
    threshold: float | None = None,
    rows: int = TEXT_BASELINE_ROWS,
    seed: int = 0,
) -> BaselineProfile:
    """The profile :func:`text_baseline` makes, from answers already computed: the
    model's ``probabilities`` on ``texts`` (one row per text, one column per class,
    in the order of ``classes``); ``threshold``, a multi-label model's (its
    ``label_threshold``), also profiles the number of labels given. A training run
    profiles its model so on its test texts, which it has scored anyway, and keeps
    the profile with the run (:data:`BASELINE_ARTIFACT`); the same texts give the
    same profile either way.

    Raises
    ------
    DataError
        No text to profile, or not one row of probabilities per text.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(texts) or p.shape[1] != len(classes):
        raise DataError(
            f"probabilities of shape {p.shape} do not match {len(texts)} texts and "
            f"{len(classes)} classes; give one row per text and one column per class",
            field="probabilities",
        )
    chosen = _sample(texts, rows, seed)
    return _profile([texts[i] for i in chosen], p[chosen], classes, threshold)


def _sample(texts: Sequence[str], rows: int, seed: int) -> list[int]:
    """Positions of the texts profiled: all of them, or a seeded sample of ``rows``."""
    if not texts:
        raise DataError("no text to profile the text model's baseline on", field="text")
    if len(texts) <= rows:
        return list(range(len(texts)))
    keep = np.sort(np.random.default_rng(seed).choice(len(texts), rows, replace=False))
    return [int(i) for i in keep]


def _profile(
    texts: Sequence[str], p: np.ndarray, classes: Sequence[Any], threshold: float | None
) -> BaselineProfile:
    top = p.argmax(axis=1)
    names = np.asarray([str(c) for c in classes], dtype=object)
    frame = pd.DataFrame(
        {"label": names[top], "chars": np.fromiter(map(len, texts), np.float64, len(texts))}
    )
    inputs = [dict(i) for i in TEXT_INPUTS]
    if threshold is not None:  # a multi-label model: how many labels it gives
        frame["n_labels"] = [labels_given(int(n)) for n in (p >= threshold).sum(axis=1)]
        inputs.append({"name": "n_labels", "type": "categorical"})
    # at most MAX_LABELS labels of their own (the rest share "other"): a PSI over many
    # bins reads high on small windows even without drift (about bins / n)
    return BaselineProfile.fit(frame, p[np.arange(len(p)), top], inputs, max_categories=MAX_LABELS)


def labels_given(n: int) -> str:
    """The bin of a multi-label answer's number of labels: ``"0"``, ``"1"``, ``"2"``
    or ``"3+"``."""
    return str(n) if n < 3 else "3+"


def text_records(
    predictions: Sequence[Prediction], *, uncertain_label: str | None = None
) -> list[Prediction]:
    """Logged text answers with the watched fields as their inputs: the top label
    (the first of the ranked answer; not the decision, which may be ``uncertain``)
    and the length; a multi-label answer also the bin of its number of labels
    (:func:`labels_given`). Records without a ranked answer keep only the length.

    ``uncertain_label`` (a multi-label endpoint's policy's) counts the labels of
    answers logged before their number was: their decision is the labels joined by
    ``|``, or ``uncertain_label`` for none."""
    out = []
    for p in predictions:
        inputs: dict[str, Any] = {"chars": p.inputs.get("chars")}
        if p.reasons and isinstance(p.reasons[0], dict) and "label" in p.reasons[0]:
            inputs["label"] = str(p.reasons[0]["label"])
        n = p.inputs.get("n_labels")
        if n is None and uncertain_label is not None:
            n = 0 if p.decision == uncertain_label else p.decision.count("|") + 1
        if isinstance(n, int) and not isinstance(n, bool):  # a multi-label answer
            inputs["n_labels"] = labels_given(n)
        out.append(replace(p, inputs=inputs))
    return out
