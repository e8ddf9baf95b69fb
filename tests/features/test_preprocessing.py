from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leptonic.errors import DataError, InvalidInput, NotFitted, SchemaError, TargetError
from leptonic.features import PCAProjection, TabularPreprocessor, WoEBinner

NUMERIC = ["income", "debt", "age", "tenure"]
CATEGORICAL = ["region", "product", "channel"]

CONFIGS: list[dict[str, Any]] = [
    {},
    {"impute": "mean", "flag_outliers": True, "clip": None},
    {"impute": None, "add_missing_indicators": False, "scale": False, "flag_outliers": True},
    {"clip": (0.1, 0.9), "max_categories": 2, "min_category_frac": 0.1},
    {"encoding": "ordinal"},
    {"encoding": "ordinal", "max_categories": 3},
    {"encoding": "woe", "woe_max_bins": 5},
    {"projection": "pca"},
    {"projection": "pca", "n_components": 3, "encoding": "woe"},
    {"projection": "lda"},
]


def _frame(n: int = 500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.6, n)
    income[rng.uniform(size=n) < 0.1] = np.nan
    debt = rng.normal(5000, 2000, n)
    debt[:3] = [1e7, -1e6, 2e6]  # outliers
    age = rng.integers(18, 80, n)  # int64, no missing values
    tenure = np.where(rng.uniform(size=n) < 0.05, np.nan, rng.exponential(3, n))
    region = rng.choice(
        ["north", "south", "east", "west", "isle"], size=n, p=[0.4, 0.3, 0.2, 0.08, 0.02]
    ).astype(object)
    region[rng.uniform(size=n) < 0.05] = None
    product = rng.choice([1, 2, 3, 4], size=n, p=[0.5, 0.3, 0.15, 0.05])  # int-coded category
    channel = rng.choice(["web", "branch", "phone"], size=n)
    logit = 0.8 * (age < 30) - 0.5 * (region == "north") + (product == 4) - 1
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "income": income,
            "debt": debt,
            "age": age,
            "tenure": tenure,
            "region": region,
            "product": product,
            "channel": channel,
            "ignored": rng.normal(size=n),
        }
    )
    return frame, y


def _fit(config: dict[str, Any]) -> tuple[TabularPreprocessor, pd.DataFrame, np.ndarray]:
    frame, y = _frame()
    pre = TabularPreprocessor(NUMERIC, CATEGORICAL, **config).fit(frame, y)
    return pre, frame, y


def _random_value(rng: np.random.Generator, column: pd.Series, numeric: bool) -> Any:
    choice = rng.integers(0, 10)
    if choice <= 3:
        value = column.iloc[int(rng.integers(0, len(column)))]
        return value.item() if isinstance(value, np.generic) else value
    if choice == 4:
        return None
    if choice == 5:
        return math.nan
    if choice == 6:
        return "__omit__"
    if numeric:
        return [
            float(rng.normal(0, 1e4)),
            f"{rng.normal(0, 100):.3f}",  # a number sent as text
            "not-a-number",
            int(rng.integers(-5, 100)),
            math.inf,
            True,
        ][int(rng.integers(0, 6))]
    return ["never-seen", 3, 2.0, "4", "", True][int(rng.integers(0, 6))]


