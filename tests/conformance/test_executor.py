"""One conformance suite for every compute backend: in process, worker processes, Ray.

The functions run are the standard library's (``operator``), which every
worker can import, as it can import Leptonic's own.
"""

from __future__ import annotations

import operator
import os
import time
from collections.abc import Iterator

import pytest

from leptonic.compute import Executor, open_executor
from leptonic.core.names import validate_name
from leptonic.errors import Cancelled, InvalidName, StoreError


@pytest.fixture(scope="module", params=["local://", "local://?workers=2", "ray://local?cpus=2"])
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    if request.param.startswith("ray"):
        yield request.getfixturevalue("ray_executor")  # one Ray per session
        return
    opened = open_executor(request.param)
    yield opened
    opened.close()


def test_results_come_in_the_items_order(executor: Executor) -> None:
    assert executor.map(operator.mul, 3, [1, 2, 3, 4, 5]) == [3, 6, 9, 12, 15]
    assert executor.map(operator.mul, 3, []) == []
    assert executor.map(operator.mul, "ab", [2]) == ["abab"]


def test_shared_travels_with_every_item(executor: Executor) -> None:
    shared = list(range(100_000))
    assert executor.map(operator.getitem, shared, [0, 99_999, 500]) == [0, 99_999, 500]


def test_each_result_is_reported_once(executor: Executor) -> None:
    seen: list[tuple[int, int]] = []
    out = executor.map(operator.add, 10, [1, 2, 3], on_result=lambda i, r: seen.append((i, r)))
    assert out == [11, 12, 13]
    assert sorted(seen) == [(0, 11), (1, 12), (2, 13)]


def test_a_failing_item_raises_its_error(executor: Executor) -> None:
    with pytest.raises(ZeroDivisionError):
        executor.map(operator.truediv, 1, [1, 0, 2])
    assert executor.map(operator.truediv, 1, [1, 2]) == [1.0, 0.5]  # still usable
    # a Leptonic error keeps its type, message and field, not a wrapper's
    with pytest.raises(InvalidName, match=r"^invalid model name") as info:
        executor.map(validate_name, "Bad Name!", ["model", "model"])
    assert type(info.value) is InvalidName and info.value.field == "model"


def test_poll_is_called_while_items_run_and_can_stop_them(executor: Executor) -> None:
    polls: list[float] = []

    def stop() -> None:
        polls.append(time.perf_counter())
        raise Cancelled("the job was cancelled")

    executor.map(operator.mul, 1, [1, 2])  # workers up (a test before may have ended them)
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        executor.map(operator.call, time.sleep, [4.0, 4.0, 4.0, 4.0], poll=stop)
    assert polls and time.perf_counter() - t0 < 3.5  # not one whole 4 s item
    assert executor.map(operator.mul, 2, [1, 2]) == [2, 4]  # usable after the stop


def test_a_dead_worker_fails_the_map_and_the_next_one_works(executor: Executor) -> None:
    if executor.runs_here:
        pytest.skip("items run in the test's own process")
    with pytest.raises(StoreError, match="worker"):
        executor.map(operator.call, os._exit, [3])
    assert executor.map(operator.mul, 2, [1, 2, 3]) == [2, 4, 6]


def test_a_cancel_from_on_result_stops_the_rest(executor: Executor) -> None:
    def cancel(i: int, result: object) -> None:
        raise Cancelled("the job was cancelled")

    executor.map(operator.mul, 1, [1, 2])  # workers up (a test before may have ended them)
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        executor.map(operator.call, time.sleep, [0.0] + [2.0] * 8, on_result=cancel)
    # not every 2 s item ran after the first result (8 × 2 s on 2 workers is 8 s)
    assert time.perf_counter() - t0 < 7.0
    assert executor.map(operator.mul, 2, [1, 2]) == [2, 4]


def test_workers(executor: Executor) -> None:
    assert executor.workers == (1 if executor.uri == "local://" else 2)
    assert executor.runs_here == (executor.uri == "local://")
