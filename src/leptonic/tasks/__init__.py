"""Trainers and predictors, one family per task: tabular, recommendation, text classification.

The tabular names are imported with the package; the recommendation
(:mod:`~leptonic.tasks.recsys`) and text-classification
(:mod:`~leptonic.tasks.textcls`) names on first access, so that importing
Leptonic imports neither their packages nor what they need (implicit, torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from leptonic.tasks.predictor import TabularPredictor
from leptonic.tasks.spec import TrainSpec, spec_from_dict

if TYPE_CHECKING:
    from leptonic.tasks.recsys import RecommenderPredictor, RecommenderSpec, train_recommender
    from leptonic.tasks.textcls import TextClassificationSpec, TextPredictor, train_text_classifier

__all__ = [
    "RecommenderPredictor",
    "RecommenderSpec",
    "TabularPredictor",
    "TextClassificationSpec",
    "TextPredictor",
    "TrainSpec",
    "spec_from_dict",
    "train_recommender",
    "train_text_classifier",
]

#: Lazily exported name → the module that defines it.
_LAZY = {
    "RecommenderPredictor": "leptonic.tasks.recsys",
    "RecommenderSpec": "leptonic.tasks.recsys",
    "train_recommender": "leptonic.tasks.recsys",
    "TextClassificationSpec": "leptonic.tasks.textcls",
    "TextPredictor": "leptonic.tasks.textcls",
    "train_text_classifier": "leptonic.tasks.textcls",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once; later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
