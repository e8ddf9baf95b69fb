from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leptonic.errors import DataError, InvalidInput, NotFitted, SchemaError, TargetError
from leptonic.features import WoEBinner

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
GERMAN = DATA / "german_credit" / "german_credit.csv"


def _json_round_trip(binner: WoEBinner) -> WoEBinner:
    text = json.dumps(binner.to_dict(), allow_nan=False)
    return WoEBinner.from_dict(json.loads(text))


def _tiny() -> tuple[pd.DataFrame, np.ndarray]:
    # c: "a" 4 rows / 1 event, "b" 4 rows / 3 events, missing 2 rows / 1 event
    # x: 1..4 hold 1 event, 5..8 hold 3 events, 2 missing rows hold 1 event
    frame = pd.DataFrame(
        {
            "c": ["a", "a", "a", "a", "b", "b", "b", "b", None, None],
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, np.nan, np.nan],
        }
    )
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1, 0, 1])
    return frame, y


# ------------------------------------------------------------------ contract


def test_init_only_stores_arguments() -> None:
    binner = WoEBinner(max_bins=5, min_bin_frac=0.1, smoothing=0.0, monotonic=False)
    assert vars(binner) == {
        "max_bins": 5,
        "min_bin_frac": 0.1,
        "smoothing": 0.0,
        "monotonic": False,
    }
    assert binner.get_params() == vars(binner)


def test_fit_returns_self() -> None:
    frame, y = _tiny()
    binner = WoEBinner()
    assert binner.fit(frame, y) is binner


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.transform(pd.DataFrame({"x": [1.0]})),
        lambda b: b.transform_value("x", 1.0),
        lambda b: b.iv_table(),
        lambda b: b.to_dict(),
    ],
)
def test_use_before_fit_raises_not_fitted(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFitted, match="not fitted"):
        call(WoEBinner())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_bins": 0}, "max_bins"),
        ({"min_bin_frac": 1.5}, "min_bin_frac"),
        ({"smoothing": -1.0}, "smoothing"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, float], field: str) -> None:
    frame, y = _tiny()
    with pytest.raises(InvalidInput) as info:
        WoEBinner(**params).fit(frame, y)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    "y",
    [
        [0, 1, 2, 0, 1, 0, 1, 0, 1, 0],
        ["good", "bad"] * 5,
        [0.0, 1.0, np.nan, 0, 1, 0, 1, 0, 1, 0],
        [1] * 10,
    ],
)
def test_non_binary_target_raises_target_error(y: list[object]) -> None:
    frame, _ = _tiny()
    with pytest.raises(TargetError):
        WoEBinner().fit(frame, y)


def test_target_length_mismatch_is_invalid_input() -> None:
    frame, y = _tiny()
    with pytest.raises(InvalidInput) as info:
        WoEBinner().fit(frame, y[:-1])
    assert info.value.field == "y"


def test_boolean_target_is_accepted() -> None:
    frame, y = _tiny()
    a = WoEBinner(min_bin_frac=0.0).fit(frame, y.astype(bool))
    b = WoEBinner(min_bin_frac=0.0).fit(frame, y)
    assert a.information_value_ == b.information_value_


# -------------------------------------------------------- hand computations


def test_categorical_woe_and_iv_match_hand_computation() -> None:
    frame, y = _tiny()
    s = 0.5
    binner = WoEBinner(min_bin_frac=0.0, smoothing=s).fit(frame[["c"]], y)
    bins = binner.bins_["c"]
    assert [b["label"] for b in bins] == ["a", "b", "__missing__"]
    assert [b["categories"] for b in bins] == [["a"], ["b"], []]
    assert [(b["count"], b["events"]) for b in bins] == [(4, 1), (4, 3), (2, 1)]
    assert [b["event_rate"] for b in bins] == [0.25, 0.75, 0.5]
    # 5 events, 5 non-events, K = 3 bins: denominators 5 + 3 * 0.5 = 6.5
    good = [(3 + s) / 6.5, (1 + s) / 6.5, (1 + s) / 6.5]
    bad = [(1 + s) / 6.5, (3 + s) / 6.5, (1 + s) / 6.5]
    woe = [math.log(g / b) for g, b in zip(good, bad, strict=True)]
    iv = [(g - b) * w for g, b, w in zip(good, bad, woe, strict=True)]
    assert [b["woe"] for b in bins] == pytest.approx(woe, abs=1e-12)
    assert woe[0] == pytest.approx(math.log(3.5 / 1.5))
    assert [b["iv"] for b in bins] == pytest.approx(iv, abs=1e-12)
    assert binner.information_value_["c"] == pytest.approx(sum(iv), abs=1e-12)


