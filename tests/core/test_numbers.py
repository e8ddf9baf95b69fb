from __future__ import annotations

import math

from leptonic.core._numbers import as_float


def test_as_float_reads_ints_and_floats() -> None:
    assert as_float(3) == 3.0 and as_float(-0.5) == -0.5


def test_as_float_gives_a_signed_infinity_for_ints_beyond_the_float_range() -> None:
    assert as_float(10**400) == math.inf
    assert as_float(-(10**400)) == -math.inf
