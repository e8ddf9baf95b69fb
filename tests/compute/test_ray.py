"""What is particular to the Ray executor (the shared behaviour is in the conformance suite)."""

from __future__ import annotations

import operator
from typing import Any

import pytest

from leptonic.errors import StoreError


def test_a_closed_executor_runs_nothing(ray_executor: Any) -> None:
    from leptonic.compute.ray import RayExecutor

    other = RayExecutor(None, cpus=2)  # joins the session of ray_executor
    assert other.map(operator.mul, 2, [1, 2]) == [2, 4]
    other.close()
    # Ray would start a session of its own for the call: refused instead
    with pytest.raises(StoreError, match="is closed"):
        other.map(operator.mul, 2, [1, 2])
    with pytest.raises(StoreError, match="is closed"):
        _ = other.workers
    assert ray_executor.map(operator.mul, 3, [1]) == [3]  # the session is still there


class _FakeRay:
    """Enough of Ray for map: every wait returns one finished item after 20 ms."""

    class exceptions:
        class RayTaskError(Exception):
            cause = None

        class RayError(Exception):
            pass

    def put(self, value: Any) -> Any:
        return value

    def remote(self, **_: Any) -> Any:
        fake = self

        class Task:
            def __init__(self, fn: Any) -> None:
                self.fn = fn

            def remote(self, fn: Any, shared: Any, item: Any) -> Any:
                return ("ref", fn(shared, item), fake)

        return Task

    def wait(self, pending: list[Any], num_returns: int, timeout: float) -> Any:
        import time

        time.sleep(0.02)
        return pending[:1], pending[1:]

    def get(self, ref: Any) -> Any:
        return ref[1]

    def cancel(self, ref: Any, force: bool) -> None:
        pass


def test_poll_is_called_while_results_keep_coming(monkeypatch: pytest.MonkeyPatch) -> None:
    import leptonic.compute.ray as ray_module

    monkeypatch.setattr(ray_module, "POLL_S", 0.05)
    executor = object.__new__(ray_module.RayExecutor)
    executor._ray, executor._task, executor._closed = _FakeRay(), None, False
    polls: list[int] = []
    out = executor.map(operator.mul, 2, list(range(12)), poll=lambda: polls.append(1))
    assert out == [2 * i for i in range(12)]
    assert len(polls) >= 2  # about every 50 ms over 240 ms, though no wait came back empty
