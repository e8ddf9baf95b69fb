"""Work on this machine: ``local://`` (in this process) or ``local://?workers=N``.

``local://`` runs the items one after the other in the calling process, which
is what a laptop or a test wants. ``local://?workers=N`` (or ``workers=auto``,
one per CPU) runs them in a pool of N worker processes, started on first use
and kept until :meth:`LocalExecutor.close`. The processes are spawned, not
forked (a fork of a process with threads, a server's, can deadlock); each may
use its share of the CPUs for numerical libraries (BLAS, OpenMP). When an item
fails or the caller stops a map, items still running are stopped by ending
the pool's processes (unless another map shares them: then they run to their
end); the next map starts new ones. A worker that dies (out of
memory, say) fails the map with a :class:`~leptonic.errors.StoreError`, and
the next map starts a new pool.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from leptonic.compute.base import (
    POLL_S,
    Executor,
    PollFn,
    ResultFn,
    call_all,
    machine_cpus,
    parse_workers,
    run_task,
)
from leptonic.errors import ConfigError, StoreError

__all__ = ["LocalExecutor"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_limits: Any = None  # the worker's thread limits, kept for its life


def _start_worker(threads: int) -> None:
    """A pool process's set-up: its share of the CPUs for numerical libraries."""
    global _limits
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return
    _limits = threadpool_limits(threads)


def _run_pickled(fn: Callable[[S, T], R], shared: bytes, item: T) -> R:
    return run_task(fn, pickle.loads(shared), item)


class _StalePool(Exception):
    """The pool broke before this map could use it (a worker died while it was idle)."""


class LocalExecutor(Executor):
    """Items run in this process (``workers=1``) or in a pool of worker processes.

    Parameters
    ----------
    workers
        Processes in the pool; 1 runs every item in the calling process.
    """

    def __init__(self, workers: int = 1) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ConfigError(f"workers must be a whole number of 1 or more, got {workers!r}")
        self._workers = workers
        self.uri = "local://" if workers == 1 else f"local://?workers={workers}"
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._active = 0  # maps running now (the server's jobs share the pool)
        self._closed = False

    @staticmethod
    def _parse(uri: str) -> int:
        try:
            parts = urlsplit(uri)
        except ValueError:  # an unmatched "["
            parts = urlsplit("invalid://")
        query = parse_qs(parts.query, keep_blank_values=True)
        if (
            parts.scheme != "local"
            or parts.netloc not in ("", "localhost")
            or parts.path not in ("", "/")
            or parts.fragment
            or set(query) - {"workers"}
        ):
            raise ConfigError(
                f"invalid compute URI {uri!r}: expected local:// or local://?workers=N "
                "(N processes, or auto for one per CPU)"
            )
        value = query.get("workers", [None])[-1]
        if value == "auto":
            return machine_cpus()
        return parse_workers(value, uri) or 1

    @classmethod
    def check_uri(cls, uri: str) -> None:
        cls._parse(uri)

    @classmethod
    def from_uri(cls, uri: str) -> LocalExecutor:
        return cls(cls._parse(uri))

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def runs_here(self) -> bool:
        return self._workers == 1

    def _take_pool(self) -> ProcessPoolExecutor:
        """The pool (started if need be), counted as used by one more map: both under
        the lock, so that a failing map never ends a pool another is about to use."""
        with self._lock:
            if self._closed:  # a pool started now would outlive its owner
                raise StoreError("the compute executor is closed; open a new one")
            if self._pool is None:
                threads = max(1, machine_cpus() // self._workers)
                self._pool = ProcessPoolExecutor(
                    self._workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(threads,),
                )
            self._active += 1
            return self._pool

    def _end_pool(self, pool: ProcessPoolExecutor) -> None:
        """Stop ``pool``'s processes, running items included (a new pool comes next)."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        # The pool has no public way to stop items already running: end its processes.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)

    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        on_result: ResultFn | None = None,
        poll: PollFn | None = None,
    ) -> list[R]:
        if self._workers == 1:
            return call_all(fn, shared, items, on_result, poll)
        if not items:
            return []
        for fresh in (False, True):
            pool = self._take_pool()
            try:
                return self._map(pool, fn, shared, items, on_result, poll)
            except _StalePool:
                if fresh:  # a new pool broke at once: workers cannot start
                    raise StoreError(
                        "compute worker processes could not start (out of memory?); try "
                        "again, or use fewer workers with local://?workers=N"
                    ) from None
            finally:
                with self._lock:
                    self._active -= 1
        raise AssertionError("unreachable")  # pragma: no cover

    def _map(
        self,
        pool: ProcessPoolExecutor,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        on_result: ResultFn | None,
        poll: PollFn | None,
    ) -> list[R]:
        blob = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)  # once, not per item
        futures: list[Future[R]] = []
        try:
            for item in items:
                futures.append(pool.submit(_run_pickled, fn, blob, item))
        except (BrokenProcessPool, RuntimeError):  # a worker died while the pool was idle
            for f in futures:
                f.cancel()
            self._end_pool(pool)
            raise _StalePool from None
        index = {f: i for i, f in enumerate(futures)}
        pending: set[Future[R]] = set(futures)
        results: dict[int, R] = {}
        try:
            while pending:
                finished, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                for f in sorted(finished, key=index.__getitem__):
                    results[index[f]] = f.result()  # raises the item's error
                    if on_result is not None:
                        on_result(index[f], results[index[f]])
                if pending and poll is not None:
                    poll()
        except BrokenProcessPool:
            self._end_pool(pool)
            raise StoreError(
                "a compute worker process died (out of memory, or killed); the run is lost, "
                "and the next one starts new workers (fewer with local://?workers=N "
                "if memory is short)"
            ) from None
        except BaseException:
            for f in pending:
                f.cancel()
            with self._lock:
                alone = self._active == 1
            if alone and any(not f.done() for f in pending):
                self._end_pool(pool)  # items still running, no other map's: stop them
            raise
        return [results[i] for i in range(len(items))]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool
        if pool is not None:
            self._end_pool(pool)
