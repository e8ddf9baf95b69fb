"""Baseline profiles: bins, shares, categories and the JSON form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leptonic.errors import InvalidInput
from leptonic.monitoring import BASELINE_FORMAT, BaselineProfile
from leptonic.monitoring.baseline import DEFAULT_EPSILON


def test_numeric_bins_are_quantiles_with_a_missing_bin(profile: BaselineProfile) -> None:
    income = profile.features["income"]
    assert income.kind == "numeric"
    assert len(income.edges) == 9 and income.n_bins == 11
    shares = np.array(income.proportions)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[:-1] == pytest.approx(np.full(10, 0.1), abs=0.002)
    assert shares[-1] == pytest.approx(DEFAULT_EPSILON, rel=1e-3)  # no missing incomes
    debt = profile.features["debt_ratio"]
    assert debt.proportions[-1] == pytest.approx(0.05, abs=0.005)
    assert debt.labels[0].startswith("≤ ") and debt.labels[-2].startswith("> ")
    assert debt.labels[-1] == "missing"


def test_score_is_profiled_like_a_numeric_input(profile: BaselineProfile) -> None:
    assert profile.score.name == "score" and profile.score.kind == "numeric"
    assert profile.score.n == 50_000
    assert len(profile.score.edges) == 9


def test_bins_are_right_closed_and_repeated_cuts_merge() -> None:
    frame = pd.DataFrame({"flag": [0.0] * 70 + [1.0] * 30, "n": np.arange(100) % 4})
    inputs = [{"name": "flag", "type": "numeric"}, {"name": "n", "type": "numeric"}]
    profile = BaselineProfile.fit(frame, np.linspace(0, 1, 100), inputs)
    flag = profile.features["flag"]
    assert flag.edges == (0.0,)  # no empty bins for a 0/1 column
    assert flag.proportions[:2] == pytest.approx((0.7, 0.3), abs=1e-3)
    counts = profile.features["n"]
    assert counts.edges == (0.0, 1.0, 2.0)
    assert counts.assign([0, 0.5, 1, 2, 3, 9, None, float("nan")]).tolist() == [
        0,
        1,
        1,
        2,
        3,
        3,
        4,
        4,
    ]


def test_a_value_a_rounding_step_above_an_edge_stays_in_the_edges_bin() -> None:
    # tied scores (a WoE scorecard has few distinct ones) cut exactly at observed values;
    # the same scores from a model's one-record path may differ in their last bit
    scores = np.repeat(np.linspace(0.05, 0.6, 12), 50)
    frame = pd.DataFrame({"x": np.arange(scores.size, dtype=float)})
    profile = BaselineProfile.fit(frame, scores, [{"name": "x", "type": "numeric"}])
    bins = profile.score
    live = np.nextafter(np.nextafter(scores, 1.0), 1.0)
    assert bins.assign_numbers(live).tolist() == bins.assign_numbers(scores).tolist()
    edge = bins.edges[0]
    assert bins.assign_numbers(np.array([edge * (1 + 1e-6)])).tolist() == [1]  # really above


def test_categorical_keeps_top_categories_then_other_and_missing() -> None:
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5 + [None] * 10
    frame = pd.DataFrame({"cat": values})
    profile = BaselineProfile.fit(
        frame, np.zeros(len(values)), [{"name": "cat", "type": "categorical"}], max_categories=2
    )
    cat = profile.features["cat"]
    assert cat.categories == ("a", "b")
    assert cat.labels == ["a", "b", "other", "missing"]
    assert cat.proportions == pytest.approx((50 / 110, 30 / 110, 20 / 110, 10 / 110), abs=1e-4)


def test_category_values_compare_as_text_with_integral_floats_as_integers() -> None:
    frame = pd.DataFrame({"grade": [1, 2, 2, 3]})
    profile = BaselineProfile.fit(frame, np.zeros(4), [{"name": "grade", "type": "categorical"}])
    grade = profile.features["grade"]
    assert grade.categories == ("2", "1", "3")
    assert grade.assign([2, "2", 2.0, np.int64(2), 1.5, "x", None, np.nan]).tolist() == [
        0,
        0,
        0,
        0,
        3,
        3,
        4,
        4,
    ]


def test_true_and_1_are_two_categories_in_any_order() -> None:
    flags = np.array([1] * 50 + [True] * 50, dtype=object)
    inputs = [{"name": "flag", "type": "categorical"}]
    profiles = [
        BaselineProfile.fit(pd.DataFrame({"flag": order}), np.zeros(100), inputs)
        for order in (flags, flags[::-1])
    ]
    for profile in profiles:
        flag = profile.features["flag"]
        assert sorted(flag.categories) == ["1", "True"]
        assert flag.proportions[:2] == pytest.approx((0.5, 0.5), abs=1e-3)
    flag = profiles[0].features["flag"]
    one, true = flag.categories.index("1"), flag.categories.index("True")
    values = [True, 1, 1.0, "1", np.True_, "True", False, 0]
    assert flag.assign(values).tolist() == [true, one, one, one, true, true, 2, 2]
    assert flag.assign(values[::-1]).tolist() == [2, 2, true, true, one, one, one, true]


def test_all_missing_numeric_column_gets_one_bin_and_missing() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 10})
    profile = BaselineProfile.fit(frame, np.zeros(10), [{"name": "x", "type": "numeric"}])
    assert profile.features["x"].edges == ()
    assert profile.features["x"].labels == ["all values", "missing"]
    assert profile.features["x"].proportions[1] == pytest.approx(1.0, abs=1e-3)


def test_every_share_is_floored_at_epsilon(profile: BaselineProfile) -> None:
    for fb in [*profile.features.values(), profile.score]:
        assert min(fb.proportions) >= DEFAULT_EPSILON * 0.999
        assert sum(fb.proportions) == pytest.approx(1.0)


def test_json_round_trip_is_plain_stable_and_versioned(
    profile: BaselineProfile, inputs: list[dict[str, str]]
) -> None:
    data = profile.to_json()
    assert data["format"] == BASELINE_FORMAT == "leptonic-baseline/1"
    text = json.dumps(data)
    assert json.dumps(profile.to_json()) == text  # stable
    back = BaselineProfile.from_json(json.loads(text))
    assert back == profile
    assert json.dumps(back.to_json()) == text
    assert back.inputs == inputs


def test_from_json_refuses_other_formats_and_tampered_profiles(profile: BaselineProfile) -> None:
    data = profile.to_json()
    with pytest.raises(InvalidInput, match="leptonic-baseline/1") as info:
        BaselineProfile.from_json({**data, "format": "leptonic-baseline/9"})
    assert info.value.field == "profile"
    broken = json.loads(json.dumps(data))
    broken["features"][0]["edges"] = broken["features"][0]["edges"][::-1]
    with pytest.raises(InvalidInput, match="increasing"):
        BaselineProfile.from_json(broken)
    broken = json.loads(json.dumps(data))
    broken["score"]["proportions"] = [0.5]
    with pytest.raises(InvalidInput, match="proportions"):
        BaselineProfile.from_json(broken)
    with pytest.raises(InvalidInput):
        BaselineProfile.from_json([])  # type: ignore[arg-type]


def test_fit_names_the_bad_argument(
    training: tuple[pd.DataFrame, np.ndarray], inputs: list[dict[str, str]]
) -> None:
    frame, scores = training
    with pytest.raises(InvalidInput, match="'salary'") as info:
        BaselineProfile.fit(frame, scores, [{"name": "salary", "type": "numeric"}])
    assert info.value.field == "salary"
    with pytest.raises(InvalidInput, match="'numeric' or 'categorical'") as info:
        BaselineProfile.fit(frame, scores, [{"name": "income", "type": "text"}])
    assert info.value.field == "inputs"
    with pytest.raises(InvalidInput) as info:
        BaselineProfile.fit(frame, np.r_[scores[:-1], np.nan], inputs)
    assert info.value.field == "scores"
    with pytest.raises(InvalidInput) as info:
        BaselineProfile.fit(frame, scores, inputs, bins=1)
    assert info.value.field == "bins"
    with pytest.raises(InvalidInput) as info:
        BaselineProfile.fit(frame.iloc[:0], scores, inputs)
    assert info.value.field == "frame"
