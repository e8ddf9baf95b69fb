"""Decision requests: parsed and checked against the signature, errors naming the field."""

from __future__ import annotations

import pytest

from leptonic.errors import InvalidInput
from leptonic.serving.requests import RequestSchema, parse_json

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
