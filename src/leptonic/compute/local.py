"""Work on this machine: ``local://`` (in this process) or ``local://?workers=N``.

``local://`` runs the items one after the other in the calling process, which
is what a laptop or a test wants. ``local://?workers=N`` (or ``workers=auto``,
one per CPU) runs them in a pool of N worker processes, started on first use
and kept until :meth:`LocalExecutor.close`. The processes are spawned, not
forked (a fork of a process with threads, a server's, can deadlock), so a
worker imports what ``fn`` needs the first time.

A task already running when another fails, or when the caller cancels, runs to
its end in its worker; its result is dropped.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

from leptonic.compute.base import Executor, ResultFn, call_all, parse_workers
from leptonic.errors import ConfigError

__all__ = ["LocalExecutor"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


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

    @classmethod
    def from_uri(cls, uri: str) -> LocalExecutor:
        parts = urlsplit(uri)
        query = parse_qs(parts.query, keep_blank_values=True)
        if (
            parts.netloc not in ("", "localhost")
            or parts.path not in ("", "/")
            or (set(query) - {"workers"})
        ):
            raise ConfigError(
                f"invalid compute URI {uri!r}: expected local:// or local://?workers=N "
                "(N processes, or auto for one per CPU)"
            )
        value = query.get("workers", [None])[-1]
        if value == "auto":
            return cls(os.cpu_count() or 1)
        return cls(parse_workers(value, uri) or 1)

    @property
    def workers(self) -> int:
        return self._workers

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self._workers, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

    def map(
        self,
        fn: Callable[[S, T], R],
        shared: S,
        items: Sequence[T],
        *,
        on_result: ResultFn | None = None,
    ) -> list[R]:
        if self._workers == 1 or len(items) <= 1:
            return call_all(fn, shared, items, on_result)
        pool = self._get_pool()
        futures: list[Future[R]] = [pool.submit(fn, shared, item) for item in items]
        index = {f: i for i, f in enumerate(futures)}
        pending: set[Future[R]] = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in sorted(finished, key=index.__getitem__):
                    result = f.result()  # raises the task's error
                    if on_result is not None:
                        on_result(index[f], result)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
        return [f.result() for f in futures]

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
