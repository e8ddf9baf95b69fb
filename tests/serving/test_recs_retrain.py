"""Endpoint events appended to training interactions in the data's own columns and types."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from leptonic.core.event import Event
from leptonic.errors import InvalidInput
from leptonic.serving.recs_retrain import append_events

AT = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def _event(user: str, item: str, weight: float = 1.0) -> Event:
    return Event(
        workspace="shop",
        endpoint="movies",
        id=f"{user}-{item}",
        user=user,
        item=item,
        at=AT,
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
