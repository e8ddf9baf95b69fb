"""Evaluation: metrics, points scorecards and self-contained HTML reports.

- :mod:`~leptonic.evaluation.metrics`: binary metrics (AUC, KS, Gini, PR-AUC,
  Brier, log loss, calibration, confusion at a threshold) in vectorised numpy,
  checked against scikit-learn; :mod:`~leptonic.evaluation.multiclass` and
  :mod:`~leptonic.evaluation.regression` the multiclass and regression ones.
- :mod:`~leptonic.evaluation.scorecard`: turns a logistic regression over WoE
  features into a points scorecard (PDO scaling).
- :mod:`~leptonic.evaluation.plots`: ROC, KS, calibration, score distribution,
  confusion and regression plots as small PNG images.
- :mod:`~leptonic.evaluation.report`: one HTML page with summary, metrics per
  split, leaderboard, plots and extra tables, readable offline.
- :mod:`~leptonic.evaluation.classification`: accuracy, macro-F1 and the
  per-class report of a (text) classifier.
- :mod:`~leptonic.evaluation.ranking`: Recall@k, NDCG@k, MAP@k, coverage and
  the random / time splits of recommender evaluation;
  :mod:`~leptonic.evaluation.ranking_report` its HTML report.
"""

from __future__ import annotations

from leptonic.evaluation.classification import classification_metrics, classification_report
from leptonic.evaluation.metrics import (
    binary_metrics,
    brier_score,
    calibration_curve,
    choose_threshold,
    confusion_at,
    gini,
    ks_statistic,
    log_loss,
    pr_auc,
    roc_auc,
    roc_curve,
)
from leptonic.evaluation.multiclass import multiclass_metrics
from leptonic.evaluation.plots import (
    calibration_plot,
    class_f1_plot,
    confusion_plot,
    ks_plot,
    png_data_uri,
    regression_plot,
    residual_plot,
    roc_plot,
    score_distribution_plot,
)
from leptonic.evaluation.ranking import metric_curves, random_split, ranking_metrics, time_split
from leptonic.evaluation.regression import regression_metrics
from leptonic.evaluation.report import render_report
from leptonic.evaluation.scorecard import Scorecard

__all__ = [
    "Scorecard",
    "binary_metrics",
    "brier_score",
    "calibration_curve",
    "calibration_plot",
    "choose_threshold",
    "class_f1_plot",
    "classification_metrics",
    "classification_report",
    "confusion_at",
    "confusion_plot",
    "gini",
    "ks_plot",
    "ks_statistic",
    "log_loss",
    "metric_curves",
    "multiclass_metrics",
    "png_data_uri",
    "pr_auc",
    "random_split",
    "ranking_metrics",
    "regression_metrics",
    "regression_plot",
    "render_report",
    "residual_plot",
    "roc_auc",
    "roc_curve",
    "roc_plot",
    "score_distribution_plot",
    "time_split",
]