def _random_records(frame: pd.DataFrame, n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(n):
        record = {}
        for name in [*NUMERIC, *CATEGORICAL]:
            value = _random_value(rng, frame[name], name in NUMERIC)
            if value != "__omit__":
                record[name] = value
        records.append(record)
    return records


def _refused(pre: TabularPreprocessor, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Take out of ``records`` those that ``pre`` refuses: infinite numbers without clip."""
    if pre.encoding != "onehot" or pre.clip is not None:
        return []
    refused = [r for r in records if any(r.get(c) in (math.inf, -math.inf) for c in NUMERIC)]
    records[:] = [r for r in records if r not in refused]
    return refused


def _as_row(record: dict[str, Any]) -> pd.DataFrame:
    full = {name: record.get(name) for name in [*NUMERIC, *CATEGORICAL]}
    return pd.DataFrame([full])


def _assert_plain_json(obj: Any, path: str = "d") -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            assert type(key) is str, path
            _assert_plain_json(value, f"{path}[{key!r}]")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            _assert_plain_json(value, f"{path}[{i}]")
    else:
        assert obj is None or type(obj) in (str, int, float, bool), (path, type(obj))
        if type(obj) is float:
            assert math.isfinite(obj), path


# ------------------------------------------------------------------ contract


def test_init_only_stores_arguments() -> None:
    params = {
        "numeric": ["a"],
        "categorical": ["b"],
        "impute": "mean",
        "add_missing_indicators": False,
        "clip": (0.01, 0.99),
        "flag_outliers": True,
        "scale": False,
        "encoding": "ordinal",
        "max_categories": 5,
        "min_category_frac": 0.01,
        "woe_max_bins": 4,
        "projection": None,
        "n_components": None,
    }
    pre = TabularPreprocessor(**params)
    assert vars(pre) == params
    assert pre.get_params() == params


def test_init_does_not_validate() -> None:
    TabularPreprocessor("not a list", [], encoding="nonsense")  # type: ignore[arg-type]


def test_fit_returns_self() -> None:
    frame, y = _frame()
    pre = TabularPreprocessor(NUMERIC, CATEGORICAL)
    assert pre.fit(frame, y) is pre


@pytest.mark.parametrize(
    "call",
    [
        lambda p, f: p.transform(f),
        lambda p, f: p.transform_record({"income": 1.0}),
        lambda p, f: p.to_dict(),
    ],
)
def test_use_before_fit_raises_not_fitted(call) -> None:  # type: ignore[no-untyped-def]
    frame, _ = _frame(20)
    with pytest.raises(NotFitted, match="not fitted"):
        call(TabularPreprocessor(NUMERIC, CATEGORICAL), frame)


def test_missing_columns_raise_schema_error_naming_them() -> None:
    frame, y = _frame(50)
    pre = TabularPreprocessor(NUMERIC, CATEGORICAL)
    with pytest.raises(SchemaError) as info:
        pre.fit(frame.drop(columns=["debt", "channel"]), y)
    assert "'debt'" in str(info.value) and "'channel'" in str(info.value)
    pre.fit(frame, y)
    with pytest.raises(SchemaError, match="'region'"):
        pre.transform(frame.drop(columns=["region"]))


@pytest.mark.parametrize("config", [{"encoding": "woe"}, {"projection": "lda"}])
def test_target_required_for_woe_and_lda(config: dict[str, Any]) -> None:
    frame, _ = _frame(50)
    with pytest.raises(InvalidInput) as info:
        TabularPreprocessor(NUMERIC, CATEGORICAL, **config).fit(frame)
    assert info.value.field == "y"
    assert "y" in str(info.value)


def test_woe_needs_binary_target() -> None:
    frame, _ = _frame(50)
    with pytest.raises(TargetError):
        TabularPreprocessor(NUMERIC, CATEGORICAL, encoding="woe").fit(frame, np.arange(50) % 3)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"impute": "mode"}, "impute"),
        ({"encoding": "target"}, "encoding"),
        ({"clip": (0.9, 0.1)}, "clip"),
        ({"max_categories": 0}, "max_categories"),
        ({"min_category_frac": 1.0}, "min_category_frac"),
        ({"projection": "tsne"}, "projection"),
        ({"n_components": 2}, "n_components"),
        ({"projection": "pca", "encoding": "ordinal"}, "projection"),
        ({"projection": "pca", "impute": None}, "impute"),
    ],
)
def test_bad_parameters_are_named(config: dict[str, Any], field: str) -> None:
    frame, y = _frame(50)
    with pytest.raises(InvalidInput) as info:
        TabularPreprocessor(NUMERIC, CATEGORICAL, **config).fit(frame, y)
    assert info.value.field == field


def test_bad_column_lists() -> None:
    frame, y = _frame(50)
    with pytest.raises(InvalidInput):
        TabularPreprocessor("income", []).fit(frame, y)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        TabularPreprocessor(["income"], ["income"]).fit(frame, y)
    with pytest.raises(InvalidInput):
        TabularPreprocessor([], []).fit(frame, y)


def test_repeated_column_names_raise_schema_error() -> None:
    frame = pd.DataFrame([[1.0, 2.0, "a"], [3.0, 4.0, "b"]], columns=["n", "n", "c"])
    with pytest.raises(SchemaError, match=r"more than one column named \['n'\]") as info:
        TabularPreprocessor(["n"], ["c"]).fit(frame)
    assert info.value.field == "n"
    pre = TabularPreprocessor(["n"], ["c"]).fit(frame.iloc[:, 1:])
    with pytest.raises(SchemaError, match=r"\['n'\]"):
        pre.transform(frame)
    TabularPreprocessor([], ["c"]).fit(frame)  # repeats among unused columns do no harm


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_cells_holding_lists_raise_data_error(kind: str) -> None:
    frame = pd.DataFrame({"c": [["a"], ["b"], ["a"]]})
    columns: dict[str, list[str]] = {"numeric": [], "categorical": [], kind: ["c"]}
    with pytest.raises(DataError, match=r"'c'.*\['a'\].*one value per cell") as info:
        TabularPreprocessor(**columns).fit(frame)
    assert info.value.field == "c"


@pytest.mark.parametrize("encoding", ["onehot", "ordinal", "woe"])
@pytest.mark.parametrize(
    ("values", "match"),
    [
        (pd.to_datetime(["2020-01-01", "2021-06-01", None, "2022-01-01"]), "dates or durations"),
        (pd.to_datetime(["2020-01-01"] * 4).tz_localize("UTC"), "dates or durations"),
        (pd.to_timedelta([1, 2, 3, 4], unit="D"), "dates or durations"),
        (["low", "high", None, "high"], r"no numbers \(values such as \['low', 'high'\]\)"),
    ],
    ids=["datetime", "datetime-tz", "timedelta", "text"],
)
def test_dates_durations_and_text_listed_as_numeric_are_refused(
    encoding: str, values: Any, match: str
) -> None:
    # they used to become all-missing: a constant 0 with a constant missing indicator
    frame = pd.DataFrame({"d": values, "n": [1.0, 2.0, 3.0, 4.0]})
    pre = TabularPreprocessor(["d", "n"], [], encoding=encoding)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=rf"numeric column 'd' holds {match}.*categorical") as info:
        pre.fit(frame, [0, 1, 0, 1])
    assert info.value.field == "d"


def test_numbers_as_text_and_all_missing_numeric_columns_are_accepted() -> None:
    frame = pd.DataFrame({"t": ["1.5", "x", None, "4"], "e": [None] * 4, "n": [1.0] * 4})
    pre = TabularPreprocessor(["t", "e", "n"], [], scale=False, clip=None).fit(frame)
    assert pre.transform(frame)[:, 0].tolist() == [1.5, 2.75, 2.75, 4.0]  # median imputed
    assert pre.numeric_stats_["e"]["fill"] == 0.0


# ------------------------------------------------------ fit on training data


def test_statistics_come_from_the_training_data_only() -> None:
    train = pd.DataFrame({"x": np.arange(100.0), "c": ["a"] * 60 + ["b"] * 40})
    pre = TabularPreprocessor(["x"], ["c"], clip=(0.1, 0.9)).fit(train)
    low, high = np.quantile(np.arange(100.0), [0.1, 0.9])
    clipped = np.clip(np.arange(100.0), low, high)
    mean, std = clipped.mean(), clipped.std()
    stats = pre.numeric_stats_["x"]
    assert (stats["clip_low"], stats["clip_high"]) == (low, high)
    assert stats["fill"] == np.median(clipped)
    assert stats["mean"] == pytest.approx(mean) and stats["scale"] == pytest.approx(std)
    assert pre.feature_names_out_ == ["x", "c=a", "c=b", "c=__other__"]

    test = pd.DataFrame({"x": [1000.0, np.nan, -5.0, 50.0], "c": ["b", "zzz", None, "a"]})
    out = pre.transform(test)
    expected_x = (np.array([high, np.median(clipped), low, 50.0]) - mean) / std
    np.testing.assert_allclose(out[:, 0], expected_x, rtol=1e-12)
    np.testing.assert_array_equal(
        out[:, 1:], [[0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]]
    )  # unseen and (never seen) missing go to __other__
    assert pre.numeric_stats_["x"] == stats  # transform learns nothing

    refit = TabularPreprocessor(["x"], ["c"], clip=(0.1, 0.9)).fit(pd.concat([train, test]))
    assert refit.numeric_stats_["x"] != stats


def test_default_clip_keeps_a_rare_flag() -> None:
    # 4 ones in 1000 rows: both clip quantiles are 0, which used to clip every 1 to 0
    flag = np.zeros(1000)
    flag[[10, 200, 500, 900]] = 1.0
    train = pd.DataFrame({"flag": flag, "x": np.arange(1000.0)})
    pre = TabularPreprocessor(["flag", "x"], [], scale=False).fit(train)
    stats = pre.numeric_stats_["flag"]
    assert (stats["clip_low"], stats["clip_high"]) == (0.0, 1.0)
    out = pre.transform(train)
    np.testing.assert_array_equal(out[:, 0], flag)
    assert pre.transform_record({"flag": 1, "x": 5.0})[0] == 1.0
    assert pre.transform_record({"flag": 7, "x": 5.0})[0] == 1.0  # the training maximum
    assert out[:, 1].max() < 999.0  # other columns are still clipped


def test_infinite_values_are_clipped_or_refused() -> None:
    train = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)})
    clipped = TabularPreprocessor(["x", "y"], [], scale=False).fit(train)
    assert clipped.transform_record({"x": math.inf, "y": -math.inf}).tolist() == [
        clipped.numeric_stats_["x"]["clip_high"],
        clipped.numeric_stats_["y"]["clip_low"],
    ]
    pre = TabularPreprocessor(["x", "y"], [], clip=None).fit(train)
    bad = pd.DataFrame({"x": [1.0, 2.0], "y": [np.nan, -np.inf]})
    for call in (lambda: pre.transform(bad), lambda: pre.transform_record({"y": "-inf"})):
        with pytest.raises(DataError, match=r"'y'.*infinite.*clip") as info:
            call()
        assert info.value.field == "y"
    keep_nan = TabularPreprocessor(["x"], [], clip=None, impute=None).fit(train)
    assert math.isnan(keep_nan.transform_record({"x": math.nan})[0])  # NaN is still missing
    with pytest.raises(DataError, match="'x'"):
        TabularPreprocessor(["x"], [], clip=None, projection="pca").fit(
            pd.DataFrame({"x": [1.0, 2.0, math.inf]})
        )


@pytest.mark.parametrize(
    "values", [[math.inf, -math.inf, math.inf], [math.inf, math.nan, math.nan]]
)
def test_a_column_without_finite_values_is_refused_when_clipping(values: list[float]) -> None:
    # fit used to succeed without clip bounds; transform then refused the column,
    # advising to fit with clip, which was set
    frame = pd.DataFrame({"x": values, "z": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=r"'x' has no finite values") as info:
        TabularPreprocessor(["x", "z"], []).fit(frame)
    assert info.value.field == "x"
    TabularPreprocessor(["x", "z"], [], encoding="ordinal").fit(frame)  # nothing to clip
    TabularPreprocessor(["x", "z"], [], clip=None).fit(frame)  # refused at transform


@pytest.mark.parametrize("encoding", ["onehot", "woe"])
@pytest.mark.parametrize("value", ["__missing__", "__other__"])
def test_categories_named_like_internal_labels_are_refused(encoding: str, value: str) -> None:
    frame = pd.DataFrame({"c": ["a", "b", value, None] * 25})
    y = np.array([0, 1] * 50)
    pre = TabularPreprocessor([], ["c"], encoding=encoding)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=f"'c'.*{value}.*rename") as info:
        pre.fit(frame, y)
    assert info.value.field == "c"
    ordinal = TabularPreprocessor([], ["c"], encoding="ordinal").fit(frame)
    assert ordinal.categories_["c"] == sorted(["a", "b", value])  # codes only: no clash


def test_missing_indicators_only_for_columns_missing_in_training() -> None:
    pre, _, _ = _fit({})
    assert "income__missing" in pre.feature_names_out_
    assert "tenure__missing" in pre.feature_names_out_
    assert "debt__missing" not in pre.feature_names_out_
    out = pre.transform_record({"income": None, "debt": None})
    names = pre.feature_names_out_
    assert out[names.index("income__missing")] == 1.0
    # debt imputed with its training median (then scaled)
    stats = pre.numeric_stats_["debt"]
    assert out[names.index("debt")] == (stats["fill"] - stats["mean"]) / stats["scale"]


def test_outlier_flags_use_training_quartiles() -> None:
    pre, frame, _ = _fit({"flag_outliers": True, "clip": None, "scale": False})
    debt = frame["debt"].to_numpy()
    q1, q3 = np.quantile(debt, [0.25, 0.75])
    flags = pre.transform(frame)[:, pre.feature_names_out_.index("debt__outlier")]
    expected = (debt < q1 - 1.5 * (q3 - q1)) | (debt > q3 + 1.5 * (q3 - q1))
    np.testing.assert_array_equal(flags, expected.astype(float))
    assert flags[:3].tolist() == [1.0, 1.0, 1.0]


def test_rare_and_excess_categories_go_to_other() -> None:
    pre, _, _ = _fit({"max_categories": 2, "min_category_frac": 0.1})
    assert pre.categories_["region"] == ["north", "south"]
    assert pre.rare_categories_["region"] == ["__missing__", "east", "isle", "west"]
    out = pre.transform_record({"region": "isle"})
    assert out[pre.feature_names_out_.index("region=__other__")] == 1.0
    assert pre.categories_["product"] == ["1", "2"]  # integer codes compared as text


def test_onehot_rows_have_one_hot_per_categorical() -> None:
    pre, frame, _ = _fit({})
    out = pre.transform(frame)
    for name in CATEGORICAL:
        cols = [i for i, f in enumerate(pre.feature_names_out_) if f.startswith(f"{name}=")]
        np.testing.assert_array_equal(out[:, cols].sum(axis=1), 1.0)
    assert pre.categorical_indices_ == []
    assert out.dtype == np.float64 and out.shape == (len(frame), pre.n_features_out_)


def test_ordinal_encoding() -> None:
    pre, frame, _ = _fit({"encoding": "ordinal"})
    assert pre.feature_names_out_ == [*NUMERIC, *CATEGORICAL]
    assert pre.categorical_indices_ == [4, 5, 6]
    out = pre.transform(frame)
    # numerics pass through: no impute, clip or scale
    np.testing.assert_array_equal(out[:, 0], frame["income"].to_numpy(), strict=False)
    assert np.isnan(out[:, 0]).sum() == frame["income"].isna().sum()
    assert out[0, 1] == 1e7
    codes = out[:, 4]
    assert set(np.unique(codes[~np.isnan(codes)])) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert np.isnan(codes[frame["region"].isna().to_numpy()]).all()
    record = pre.transform_record({"region": "atlantis", "product": 1, "income": "12.5"})
    assert math.isnan(record[4]) and record[5] == 0.0 and record[0] == 12.5


def test_woe_encoding_matches_the_binner() -> None:
    pre, frame, y = _fit({"encoding": "woe", "woe_max_bins": 5})
    binner = WoEBinner(max_bins=5).fit(frame[NUMERIC + CATEGORICAL], y, categorical=CATEGORICAL)
    np.testing.assert_array_equal(pre.transform(frame), binner.transform(frame))
    assert pre.woe_ is not None and pre.woe_.bins_ == binner.bins_
    assert pre.feature_names_out_ == [*NUMERIC, *CATEGORICAL]


def test_pca_projection_of_the_encoded_matrix() -> None:
    pre, frame, _ = _fit({"projection": "pca", "n_components": 3})
    encoded = TabularPreprocessor(NUMERIC, CATEGORICAL).fit(frame).transform(frame)
    pca = PCAProjection(n_components=3).fit(encoded)
    np.testing.assert_allclose(pre.transform(frame), pca.transform(encoded), atol=1e-10)
    assert pre.feature_names_out_ == ["pc1", "pc2", "pc3"]
    assert pre.n_features_out_ == 3


def test_lda_projection() -> None:
    pre, frame, _ = _fit({"projection": "lda"})
    assert pre.feature_names_out_ == ["ld1"]
    assert pre.transform(frame).shape == (len(frame), 1)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1.0, 1.0, 1.0, 1.0], [0, 1, 0, 1], "every feature is constant"),
        ([1.0, 2.0, 1.0, 2.0], [0, 0, 1, 1], "class means coincide"),
    ],
)
def test_lda_on_features_that_do_not_separate_the_classes_is_refused(
    x: list[float], y: list[int], match: str
) -> None:
    frame = pd.DataFrame({"n": x, "c": ["a"] * 4})
    pre = TabularPreprocessor(["n"], ["c"], projection="lda")
    with pytest.raises(DataError, match=rf"{match}.*projection=None"):
        pre.fit(frame, y)


# ---------------------------------------------- record path == table path


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: repr(c) if c else "default")
def test_transform_record_equals_transform_on_random_records(config: dict[str, Any]) -> None:
    pre, frame, _ = _fit(config)
    records = _random_records(frame, 150, seed=len(repr(config)))
    for record in _refused(pre, records):
        with pytest.raises(DataError):
            pre.transform_record(record)
        with pytest.raises(DataError):
            pre.transform(_as_row(record))
    batch = pre.transform(pd.DataFrame([_as_row(r).iloc[0].to_dict() for r in records]))
    for i, record in enumerate(records):
        fast = pre.transform_record(record)
        slow = pre.transform(_as_row(record))[0]
        assert fast.dtype == np.float64 and fast.shape == (pre.n_features_out_,)
        if pre.projection_ is None:
            np.testing.assert_array_equal(fast, slow, err_msg=repr(record))
            np.testing.assert_array_equal(fast, batch[i], err_msg=repr(record))
        else:
            np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12, err_msg=repr(record))
            np.testing.assert_allclose(fast, batch[i], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "Float32", "float32[pyarrow]", "float16"])
def test_float32_categories_match_the_numbers_served_as_json(dtype: str) -> None:
    # float32(0.7) widened as is is 0.699999988..., a key no served 0.7 matched
    frame = pd.DataFrame({"grade": pd.Series([1.5, 2.5, 0.7, 0.7, 3.0, None], dtype=dtype)})
    pre = TabularPreprocessor([], ["grade"], min_category_frac=0).fit(frame)
    assert pre.feature_names_out_ == [
        "grade=0.7",
        "grade=1.5",
        "grade=2.5",
        "grade=3",
        "grade=__missing__",
        "grade=__other__",
    ]
    served = pd.DataFrame({"grade": [0.7, 3, None]})
    expected = pre.transform(frame.iloc[[2, 4, 5]])
    np.testing.assert_array_equal(pre.transform(served), expected)
    records = [pre.transform_record({"grade": v}) for v in (0.7, 3, np.float32(0.7))]
    np.testing.assert_array_equal(records, expected[[0, 1, 0]])


@pytest.mark.parametrize("encoding", ["woe", "onehot"])
def test_float32_numbers_fall_where_the_numbers_served_as_json_do(encoding: str) -> None:
    # WoE edges (and clip bounds) were cut at 0.699999988..., so a served 0.7
    # landed in the next bin
    rng = np.random.default_rng(0)
    values = rng.choice([0.7, 0.9, 1.5], 1200)
    y = (rng.random(1200) < np.select([values < 0.8, values < 1.0], [0.1, 0.3], 0.6)).astype(int)
    frame = pd.DataFrame({"rate": values.astype(np.float32)})
    pre = TabularPreprocessor(["rate"], [], encoding=encoding, clip=(0.0, 0.5))  # type: ignore[arg-type]
    pre.fit(frame, y)
    served = [0.7, 0.9, 1.5]
    table = pre.transform(pd.DataFrame({"rate": np.array(served, dtype=np.float32)}))
    np.testing.assert_array_equal(pre.transform(pd.DataFrame({"rate": served})), table)
    np.testing.assert_array_equal([pre.transform_record({"rate": v}) for v in served], table)
    if encoding == "woe":
        assert len(set(table[:, 0])) == 3  # one bin per value
    else:
        assert pre.numeric_stats_["rate"]["clip_high"] == 0.9


def test_transform_record_on_training_rows() -> None:
    pre, frame, _ = _fit({})
    out = pre.transform(frame)
    for i, record in enumerate(frame.head(50).to_dict(orient="records")):
        np.testing.assert_array_equal(pre.transform_record(record), out[i])


def test_missing_keys_are_missing_values() -> None:
    pre, _, _ = _fit({})
    empty = pre.transform_record({})
    nones = pre.transform_record(dict.fromkeys([*NUMERIC, *CATEGORICAL]))
    np.testing.assert_array_equal(empty, nones)


def test_transform_ignores_extra_columns_and_order() -> None:
    pre, frame, _ = _fit({})
    reordered = frame[list(reversed(frame.columns))].assign(extra=1)
    np.testing.assert_array_equal(pre.transform(reordered), pre.transform(frame))


# ------------------------------------------------------------- persistence


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: repr(c) if c else "default")
def test_json_round_trip_transforms_identically(config: dict[str, Any]) -> None:
    pre, frame, _ = _fit(config)
    saved = pre.to_dict()
    _assert_plain_json(saved)
    loaded = TabularPreprocessor.from_dict(json.loads(json.dumps(saved, allow_nan=False)))
    assert loaded.get_params() == pre.get_params()
    assert loaded.feature_names_out_ == pre.feature_names_out_
    assert loaded.categorical_indices_ == pre.categorical_indices_
    np.testing.assert_array_equal(loaded.transform(frame), pre.transform(frame))
    records = _random_records(frame, 40, seed=5)
    for record in _refused(pre, records):
        with pytest.raises(DataError):
            loaded.transform_record(record)
    for record in records:
        np.testing.assert_array_equal(loaded.transform_record(record), pre.transform_record(record))


def test_nan_statistics_survive_json() -> None:
    pre, _, _ = _fit({"impute": None, "clip": None})
    saved = json.loads(json.dumps(pre.to_dict(), allow_nan=False))
    assert saved["numeric_stats"]["income"]["fill"] == "nan"
    assert saved["numeric_stats"]["income"]["clip_low"] == "-inf"
    loaded = TabularPreprocessor.from_dict(saved)
    assert math.isnan(loaded.numeric_stats_["income"]["fill"])
    assert math.isnan(loaded.transform_record({})[0])


def test_from_dict_rejects_other_dicts() -> None:
    with pytest.raises(InvalidInput):
        TabularPreprocessor.from_dict({"type": "WoEBinner"})
    pre, _, _ = _fit({})
    broken = pre.to_dict()
    del broken["categories"]
    with pytest.raises(InvalidInput):
        TabularPreprocessor.from_dict(broken)


def test_public_names_are_exported() -> None:
    import leptonic.features as features

    for name in ("LDAProjection", "PCAProjection", "TabularPreprocessor", "WoEBinner"):
        assert name in features.__all__
        assert getattr(features, name).__module__.startswith("leptonic.features.")
