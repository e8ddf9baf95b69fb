"""Checking the bodies of recommendation requests: k, event lists, ids, arrival stamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leptonic.errors import InvalidInput
from leptonic.serving.recs_policy import RecsPolicy
from leptonic.serving.recs_requests import check_k, id_value, parse_events

POLICY = RecsPolicy.from_spec({})
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


# -- k -------------------------------------------------------------------------------------------
def test_without_k_the_default_is_capped_at_what_can_be_answered() -> None:
    assert check_k(None, 10, 8) == 8  # a catalogue of 8 items, the policy's k of 10
    assert check_k(None, 10, 100) == 10
    assert check_k(None, 50, 40) == 40  # a policy's k above the catalogue


@pytest.mark.parametrize("k", [0, 9, -1, 10**9])
def test_a_k_the_client_gave_is_checked(k: int) -> None:
    with pytest.raises(InvalidInput, match=f"k is {k}; it must lie between 1 and 8") as info:
        check_k(k, 10, 8)
    assert info.value.field == "k"
    assert check_k(8, 10, 8) == 8 and check_k(1, 10, 8) == 1


@pytest.mark.parametrize("k", ["5", 2.5, True, [3]])
def test_a_k_that_is_not_a_whole_number_is_refused(k: Any) -> None:
    with pytest.raises(InvalidInput, match="whole number") as info:
        check_k(k, 10, 8)
    assert info.value.field == "k"


# -- the events list -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "shown"),
    [(5, "5"), (True, "True"), ("u1", "'u1'"), ({"user": "u1", "item": "i1"}, "an object")],
)
def test_events_that_are_not_a_list_are_refused(value: Any, shown: str) -> None:
    with pytest.raises(InvalidInput, match="events must be a list of event objects") as info:
        parse_events({"events": value}, POLICY, NOW)
    assert info.value.field == "events"
    assert info.value.message.endswith(f"got {shown}")


def test_events_in_a_list_under_events_are_parsed() -> None:
    (event,) = parse_events({"events": [{"user": "u1", "item": "i1"}]}, POLICY, NOW)
    assert (event.user, event.item, event.where) == ("u1", "i1", "events[0].")


# -- arrival stamps ------------------------------------------------------------------------------
def test_each_event_without_a_time_gets_its_own_stamp_in_order() -> None:
    at = "2024-04-30T08:00:00Z"
    events = parse_events(
        [
            {"user": "u1", "item": "i5", "kind": "view"},
            {"user": "u1", "item": "i5", "kind": "purchase"},
            {"user": "u1", "item": "i6", "at": at},
            {"user": "u1", "item": "i5"},
        ],
        POLICY,
        NOW,
    )
    micro = timedelta(microseconds=1)
    assert [e.at for e in events] == [NOW, NOW + micro, datetime.fromisoformat(at), NOW + 3 * micro]
    assert parse_events({"user": "u1", "item": "i1"}, POLICY, NOW)[0].at == NOW


def test_explicit_times_are_kept_as_given() -> None:
    events = parse_events(
        [{"user": "u1", "item": "i5", "at": 1714567000}] * 2,
        POLICY,
        NOW,
    )
    assert events[0].at == events[1].at  # a true duplicate: the runtime refuses it (409)


# -- ids -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["u\x001", "\x00", "u1\n", "\tu1", "u\x1f", "i\x0d"])
def test_ids_with_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="control character") as info:
        id_value(bad, "events[3].user")
    assert info.value.field == "events[3].user"
    assert "remove" in info.value.message


def test_ordinary_ids_pass() -> None:
    for ok in ("u1", "user 1", "é-ü", "ユーザー", "a\x7fb", "x" * 200):
        assert id_value(ok, "user") == ok
    assert id_value(5, "user") == 5


def test_an_event_id_with_nul_is_refused_before_anything_is_applied() -> None:
    with pytest.raises(InvalidInput, match="U\\+0000") as info:
        parse_events([{"user": "u1", "item": "i1"}, {"user": "u1", "item": "i\x002"}], POLICY, NOW)
    assert info.value.field == "events[1].item"
