"""Reading a decision request: JSON body → a record checked against the model signature.

The check is compiled once per endpoint. A good request costs one orjson
parse, one key-set comparison and one type test per numeric field; only a
bad request pays for the detailed diagnosis, whose error names the field and
says how to fix it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from leptonic.errors import InvalidInput

__all__ = ["RequestSchema", "parse_json"]


class _NonFinite:
    """Marks a NaN / Infinity literal found by the fallback parser."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _float_or_marker(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _find(value: Any, path: str, bad: Callable[[Any], bool]) -> str | None:
    """The path (``a.b[1]``) of the first value, or key, for which ``bad`` holds; a
    bad key is reported at its object's path (``body`` at the top)."""
    if bad(value):
        return path or "body"
    if isinstance(value, dict):
        for k, v in value.items():
            if bad(k):
                return path or "body"
            found = _find(v, f"{path}.{k}" if path else str(k), bad)
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _find(v, f"{path}[{i}]", bad)
            if found:
                return found
    return None


def _non_finite(value: Any) -> bool:
    return isinstance(value, _NonFinite)


def _not_text(value: Any) -> bool:
    """A string holding a lone surrogate (it has no UTF-8 form)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_json(body: bytes) -> Any:
    """Parse a request body; :class:`InvalidInput` naming the field for NaN,
    Infinity or an overflowing number, and saying what is wrong otherwise."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        orjson_error = str(exc)
    try:
        value = json.loads(body, parse_constant=_NonFinite, parse_float=_float_or_marker)
        where = _find(value, "", _non_finite)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            f"the request body is not valid JSON ({orjson_error}); "
            "send one JSON object with Content-Type: application/json",
            field="body",
        ) from None
    except RecursionError:  # orjson stops at 1024 levels; json at Python's recursion limit
        raise InvalidInput(
            f"the request body is nested too deeply ({orjson_error}); send JSON nested at "
            "most 1024 levels deep",
            field="body",
        ) from None
    if where:
        raise InvalidInput(
            f"field {where!r} is not a finite number (NaN and Infinity are not allowed); "
            "send a finite number, or null for a missing value",
            field=where,
        )
    # json read what orjson refused: text that is not Unicode (a lone surrogate such
    # as "\ud800"), which no store or answer could hold
    where = _find(value, "", _not_text) or "body"
    raise InvalidInput(
        f"field {where!r} has an unpaired surrogate (an escape such as \\ud800 alone), "
        "which is not text; send valid Unicode text",
        field=where,
    )


class RequestSchema:
    """The fields a decision request must carry.

    Parameters
    ----------
    inputs
        The model signature: ``[{"name", "type": "numeric"|"categorical"}, ...]``.
    extra
        Further fields allowed (and required), e.g. the endpoint's entity key.
    optional
        Fields that may be left out (they are not model inputs).
    """

    def __init__(
        self,
        inputs: Iterable[Mapping[str, str]],
        *,
        extra: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> None:
        self.inputs = [dict(i) for i in inputs]
        self.names = [i["name"] for i in self.inputs]
        self.numeric = tuple(i["name"] for i in self.inputs if i.get("type") == "numeric")
        self.categorical = tuple(i["name"] for i in self.inputs if i.get("type") != "numeric")
        self.extra = tuple(extra)
        self.optional = frozenset(optional)
        self.required = frozenset([*self.names, *self.extra])
        self.allowed = self.required | self.optional

    def check(self, record: Any) -> dict[str, Any]:
        """Return ``record`` if it is a valid request, else raise :class:`InvalidInput`."""
        if type(record) is not dict:
            raise InvalidInput(
                f"the request body must be a JSON object of fields, got {_kind(record)}; "
                f"send {{{', '.join(repr(n) for n in self.names[:3])}, ...}}",
                field="body",
            )
        keys = record.keys()
        if keys != self.required and not (keys >= self.required and keys <= self.allowed):
            self._diagnose_keys(record)
        for name in self.numeric:
            value = record[name]
            kind = type(value)
            if kind is float:
                if value - value != 0.0:  # NaN or infinity (from a non-JSON caller)
                    raise InvalidInput(
                        f"field {name!r} is not a finite number; send a finite number or null",
                        field=name,
                    )
            elif kind is not int and value is not None:
                raise InvalidInput(
                    f"field {name!r} must be a number or null, got {_kind(value)}",
                    field=name,
                )
        for name in self.categorical:
            value = record[name]
            kind = type(value)
            if kind is not str and value is not None and kind is not int and kind is not bool:
                if kind is float and value - value == 0.0:
                    continue
                raise InvalidInput(
                    f"field {name!r} must be a string, a number, a boolean or null, "
                    f"got {_kind(value)}",
                    field=name,
                )
        return record

    def _diagnose_keys(self, record: dict[str, Any]) -> None:
        missing = [n for n in [*self.names, *self.extra] if n not in record]
        if missing:
            raise InvalidInput(
                f"missing field(s) {', '.join(repr(m) for m in missing)}; "
                f"send every model input (use null for an unknown value)",
                field=missing[0],
            )
        unknown = sorted(k for k in record if k not in self.allowed)
        raise InvalidInput(
            f"unknown field(s) {', '.join(repr(u) for u in unknown)}; "
            f"this endpoint takes: {', '.join(sorted(self.allowed))}",
            field=unknown[0],
        )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
