"""The compute interface: run one function over many items, here or on a cluster.

An :class:`Executor` runs ``fn(shared, item)`` for each item and returns the
results in the items' order. ``shared`` (the training data, say) is sent to
each worker once per call, however many items there are. ``fn`` must be a
module-level function, and ``shared``, the items and the results must be
serialisable: they may cross to other processes or machines.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["Executor", "ResultFn", "call_all", "parse_workers"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

#: Called in the caller's process as each item finishes: ``(index, result)``.
ResultFn = Callable[[int, Any], None]


class Executor(abc.ABC):
    """Runs a function over items; implementations: local (``local://``), Ray (``ray://``)."""

    uri: str

    @classmethod
    @abc.abstractmethod
    def from_uri(cls, uri: str) -> Executor: ...

    @property
    @abc.abstractmethod
    def workers(self) -> int:
        """How many items run at once (1: one after the other, in this process)."""

    @abc.abstractmethod
    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        on_result: ResultFn | None = None,
    ) -> list[R]:
        """``[fn(shared, item) for item in items]``, the items run on the workers.

        ``on_result(index, result)`` is called here as each item finishes, in the
        order they finish. When an item fails, or ``on_result`` raises (a
        cancelled job, say), the items not yet started are cancelled and that
        error is raised.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the workers (a no-op where there are none)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def parse_workers(value: str | None, uri: str, what: str = "workers") -> int | None:
    """A positive worker count from a URI's query (``None`` when not given)."""
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1 or n > 1024:
        from leptonic.errors import ConfigError

        raise ConfigError(
            f"invalid compute URI {uri!r}: {what} must be a whole number from 1 to 1024, "
            f"got {value!r}"
        )
    return n


def call_all(
    fn: Callable[[S, T], R], shared: S, items: Sequence[T], on_result: ResultFn | None
) -> list[R]:
    """The in-process ``map``: one item after the other."""
    results: list[R] = []
    for i, item in enumerate(items):
        result = fn(shared, item)
        results.append(result)
        if on_result is not None:
            on_result(i, result)
    return results
