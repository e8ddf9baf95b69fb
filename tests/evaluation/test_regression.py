"""Our regression metrics against scikit-learn, the trusted reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sklearn.metrics as skm

import leptonic.evaluation as ev


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, 500)
    p = y + rng.normal(0, 1, 500)
    got = ev.regression_metrics(y, p)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert got["r2"] == pytest.approx(skm.r2_score(y, p))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, p))
    json.dumps(got)


def test_mape_is_safe_for_zero_targets() -> None:
    got = ev.regression_metrics([0.0, 2.0, 4.0], [1.0, 1.0, 5.0])
    assert got["mape"] == pytest.approx((0.5 + 0.25) / 2)
    assert ev.regression_metrics([0.0, 0.0], [1.0, 0.0])["mape"] is None
    assert ev.regression_metrics([3.0, 3.0], [3.0, 3.0])["r2"] == 1.0