def test_textbook_woe_without_smoothing() -> None:
    frame, y = _tiny()
    binner = WoEBinner(min_bin_frac=0.0, smoothing=0.0).fit(frame[["c"]], y)
    # %non-events / %events: a = 0.6 / 0.2, b = 0.2 / 0.6, missing = 0.2 / 0.2
    assert [b["woe"] for b in binner.bins_["c"]] == pytest.approx(
        [math.log(3), -math.log(3), 0.0], abs=1e-12
    )
    assert binner.information_value_["c"] == pytest.approx(0.8 * math.log(3), abs=1e-12)


def test_numeric_bins_match_hand_computation() -> None:
    frame, y = _tiny()
    binner = WoEBinner(max_bins=2, min_bin_frac=0.0, smoothing=0.0).fit(frame[["x"]], y)
    bins = binner.bins_["x"]
    assert [b["label"] for b in bins] == ["(-inf, 4.5]", "(4.5, inf)", "__missing__"]
    assert [(b["lower"], b["upper"]) for b in bins] == [
        (-math.inf, 4.5),
        (4.5, math.inf),
        (None, None),
    ]
    assert [(b["count"], b["events"]) for b in bins] == [(4, 1), (4, 3), (2, 1)]
    assert [b["woe"] for b in bins] == pytest.approx([math.log(3), -math.log(3), 0.0])
    assert binner.information_value_["x"] == pytest.approx(0.8 * math.log(3))
    # right-closed bins: 4.5 belongs to the first one
    assert binner.transform_value("x", 4.5) == pytest.approx(math.log(3))
    assert binner.transform_value("x", 4.50001) == pytest.approx(-math.log(3))


def test_higher_woe_means_lower_event_rate() -> None:
    frame, y = _tiny()
    binner = WoEBinner(min_bin_frac=0.0).fit(frame, y)
    for bins in binner.bins_.values():
        ordered = sorted(bins, key=lambda b: b["event_rate"])
        woes = [b["woe"] for b in ordered]
        assert woes == sorted(woes, reverse=True)


def _assert_woe_falls_as_rate_rises(bins: list[dict[str, object]]) -> None:
    values = [b for b in bins if b["label"] != "__missing__"]
    rates = [float(b["event_rate"]) for b in values]  # type: ignore[arg-type]
    woes = [float(b["woe"]) for b in values]  # type: ignore[arg-type]
    order = sorted(range(len(values)), key=lambda i: (rates[i], -woes[i]))
    assert order in (list(range(len(values))), list(range(len(values)))[::-1]), rates
    assert [woes[i] for i in order] == sorted(woes, reverse=True), (rates, woes)


def test_monotonic_bins_give_monotonic_woe_with_rare_events() -> None:
    # event rates 0 < 0.22% < 2%; smoothing towards 50% used to make the
    # zero-event bin look riskier than the middle one (WoE -0.79 against +0.48)
    x = np.array([0.0] * 50 + [1.0] * 900 + [2.0] * 50)
    y = np.zeros(1000, dtype=int)
    y[[50, 51, 950]] = 1
    binner = WoEBinner(max_bins=20).fit(pd.DataFrame({"x": x}), y)
    bins = binner.bins_["x"]
    assert [b["events"] for b in bins] == [0, 2, 1]
    _assert_woe_falls_as_rate_rises(bins)
    assert bins[0]["woe"] > 0  # no events: safer than the population, never riskier


