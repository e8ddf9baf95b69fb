"""Decision requests: parsed and checked against the signature, errors naming the field."""

from __future__ import annotations

import math

import pytest

from leptonic.errors import InvalidInput
from leptonic.serving.requests import RequestSchema, entity_text, parse_json

SCHEMA = RequestSchema(
    [{"name": "income", "type": "numeric"}, {"name": "region", "type": "categorical"}],
    extra=["customer"],
)


def test_a_good_record_passes_unchanged() -> None:
    record = {"income": 52000.5, "region": "north", "customer": "c-1"}
    assert SCHEMA.check(record) is record
    assert SCHEMA.check({"income": None, "region": None, "customer": 7})["income"] is None
    assert SCHEMA.check({"income": 3, "region": 2, "customer": "x"})["region"] == 2


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        ({"region": "n", "customer": "c"}, "income", "missing field"),
        ({"income": 1, "region": "n", "customer": "c", "age": 3}, "age", "unknown field"),
        ({"income": "12", "region": "n", "customer": "c"}, "income", "number or null"),
        ({"income": True, "region": "n", "customer": "c"}, "income", "number or null"),
        ({"income": [1], "region": "n", "customer": "c"}, "income", "number or null"),
        ({"income": 1, "region": {"a": 1}, "customer": "c"}, "region", "string"),
        ({"income": float("nan"), "region": "n", "customer": "c"}, "income", "finite"),
        ({"income": float("inf"), "region": "n", "customer": "c"}, "income", "finite"),
    ],
)
def test_bad_records_name_the_field(record: dict, field: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as info:
        SCHEMA.check(record)
    assert info.value.field == field


@pytest.mark.parametrize("body", [[1, 2], "text", 3, None])
def test_the_body_must_be_an_object(body: object) -> None:
    with pytest.raises(InvalidInput, match="JSON object") as info:
        SCHEMA.check(body)
    assert info.value.field == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"income": NaN, "region": "n"}', "income"),
        (b'{"income": Infinity, "region": "n"}', "income"),
        (b'{"income": -Infinity}', "income"),
        (b'{"a": {"b": [1, 1e999]}}', "a.b[1]"),
    ],
)
def test_non_finite_numbers_are_named(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInput, match="finite") as info:
        parse_json(body)
    assert info.value.field == field


@pytest.mark.parametrize("body", [b"", b"{", b"income=3", b"\xff\xfe", b'{"a": 1} x'])
def test_non_json_is_a_clear_error(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="not valid JSON") as info:
        parse_json(body)
    assert info.value.field == "body"


@pytest.mark.parametrize("body", [b"[" * 5000, b"[" * 1025 + b"]" * 1025, b"[NaN, " + b"[" * 3000])
def test_deep_nesting_is_a_clear_error(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="nested too deeply") as info:
        parse_json(body)
    assert info.value.field == "body"


@pytest.mark.parametrize(
    ("body", "field"),
    [(b'{"id": "\\ud800"}', "id"), (b'{"a": {"b": ["x", "\\udfff"]}}', "a.b[1]")],
)
def test_lone_surrogates_are_refused_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInput, match="unpaired surrogate") as info:
        parse_json(body)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'\xef\xbb\xbf{"income": 1}', "UTF-8 byte-order mark"),
        ('{"income": 1}'.encode("utf-16"), "encoded as UTF-16"),
        ('{"income": 1}'.encode("utf-16-le"), "encoded as UTF-16-LE"),
        ('{"income": 1}'.encode("utf-32"), "encoded as UTF-32"),
    ],
)
def test_a_bom_or_a_body_not_in_utf8_says_so(body: bytes, words: str) -> None:
    with pytest.raises(InvalidInput, match="send UTF-8 JSON without a byte-order mark") as info:
        parse_json(body)
    assert words in str(info.value) and "surrogate" not in str(info.value)
    assert info.value.field == "body"


@pytest.mark.parametrize("body", [b"a\x00", b"\x00\x00", b'x\x00{"a": 1}'])
def test_garbage_with_a_nul_is_not_called_utf16(body: bytes) -> None:
    with pytest.raises(InvalidInput, match="not valid JSON") as info:
        parse_json(body)
    assert "UTF-16" not in str(info.value) and "UTF-32" not in str(info.value)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"income": 1' + b"0" * 400 + b"}", "income"),
        (b'{"income": -1' + b"0" * 400 + b"}", "income"),
        (b'{"a": [1, 2' + b"0" * 5000 + b"]}", "a[1]"),  # past int()'s 4300 digits too
    ],
)
def test_an_integer_past_the_float_range_is_a_non_finite_number(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInput, match="not a finite number") as info:
        parse_json(body)
    assert info.value.field == field
    assert parse_json(b'{"income": 1' + b"0" * 30 + b"}") == {"income": 1e30}  # still a number


def test_the_entity_key_is_checked_and_normalised() -> None:
    keyed = RequestSchema([{"name": "income", "type": "numeric"}], extra=["id"], entity="id")
    for good in ("c-1", "", 42, 42.0, -7, 10**20, None):
        assert keyed.check({"income": 1, "id": good})["id"] == good  # the record is unchanged
    assert [entity_text(v, "id") for v in ("c-1", 42, 42.0, -7.0, 1e20, None)] == [
        "c-1",
        "42",
        "42",
        "-7",
        "100000000000000000000",
        None,
    ]
    for bad in ("a\x00b", "x\ny", "\x7f", "\ud800", True, 42.5, math.inf, math.nan, [1], {}):
        with pytest.raises(InvalidInput, match="entity key") as info:
            keyed.check({"income": 1, "id": bad})
        assert info.value.field == "id"
    # an entity key that is also a model input is checked as both
    both = RequestSchema([{"name": "id", "type": "categorical"}], entity="id")
    with pytest.raises(InvalidInput, match="entity key"):
        both.check({"id": 1.5})
