from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leptonic.errors import InvalidInput, NotFitted
from leptonic.features.behaviour import SequenceAggregates


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = {f"bill{i}": rng.normal(100, 30, 50) for i in range(1, 7)}
    data.update({f"pay_{i}": rng.integers(-2, 3, 50).astype(float) for i in (0, 2, 3)})
    data["age"] = rng.integers(20, 70, 50).astype(float)
    data["x1"] = rng.normal(size=50)  # a lone numbered column is not a family
    df = pd.DataFrame(data)
    df.loc[3, "bill2"] = np.nan
    return df


def test_finds_families_in_period_order() -> None:
    agg = SequenceAggregates().fit(["bill10", *[f"bill{i}" for i in range(1, 4)], "age", "x1"])
    assert agg.families_ == {"bill": ["bill1", "bill2", "bill3", "bill10"]}
    assert agg.feature_names_out_[0] == "bill__mean"


def test_values_and_record_path_agree() -> None:
    df = frame()
    agg = SequenceAggregates().fit(list(df.columns))
    assert set(agg.families_) == {"bill", "pay_"}
    out = agg.transform(df)
    bills = df[[f"bill{i}" for i in range(1, 7)]].to_numpy()
    np.testing.assert_allclose(out["bill__mean"], np.nanmean(bills, axis=1))
    np.testing.assert_allclose(out["bill__max"], np.nanmax(bills, axis=1))
    np.testing.assert_allclose(out["bill__std"], np.nanstd(bills, axis=1))
    assert np.isnan(out.loc[3, "bill__slope"])  # a gap makes the trend undefined
    k = np.arange(6) - 2.5
    np.testing.assert_allclose(out.loc[0, "bill__slope"], (bills[0] * k).sum() / (k * k).sum())
    for i in (0, 3, 7):
        rec = agg.transform_record(df.iloc[i].to_dict())
        got = np.array([rec[c] for c in agg.feature_names_out_])
        want = out.loc[i, agg.feature_names_out_].to_numpy(dtype=float)
        np.testing.assert_allclose(got, want, equal_nan=True)


def test_stems_differing_by_underscores_get_distinct_names() -> None:
    # pay1..3 and pay_1..3 both gave pay__mean ...; transform kept one of them
    df = pd.DataFrame({**{f"pay{i}": [float(i)] * 2 for i in (1, 2, 3)}, "PAY_1": [1.0, 2.0]})
    df = df.assign(**{f"pay_{i}": [10.0 * i] * 2 for i in (1, 2, 3)}, PAY_2=3.0, PAY_3=4.0)
    agg = SequenceAggregates().fit(list(df.columns))
    assert set(agg.families_) == {"pay", "pay_", "PAY_"}
    names = agg.feature_names_out_
    assert len(names) == len(set(names)) == 3 * 6
    assert {"pay__mean", "pay___mean", "PAY__mean"} <= set(names)
    out = agg.transform(df)
    assert out.columns.is_unique
    assert out.loc[0, "pay__mean"] == 2.0 and out.loc[0, "pay___mean"] == 20.0
    rec = agg.transform_record(df.iloc[0].to_dict())
    assert rec["pay__mean"] == 2.0 and rec["pay___mean"] == 20.0
    loaded = SequenceAggregates.from_dict(json.loads(json.dumps(agg.to_dict())))
    assert loaded.feature_names_out_ == names
    assert loaded.transform_record(df.iloc[1].to_dict()) == agg.transform_record(
        df.iloc[1].to_dict()
    )


def test_missing_and_text_values_in_a_record() -> None:
    agg = SequenceAggregates().fit(["m1", "m2", "m3"])
    rec = agg.transform_record({"m1": "3", "m2": None, "m3": "n/a"})
    assert rec["m__mean"] == 3.0 and rec["m__npos"] == 1.0
    assert np.isnan(agg.transform_record({})["m__mean"])


def test_round_trip_and_not_fitted() -> None:
    with pytest.raises(NotFitted):
        SequenceAggregates().transform(frame())
    df = frame()
    agg = SequenceAggregates().fit(list(df.columns))
    again = SequenceAggregates.from_dict(json.loads(json.dumps(agg.to_dict())))
    pd.testing.assert_frame_equal(again.transform(df), agg.transform(df))


def test_text_values_parse_alike_on_both_paths() -> None:
    # The batch path must coerce exactly as the record path (and as the
    # preprocessor): Python's float(), so "1_000" is 1000 and "n/a" is missing.
    records = [
        {"m1": "1_000", "m2": " 5 ", "m3": "n/a"},
        {"m1": True, "m2": None, "m3": "1e3"},
        {"m1": "2", "m2": 3, "m3": 4.5},
    ]
    agg = SequenceAggregates().fit(["m1", "m2", "m3"])
    batch = agg.transform(pd.DataFrame(records))
    for i, record in enumerate(records):
        one = agg.transform_record(record)
        for name in agg.feature_names_out_:
            np.testing.assert_equal(batch.loc[i, name], one[name], err_msg=f"{name} row {i}")


@pytest.mark.parametrize("members", [2, 3, 6, 8, 11])
def test_record_path_equals_batch_path_exactly(members: int) -> None:
    rng = np.random.default_rng(members)
    columns = [f"bill{i}" for i in range(1, members + 1)]
    values = rng.normal(1000, 500, size=(60, members))
    values[rng.random(values.shape) < 0.1] = np.nan
    values[:5] *= -1
    frame = pd.DataFrame(values, columns=columns)
    agg = SequenceAggregates(min_members=1).fit(columns)
    batch = agg.transform(frame)
    for i in range(len(frame)):
        one = agg.transform_record(frame.iloc[i].to_dict())
        for name in agg.feature_names_out_:
            np.testing.assert_equal(one[name], batch.loc[i, name], err_msg=f"{name} row {i}")


def test_aggregates_named_like_existing_columns_are_refused() -> None:
    # m__mean was added a second time; the record path overwrote the input's value
    with pytest.raises(InvalidInput, match=r"\['m__mean'\].*\['m1', 'm2', 'm3'\].*rename") as info:
        SequenceAggregates().fit(["m1", "m2", "m3", "m__mean"])
    assert info.value.field == "m__mean"
    agg = SequenceAggregates().fit(["m1", "m2", "m3"])
    frame = pd.DataFrame({"m1": [1.0], "m2": [2.0], "m3": [3.0], "m__max": ["x"]})
    with pytest.raises(InvalidInput, match=r"\['m__max'\]"):
        agg.transform(frame)
    assert list(agg.transform(frame.drop(columns="m__max")).columns[3:]) == agg.feature_names_out_
