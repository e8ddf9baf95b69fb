"""Drift of a text classifier's traffic: its labels, its confidence, the texts' length.

A text endpoint logs no text by default (a salted hash and the length), so the
drift it can be watched for is in what the model answers and in how long the
texts are. :func:`text_baseline` profiles the model on (a seeded sample of) the
texts its run held out for the test: the share of each predicted label (the
:data:`MAX_LABELS` most frequent; the rest as ``other``), the confidence (the top
probability, the "score" of a text answer) and the length in characters. A
multi-label model is watched by its top label and top probability only.
:func:`text_records` turns logged text answers into the same fields, so the
ordinary :func:`~leptonic.monitoring.drift.drift_report` and
:func:`~leptonic.monitoring.drift.drift_over_time` compare them, and the PSI
alert rules apply (subjects ``label``, ``chars`` and ``score``).

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
from leptonic.monitoring.baseline import BaselineProfile

__all__ = ["MAX_LABELS", "TEXT_BASELINE_ROWS", "TEXT_INPUTS", "text_baseline", "text_records"]

#: Held-out texts scored for a text model's baseline (a seeded sample above it).
TEXT_BASELINE_ROWS = 2_000

#: Labels with a bin of their own in a text baseline (the most frequent; the rest: other).
MAX_LABELS = 20

#: What a text answer is watched for: its top label and the text's length.
TEXT_INPUTS: tuple[dict[str, str], ...] = (
    {"name": "label", "type": "categorical"},
    {"name": "chars", "type": "numeric"},
)


def text_baseline(
    predictor: Any, texts: Sequence[str], *, rows: int = TEXT_BASELINE_ROWS, seed: int = 0
) -> BaselineProfile:
    """Profile ``predictor`` (a ``TextPredictor``) on ``texts``: the top label's shares,
    the top probability's bins and the length's bins. Give texts the model was not
    trained on (its run's test split): on its own training texts a model is surer
    than on new ones, and the confidence would read as drifted on every window.

    Raises
    ------
    DataError
        No text to profile.
    """
    if not texts:
        raise DataError("no text to profile the text model's baseline on", field="text")
    chosen = list(texts)
    if len(chosen) > rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(chosen), rows, replace=False))
        chosen = [chosen[i] for i in keep]
    p = np.asarray(predictor.predict_batch(chosen), dtype=np.float64)
    top = p.argmax(axis=1)
    names = np.asarray([str(c) for c in predictor.classes], dtype=object)
    frame = pd.DataFrame(
        {"label": names[top], "chars": np.fromiter(map(len, chosen), np.float64, len(chosen))}
    )
    # at most MAX_LABELS labels of their own (the rest share "other"): a PSI over many
    # bins reads high on small windows even without drift (about bins / n)
    return BaselineProfile.fit(
        frame, p[np.arange(len(p)), top], [dict(i) for i in TEXT_INPUTS], max_categories=MAX_LABELS
    )


def text_records(predictions: Sequence[Prediction]) -> list[Prediction]:
    """Logged text answers with the watched fields as their inputs: the top label
    (the first of the ranked answer; not the decision, which may be ``uncertain``)
    and the length. Records without a ranked answer keep only the length."""
    out = []
    for p in predictions:
        inputs: dict[str, Any] = {"chars": p.inputs.get("chars")}
        if p.reasons and isinstance(p.reasons[0], dict) and "label" in p.reasons[0]:
            inputs["label"] = str(p.reasons[0]["label"])
        out.append(replace(p, inputs=inputs))
    return out
