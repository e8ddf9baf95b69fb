"""Checking the bodies of a recommendation endpoint's requests.

Each check raises :class:`~leptonic.errors.InvalidInput` naming the field and
what to send instead (the app answers 422). :func:`parse_events` checks the
events of a ``POST /events`` body on their own; the runtime then checks them
against the model before applying any (all or none).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from leptonic.core._time import as_utc
from leptonic.errors import InvalidInput
from leptonic.serving.recs_policy import MAX_WEIGHT, RecsPolicy, weight_ok
from leptonic.storage.metadata.event_base import MAX_EVENT_ID_LENGTH

__all__ = [
    "EVENT_FIELDS",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_FUTURE",
    "MAX_ID",
    "MIN_ID",
    "RECOMMEND_FIELDS",
    "SIMILAR_FIELDS",
    "ParsedEvent",
    "check_fields",
    "check_k",
    "id_value",
    "mapping",
    "parse_events",
    "parse_time",
    "shown",
]

#: The most events one ``POST /events`` may carry.
MAX_EVENTS_PER_REQUEST = 10_000

#: Events timed further in the future than this are refused (clock skew allowance).
MAX_FUTURE = timedelta(days=1)

RECOMMEND_FIELDS = frozenset({"user", "k", "filter", "exclude_seen", "user_attributes"})
SIMILAR_FIELDS = frozenset({"item", "k", "filter"})
EVENT_FIELDS = frozenset({"user", "item", "weight", "kind", "at"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

#: What an id must not hold: the C0 control characters (PostgreSQL refuses NUL in text).
_CONTROL = re.compile(r"[\x00-\x1f]")

#: The range of whole-number ids (int64: what a model's integer ids and a retrain hold).
MIN_ID, MAX_ID = -(2**63), 2**63 - 1


def id_value(value: Any, name: str) -> str | int:
    """A user or item id from JSON: a non-empty string of at most
    :data:`~leptonic.storage.metadata.event_base.MAX_EVENT_ID_LENGTH` characters
    without control characters (the store refuses NUL: an event holding one
    would be answered, then lost), or an int64 whole number (whose text is at
    most 20 characters, as stored)."""
    if isinstance(value, str):
        if value and len(value) <= MAX_EVENT_ID_LENGTH:
            bad = _CONTROL.search(value)
            if bad is not None:
                raise InvalidInput(
                    f"{name} {shown(value)} contains the control character "
                    f"U+{ord(bad.group()):04X} at position {bad.start()}; an id must not "
                    "hold control characters (U+0000 to U+001F, such as NUL, tab or newline): "
                    "remove them",
                    field=name,
                )
            return value
    elif isinstance(value, int) and not isinstance(value, bool):
        if MIN_ID <= value <= MAX_ID:
            return value
        raise InvalidInput(
            f"{name} is a {value.bit_length()}-bit number, out of range: a whole-number id lies between "
            f"{MIN_ID} and {MAX_ID} (int64); a model with text ids takes a longer one as a "
            "string",
            field=name,
        )
    raise InvalidInput(
        f"{name} must be an id: a non-empty string (at most {MAX_EVENT_ID_LENGTH} characters) "
        f"or a whole number, got {shown(value)}",
        field=name,
    )


def shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:60] + ("…" if len(value) > 60 else ""))
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return "a list" if isinstance(value, list) else "an object"


def check_fields(record: Any, allowed: frozenset[str], required: str, example: str) -> None:
    if type(record) is not dict:
        raise InvalidInput(
            f"the request body must be a JSON object, got {shown(record)}; send {example}",
            field="body",
        )
    if required not in record:
        raise InvalidInput(f"missing field {required!r}; send {example}", field=required)
    if not record.keys() <= allowed:
        unknown = sorted(set(record) - allowed)
        raise InvalidInput(
            f"unknown field(s) {', '.join(map(repr, unknown))}; this takes: "
            f"{', '.join(sorted(allowed))}",
            field=unknown[0],
        )


def parse_time(value: Any, name: str, now: datetime) -> datetime:
    """An event time: ISO 8601 text (UTC when it has no offset) or epoch seconds."""
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f"{name} is {shown(value)}, which is not an ISO 8601 time; send e.g. "
                "'2024-05-01T12:00:00Z' (or epoch seconds)",
                field=name,
            ) from None
        try:
            at = as_utc(at)
        except (OverflowError, ValueError):
            raise InvalidInput(f"{name} is {shown(value)}, out of range", field=name) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0 or value > 1e11:
            raise InvalidInput(
                f"{name} is {value!r}; epoch seconds must lie between 0 and 1e11", field=name
            )
        at = datetime.fromtimestamp(value, UTC)
    else:
        raise InvalidInput(
            f"{name} must be an ISO 8601 time or epoch seconds, got {shown(value)}", field=name
        )
    if at < EPOCH:
        raise InvalidInput(f"{name} is before 1970: {at.isoformat()}", field=name)
    if at > now + MAX_FUTURE:
        raise InvalidInput(
            f"{name} is {at.isoformat()}, more than a day in the future; check the clock or "
            "the time zone",
            field=name,
        )
    return at


def check_k(value: Any, default: int, cap: int) -> int:
    """The ``k`` a request asked for, from 1 to ``cap``; without one, the policy's
    ``default`` capped at ``cap`` (a catalogue smaller than the policy's k answers
    all its items rather than refusing a field the client never sent)."""
    if value is None:
        return max(1, min(default, cap))
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            f"k must be a whole number from 1 to {cap}, got {shown(value)}", field="k"
        )
    if not 1 <= value <= cap:
        raise InvalidInput(
            f"k is {value}; it must lie between 1 and {cap} (the most this endpoint "
            "answers: its policy's max_k and the model's catalogue)",
            field="k",
        )
    return value


def mapping(value: Any, name: str, example: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise InvalidInput(f"{name} must be a JSON object like {example}", field=name)
    return value


@dataclass(frozen=True)
class ParsedEvent:
    """One event of a request, checked on its own (not yet against the model)."""

    where: str  # "" or "events[3]." — prefixes field names in errors
    user: str | int
    item: str | int
    weight: float
    kind: str
    at: datetime


def parse_events(value: Any, policy: RecsPolicy, now: datetime) -> list[ParsedEvent]:
    """Check the events of a ``POST /events`` body on their own: one event
    object, a list of them, or ``{"events": [...]}``.

    The ``i``-th event (from 0) without ``"at"`` is timed ``now`` plus ``i``
    microseconds: events of one request never share a time unless the client
    gave it."""
    if type(value) is dict and set(value) == {"events"}:
        value = value["events"]
        if type(value) is not list:
            raise InvalidInput(
                f"events must be a list of event objects such as "
                f'[{{"user": "u1", "item": "i1", "kind": "click"}}], got {shown(value)}',
                field="events",
            )
        many = True
    else:
        many = type(value) is list
    rows = value if many else [value]
    if not rows:
        raise InvalidInput("send at least one event", field="events")
    if len(rows) > MAX_EVENTS_PER_REQUEST:
        raise InvalidInput(
            f"{len(rows)} events in one request; send at most {MAX_EVENTS_PER_REQUEST}",
            field="events",
        )
    out = []
    for i, row in enumerate(rows):
        where = f"events[{i}]." if many else ""
        example = '{"user": "u1", "item": "i1", "kind": "click"}'
        if type(row) is not dict:
            name = f"events[{i}]" if many else "body"
            raise InvalidInput(
                f"{name} must be an event object like {example}, got {shown(row)}", field=name
            )
        for required in ("user", "item"):
            if required not in row:
                raise InvalidInput(
                    f"missing field {required!r} of an event; send {example}",
                    field=where + required,
                )
        if not row.keys() <= EVENT_FIELDS:
            unknown = sorted(set(row) - EVENT_FIELDS)
            raise InvalidInput(
                f"unknown event field(s) {', '.join(map(repr, unknown))}; an event takes: "
                f"{', '.join(sorted(EVENT_FIELDS))}",
                field=where + unknown[0],
            )
        user = id_value(row["user"], where + "user")
        item = id_value(row["item"], where + "item")
        kind = row.get("kind", policy.default_kind)
        if kind not in policy.kinds:
            raise InvalidInput(
                f"event kind {shown(kind)} is not accepted here; kinds: {', '.join(policy.kinds)}",
                field=where + "kind",
            )
        weight = row.get("weight")
        if weight is None:
            weight = policy.weights.get(kind, 1.0)
        elif not weight_ok(weight):
            raise InvalidInput(
                f"weight is {shown(weight)}; a weight is a number from 0 to "
                f"{MAX_WEIGHT:g} (a rating, a quantity)",
                field=where + "weight",
            )
        # an event without a time is stamped on arrival: the i-th one of the request at
        # now + i µs, so that two events of one user on one item (a view, then a
        # purchase) are two events, in the order sent, not one sent twice
        at = parse_time(row["at"], where + "at", now) if "at" in row else now + _MICRO * i
        out.append(ParsedEvent(where, user, item, float(weight), kind, at))
    return out
