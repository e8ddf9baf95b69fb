"""What is particular to the local executor: its pool of worker processes."""

from __future__ import annotations

import operator
import os
import signal
import time

from leptonic.compute.local import LocalExecutor


def test_workers_that_died_while_idle_are_replaced_by_the_next_map() -> None:
    executor = LocalExecutor(2)
    try:
        assert executor.map(operator.mul, 2, [1, 2, 3]) == [2, 4, 6]
        pool = executor._pool
        assert pool is not None
        for process in list(pool._processes.values()):  # the kernel's OOM killer, say
            os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not pool._broken and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool._broken
        assert executor.map(operator.mul, 3, [1, 2, 3]) == [3, 6, 9]
        assert executor._pool is not pool
    finally:
        executor.close()


def test_a_closed_executor_starts_no_new_workers() -> None:
    from leptonic.errors import StoreError

    executor = LocalExecutor(2)
    assert executor.map(operator.mul, 2, [1]) == [2]
    executor.close()
    try:
        executor.map(operator.mul, 2, [1])
    except StoreError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("a closed executor ran a map")
    assert executor._pool is None
