"""Contracts (strictly checked) and schema inference over Parquet."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leptonic.core.dataset import ColumnRole
from leptonic.errors import SchemaError
from leptonic.governance.schema import Contract, infer_schema, load_contract

EXAMPLE = """
target = "default"
description = "loan applicants"

[roles]
customer_id = "id"
notes = "text"

[pii]
email = "email"        # declare a column as PII of a kind
age = false            # declare a column NOT PII (overrides detection)
allow_in_training = ["age"]
"""


def _contract(tmp_path: Path, text: str, name: str = "contract.toml") -> Contract:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_contract(path)


# -- contracts -----------------------------------------------------------------


def test_load_toml_contract(tmp_path: Path) -> None:
    c = _contract(tmp_path, EXAMPLE)
    assert c.target == "default"
    assert c.description == "loan applicants"
    assert dict(c.roles) == {"customer_id": ColumnRole.ID, "notes": ColumnRole.TEXT}
    assert dict(c.pii) == {"email": "email", "age": None}
    assert c.allow_in_training == ("age",)
    assert c.columns == ["age", "customer_id", "default", "email", "notes"]


def test_contract_round_trips_through_dict_and_json(tmp_path: Path) -> None:
    c = _contract(tmp_path, EXAMPLE)
    data = c.to_dict()
    assert data["pii"] == {"email": "email", "age": False, "allow_in_training": ["age"]}
    again = _contract(tmp_path, json.dumps(data), "contract.json")
    assert again == c
    assert hash(again) == hash(c)


def test_contract_is_read_only(tmp_path: Path) -> None:
    c = _contract(tmp_path, EXAMPLE)
    with pytest.raises(TypeError):
        c.roles["x"] = ColumnRole.ID  # type: ignore[index]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"unknown key\(s\) 'tagret'; allowed keys: target"):
        _contract(tmp_path, 'tagret = "default"\n')


def test_unknown_role_lists_the_valid_roles(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"\[roles\] notes = 'free-text' is not a role") as err:
        _contract(tmp_path, '[roles]\nnotes = "free-text"\n')
    for role in ColumnRole:
        assert role.value in str(err.value)
    assert err.value.field == "notes"


def test_unknown_pii_kind(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"\[pii\] email = 'mail' is not a PII kind; use one of"):
        _contract(tmp_path, '[pii]\nemail = "mail"\n')
    with pytest.raises(SchemaError, match="or false for 'not PII'"):
        _contract(tmp_path, "[pii]\nemail = true\n")


def test_allow_in_training_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="allow_in_training must be a list of column names"):
        _contract(tmp_path, '[pii]\nallow_in_training = "age"\n')


def test_roles_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"\[roles\] must map column names to roles"):
        _contract(tmp_path, 'roles = "id"\n')


def test_target_must_be_a_name(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="'target' must be a column name"):
        _contract(tmp_path, "target = 3\n")


def test_two_targets_disagree(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="more than one target"):
        _contract(tmp_path, 'target = "a"\n[roles]\nb = "target"\n')
    assert _contract(tmp_path, '[roles]\nb = "target"\n').target == "b"


def test_pii_role_contradicting_not_pii(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="has role 'pii' but \\[pii\\] says it is not PII"):
        _contract(tmp_path, '[roles]\nx = "pii"\n[pii]\nx = false\n')


def test_missing_and_malformed_contract_files(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not found; check the path"):
        load_contract(tmp_path / "absent.toml")
    with pytest.raises(SchemaError, match="is not valid TOML"):
        _contract(tmp_path, "target = \n")
    with pytest.raises(SchemaError, match="is not valid JSON"):
        _contract(tmp_path, "{target: 1}", "c.json")
    with pytest.raises(SchemaError, match="expected a table of keys"):
        _contract(tmp_path, "[1, 2]", "c.json")


def test_check_columns_names_missing_ones(tmp_path: Path) -> None:
    c = _contract(tmp_path, EXAMPLE)
    with pytest.raises(SchemaError, match=r"names column\(s\) 'email', 'notes' that the data"):
        c.check_columns(["age", "customer_id", "default"])
    c.check_columns(["age", "customer_id", "default", "email", "notes", "extra"])


def test_apply_pii() -> None:
    c = Contract(
        pii={"email": "email", "age": None},
        roles={"secret": ColumnRole.PII},
    )
    assert c.apply_pii({"age": "phone", "contact": "phone"}) == {
        "contact": "phone",
        "email": "email",
        "secret": "other",
    }


# -- inference -----------------------------------------------------------------


def _table(n: int = 200) -> pa.Table:
    return pa.table(
        {
            "customer_id": list(range(1, n + 1)),
            "account_ref": [f"ACC{i:05d}" for i in range(n)],
            "amount": [i * 1.5 for i in range(n)],
            "rating": [i % 5 for i in range(n)],
            "region": [["north", "south", "east"][i % 3] for i in range(n)],
            "active": [i % 2 == 0 for i in range(n)],
            "opened": [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)],
            "opened_text": [f"2021-03-{1 + i % 28:02d}" for i in range(n)],
            "notes": [
                f"customer {i} called about the late fee on their statement" for i in range(n)
            ],
            "email": [f"u{i}@example.com" for i in range(n)],
            "blank": pa.nulls(n, pa.string()),
            "default": [int(i % 7 == 0) for i in range(n)],
            "with_gaps": [None if i % 10 == 0 else i for i in range(n)],
        }
    )


def _write(tmp_path: Path, table: pa.Table) -> Path:
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    return path


def _roles(columns: tuple) -> dict[str, str]:  # type: ignore[type-arg]
    return {c.name: c.role.value for c in columns}


def test_inferred_roles(tmp_path: Path) -> None:
    path = _write(tmp_path, _table())
    columns = infer_schema(path, pii={"email": "email"}, target="default")
    assert _roles(columns) == {
        "customer_id": "id",
        "account_ref": "categorical",  # not named like an id
        "amount": "numeric",
        "rating": "numeric",  # few distinct integers stay numeric
        "region": "categorical",
        "active": "categorical",
        "opened": "timestamp",
        "opened_text": "timestamp",
        "notes": "text",
        "email": "pii",
        "blank": "ignore",
        "default": "target",
        "with_gaps": "numeric",
    }
    by_name = {c.name: c for c in columns}
    assert by_name["email"].pii == "email"
    assert by_name["amount"].dtype == "double"
    assert by_name["opened"].dtype == "date32[day]"
    assert by_name["with_gaps"].nullable and by_name["blank"].nullable
    assert not by_name["amount"].nullable


def test_no_target_is_guessed(tmp_path: Path) -> None:
    columns = infer_schema(_write(tmp_path, _table()))
    assert {c.name: c.role for c in columns}["default"] is ColumnRole.NUMERIC


def test_id_needs_unique_values(tmp_path: Path) -> None:
    table = pa.table({"user_id": [1, 2, 2, 3], "uuid": ["a", "b", "c", "d"], "x": [1, 2, 3, 4]})
    roles = _roles(infer_schema(_write(tmp_path, table)))
    assert roles["user_id"] == "numeric"
    assert roles["uuid"] == "id"


def test_camel_case_ids(tmp_path: Path) -> None:
    table = pa.table({"customerId": [1, 2, 3], "Id": ["a", "b", "c"]})
    assert set(_roles(infer_schema(_write(tmp_path, table))).values()) == {"id"}


def test_high_cardinality_short_strings_stay_categorical(tmp_path: Path) -> None:
    table = pa.table({"postcode": [f"AB{i} 1CD" for i in range(500)]})
    assert _roles(infer_schema(_write(tmp_path, table))) == {"postcode": "categorical"}


def test_strings_that_are_not_all_dates_are_not_timestamps(tmp_path: Path) -> None:
    table = pa.table({"when": ["2021-01-01", "2021-01-02", "soon"]})
    assert _roles(infer_schema(_write(tmp_path, table))) == {"when": "categorical"}


def test_contract_overrides_inference(tmp_path: Path) -> None:
    contract = Contract(
        target="default",
        roles={"rating": ColumnRole.CATEGORICAL, "blank": ColumnRole.IGNORE},
        pii={"region": "other", "email": None},
    )
    columns = infer_schema(_write(tmp_path, _table()), pii={"email": "email"}, contract=contract)
    by_name = {c.name: c for c in columns}
    assert by_name["rating"].role is ColumnRole.CATEGORICAL
    assert by_name["default"].role is ColumnRole.TARGET
    assert by_name["email"].role is ColumnRole.CATEGORICAL and by_name["email"].pii is None
    assert by_name["region"].role is ColumnRole.PII and by_name["region"].pii == "other"


def test_allow_in_training_keeps_a_feature_role(tmp_path: Path) -> None:
    contract = Contract(pii={"amount": "other"}, allow_in_training=("amount",))
    columns = infer_schema(_write(tmp_path, _table()), contract=contract)
    amount = next(c for c in columns if c.name == "amount")
    assert (amount.role, amount.pii) == (ColumnRole.NUMERIC, "other")


def test_contract_with_missing_columns(tmp_path: Path) -> None:
    contract = Contract(roles={"nope": ColumnRole.ID})
    with pytest.raises(SchemaError, match=r"names column\(s\) 'nope' that the data does not have"):
        infer_schema(_write(tmp_path, _table()), contract=contract)


def test_target_disagreeing_with_contract(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="disagrees with the contract's target 'default'"):
        infer_schema(
            _write(tmp_path, _table()), contract=Contract(target="default"), target="rating"
        )


def test_nested_and_binary_columns_are_ignored(tmp_path: Path) -> None:
    table = pa.table({"tags": [["a"], ["b", "c"]], "blob": [b"\x00", b"\x01"], "x": [1, 2]})
    roles = _roles(infer_schema(_write(tmp_path, table)))
    assert roles == {"tags": "ignore", "blob": "ignore", "x": "numeric"}


def test_durations_and_times_of_day_are_not_timestamps(tmp_path: Path) -> None:
    n = 10
    table = pa.table(
        {
            "waited": pa.array([dt.timedelta(seconds=i) for i in range(n)], pa.duration("s")),
            "at": pa.array([dt.time(9, i) for i in range(n)], pa.time64("us")),
            "day": pa.array([dt.date(2024, 1, 1 + i) for i in range(n)], pa.date32()),
            "when": pa.array([dt.datetime(2024, 1, 1, i) for i in range(n)], pa.timestamp("s")),
        }
    )
    roles = _roles(infer_schema(_write(tmp_path, table)))
    assert roles == {"waited": "ignore", "at": "ignore", "day": "timestamp", "when": "timestamp"}


def test_nan_counts_as_missing(tmp_path: Path) -> None:
    table = pa.table(
        {
            "half_nan": [float("nan") if i % 2 else float(i) for i in range(100)],
            "all_nan": [float("nan")] * 100,
            "full": [float(i) for i in range(100)],
        }
    )
    by_name = {c.name: c for c in infer_schema(_write(tmp_path, table))}
    assert by_name["half_nan"].nullable and by_name["all_nan"].nullable
    assert not by_name["full"].nullable
    assert by_name["half_nan"].role is ColumnRole.NUMERIC
    assert by_name["all_nan"].role is ColumnRole.IGNORE  # no values, as the quality report says
