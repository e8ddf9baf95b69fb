"""Numbers from JSON and Python input, read without OverflowError."""

from __future__ import annotations

import math

__all__ = ["as_float"]


def as_float(value: int | float) -> float:
    """``float(value)``, or an infinity of its sign for an int beyond the float range
    (which a finiteness check then refuses) instead of an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
