"""Traffic splits: which live route answers a request.

A request with an entity key is hashed into one of 10,000 buckets (CRC-32
of the key's text), so the same entity always lands on the same route while
the split stays the same; without a key a bucket is drawn at random. Routes
own consecutive bucket ranges in the order given, so raising a canary from
5 % to 20 % keeps every entity that was on the canary there.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from typing import Generic, TypeVar

from leptonic.features._common import category_key

__all__ = ["BUCKETS", "TrafficSplit", "bucket_of"]

#: Resolution of a split: percents are honoured to 0.01.
BUCKETS = 10_000

T = TypeVar("T")


def bucket_of(entity: object) -> int:
    """The stable bucket (0..BUCKETS-1) of an entity key value.

    The key's text is hashed as the runtime logs it: a string as it is, a number
    as its integer text when it is whole, so ``42``, ``42.0`` and ``"42"`` share a
    bucket (see :func:`~leptonic.serving.requests.entity_text`).
    """
    text = entity if isinstance(entity, str) else category_key(entity)
    return zlib.crc32(str(text).encode("utf-8", "surrogatepass")) % BUCKETS


class TrafficSplit(Generic[T]):
    """Pick one of ``targets`` by ``percents`` (summing to 100).

    Examples
    --------
    >>> split = TrafficSplit(["v1", "v2"], [90, 10])
    >>> split.pick("customer-42") == split.pick("customer-42")
    True
    """

    def __init__(self, targets: Sequence[T], percents: Sequence[float]) -> None:
        if len(targets) != len(percents) or not targets:
            raise ValueError("one percent per target, and at least one target")
        self.targets = list(targets)
        bounds: list[int] = []
        acc = 0.0
        for p in percents:
            acc += float(p)
            bounds.append(round(acc * BUCKETS / 100))
        bounds[-1] = BUCKETS
        self._bounds = bounds
        self._single = self.targets[0] if len(self.targets) == 1 else None
        self._random = random.Random()

    def pick(self, entity: object | None = None) -> T:
        """The target for an entity key value (or a random one without a key)."""
        if self._single is not None:
            return self._single
        bucket = bucket_of(entity) if entity is not None else self._random.randrange(BUCKETS)
        for target, bound in zip(self.targets, self._bounds, strict=True):
            if bucket < bound:
                return target
        return self.targets[-1]  # pragma: no cover - the last bound is BUCKETS
