"""The quality report, checked against numpy on small generated tables."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leptonic.core.dataset import Column, ColumnRole
from leptonic.errors import SchemaError
from leptonic.governance import quality
from leptonic.governance.quality import quality_report
from leptonic.governance.schema import infer_schema


def _report(tmp_path: Path, table: pa.Table, target: str | None = None) -> dict[str, Any]:
    path = tmp_path / "q.parquet"
    pq.write_table(table, path)
    columns = infer_schema(path, target=target)
    report = quality_report(path, columns, target=target)
    json.dumps(report, allow_nan=False)  # JSON-serialisable, no NaN
    return report


def _checks(report: dict[str, Any]) -> set[tuple[str, str | None, str]]:
    return {(i["severity"], i["column"], i["check"]) for i in report["issues"]}


def test_numeric_statistics_match_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(10, 2, 5000)
    x[:40] = 100.0  # clear outliers
    report = _report(tmp_path, pa.table({"x": x}))
    col = report["columns"]["x"]
    q1, q3 = np.quantile(x, [0.25, 0.75])
    iqr = q3 - q1
    outliers = int(((x < q1 - 1.5 * iqr) | (x > q3 + 1.5 * iqr)).sum())
    assert col["min"] == pytest.approx(x.min())
    assert col["max"] == pytest.approx(100.0)
    assert col["mean"] == pytest.approx(x.mean())
    assert col["std"] == pytest.approx(x.std(ddof=1))
    assert (col["q1"], col["q3"]) == (pytest.approx(q1), pytest.approx(q3))
    assert col["outliers"] == outliers >= 40
    assert col["outlier_rate"] == pytest.approx(outliers / 5000)
    assert col["distinct"] == len(np.unique(x))


def test_missing_values_and_rates(tmp_path: Path) -> None:
    table = pa.table(
        {
            "a": [1, None, 3, None, 5, 6, 7, 8, 9, 10],
            "b": ["x", None, None, None, "y", "x", "y", "x", "y", "x"],
        }
    )
    report = _report(tmp_path, table)
    assert report["rows"] == 10 and report["num_columns"] == 2
    assert (report["columns"]["a"]["missing"], report["columns"]["a"]["missing_rate"]) == (2, 0.2)
    assert report["columns"]["b"]["missing_rate"] == pytest.approx(0.3)
    assert report["columns"]["b"]["distinct"] == 2
    assert ("warning", "b", "missing") in _checks(report)
    assert ("warning", "a", "missing") not in _checks(report)


def test_constant_and_all_null_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "same": ["k"] * 6,
            "nothing": pa.nulls(6, pa.float64()),
            "x": [1, 2, 3, 4, 5, 6],
        }
    )
    report = _report(tmp_path, table)
    assert report["constant_columns"] == ["same"]
    assert report["all_null_columns"] == ["nothing"]
    assert ("error", "nothing", "all_null") in _checks(report)
    assert ("warning", "same", "constant") in _checks(report)
    message = next(i["message"] for i in report["issues"] if i["check"] == "all_null")
    assert "mark it role 'ignore' in the contract" in message


def test_nan_is_missing(tmp_path: Path) -> None:
    nan = float("nan")
    table = pa.table(
        {
            "all_nan": [nan] * 6,
            "some_nan": [1.0, nan, 3.0, nan, 5.0, 1000.0],
            "f32": pa.array([nan, 2.0, 2.0, 2.0, 2.0, 2.0], pa.float32()),
        }
    )
    report = _report(tmp_path, table)
    assert report["all_null_columns"] == ["all_nan"]
    assert ("error", "all_nan", "all_null") in _checks(report)
    some = report["columns"]["some_nan"]
    assert (some["missing"], some["distinct"]) == (2, 4)
    assert some["mean"] == pytest.approx((1.0 + 3.0 + 5.0 + 1000.0) / 4)
    assert some["max"] == 1000.0
    assert some["outliers"] == 1 and some["outlier_rate"] == pytest.approx(0.25)
    assert ("warning", "some_nan", "missing") in _checks(report)
    assert report["columns"]["f32"]["missing"] == 1
    assert report["constant_columns"] == ["f32"]


def test_nan_labels_are_missing_targets(tmp_path: Path) -> None:
    y = [0.0, 1.0, float("nan"), 1.0, 0.0, 1.0]
    report = _report(tmp_path, pa.table({"y": y}), target="y")
    assert report["target"]["missing"] == 1
    assert report["target"]["counts"] == {"1.0": 3, "0.0": 2}


def test_duplicate_rows(tmp_path: Path) -> None:
    table = pa.table({"a": [1, 1, 2, 1, 3], "b": ["x", "x", "x", "x", None]})
    report = _report(tmp_path, table)
    assert report["duplicate_rows"] == 2
    assert report["duplicate_rate"] == pytest.approx(0.4)
    assert ("warning", None, "duplicate_rows") in _checks(report)


def test_type_mismatch_reports_rate_and_examples(tmp_path: Path) -> None:
    values = [str(i * 1.5) for i in range(95)] + ["?", "n.a.", "?", "unknown", "--"]
    dates = [f"2021-01-{1 + i % 28:02d}" for i in range(97)] + ["31/02/2021", "later", "soon"]
    report = _report(tmp_path, pa.table({"income": values, "opened": dates}))
    mismatch = report["columns"]["income"]["type_mismatch"]
    assert mismatch["kind"] == "numeric"
    assert mismatch["parse_rate"] == pytest.approx(0.95)
    assert mismatch["examples"] == ["--", "?", "n.a.", "unknown"]
    assert report["columns"]["opened"]["type_mismatch"]["kind"] == "date"
    assert report["columns"]["opened"]["type_mismatch"]["parse_rate"] == pytest.approx(0.97)
    assert ("warning", "income", "type_mismatch") in _checks(report)


def test_no_raw_personal_data_in_the_report(tmp_path: Path) -> None:
    # Card numbers mostly written as plain digits (they parse as numbers) with a
    # few spaced ones, an integer national id, a date of birth: the report may
    # count and rate them, never quote one.
    cards = ["4111111111111111", "5555555555554444"] * 45 + ["4012 8888 8888 1881"] * 10
    ids = [123456789 + 7 * i for i in range(100)]
    born = [dt.date(1950 + i % 40, 1, 1 + i % 28) for i in range(100)]
    path = tmp_path / "q.parquet"
    pq.write_table(pa.table({"card": cards, "ssn": ids, "born": born}), path)
    pii = {"card": "card_number", "ssn": "national_id", "born": "other"}
    report = quality_report(path, infer_schema(path, pii=pii))
    text = json.dumps(report)
    for raw in ("4012 8888 8888 1881", "4111111111111111", "123456789", "1950-01-01"):
        assert raw not in text
    assert report["columns"]["card"]["type_mismatch"]["parse_rate"] == pytest.approx(0.9)
    assert ("warning", "card", "type_mismatch") in _checks(report)
    assert report["columns"]["ssn"]["missing"] == 0


def test_a_personal_target_is_reported_by_class_position(tmp_path: Path) -> None:
    path = tmp_path / "q.parquet"
    owners = ["Ada Lovelace"] * 6 + ["Alan Turing"] * 3 + ["Grace Hopper"]
    pq.write_table(pa.table({"owner": owners, "x": list(range(10))}), path)
    columns = infer_schema(path, pii={"owner": "person_name"}, target="owner")
    report = quality_report(path, columns, target="owner")
    assert report["target"]["counts"] == {"#1": 6, "#2": 3, "#3": 1}
    assert report["target"]["rates"] == {"#1": 0.6, "#2": 0.3, "#3": 0.1}
    text = json.dumps(report)
    for name in set(owners):
        assert name not in text
    # a target that is not personal keeps its values
    columns = infer_schema(path, target="owner")
    assert "Ada Lovelace" in quality_report(path, columns, target="owner")["target"]["counts"]


def test_clean_strings_have_no_mismatch(tmp_path: Path) -> None:
    table = pa.table({"code": ["A1", "B2", "C3", "12"], "n": ["1", "2", "3", "4"]})
    report = _report(tmp_path, table)
    assert "type_mismatch" not in report["columns"]["code"]
    assert "type_mismatch" not in report["columns"]["n"]  # all parse: not a mismatch


def test_temporal_min_max_are_iso_strings(tmp_path: Path) -> None:
    days = [dt.date(2020, 1, 1), dt.date(2021, 6, 30), None]
    report = _report(tmp_path, pa.table({"day": days}))
    assert (report["columns"]["day"]["min"], report["columns"]["day"]["max"]) == (
        "2020-01-01",
        "2021-06-30",
    )


def test_target_balance(tmp_path: Path) -> None:
    y = [0] * 97 + [1] * 3
    report = _report(tmp_path, pa.table({"x": list(range(100)), "y": y}), target="y")
    assert report["target"]["kind"] == "classes"
    assert report["target"]["counts"] == {"0": 97, "1": 3}
    assert report["target"]["rates"] == {"0": 0.97, "1": 0.03}
    assert ("warning", "y", "target_imbalance") in _checks(report)


def test_target_with_missing_labels_and_a_single_class(tmp_path: Path) -> None:
    report = _report(tmp_path, pa.table({"y": ["good", None, "good"]}), target="y")
    assert report["target"]["missing"] == 1
    assert ("warning", "y", "target_missing") in _checks(report)
    assert ("error", "y", "target_constant") in _checks(report)


def test_continuous_target(tmp_path: Path) -> None:
    y = np.linspace(0, 1, 200)
    report = _report(tmp_path, pa.table({"y": y}), target="y")
    assert report["target"]["kind"] == "continuous"
    assert report["target"]["mean"] == pytest.approx(0.5)


def test_no_target_means_no_balance(tmp_path: Path) -> None:
    assert _report(tmp_path, pa.table({"x": [1, 2]}))["target"] is None


def test_ids_get_no_outlier_count_and_repeats_are_flagged(tmp_path: Path) -> None:
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"customer_id": [1, 2, 3, 1000], "v": [1.0, 2.0, 3.0, 4.0]}), path)
    declared = [
        Column("customer_id", "int64", ColumnRole.ID),
        Column("v", "double", ColumnRole.NUMERIC),
    ]
    report = quality_report(path, declared)
    assert "outliers" not in report["columns"]["customer_id"]
    assert report["columns"]["customer_id"]["role"] == "id"
    pq.write_table(pa.table({"customer_id": [1, 1, 2, 3], "v": [1.0, 2.0, 3.0, 4.0]}), path)
    assert ("warning", "customer_id", "id_not_unique") in _checks(quality_report(path, declared))


def test_infinities_and_nan_are_json_safe(tmp_path: Path) -> None:
    x = [1.0, float("nan"), float("inf"), 2.0]
    report = _report(tmp_path, pa.table({"x": x}))
    assert report["columns"]["x"]["max"] is None


def test_unknown_columns(tmp_path: Path) -> None:
    path = tmp_path / "u.parquet"
    pq.write_table(pa.table({"x": [1]}), path)
    with pytest.raises(SchemaError, match=r"column\(s\) 'y' are not in"):
        quality_report(path, [Column("y", "int64", ColumnRole.NUMERIC)])
    with pytest.raises(SchemaError, match=r"column\(s\) 'label' are not in"):
        quality_report(path, [], target="label")


def test_issue_shape(tmp_path: Path) -> None:
    report = _report(tmp_path, pa.table({"a": [None, None, 1], "b": [1, 1, 1]}))
    for issue in report["issues"]:
        assert set(issue) == {"severity", "column", "check", "message"}
        assert issue["severity"] in ("warning", "error")


def test_a_wide_table_is_profiled_in_scans_of_a_few_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one SELECT of every column's distinct count and quartiles ran out of DuckDB's
    # memory cap at about 130 columns
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            **{f"n{i:03d}": rng.normal(i, 1, 30) for i in range(160)},
            **{
                f"s{i}": [f"{v:.1f}" for v in rng.normal(0, 9, 28)] + ["?", "n.a."]
                for i in range(3)
            },
        }
    )
    wide = _report(tmp_path, table)
    assert len(wide["columns"]) == 163
    for name in ("n000", "n159"):
        x = table[name].to_numpy()
        assert wide["columns"][name]["mean"] == pytest.approx(x.mean())
        assert wide["columns"][name]["distinct"] == 30
    assert {c for _, c, check in _checks(wide) if check == "type_mismatch"} == {"s0", "s1", "s2"}
    monkeypatch.setattr(quality, "COLUMNS_PER_SCAN", 50)  # the same report in other chunks
    assert _report(tmp_path, table) == wide
