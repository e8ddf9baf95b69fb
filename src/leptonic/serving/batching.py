"""Dynamic micro-batching for model endpoints (asyncio).

Concurrent requests each :meth:`~MicroBatcher.submit` one item; a single
worker takes the first waiting item, then gathers more until it holds
``max_batch_size`` items or ``max_wait_ms`` have passed since it took the
first, runs ``predict_batch`` once for the whole batch in a worker thread
(the event loop stays free), and hands each request its own result. Items
that pile up while the model is busy form the next batch at once, so batches
grow with the load and a lone request waits at most ``max_wait_ms``.

The batcher is generic over ``predict_batch(items) -> results`` (one result
per item, in order): text classifiers, tabular scorers or embedders alike.
The queue is bounded: a full queue refuses new items with :class:`Overloaded`
instead of letting latency grow without limit. :meth:`~MicroBatcher.close`
stops taking items, answers every queued one, then stops the worker.

Examples
--------
>>> import asyncio
>>> async def main() -> list[int]:
...     async with MicroBatcher(lambda xs: [x * 2 for x in xs], max_wait_ms=1) as b:
...         return list(await asyncio.gather(*(b.submit(i) for i in range(5))))
>>> asyncio.run(main())
[0, 2, 4, 6, 8]
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from leptonic.errors import Conflict, InvalidInput, LeptonicError

__all__ = ["BatcherClosed", "BatcherStats", "MicroBatcher", "Overloaded"]

T = TypeVar("T")
R = TypeVar("R")


class Overloaded(LeptonicError, RuntimeError):
    """Too many requests are waiting; the caller should retry later (HTTP 503)."""

    code = "overloaded"


class BatcherClosed(Conflict):
    """The batcher is closing or closed; it takes no new items (HTTP 503)."""

    code = "batcher_closed"


_STOP = object()


@dataclass
class BatcherStats:
    """Counters of a batcher since it started."""

    items: int = 0
    batches: int = 0
    largest_batch: int = 0
    failed_batches: int = 0
    busy_s: float = 0.0

    @property
    def mean_batch_size(self) -> float:
        return self.items / self.batches if self.batches else 0.0


class MicroBatcher(Generic[T, R]):
    """Collects concurrent single-item requests into batches for one model call.

    Parameters
    ----------
    predict_batch
        ``items -> results``, one result per item in the same order; it runs in
        a worker thread, one batch at a time.
    max_batch_size
        Most items per call (1 turns batching off: each item gets its own call).
    max_wait_ms
        Longest time the first item of a batch waits for others to join it.
    max_queue
        Most items waiting; beyond it :meth:`submit` raises :class:`Overloaded`.
    executor
        Where ``predict_batch`` runs; by default a dedicated single thread,
        shut down on :meth:`close`.
    isolate_failures
        When a batch raises, run its items one by one, so that a bad item
        fails only its own request.
    """

    def __init__(
        self,
        predict_batch: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        executor: Executor | None = None,
        isolate_failures: bool = True,
    ) -> None:
        if not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise InvalidInput(
                f"max_batch_size must be a whole number ≥ 1, got {max_batch_size!r}",
                field="max_batch_size",
            )
        if not max_wait_ms >= 0:
            raise InvalidInput(f"max_wait_ms must be ≥ 0, got {max_wait_ms!r}", field="max_wait_ms")
        if not isinstance(max_queue, int) or max_queue < 1:
            raise InvalidInput(
                f"max_queue must be a whole number ≥ 1, got {max_queue!r}", field="max_queue"
            )
        self.predict_batch = predict_batch
        self.max_batch_size = max_batch_size
        self.max_wait_ms = float(max_wait_ms)
        self.max_queue = max_queue
        self.isolate_failures = isolate_failures
        self.stats = BatcherStats()
        self._executor = executor
        self._own_executor = executor is None
        self._queue: asyncio.Queue[Any] | None = None
        # futures queued and not yet taken by the worker nor done (a withdrawn
        # request frees its place at once, though its entry stays in the queue)
        self._waiting: set[asyncio.Future[Any]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._batch: list[Any] = []  # the batch being collected or computed
        self._closing = False

    # --- lifecycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    @property
    def failed(self) -> str | None:
        """Why the worker died (it is replaced on the next :meth:`start`), or None."""
        worker = self._worker
        if worker is None or not worker.done() or self._closing:
            return None
        if worker.cancelled():
            return "the batching worker was cancelled"
        exc = worker.exception()
        return f"the batching worker stopped: {exc!r}" if exc else None

    async def start(self) -> None:
        """Start the worker on the running event loop (done by ``async with``).

        A worker that died (see :attr:`failed`) is replaced by a new one.
        """
        if self._closing:
            raise BatcherClosed("this batcher was closed; create a new one")
        if self._worker is not None and not self._worker.done():
            return
        # a first start, or a restart after the worker died (its items were failed)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="microbatch")
        self._queue = asyncio.Queue()  # bounded by max_queue waiting items (submit_many)
        self._waiting = set()
        self._worker = asyncio.get_running_loop().create_task(
            self._run(self._queue), name="micro-batcher"
        )

    async def close(self, timeout: float | None = None) -> None:
        """Stop taking items, answer every queued one, stop the worker.

        With ``timeout``, the items not answered after that many seconds (queued,
        or in the batch being computed) get :class:`BatcherClosed`; a model call
        still running then finishes in its thread, unawaited.
        """
        if self._closing:
            if self._worker is not None and not self._worker.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(self._worker)
            return
        self._closing = True
        worker = self._worker
        if worker is not None and not worker.done() and self._queue is not None:
            self._queue.put_nowait(_STOP)
            try:
                await asyncio.wait_for(asyncio.shield(worker), timeout)
            except TimeoutError:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        if self._own_executor and self._executor is not None:
            # never blocks the event loop: the worker has stopped, and a model call
            # left running by a timeout ends on its own
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def __aenter__(self) -> MicroBatcher[T, R]:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- requests --------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Items waiting for a batch (a withdrawn request's are not counted)."""
        return len(self._waiting)

    async def submit(self, item: T) -> R:
        """Queue ``item``; return its result once its batch has run.

        Raises
        ------
        Overloaded
            ``max_queue`` items are already waiting.
        BatcherClosed
            The batcher is closing, closed or was never started.
        """
        return (await self.submit_many([item]))[0]

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """Queue all of ``items`` or none; return their results in order.

        The items may be answered by different batches. If one fails, the others
        are withdrawn (those not yet computed are skipped) and its error is raised.

        Raises
        ------
        Overloaded
            The queue has no room for all of them (nothing is queued).
        BatcherClosed
            The batcher is closing, closed or was never started.
        """
        queue = self._queue
        if self._closing or queue is None or not self.running:
            raise BatcherClosed(
                "the batcher is not running (closed, or not started: use `async with` or start())"
            )
        n = len(items)
        if n > self.max_queue:
            raise InvalidInput(
                f"{n} items can never be queued at once: the queue holds at most "
                f"{self.max_queue}; send at most {self.max_queue} per request",
                field="items",
            )
        if len(self._waiting) + n > self.max_queue:
            raise Overloaded(
                f"{len(self._waiting)} requests are already waiting for the model (at most "
                f"{self.max_queue}); retry shortly, or raise max_queue / add replicas if this "
                "is the normal load"
            )
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = [loop.create_future() for _ in range(n)]
        for item, future in zip(items, futures, strict=True):
            queue.put_nowait((item, future))
            self._waiting.add(future)
            future.add_done_callback(self._waiting.discard)
        if n == 1:
            return [await futures[0]]
        try:
            return list(await asyncio.gather(*futures))
        finally:
            for future in futures:  # a failed or cancelled request withdraws the rest
                future.cancel()

    # --- the worker ------------------------------------------------------------------

    async def _collect(
        self, queue: asyncio.Queue[Any], first: tuple[T, asyncio.Future[R]]
    ) -> tuple[list[Any], bool]:
        """The batch started by ``first``; also whether the stop marker was met."""
        batch = self._batch = [first]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_ms / 1000.0
        while len(batch) < self.max_batch_size:
            try:
                entry = queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    entry = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
            if entry is _STOP:
                return batch, True
            self._waiting.discard(entry[1])
            if not entry[1].done():  # a withdrawn request takes no place in the batch
                batch.append(entry)
        return batch, False

    async def _run(self, queue: asyncio.Queue[Any]) -> None:
        loop = asyncio.get_running_loop()
        stop = False
        try:
            while not stop:
                first = await queue.get()
                if first is _STOP:
                    break
                self._waiting.discard(first[1])
                if first[1].done():  # withdrawn while it waited
                    continue
                batch, stop = await self._collect(queue, first)
                live = [(item, fut) for item, fut in batch if not fut.done()]  # drop cancelled
                if not live:
                    continue
                started = time.perf_counter()
                await self._answer(loop, live)
                self.stats.busy_s += time.perf_counter() - started
                self.stats.batches += 1
                self.stats.items += len(live)
                self.stats.largest_batch = max(self.stats.largest_batch, len(live))
        finally:
            # cancelled (close's timeout) or died: no item may wait forever
            reason = "closed" if self._closing else "stopped"
            self._fail_pending(BatcherClosed(f"the batcher {reason} before answering"), queue)

    async def _answer(
        self, loop: asyncio.AbstractEventLoop, live: list[tuple[T, asyncio.Future[R]]]
    ) -> None:
        items = [item for item, _ in live]
        try:
            results = await loop.run_in_executor(self._executor, self._predict, items)
            if len(results) != len(items):
                raise RuntimeError(
                    f"predict_batch returned {len(results)} results for {len(items)} items"
                )
        except Exception as exc:
            self.stats.failed_batches += 1
            if self.isolate_failures and len(live) > 1:
                for pair in live:
                    if not pair[1].done():  # withdrawn meanwhile: skip it
                        await self._answer(loop, [pair])
                return
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), result in zip(live, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    def _predict(self, items: list[T]) -> Sequence[R]:
        """``predict_batch(items)``, run in the worker thread.

        A ``StopIteration`` (or ``StopAsyncIteration``) escaping the model cannot be
        set on an asyncio future: the batch would never be answered and the worker
        would wait forever. It is turned into a ``RuntimeError`` that fails the batch
        as any other model error does.
        """
        try:
            return self.predict_batch(items)
        except (StopIteration, StopAsyncIteration) as exc:
            raise RuntimeError(
                f"predict_batch raised {type(exc).__name__} for a batch of {len(items)} "
                "items (an exhausted iterator inside the model code, e.g. next() without "
                "a default); the model must raise an ordinary exception instead"
            ) from exc

    def _fail_pending(self, exc: BaseException, queue: asyncio.Queue[Any]) -> None:
        """Fail the batch being computed and every item queued in ``queue`` with ``exc``."""
        for entry in self._batch:
            if not entry[1].done():
                entry[1].set_exception(exc)
        self._batch = []
        while True:
            try:
                entry = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if entry is not _STOP and not entry[1].done():
                entry[1].set_exception(exc)
