"""Reading a decision request: JSON body → a record checked against the model signature.

The check is compiled once per endpoint. A good request costs one orjson
parse, one key-set comparison and one type test per numeric field; only a
bad request pays for the detailed diagnosis, whose error names the field and
says how to fix it.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from numbers import Integral
from typing import Any

import orjson

from leptonic.errors import InvalidInput
from leptonic.features._common import category_key

__all__ = ["RequestSchema", "entity_text", "parse_json"]

#: Characters an entity key may not hold: control characters (NUL, newlines,
#: C1 controls), which stores and logs refuse or mangle, and lone surrogates.
_NOT_IN_KEYS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: Decimal digits past which an integer cannot be a finite float (10**309 > 1.8e308).
_MAX_FLOAT_DIGITS = 309


class _NonFinite:
    """Marks a NaN / Infinity literal found by the fallback parser."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _float_or_marker(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _int_or_marker(text: str) -> int | _NonFinite:
    """An integer literal; one beyond the float range (orjson reads integers past 64
    bits as floats, and refuses those that overflow) is marked as non-finite."""
    if len(text.lstrip("-")) > _MAX_FLOAT_DIGITS:  # also spares int() its 4300-digit limit
        return _NonFinite(text)
    value = int(text)
    try:
        float(value)
    except OverflowError:
        return _NonFinite(text)
    return value


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


def _encoding_error(body: bytes) -> InvalidInput | None:
    """A clear error for a body that is not UTF-8 or starts with a byte-order mark."""
    if body.startswith(codecs.BOM_UTF8):
        what = "it starts with a UTF-8 byte-order mark"
    else:
        encoding = json.detect_encoding(body)  # (any NUL in the first bytes reads as UTF-16/32)
        if encoding == "utf-8" or not _decodes(body, encoding):
            return None
        what = f"it is encoded as {encoding.upper()}, not UTF-8"
    return InvalidInput(
        f"the request body is not valid JSON: {what}; send UTF-8 JSON without a byte-order mark",
        field="body",
    )


def _decodes(body: bytes, encoding: str) -> bool:
    """Whether ``body`` is text in ``encoding`` (not bytes that only look like it)."""
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError:
        return False
    return "\x00" not in text and text.lstrip("\ufeff").lstrip()[:1] in ("{", "[", '"')


def parse_json(body: bytes) -> Any:
    """Parse a request body; :class:`InvalidInput` naming the field for NaN,
    Infinity or an overflowing number, and saying what is wrong otherwise."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        orjson_error = str(exc)
    # only a refused body gets here: find out why, for an error that says what to fix
    encoding_error = _encoding_error(body)
    if encoding_error is not None:
        raise encoding_error
    try:
        value = json.loads(
            body,
            parse_constant=_NonFinite,
            parse_float=_float_or_marker,
            parse_int=_int_or_marker,
        )
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
            f"field {where!r} is not a finite number (NaN, Infinity and numbers beyond "
            "±1.8e308 are not allowed); send a finite number, or null for a missing value",
            field=where,
        )
    # json read what orjson refused: text that is not Unicode (a lone surrogate such
    # as "\ud800"), which no store or answer could hold
    where = _find(value, "", _not_text)
    if where:
        raise InvalidInput(
            f"field {where!r} has an unpaired surrogate (an escape such as \\ud800 alone), "
            "which is not text; send valid Unicode text",
            field=where,
        )
    raise InvalidInput(
        f"the request body is not valid JSON ({orjson_error}); "
        "send one JSON object with Content-Type: application/json",
        field="body",
    )


def entity_text(value: Any, field: str) -> str | None:
    """The text of an entity key value, as it is routed, hashed and logged; ``None``
    for null. Strings are kept; integers and whole floats become their integer text
    (``42`` and ``42.0`` → ``"42"``), as outcomes posted by entity name them.

    Raises
    ------
    InvalidInput
        Naming ``field``: the value is not a string, an integer or a whole number, or
        the string holds a control character (NUL, a newline...) or a lone surrogate.
    """
    if isinstance(value, str):
        bad = _NOT_IN_KEYS.search(value)
        if bad is None:
            return value
        raise InvalidInput(
            f"field {field!r} is the entity key and holds the character "
            f"{bad.group()!r} at position {bad.start()}; send the key as printable text "
            "(no NUL, control characters or newlines)",
            field=field,
        )
    if value is None:
        return None
    if isinstance(value, Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return category_key(value)
    raise InvalidInput(
        f"field {field!r} is the entity key: it must be a string or an integer (or null), "
        f'got {_describe(value)}; send the key as text, e.g. "C-1042", or as a whole number',
        field=field,
    )


def _describe(value: Any) -> str:
    if isinstance(value, float):
        return f"the number {value!r}"
    return _kind(value)


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
    entity
        The endpoint's entity key field (in ``inputs`` or ``extra``): its value must
        be a string without control characters, an integer or a whole number, or
        null (see :func:`entity_text`).
    """

    def __init__(
        self,
        inputs: Iterable[Mapping[str, str]],
        *,
        extra: Iterable[str] = (),
        optional: Iterable[str] = (),
        entity: str | None = None,
    ) -> None:
        self.inputs = [dict(i) for i in inputs]
        self.names = [i["name"] for i in self.inputs]
        self.numeric = tuple(i["name"] for i in self.inputs if i.get("type") == "numeric")
        self.categorical = tuple(i["name"] for i in self.inputs if i.get("type") != "numeric")
        self.extra = tuple(extra)
        self.optional = frozenset(optional)
        self.required = frozenset([*self.names, *self.extra])
        self.allowed = self.required | self.optional
        self.entity = entity

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
        entity = self.entity
        if entity is not None:
            entity_text(record.get(entity), entity)
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
