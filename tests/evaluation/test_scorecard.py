"""Scorecard scaling: points add up to the score, and +PDO points double the odds."""

from __future__ import annotations

import json
import math

import pytest

from leptonic.errors import InvalidInput
from leptonic.evaluation import Scorecard

COEFFICIENTS = {"age": -0.8, "income": -1.1, "utilisation": -0.6}
INTERCEPT = -2.3
BINS = {
    "age": [
        {"label": "<25", "woe": -0.45, "count": 120},
        {"label": "25-40", "woe": 0.05, "count": 400},
        {"label": ">=40", "woe": 0.38, "count": 480},
    ],
    "income": [{"label": "low", "woe": -0.7}, {"label": "high", "woe": 0.52}],
    "utilisation": [
        {"label": "missing", "woe": 0.0},
        {"label": "<30%", "woe": 0.61},
        {"label": ">=30%", "woe": -0.83},
    ],
    "unused": [{"label": "a", "woe": 1.0}],
}


@pytest.fixture
def card() -> Scorecard:
    return Scorecard.from_logistic(COEFFICIENTS, INTERCEPT, BINS)


def _logit(woe: dict[str, float]) -> float:
    return INTERCEPT + sum(COEFFICIENTS[f] * woe[f] for f in COEFFICIENTS)


def test_scaling_constants(card: Scorecard) -> None:
    assert card.factor == pytest.approx(20 / math.log(2))
    assert card.offset == pytest.approx(600 - card.factor * math.log(50))
    assert (card.pdo, card.base_score, card.base_odds) == (20.0, 600.0, 50.0)
    assert card.features == ("age", "income", "utilisation")


def test_sum_of_bin_points_equals_score_from_logit(card: Scorecard) -> None:
    for age in BINS["age"]:
        for income in BINS["income"]:
            for util in BINS["utilisation"]:
                woe = {"age": age["woe"], "income": income["woe"], "utilisation": util["woe"]}
                expected = card.offset - card.factor * _logit(woe)
                points = sum(card.points(f, w) for f, w in woe.items())
                assert points == pytest.approx(expected, abs=1e-9)
                assert card.score_from_woe(woe) == pytest.approx(expected, abs=1e-9)


def test_pdo_points_double_the_good_bad_odds(card: Scorecard) -> None:
    for score in (480.0, 600.0, 655.5):
        p_bad = card.probability_from_score(score)
        p_bad_up = card.probability_from_score(score + card.pdo)
        odds, odds_up = (1 - p_bad) / p_bad, (1 - p_bad_up) / p_bad_up
        assert odds_up / odds == pytest.approx(2.0)


def test_base_score_has_base_odds(card: Scorecard) -> None:
    p_bad = card.probability_from_score(600.0)
    assert (1 - p_bad) / p_bad == pytest.approx(50.0)


def test_probability_from_score_inverts_the_logit(card: Scorecard) -> None:
    woe = {"age": 0.38, "income": -0.7, "utilisation": 0.0}
    p_model = 1 / (1 + math.exp(-_logit(woe)))
    assert card.probability_from_score(card.score_from_woe(woe)) == pytest.approx(p_model)
    assert 0.0 < card.probability_from_score(-1e6) <= 1.0  # no overflow at extremes
    assert 0.0 <= card.probability_from_score(1e6) < 1.0


def test_lower_risk_bins_get_more_points(card: Scorecard) -> None:
    for feature in COEFFICIENTS:
        rows = sorted(BINS[feature], key=lambda row: row["woe"])
        points = [card.points(feature, row["woe"]) for row in rows]
        assert points == sorted(points)


def test_points_table(card: Scorecard) -> None:
    table = card.points_table()
    assert len(table) == 8  # the bins of the three model features, not "unused"
    assert set(table[0]) == {"feature", "bin", "woe", "coefficient", "points"}
    row = next(r for r in table if r["feature"] == "income" and r["bin"] == "high")
    assert row["coefficient"] == -1.1
    assert row["points"] == round(card.points("income", 0.52), 1)
    json.dumps(table)


def test_round_trip_through_json(card: Scorecard) -> None:
    restored = Scorecard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert restored == card
    woe = {"age": 0.05, "income": 0.52, "utilisation": -0.83}
    assert restored.score_from_woe(woe) == card.score_from_woe(woe)
    assert "pdo=20" in repr(card)


def test_custom_scaling() -> None:
    card = Scorecard.from_logistic(
        COEFFICIENTS, INTERCEPT, BINS, pdo=40, base_score=500, base_odds=20
    )
    p_bad = card.probability_from_score(540.0)
    assert (1 - p_bad) / p_bad == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coefficients": {}}, "at least one coefficient"),
        ({"coefficients": {"age": -1.0, "tenure": -0.5}}, "no bins for feature 'tenure'"),
        (
            {"bins": {"age": [{"label": "x"}], **{k: BINS[k] for k in ("income", "utilisation")}}},
            "needs 'label' and 'woe'",
        ),
        ({"pdo": 0}, "pdo must be a positive"),
        ({"base_odds": -3}, "base_odds must be a positive"),
        ({"intercept": float("nan")}, "intercept must be a finite"),
    ],
)
def test_invalid_definitions_are_rejected(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "coefficients": COEFFICIENTS,
        "intercept": INTERCEPT,
        "bins": BINS,
        **kwargs,
    }
    with pytest.raises(InvalidInput, match=match):
        Scorecard.from_logistic(**args)  # type: ignore[arg-type]


def test_missing_woe_is_named(card: Scorecard) -> None:
    with pytest.raises(InvalidInput, match=r"\['utilisation'\]"):
        card.score_from_woe({"age": 0.1, "income": 0.2})
    with pytest.raises(InvalidInput, match="unknown feature"):
        card.points("tenure", 0.1)
