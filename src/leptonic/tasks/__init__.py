"""Trainers and predictors, one family per task (tabular today)."""

from __future__ import annotations

from leptonic.tasks.predictor import TabularPredictor
from leptonic.tasks.spec import TrainSpec

__all__ = ["TabularPredictor", "TrainSpec"]
