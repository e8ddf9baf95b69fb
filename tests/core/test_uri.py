from __future__ import annotations

import pytest

from leptonic.core.uri import ObjectRef
from leptonic.errors import InvalidInput


def test_round_trip() -> None:
    for ref in (ObjectRef("ws", "dataset", "d", 2), ObjectRef("ws", "run", "abc")):
        assert ObjectRef.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ws/dataset/d",
        "leptonic://ws/table/d",
        "leptonic://ws/dataset/d/x",
        "leptonic://ws/dataset//1",
        "leptonic://ws/dataset/d/1/2",
        "leptonic://ws/dataset/d/²",  # a digit to str.isdigit, no number to int()
        "leptonic://ws/dataset/d/" + "9" * 5000,  # beyond int()'s digit limit
        "leptonic://ws/dataset/d/-1",
    ],
)
def test_bad_refs(text: str) -> None:
    with pytest.raises(InvalidInput, match="leptonic://"):
        ObjectRef.parse(text)
