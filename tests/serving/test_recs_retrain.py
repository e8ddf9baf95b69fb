"""Endpoint events appended to training interactions in the data's own columns and types."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from leptonic.core.event import Event
from leptonic.errors import InvalidInput
from leptonic.serving.recs_retrain import RecsRetrain, append_events, settling_note
from leptonic.tasks.recsys._data import Interactions

AT = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def _event(user: str, item: str, weight: float = 1.0, at: datetime = AT) -> Event:
    return Event(
        workspace="shop",
        endpoint="movies",
        id=f"{user}-{item}-{at.timestamp()}",
        user=user,
        item=item,
        at=at,
        weight=weight,
        kind="click",
        received_at=AT,
    )


def test_integer_ids_and_epoch_seconds_keep_their_types() -> None:
    frame = pd.DataFrame(
        {"user": [1, 2], "item": [10, 20], "rating": [4, 5], "ts": [1_700_000_000, 1_700_000_001]}
    )
    out = append_events(
        frame, [_event("3", "30", 2.5)], user="user", item="item", timestamp="ts", weight="rating"
    )
    assert out.dtypes["user"] == frame.dtypes["user"] and out.dtypes["ts"] == frame.dtypes["ts"]
    assert out.iloc[-1].tolist() == [3, 30, 2.5, int(AT.timestamp())]
    assert list(out.columns) == list(frame.columns) and len(out) == 3


def test_text_ids_datetimes_and_other_columns() -> None:
    frame = pd.DataFrame(
        {
            "customer": ["a", "b"],
            "product": ["p1", "p2"],
            "when": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
            "store": ["north", "south"],
        }
    )
    out = append_events(
        frame, [_event("c", "p3")], user="customer", item="product", timestamp="when", weight=None
    )
    last = out.iloc[-1]
    assert (last["customer"], last["product"]) == ("c", "p3")
    assert last["when"] == pd.Timestamp(AT) and out.dtypes["when"] == frame.dtypes["when"]
    assert pd.isna(last["store"])


def test_iso_text_times_and_ids_that_do_not_fit() -> None:
    frame = pd.DataFrame({"user": [1], "item": [2], "at": ["2026-01-01T00:00:00+00:00"]})
    out = append_events(
        frame, [_event("5", "6")], user="user", item="item", timestamp="at", weight=None
    )
    assert datetime.fromisoformat(out.iloc[-1]["at"]) == AT
    small = pd.DataFrame({"user": pd.Series([1], dtype="int32"), "item": [2]})
    with pytest.raises(InvalidInput, match="does not fit the integer column 'user'"):
        append_events(
            small, [_event(str(2**40), "6")], user="user", item="item", timestamp=None, weight=None
        )
    with pytest.raises(InvalidInput, match="'--5' does not fit"):
        append_events(
            frame, [_event("--5", "6")], user="user", item="item", timestamp=None, weight=None
        )
    with pytest.raises(InvalidInput, match="does not fit the integer column 'user'"):
        append_events(
            frame, [_event("anna", "6")], user="user", item="item", timestamp=None, weight=None
        )


def test_a_double_click_within_one_second_is_merged_and_trains(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # events 15 ms apart land on the same whole second of an integer time column
    frame = pd.DataFrame(
        {
            "user": [1, 2, 2],
            "item": [10, 20, 10],
            "rating": [4.0, 5.0, 1.0],
            "ts": [1_700_000_000, 1_700_000_001, int(AT.timestamp())],
        }
    )
    at = AT + timedelta(milliseconds=100)
    clicks = [
        _event("1", "30", 1.0, at),
        _event("1", "30", 2.0, at + timedelta(milliseconds=15)),
        _event("2", "10", 3.0, at),  # the same second as a training row
        _event("3", "20", 1.0, at),
    ]
    with caplog.at_level(logging.WARNING, logger="leptonic.serving.recs_retrain"):
        out = append_events(
            frame, clicks, user="user", item="item", timestamp="ts", weight="rating"
        )
    assert "merged 2 endpoint event(s)" in caplog.text
    assert len(out) == len(frame) + 2 and not out[["user", "item", "ts"]].duplicated().any()
    by_pair = out.set_index(["user", "item"])["rating"]
    assert by_pair[(1, 30)] == 3.0 and by_pair[(2, 10)] == 4.0 and by_pair[(3, 20)] == 1.0
    assert by_pair[(1, 10)] == 4.0 and by_pair[(2, 20)] == 5.0  # training rows unchanged
    Interactions.from_table(out, user="user", item="item", timestamp="ts", weight="rating")
    # without a weight column one row stands for both
    plain = append_events(
        frame.drop(columns="rating"),
        clicks[:2],
        user="user",
        item="item",
        timestamp="ts",
        weight=None,
    )
    assert len(plain) == len(frame) + 1
    Interactions.from_table(plain, user="user", item="item", timestamp="ts")


def test_events_apart_at_the_column_precision_are_kept() -> None:
    frame = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "at": [1.0, 2.0]})
    at = AT + timedelta(milliseconds=100)
    out = append_events(
        frame,
        [_event("a", "z", at=at), _event("a", "z", at=at + timedelta(milliseconds=15))],
        user="user",
        item="item",
        timestamp="at",
        weight=None,
    )
    assert len(out) == 4  # float seconds keep the 15 ms apart


def test_events_left_to_settle_are_reported() -> None:
    young = RecsRetrain(new_events=0, settling=2, settle_s=30.0)
    assert young.summary()["settling"] == 2
    assert settling_note(young.summary()) == (
        "; 2 event(s) younger than 30 s are left for the next retrain"
    )
    assert settling_note(RecsRetrain(new_events=3).summary()) == ""
