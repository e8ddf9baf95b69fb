"""Outcomes posted by request id or entity: the entity named as decisions log it."""

from __future__ import annotations

from typing import Any

import pytest

from leptonic.errors import InvalidInput
from leptonic.serving.feedback import parse_feedback


@pytest.mark.parametrize(
    ("entity", "logged"), [(42, "42"), (42.0, "42"), ("42", "42"), ("C-1", "C-1")]
)
def test_an_entity_is_named_as_decisions_log_it(entity: Any, logged: str) -> None:
    (item,) = parse_feedback({"entity": entity, "label": 1})
    assert item["entity"] == logged and item["request_id"] is None


@pytest.mark.parametrize("entity", ["a\x00b", "x\ny", True, 4.5, {"id": 1}, [1]])
def test_a_bad_entity_is_refused_naming_it(entity: Any) -> None:
    with pytest.raises(InvalidInput, match="entity key") as info:
        parse_feedback([{"entity": entity, "label": 0}])
    assert info.value.field == "[0].entity"


@pytest.mark.parametrize("request_id", [True, 1.5, {"a": 1}])
def test_a_request_id_must_be_text(request_id: Any) -> None:
    with pytest.raises(InvalidInput, match="must be a string") as info:
        parse_feedback({"request_id": request_id, "label": 0})
    assert info.value.field == "body.request_id"
