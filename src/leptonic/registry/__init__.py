"""The model registry: versions with signatures, metrics, lineage, model cards and stages."""

from __future__ import annotations

from leptonic.registry.model_card import render_model_card
from leptonic.registry.serialization import TRUSTED_TYPES, load_predictor, save_predictor
from leptonic.registry.service import ModelRegistry

__all__ = [
    "TRUSTED_TYPES",
    "ModelRegistry",
    "load_predictor",
    "render_model_card",
    "save_predictor",
]