def test_monotonic_merge_checks_the_smoothed_rate() -> None:
    # raw rates 0 < 0.1% < 80% rise, but the 100-row bin without events, smoothed
    # towards the overall 25%, would be riskier than the 1000-row bin with one
    x = np.array([0.0] * 100 + [1.0] * 1000 + [2.0] * 500)
    y = np.zeros(1600, dtype=int)
    y[100] = 1
    y[1100:1500] = 1
    binner = WoEBinner(max_bins=20).fit(pd.DataFrame({"x": x}), y)
    bins = binner.bins_["x"]
    assert [b["count"] for b in bins] == [1100, 500]
    _assert_woe_falls_as_rate_rises(bins)


def test_unseen_category_and_unseen_missing_get_neutral_woe() -> None:
    frame = pd.DataFrame({"c": ["a", "b"] * 10, "x": np.arange(20.0)})
    y = np.array([0, 1] * 10)
    binner = WoEBinner(min_bin_frac=0.0).fit(frame, y)
    assert binner.transform_value("c", "never-seen") == 0.0
    assert binner.transform_value("c", None) == 0.0  # no missing values in training
    assert binner.transform_value("x", None) == 0.0
    assert binner.transform_value("x", "not a number") == 0.0
    out = binner.transform(pd.DataFrame({"c": ["zzz", None], "x": [np.nan, np.nan]}))
    assert out.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_numeric_strings_and_integral_categories_are_coerced() -> None:
    frame = pd.DataFrame({"code": [1, 2, 3, 1, 2, 3] * 5, "x": np.arange(30.0)})
    y = np.array([0, 1, 1, 0, 0, 1] * 5)
    binner = WoEBinner(min_bin_frac=0.0).fit(frame, y, categorical=["code"])
    assert binner.kinds_ == {"code": "categorical", "x": "numeric"}
    w = binner.transform_value("code", 2)
    assert binner.transform_value("code", 2.0) == w
    assert binner.transform_value("code", "2") == w
    assert binner.transform_value("x", "7.5") == binner.transform_value("x", 7.5)


@pytest.mark.parametrize("dtype", ["float32", "Float32", "float32[pyarrow]"])
def test_float32_values_are_binned_as_the_numbers_served_as_json(dtype: str) -> None:
    # edges were cut at float32(0.7) widened as is, 0.699999988..., below a served 0.7
    rng = np.random.default_rng(0)
    values = rng.choice([0.7, 0.9, 1.5], 600)
    y = (rng.random(600) < np.select([values < 0.8, values < 1.0], [0.1, 0.3], 0.6)).astype(int)
    x = pd.Series(values, dtype=dtype, name="x")
    binner = WoEBinner().fit(x, y)
    assert [b["upper"] for b in binner.bins_["x"]] == [0.7, 0.9, math.inf]
    table = binner.transform(pd.Series([0.7, 0.9, 1.5], dtype=dtype, name="x"))
    assert [binner.transform_value("x", v) for v in (0.7, 0.9, 1.5)] == table.tolist()
    assert len(set(table.tolist())) == 3
    categories = WoEBinner(min_bin_frac=0.0).fit(x.to_frame(), y, categorical=["x"])
    assert sorted(b["label"] for b in categories.bins_["x"]) == ["0.7", "0.9", "1.5"]
    assert categories.transform_value("x", 0.7) == categories.transform(x.iloc[values == 0.7])[0]


def test_dates_binned_as_numbers_are_refused() -> None:
    frame = pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2021-01-01"] * 5)})
    with pytest.raises(DataError, match=r"'d' holds dates.*categorical") as info:
        WoEBinner().fit(frame, np.array([0, 1] * 5), categorical=[])
    assert info.value.field == "d"


def test_repeated_column_names_are_refused() -> None:
    frame = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], columns=["a", "a"])
    with pytest.raises(SchemaError, match=r"more than one column named \['a'\]"):
        WoEBinner().fit(frame, [0, 1])


def test_rare_categories_grouped_into_other() -> None:
    cats = ["a"] * 50 + ["b"] * 45 + ["c"] * 3 + ["d"] * 2
    y = np.array([0, 1] * 50)
    binner = WoEBinner(min_bin_frac=0.05).fit(pd.Series(cats, name="c"), y)
    bins = binner.bins_["c"]
    assert [b["label"] for b in bins] == ["a", "b", "__other__"]
    assert bins[-1]["categories"] == ["c", "d"]
    assert bins[-1]["count"] == 5
    assert binner.transform_value("c", "d") == bins[-1]["woe"]
    assert binner.transform_value("c", "e") == 0.0


