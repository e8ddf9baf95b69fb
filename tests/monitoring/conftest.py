"""Synthetic credit applications shared by the monitoring tests.

The helpers are handed to tests as fixtures (``make_applicants``,
``make_records``, ``make_predictions``, ``inputs``): ``conftest`` is not
importable as a module here, the suite's top-level one shadows it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leptonic.core.endpoint import Prediction
from leptonic.monitoring import BaselineProfile

INPUTS = [
    {"name": "income", "type": "numeric"},
    {"name": "age", "type": "numeric"},
    {"name": "debt_ratio", "type": "numeric"},
    {"name": "region", "type": "categorical"},
    {"name": "purpose", "type": "categorical"},
]
REGIONS = ["north", "south", "east", "west"]
PURPOSES = ["car", "home", "education", "business", "other"]
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def applicants(n: int, seed: int, *, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` applications and their scores; ``shift`` moves income, age and the score."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.5 + shift, 0.4, n)
    age = np.round(rng.normal(40 + 10 * shift, 11, n)).clip(18, 90)
    debt = rng.beta(2, 5, n)
    debt[rng.uniform(size=n) < 0.05] = np.nan  # some missing
    frame = pd.DataFrame(
        {
            "income": income,
            "age": age,
            "debt_ratio": debt,
            "region": rng.choice(REGIONS, n, p=[0.4, 0.3, 0.2, 0.1]),
            "purpose": rng.choice(PURPOSES, n),
        }
    )
    logit = -2.0 + 3.0 * np.nan_to_num(debt, nan=0.3) - 0.03 * (age - 40) + shift
    scores = 1.0 / (1.0 + np.exp(-(logit + rng.normal(0, 0.5, n))))
    return frame, scores


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as logged inputs: plain Python values, None for missing."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return [{str(k): v for k, v in row.items()} for row in rows]


def predictions_of(
    frame: pd.DataFrame,
    scores: np.ndarray,
    start: datetime = T0,
    step: timedelta = timedelta(minutes=1),
    route: str = "live",
) -> list[Prediction]:
    return [
        Prediction(
            workspace="credit",
            endpoint="decide",
            request_id=f"{route}-{start.isoformat()}-{i}",
            model="scorecard",
            version=1,
            score=float(s),
            decision="approve" if s < 0.2 else ("review" if s < 0.4 else "reject"),
            at=start + i * step,
            route=route,
            inputs=record,
        )
        for i, (record, s) in enumerate(zip(records_of(frame), scores, strict=True))
    ]


@pytest.fixture(scope="session")
def training() -> tuple[pd.DataFrame, np.ndarray]:
    return applicants(50_000, seed=1)


@pytest.fixture(scope="session")
def profile(training: tuple[pd.DataFrame, np.ndarray]) -> BaselineProfile:
    frame, scores = training
    return BaselineProfile.fit(frame, scores, INPUTS)


@pytest.fixture(scope="session")
def inputs() -> list[dict[str, str]]:
    return [dict(item) for item in INPUTS]


@pytest.fixture(scope="session")
def make_applicants() -> Callable[..., tuple[pd.DataFrame, np.ndarray]]:
    return applicants


@pytest.fixture(scope="session")
def make_records() -> Callable[[pd.DataFrame], list[dict[str, Any]]]:
    return records_of


@pytest.fixture(scope="session")
def make_predictions() -> Callable[..., list[Prediction]]:
    return predictions_of
