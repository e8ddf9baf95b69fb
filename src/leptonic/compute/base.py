"""The compute interface: run one function over many items, here or on a cluster.

An :class:`Executor` runs ``fn(shared, item)`` for each item and returns the
results in the items' order. ``shared`` (the training data, say) is sent once
per call, however many items there are. ``fn`` must be a module-level
function, and ``shared``, the items and the results must be serialisable: they
may cross to other processes or machines. A script that starts workers must
guard its top level with ``if __name__ == "__main__":`` (worker processes
import it).
"""

from __future__ import annotations

import abc
import os
import pickle
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from leptonic.errors import ConfigError

__all__ = [
    "POLL_S",
    "Executor",
    "PollFn",
    "ResultFn",
    "call_all",
    "machine_cpus",
    "parse_workers",
    "run_task",
]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

#: Called in the caller's process as each item finishes: ``(index, result)``.
ResultFn = Callable[[int, Any], None]

#: Called in the caller's process about every :data:`POLL_S` seconds while items run.
PollFn = Callable[[], None]

#: Seconds between calls of a ``poll`` function.
POLL_S = 1.0


class Executor(abc.ABC):
    """Runs a function over items; implementations: local (``local://``), Ray (``ray://``)."""

    uri: str

    @classmethod
    @abc.abstractmethod
    def from_uri(cls, uri: str) -> Executor: ...

    @classmethod
    @abc.abstractmethod
    def check_uri(cls, uri: str) -> None:
        """Refuse a malformed URI or a missing extra, opening nothing."""

    @property
    @abc.abstractmethod
    def workers(self) -> int:
        """How many items run at once."""

    @property
    @abc.abstractmethod
    def runs_here(self) -> bool:
        """Whether items run one after the other in the calling process."""

    @abc.abstractmethod
    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        on_result: ResultFn | None = None,
        poll: PollFn | None = None,
    ) -> list[R]:
        """``[fn(shared, item) for item in items]``, the items run on the workers.

        ``on_result(index, result)`` is called here as each item finishes, in the
        order they finish; ``poll()`` about every :data:`POLL_S` seconds while
        they run. When an item fails, or ``on_result`` or ``poll`` raises (a
        cancelled job, say), the other items are stopped and that error is
        raised, with its own type (an error that cannot cross processes comes
        back as a :class:`RuntimeError` naming it).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the workers (running items are stopped)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def machine_cpus() -> int:
    """CPUs this process may use (its affinity, so a container's limit counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parse_workers(value: str | None, uri: str, what: str = "workers") -> int | None:
    """A positive worker count from a URI's query (``None`` when not given)."""
    if value is None:
        return None
    # ASCII digits only: int() would also take "1_0", " 3" and other scripts' digits
    n = int(value) if value.isascii() and value.isdigit() else 0
    if n < 1 or n > 1024:
        raise ConfigError(
            f"invalid compute URI {uri!r}: {what} must be a whole number from 1 to 1024, "
            f"got {value!r}"
        )
    return n


def call_all(
    fn: Callable[[S, T], R],
    shared: S,
    items: Sequence[T],
    on_result: ResultFn | None,
    poll: PollFn | None,
) -> list[R]:
    """The in-process ``map``: one item after the other."""
    results: list[R] = []
    for i, item in enumerate(items):
        if poll is not None:
            poll()
        result = fn(shared, item)
        results.append(result)
        if on_result is not None:
            on_result(i, result)
    return results


def run_task(fn: Callable[[S, T], R], shared: S, item: T) -> R:
    """``fn(shared, item)`` in a worker: an error that would not survive the trip
    back (its class cannot be rebuilt from its pickle) is raised as a
    :class:`RuntimeError` naming it instead of breaking the worker."""
    try:
        return fn(shared, item)
    except Exception as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
        raise