@pytest.mark.parametrize("value", ["__missing__", "__other__"])
def test_categories_named_like_bin_labels_are_refused(value: str) -> None:
    # a real "__missing__" used to be taken for the missing bin, a real
    # "__other__" gave two bins labelled "__other__"
    cats = ["a"] * 50 + ["b"] * 40 + [value] * 8 + ["c", None]
    with pytest.raises(DataError, match=f"'c'.*{value}.*rename") as info:
        WoEBinner().fit(pd.Series(cats, name="c"), [0, 1] * 50)
    assert info.value.field == "c"


def test_constant_column_gives_one_bin_and_zero_iv() -> None:
    frame = pd.DataFrame({"k": [3.0] * 40, "s": ["same"] * 40})
    y = np.array([0, 1, 0, 0] * 10)
    binner = WoEBinner().fit(frame, y)
    for name in ("k", "s"):
        assert len(binner.bins_[name]) == 1
        assert binner.information_value_[name] == 0.0
        assert binner.bins_[name][0]["woe"] == 0.0


def test_all_missing_numeric_column() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 10})
    binner = WoEBinner().fit(frame, [0, 1] * 5)
    assert [b["label"] for b in binner.bins_["x"]] == ["__missing__"]
    assert binner.transform_value("x", 3.0) == 0.0


def test_series_and_array_input() -> None:
    frame, y = _tiny()
    by_series = WoEBinner(min_bin_frac=0.0).fit(frame["x"], y)
    assert by_series.columns_ == ["x"]
    by_array = WoEBinner(min_bin_frac=0.0).fit(frame["x"].to_numpy(), y)
    assert by_array.columns_ == ["x"]
    np.testing.assert_array_equal(by_series.transform(frame["x"]), by_array.transform(frame["x"]))
    assert by_series.transform(frame["x"]).shape == (10,)


def test_transform_missing_column_raises_schema_error() -> None:
    frame, y = _tiny()
    binner = WoEBinner().fit(frame, y)
    with pytest.raises(SchemaError, match="'c'"):
        binner.transform(frame[["x"]])
    with pytest.raises(SchemaError, match="nope"):
        binner.transform_value("nope", 1.0)


# --------------------------------------------------------------- properties


def _monotone(rates: list[float]) -> bool:
    diffs = np.diff(rates)
    return bool((diffs >= 0).all() or (diffs <= 0).all())


@pytest.mark.parametrize("shape", ["increasing", "u_shaped", "noisy"])
def test_monotonic_bins_on_generated_data(shape: str) -> None:
    rng = np.random.default_rng(7)
    n = 5000
    x = rng.uniform(-3, 3, n)
    if shape == "increasing":
        logit = 1.2 * x
    elif shape == "u_shaped":
        logit = x**2 - 2
    else:
        logit = np.sin(3 * x)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    x[rng.uniform(size=n) < 0.05] = np.nan
    binner = WoEBinner(max_bins=10, min_bin_frac=0.05).fit(pd.DataFrame({"x": x}), y)
    value_bins = [b for b in binner.bins_["x"] if b["label"] != "__missing__"]
    assert _monotone([b["event_rate"] for b in value_bins])
    assert all(b["count"] >= 0.05 * n for b in value_bins)
    assert sum(b["count"] for b in binner.bins_["x"]) == n
    assert binner.bins_["x"][-1]["label"] == "__missing__"
    if shape == "increasing":
        assert len(value_bins) >= 5
        assert [b["event_rate"] for b in value_bins] == sorted(b["event_rate"] for b in value_bins)


def test_non_monotonic_mode_keeps_the_quantile_bins() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-3, 3, 4000)
    y = (rng.uniform(size=4000) < 1 / (1 + np.exp(-(x**2 - 2)))).astype(int)
    binner = WoEBinner(max_bins=8, monotonic=False).fit(pd.Series(x, name="x"), y)
    assert len(binner.bins_["x"]) == 8
    assert not _monotone([b["event_rate"] for b in binner.bins_["x"]])


