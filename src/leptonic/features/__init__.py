"""Feature preprocessing learned from training data and saved inside the model.

Transformers here follow the scikit-learn estimator contract (``__init__``
stores arguments, ``fit`` learns and returns ``self``, learned state ends in
``_``, use before ``fit`` raises :class:`~leptonic.errors.NotFitted`), save to a
JSON-compatible dict with ``to_dict()`` / ``from_dict()`` (never pickle), and
offer a single-record path for real-time serving that builds no DataFrame:

- :class:`TabularPreprocessor`: impute, clip, flag outliers, scale, encode
  categories (one-hot, weight of evidence, ordinal codes), optionally project;
  ``transform_record(dict)`` is the serving hot path.
- :class:`WoEBinner`: weight-of-evidence binning and information value for a
  binary target, the credit-scorecard standard; ``transform_value`` per value.
- :class:`PCAProjection`, :class:`LDAProjection`: linear projections kept as
  plain arrays.
- :class:`SequenceAggregates`: behaviour summaries (mean, spread, trend...) of
  period-numbered column families such as ``bill_amt1 … bill_amt6``.
"""

from __future__ import annotations

from leptonic.features.behaviour import SequenceAggregates
from leptonic.features.preprocessing import TabularPreprocessor
from leptonic.features.projection import LDAProjection, PCAProjection
from leptonic.features.woe import WoEBinner

__all__ = [
    "LDAProjection",
    "PCAProjection",
    "SequenceAggregates",
    "TabularPreprocessor",
    "WoEBinner",
]
