"""The ``recommendation`` task: recommenders trained on interactions, served from memory.

- :mod:`~leptonic.tasks.recsys.spec`: :class:`RecommenderSpec`, what a run is asked to do.
- :mod:`~leptonic.tasks.recsys.train`: :func:`train_recommender` (test hold-out, search,
  test, report data) and :func:`fit_recommender` (search on a validation split, refit).
- :mod:`~leptonic.tasks.recsys.predictor`: :class:`RecommenderPredictor`, fast
  ``recommend`` with filters, cold start, similar items and explanations, and
  online updates from events.
- :mod:`~leptonic.tasks.recsys.artifact`: :func:`save_recommender` /
  :func:`load_recommender`, bundles of ``.npy`` arrays and a JSON manifest, no pickle.

Model families (ALS, BPR, item-kNN, popularity) live in ``_models``; fitting
ALS, BPR and item-kNN needs the ``recsys`` extra (``implicit``), serving does not.
"""

from __future__ import annotations

from leptonic.tasks.recsys._data import Confidence, Interactions
from leptonic.tasks.recsys.artifact import load_recommender, save_recommender
from leptonic.tasks.recsys.predictor import Recommendation, RecommenderPredictor
from leptonic.tasks.recsys.spec import RecommenderSpec
from leptonic.tasks.recsys.train import (
    FitResult,
    RecommenderTrainingResult,
    evaluate_recommender,
    fit_recommender,
    split_interactions,
    train_recommender,
)

__all__ = [
    "Confidence",
    "FitResult",
    "Interactions",
    "Recommendation",
    "RecommenderPredictor",
    "RecommenderSpec",
    "RecommenderTrainingResult",
    "evaluate_recommender",
    "fit_recommender",
    "load_recommender",
    "save_recommender",
    "split_interactions",
    "train_recommender",
]
