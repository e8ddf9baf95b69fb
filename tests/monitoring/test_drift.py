"""PSI: hand-computed values, stable and shifted samples, categories, PII, windows."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leptonic.core.endpoint import Prediction
from leptonic.errors import InvalidInput
from leptonic.monitoring import BaselineProfile, drift_over_time, drift_report, psi

Applicants = Callable[..., tuple[pd.DataFrame, np.ndarray]]
Records = Callable[[pd.DataFrame], list[dict[str, Any]]]


def test_psi_matches_a_hand_computed_value() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.25 ln 2 + 0.25 ln 1.5
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(3.0), abs=1e-12)
    expected, actual = [0.1, 0.2, 0.3, 0.4], [0.2, 0.2, 0.2, 0.4]
    by_hand = 0.1 * math.log(2.0) + 0.0 + (-0.1) * math.log(0.2 / 0.3) + 0.0
    assert psi(expected, actual) == pytest.approx(by_hand, abs=1e-12)
    assert psi([10, 20, 30, 40], [2, 2, 2, 4]) == pytest.approx(by_hand, abs=1e-12)  # counts


def test_psi_is_zero_on_equal_shares_and_finite_on_empty_bins() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    value = psi([0.0, 0.5, 0.5], [0.1, 0.45, 0.45])
    assert math.isfinite(value) and value > 0.3
    # the empty bin is floored at epsilon
    e = 1e-4
    assert psi([0.0, 1.0], [0.5, 0.5], epsilon=e) == pytest.approx(
        (0.5 - e) * math.log(0.5 / e) + (0.5 - 1 / (1 + e)) * math.log(0.5 * (1 + e)), rel=1e-3
    )


def test_psi_refuses_mismatched_or_bad_shares() -> None:
    with pytest.raises(InvalidInput, match="same bins") as info:
        psi([0.5, 0.5], [1.0])
    assert info.value.field == "actual"
    with pytest.raises(InvalidInput):
        psi([0.5, -0.5], [0.5, 0.5])
    with pytest.raises(InvalidInput):
        psi([], [])


def test_no_drift_on_a_sample_of_the_same_distribution(
    profile: BaselineProfile, make_applicants: Applicants, make_records: Records
) -> None:
    frame, scores = make_applicants(5000, seed=7)
    report = drift_report(profile, make_records(frame), scores)
    assert report.n == 5000
    assert set(report.features) == {"income", "age", "debt_ratio", "region", "purpose"}
    for name, d in report.features.items():
        assert d.psi is not None and d.psi < 0.02, name
    assert report.score.psi is not None and report.score.psi < 0.02
    assert report.skipped == {} and report.ignored == ()


def test_strong_drift_on_a_shifted_distribution(
    profile: BaselineProfile, make_applicants: Applicants, make_records: Records
) -> None:
    frame, scores = make_applicants(5000, seed=8, shift=1.0)
    report = drift_report(profile, make_records(frame), scores)
    assert report.features["income"].psi > 0.25  # type: ignore[operator]
    assert report.features["age"].psi > 0.25  # type: ignore[operator]
    assert report.score.psi > 0.25  # type: ignore[operator]
    assert report.features["region"].psi < 0.02  # type: ignore[operator]
    assert [d.name for d in report.most_drifted(2)] == ["income", "age"]
    income = report.features["income"]
    assert len(income.labels) == len(income.expected) == len(income.actual) == 11
    assert sum(income.actual) == pytest.approx(1.0)


def test_unseen_categories_go_to_other(profile: BaselineProfile) -> None:
    rng = np.random.default_rng(3)
    regions = rng.choice(["north", "south", "east", "west", "mars"], 2000, p=[0.3] + [0.175] * 4)
    records = [{"region": r} for r in regions]
    report = drift_report(profile, records, np.full(2000, 0.1))
    region = report.features["region"]
    other = region.labels.index("other")
    assert region.actual[other] == pytest.approx(np.mean(regions == "mars"))
    assert region.expected[other] < 0.001
    assert region.psi > 0.25  # type: ignore[operator]


def test_missing_values_fill_the_missing_bin(profile: BaselineProfile) -> None:
    records: list[dict[str, Any]] = [
        {"debt_ratio": None if i % 2 else 0.2, "region": None} for i in range(1000)
    ]
    records[0]["income"] = 30_000.0
    report = drift_report(profile, records, [0.1] * 1000)
    assert report.features["debt_ratio"].n_missing == 500
    assert report.features["debt_ratio"].actual[-1] == 0.5
    assert report.features["region"].actual[-1] == 1.0
    # records that lack a field some others hold: missing there, not an error
    assert report.features["income"].n_missing == 999
    assert "income" not in report.skipped


def test_masked_pii_fields_are_ignored_or_skipped(
    profile: BaselineProfile, make_applicants: Applicants, make_records: Records
) -> None:
    frame, scores = make_applicants(500, seed=9)
    records = make_records(frame)
    for i, r in enumerate(records):
        r["email"] = f"{i * 7919:016x}"  # hashed by the PII policy, not a model input
        r["income"] = f"{i * 104729:016x}"  # a profiled input masked as a hash
        del r["age"]  # a profiled input dropped by the policy
    report = drift_report(profile, records, scores)
    assert report.ignored == ("email",)
    assert set(report.skipped) == {"income", "age"}
    assert "text" in report.skipped["income"] and "absent" in report.skipped["age"]
    assert set(report.features) == {"debt_ratio", "region", "purpose"}


def test_inputs_masked_by_the_pii_policy_are_skipped(
    profile: BaselineProfile,
    make_applicants: Applicants,
    make_records: Records,
    make_predictions: Callable[..., Any],
) -> None:
    frame, scores = make_applicants(500, seed=9)
    records = make_records(frame)
    for i, r in enumerate(records):  # a categorical input hashed before logging
        r["region"] = f"{i * 7919:016x}"
    report = drift_report(profile, records, scores, masked={"region", "email"})
    assert "region" not in report.features and "PII" in report.skipped["region"]
    assert set(report.features) == {"income", "age", "debt_ratio", "purpose"}
    predictions = make_predictions(frame, scores)
    for p, r in zip(predictions, records, strict=True):
        p.inputs["region"] = r["region"]
    series = drift_over_time(profile, predictions, timedelta(days=1), masked=["region"])
    assert "region" not in series.features and "region" in series.skipped
    for bad in ("region", [1], None):
        with pytest.raises(InvalidInput, match="input names") as info:
            drift_report(profile, records, scores, masked=bad)  # type: ignore[arg-type]
        assert info.value.field == "masked"


def test_numeric_text_and_stray_values(profile: BaselineProfile) -> None:
    records: list[dict[str, Any]] = [{"age": "41"}, {"age": 41}, {"age": "n/a"}, {"age": 41.0}]
    report = drift_report(profile, records, [0.1] * 4)
    age = report.features["age"]
    assert age.n_missing == 1  # "n/a" counts as missing, the others share a bin
    assert max(age.actual) == 0.75


def test_a_numeric_input_logged_as_lists_is_skipped(profile: BaselineProfile) -> None:
    records: list[dict[str, Any]] = [{"age": [30, 40], "region": "north"} for _ in range(3)]
    report = drift_report(profile, records, [0.1] * 3)
    assert "age" not in report.features and "not numbers" in report.skipped["age"]
    assert report.features["region"].n == 3
    mixed: list[dict[str, Any]] = [{"age": [30, 40]}, {"age": 41}, {"age": 42}]
    age = drift_report(profile, mixed, [0.1] * 3).features["age"]
    assert age.n_missing == 1  # one list among numbers: missing, like stray text


def test_bins_match_a_record_by_record_reference(
    profile: BaselineProfile, make_applicants: Applicants
) -> None:
    frame, _ = make_applicants(3000, seed=11)
    edges = profile.features["age"].edges
    values = np.r_[frame["age"].to_numpy(), np.array(edges)]  # values on the cut points too
    fast = profile.features["age"].assign(list(values))

    def slow(x: float) -> int:
        for i, e in enumerate(edges):
            if x <= e:
                return i
        return len(edges)

    assert fast.tolist() == [slow(float(x)) for x in values]


def test_records_must_be_mappings(profile: BaselineProfile) -> None:
    with pytest.raises(InvalidInput) as info:
        drift_report(profile, [[1, 2, 3]], [0.1])  # type: ignore[list-item]
    assert info.value.field == "records"
    with pytest.raises(InvalidInput):
        drift_report(profile, {"income": 1.0}, [0.1])  # type: ignore[arg-type]


def test_empty_batch_has_no_psi(profile: BaselineProfile) -> None:
    report = drift_report(profile, [], [])
    assert report.n == 0 and report.score.psi is None
    assert all(d.psi is None for d in report.features.values())
    assert report.to_dict()["score"]["psi"] is None


def test_drift_over_time_windows_match_batch_reports(
    profile: BaselineProfile, make_applicants: Applicants, make_predictions: Callable[..., Any]
) -> None:
    day = timedelta(days=1)
    start = datetime(2025, 3, 1, 6, tzinfo=UTC)
    first = make_predictions(*make_applicants(600, seed=12), start, timedelta(minutes=1))
    shifted = make_applicants(600, seed=13, shift=1.0)
    third = make_predictions(*shifted, start + 2 * day, timedelta(minutes=1))
    shadow = make_predictions(*shifted, start, timedelta(minutes=1), route="shadow")
    predictions: list[Prediction] = third + first + shadow  # any order
    series = drift_over_time(profile, predictions, day)
    assert series.starts == (
        datetime(2025, 3, 1, tzinfo=UTC),
        datetime(2025, 3, 2, tzinfo=UTC),
        datetime(2025, 3, 3, tzinfo=UTC),
    )
    assert series.n == (600, 0, 600)  # shadow scores left out
    assert series.score[1] is None and series.features["income"][1] is None
    batch = drift_report(profile, [p.inputs for p in first], [p.score for p in first])
    assert series.score[0] == pytest.approx(batch.score.psi, abs=1e-12)
    for name, d in batch.features.items():
        assert series.features[name][0] == pytest.approx(d.psi, abs=1e-12)
    assert series.features["income"][2] > 0.25  # type: ignore[operator]
    rows = series.rows()
    assert rows[2]["end"] == datetime(2025, 3, 4, tzinfo=UTC)
    assert rows[2]["psi"]["income"] == series.features["income"][2]
    everything = drift_over_time(profile, predictions, day, route=None)
    assert everything.n == (1200, 0, 600)
    assert series.to_dict()["starts"][0] == "2025-03-01T00:00:00+00:00"


def test_drift_over_time_checks_the_window(profile: BaselineProfile) -> None:
    with pytest.raises(InvalidInput) as info:
        drift_over_time(profile, [], timedelta(0))
    assert info.value.field == "window"
    p = Prediction("w", "e", "r", "m", 1, 0.1, "approve", datetime(2025, 1, 1, tzinfo=UTC))
    q = Prediction("w", "e", "s", "m", 1, 0.1, "approve", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidInput, match="larger window"):
        drift_over_time(profile, [p, q], timedelta(minutes=1))
    assert drift_over_time(profile, [], timedelta(days=1)).starts == ()


def test_naive_datetimes_are_read_as_utc(profile: BaselineProfile) -> None:
    p = Prediction("w", "e", "r", "m", 1, 0.1, "approve", datetime(2025, 1, 1, 23, 59))
    series = drift_over_time(profile, [p], timedelta(days=1))
    assert series.starts == (datetime(2025, 1, 1, tzinfo=UTC),)


def test_drift_report_on_100k_records_is_fast(
    profile: BaselineProfile, make_applicants: Applicants, make_records: Records
) -> None:
    frame, scores = make_applicants(100_000, seed=14)
    records = make_records(frame)
    best = math.inf
    for _ in range(2):
        t0 = time.perf_counter()
        report = drift_report(profile, records, scores)
        best = min(best, time.perf_counter() - t0)
    assert report.n == 100_000
    # well under a second on a quiet machine; generous here for shared CI cores
    assert best < 3.0, f"drift_report took {best:.2f}s on 100k records"


def test_a_masked_input_left_out_of_the_profile_is_skipped_and_extras_ignored(
    profile: BaselineProfile, make_applicants: Applicants, make_records: Records
) -> None:
    frame, scores = make_applicants(300, seed=4)
    records = make_records(frame)
    for i, r in enumerate(records):
        r["surname"] = f"{i * 7919:016x}"  # a model input hashed, not in the kept profile
        r["email"] = f"{i * 104729:016x}"  # a personal field the model does not use
    report = drift_report(profile, records, scores, masked={"surname"})
    assert "PII" in report.skipped["surname"] and report.ignored == ("email",)
