from __future__ import annotations

import pytest

from leptonic.core.names import validate_name
from leptonic.errors import InvalidName


@pytest.mark.parametrize("name", ["credit-risk", "a", "fraud_2024", "x" * 63])
def test_valid(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "..", "../etc", "a/b", "a\\b", "Credit", "-x", "x" * 64, "a b", "a.b", "a\x00", None, 3],
)
def test_invalid(name: object) -> None:
    with pytest.raises(InvalidName, match="lowercase"):
        validate_name(name, "workspace")


def test_suggests_a_fix() -> None:
    with pytest.raises(InvalidName, match="'credit-risk'"):
        validate_name("Credit Risk", "workspace")
