"""Rule operators of a decision policy: the value each takes and the test it compiles to.

:func:`rule_value` checks a rule's ``value`` for its ``op`` when the spec is
read; :func:`compile_test` turns the checked pair into a closure
``value_in_record -> bool``, called on every request, that coerces the
record's value the way the feature transformers do. What each operator
matches is described in :mod:`leptonic.serving.policy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from leptonic.core._numbers import as_float
from leptonic.errors import InvalidInput
from leptonic.features._common import category_key, to_float

__all__ = ["OPS", "Test", "compile_test", "rule_value"]

#: Rule operators.
OPS = ("<", "<=", ">", ">=", "==", "!=", "in", "not_in", "is_missing")
_MAX_LIST = 1000

Test = Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_number(value: Any) -> bool:
    return _is_number(value) and math.isfinite(as_float(value))


def rule_value(op: str, rule: Mapping[str, Any], where: str) -> Any:
    field = f"{where}.value"
    value = rule.get("value")
    if op == "is_missing":
        if "value" in rule and not isinstance(value, bool):
            raise InvalidInput(
                f"{field}: is_missing takes no value, or true / false (false: the field "
                f"is present); got {value!r}",
                field=field,
            )
        return value
    if "value" not in rule:
        raise InvalidInput(f"{where} needs a value to compare with ({op})", field=field)
    if op in ("<", "<=", ">", ">="):
        if not _finite_number(value):
            raise InvalidInput(
                f"{field} must be a finite number for {op!r}, got {value!r}", field=field
            )
        return value
    if op in ("==", "!="):
        ok = isinstance(value, str | bool) or _finite_number(value)
        if not ok:
            raise InvalidInput(
                f"{field} must be a number, a string or a boolean for {op!r}, got {value!r}",
                field=field,
            )
        return value
    if not isinstance(value, list) or not value or len(value) > _MAX_LIST:
        raise InvalidInput(
            f"{field} must be a non-empty list (at most {_MAX_LIST} items) for {op!r}, "
            f"got {value!r}",
            field=field,
        )
    for j, item in enumerate(value):
        ok = isinstance(item, str | bool) or _finite_number(item)
        if not ok:
            raise InvalidInput(
                f"{field}[{j}] must be a string, a number or a boolean, got {item!r}",
                field=f"{field}[{j}]",
            )
    return value


def _number(v: Any) -> float:
    return v if type(v) is float else to_float(v)


def compile_test(op: str, value: Any) -> Test:
    """A closure ``value_in_record -> bool`` for one rule."""
    if op == "is_missing":
        want = value is not False

        def is_missing(v: Any) -> bool:
            return (category_key(v) is None) is want

        return is_missing
    if op in ("in", "not_in"):
        keys = frozenset(category_key(item) for item in value)
        inside = op == "in"

        def member(v: Any) -> bool:
            k = v if type(v) is str else category_key(v)
            return k is not None and (k in keys) is inside

        return member
    if op in ("==", "!=") and not _is_number(value):
        key = category_key(value)
        equal = op == "=="

        def same_key(v: Any) -> bool:
            k = v if type(v) is str else category_key(v)
            return k is not None and (k == key) is equal

        return same_key
    c = float(value)
    if op == "<":
        return lambda v: _number(v) < c
    if op == "<=":
        return lambda v: _number(v) <= c
    if op == ">":
        return lambda v: _number(v) > c
    if op == ">=":
        return lambda v: _number(v) >= c
    if op == "==":
        return lambda v: _number(v) == c

    def differs(v: Any) -> bool:
        x = _number(v)
        return x == x and x != c  # a missing value (NaN) matches nothing

    return differs
