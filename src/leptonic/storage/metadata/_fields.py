"""Checks of the fields of records, and of arguments, shared by every metadata store.

Every backend (memory, SQLite, PostgreSQL) passes a record through
:func:`checked_record`, and the values of an update or the arguments of a
call through :func:`check_text`, :func:`check_time` and :func:`check_whole`,
before it keeps or looks up anything, so that all of them refuse the same
values with the same :class:`~leptonic.errors.InvalidInput` naming the field:

* text holding NUL (``\\x00``, which PostgreSQL cannot keep) or lone
  surrogates (which are not valid Unicode and cannot be encoded);
* None in a field that requires a value (SQL's ``NOT NULL``);
* a time that is not a :class:`~datetime.datetime`, a whole number that is not
  an ``int`` (``bool`` included), a flag that is not a ``bool``, a number that
  is not finite.

Times come back in UTC, as SQL keeps them (a naive time is taken to be UTC).
:mod:`~leptonic.storage.metadata.base` re-exports these checks.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal, TypeVar, overload

from leptonic.core._time import as_utc
from leptonic.errors import InvalidInput

__all__ = ["check_text", "check_time", "check_whole", "checked_record", "safe_text"]

R = TypeVar("R")

_Kind = Literal["text", "time", "whole", "flag", "number", "other"]

#: The kinds of the annotations of record fields that are checked beyond None.
_KINDS: dict[str, _Kind] = {
    "str": "text",
    "datetime": "time",
    "int": "whole",
    "bool": "flag",
    "float": "number",
}


def _shown(value: object) -> str:
    if isinstance(value, str | int | float | None):
        shown = repr(value)
        return shown if len(shown) <= 60 else shown[:57] + "..."
    return f"a {type(value).__name__}"


def _or_none(optional: bool) -> str:
    return " or None" if optional else ""


def check_text(value: Any, field: str, *, optional: bool = False, name: str | None = None) -> None:
    """Raise :class:`InvalidInput` naming ``field`` unless ``value`` is text that every
    store keeps: a str without NUL and without lone surrogates (or None, if ``optional``).

    ``name`` is how the message names the value (default: ``field``).
    """
    if value is None and optional:
        return
    name = name or field
    if not isinstance(value, str):
        raise InvalidInput(
            f"{name} must be a str{_or_none(optional)}, got {_shown(value)}", field=field
        )
    if "\x00" in value:
        raise InvalidInput(
            f"{name} holds the NUL character (\\x00), which the metadata store cannot keep; "
            "remove it (or replace it, e.g. with U+FFFD)",
            field=field,
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"{name} holds characters that are not valid Unicode (lone surrogates); "
                "send valid text",
                field=field,
            ) from None


@overload
def check_time(
    value: Any, field: str, *, optional: Literal[False] = False, name: str | None = None
) -> datetime: ...


@overload
def check_time(
    value: Any, field: str, *, optional: bool, name: str | None = None
) -> datetime | None: ...


def check_time(
    value: Any, field: str, *, optional: bool = False, name: str | None = None
) -> datetime | None:
    """``value`` as an aware UTC datetime (a naive one is taken to be UTC), or None
    when it is None and ``optional``; :class:`InvalidInput` naming ``field`` for
    anything else, or a time that cannot be expressed in UTC."""
    if value is None and optional:
        return None
    name = name or field
    if not isinstance(value, datetime):
        raise InvalidInput(
            f"{name} must be a datetime{_or_none(optional)}, got {_shown(value)}", field=field
        )
    try:
        return as_utc(value)
    except (OverflowError, ValueError):
        raise InvalidInput(
            f"{name} is {value.isoformat()}, which cannot be expressed in UTC; "
            "give a time from 1900 to 2199",
            field=field,
        ) from None


def check_whole(value: Any, field: str, *, optional: bool = False, name: str | None = None) -> None:
    """Raise :class:`InvalidInput` naming ``field`` unless ``value`` is an int (not a
    bool), or None when ``optional``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            f"{name or field} must be a whole number (an int){_or_none(optional)}, "
            f"got {_shown(value)}; convert it with int()",
            field=field,
        )


def safe_text(text: str) -> str:
    """``text`` with what no store keeps replaced: NUL by U+FFFD, lone surrogates by "?".

    For text that must be recorded whatever it holds, such as an error message.
    """
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "\ufffd")


#: The fields of each record class seen, as :func:`_fields_of` finds them.
_FIELDS: dict[type[Any], tuple[tuple[str, _Kind, bool], ...]] = {}


def _fields_of(cls: type[Any]) -> tuple[tuple[str, _Kind, bool], ...]:
    """``(name, kind, optional)`` of each field of the dataclass ``cls``, from its
    annotations (``str``, ``datetime | None``, ``dict[str, Any]``...)."""
    known = _FIELDS.get(cls)
    if known is not None:
        return known
    found = []
    for f in dataclasses.fields(cls):
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        parts = {part.strip() for part in str(annotation).split("|")}
        optional = "None" in parts
        parts.discard("None")
        kind = _KINDS.get(parts.pop(), "other") if len(parts) == 1 else "other"
        found.append((f.name, kind, optional))
    _FIELDS[cls] = tuple(found)
    return _FIELDS[cls]


def checked_record(record: R, *, ignore: Collection[str] = ()) -> R:
    """``record`` (a dataclass of :mod:`leptonic.core`) with its times in UTC, after
    checking each field against its annotation; :class:`InvalidInput` names the first
    bad field (as ``Record.field`` in the message).

    ``ignore``: fields the store assigns itself (a version number, an id), not checked.
    JSON fields are checked by :func:`~leptonic.storage.metadata.base.json_value`.
    """
    cls: type[Any] = type(record)
    times: dict[str, datetime | None] = {}
    for field, kind, optional in _fields_of(cls):
        if field in ignore:
            continue
        value = getattr(record, field)
        name = f"{cls.__name__}.{field}"
        if kind == "text":
            check_text(value, field, optional=optional, name=name)
        elif kind == "time":
            if value is not None:
                times[field] = check_time(value, field, optional=optional, name=name)
            elif not optional:
                check_time(value, field, name=name)  # raises
        elif kind == "whole":
            check_whole(value, field, optional=optional, name=name)
        elif value is None:
            if not optional:
                raise InvalidInput(f"{name} is required, got None", field=field)
        elif kind == "flag" and not isinstance(value, bool):
            raise InvalidInput(f"{name} must be True or False, got {_shown(value)}", field=field)
        elif kind == "number" and (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(float(value))
        ):
            raise InvalidInput(f"{name} must be a finite number, got {_shown(value)}", field=field)
    changed = {k: v for k, v in times.items() if v is not getattr(record, k)}
    return dataclasses.replace(record, **changed) if changed else record  # type: ignore[type-var]
