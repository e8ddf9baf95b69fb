"""Error metrics of a regression model: RMSE, MAE, R² and MAPE, in vectorised numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from leptonic.evaluation._common import _finite

__all__ = ["regression_metrics"]


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, Any]:
    """Error metrics of a regression model.

    Returns
    -------
    dict
        ``n``, ``rmse``, ``mae``, ``r2`` (``1.0`` for a perfect fit of a constant
        target, else ``0.0`` when the target is constant) and ``mape``: the mean
        absolute percentage error over the rows whose target is not zero
        (``None`` if all are zero), as a fraction.
    """
    y = _finite(y_true, "y_true")
    p = _finite(y_pred, "y_pred", y.size)
    err = p - y
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float(ss_res == 0)
    nonzero = y != 0
    return {
        "n": int(y.size),
        "rmse": float(np.sqrt(ss_res / y.size)),
        "mae": float(np.mean(np.abs(err))),
        "r2": r2,
        "mape": float(np.mean(np.abs(err[nonzero] / y[nonzero]))) if nonzero.any() else None,
    }