def test_transform_equals_transform_value_on_random_values() -> None:
    rng = np.random.default_rng(11)
    n = 600
    frame = pd.DataFrame(
        {
            "x": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(size=n)),
            "c": rng.choice(["a", "b", "c", "d", "e"], size=n, p=[0.4, 0.3, 0.2, 0.07, 0.03]),
        }
    )
    y = (rng.uniform(size=n) < 0.3).astype(int)
    binner = WoEBinner(max_bins=6).fit(frame, y)
    extra_x = [None, "1.5", "junk", math.inf, -math.inf, True]
    extra_c = [None, 1, 2.0, "a", "e", True]
    probe = pd.DataFrame(
        {
            "x": [*rng.normal(size=30).tolist(), *extra_x],
            "c": [*rng.choice(["a", "b", "c", "d", "e", "zz"], size=30).tolist(), *extra_c],
        },
        dtype=object,
    )
    out = binner.transform(probe)
    for i, row in enumerate(probe.to_dict(orient="records")):
        expected = [binner.transform_value(name, row[name]) for name in binner.columns_]
        assert out[i].tolist() == expected


# ---------------------------------------------------------- persistence


def test_json_round_trip_transforms_identically() -> None:
    frame, y = _tiny()
    binner = WoEBinner(max_bins=3, min_bin_frac=0.0).fit(frame, y)
    loaded = _json_round_trip(binner)
    assert loaded.bins_ == binner.bins_
    assert loaded.information_value_ == binner.information_value_
    assert loaded.get_params() == binner.get_params()
    np.testing.assert_array_equal(loaded.transform(frame), binner.transform(frame))
    assert loaded.iv_table() == binner.iv_table()


def test_infinite_woe_survives_json() -> None:
    # without smoothing a bin with no events has WoE +inf
    frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 5})
    binner = WoEBinner(smoothing=0.0).fit(frame, [0] * 5 + [0, 1, 1, 0, 1])
    assert binner.bins_["c"][0]["woe"] == math.inf
    saved = binner.to_dict()
    text = json.dumps(saved, allow_nan=False)  # strict JSON: no NaN/Infinity tokens
    loaded = WoEBinner.from_dict(json.loads(text))
    assert loaded.bins_["c"][0]["woe"] == math.inf
    assert loaded.transform_value("c", "a") == math.inf


def test_from_dict_rejects_foreign_dicts() -> None:
    with pytest.raises(InvalidInput):
        WoEBinner.from_dict({"type": "Something"})
    with pytest.raises(InvalidInput):
        WoEBinner.from_dict({"type": "WoEBinner", "params": {}})


# --------------------------------------------------------------- iv table


def test_iv_table_format_and_order() -> None:
    frame, y = _tiny()
    frame["noise"] = ["n"] * 10
    binner = WoEBinner(max_bins=2, min_bin_frac=0.0).fit(frame, y)
    table = binner.iv_table()
    assert len(table) == sum(len(b) for b in binner.bins_.values())
    assert set(table[0]) == {
        "column",
        "kind",
        "column_iv",
        "label",
        "count",
        "share",
        "events",
        "non_events",
        "event_rate",
        "woe",
        "iv",
    }
    column_ivs = [row["column_iv"] for row in table]
    assert column_ivs == sorted(column_ivs, reverse=True)
    assert table[-1]["column"] == "noise"
    assert table[-1]["column_iv"] == 0.0
    assert sum(row["share"] for row in table if row["column"] == "x") == pytest.approx(1.0)


def test_iv_ranking_on_german_credit() -> None:
    if not GERMAN.exists():
        pytest.skip(
            f"German credit data not found at {GERMAN}; put the shared data directory "
            "(../shared/data/german_credit/german_credit.csv) next to the repository"
        )
    frame = pd.read_csv(GERMAN)
    y = frame.pop("default").to_numpy()
    frame = frame.drop(columns=["class"])
    binner = WoEBinner().fit(frame, y)
    top = list(dict.fromkeys(row["column"] for row in binner.iv_table()))[:3]
    assert "checking_status" in top
    assert binner.information_value_["checking_status"] > 0.5  # "strong" by the usual rule
    assert binner.information_value_["num_dependents"] < 0.02  # useless
