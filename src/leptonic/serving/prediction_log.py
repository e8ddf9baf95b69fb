"""The prediction log writer: decisions are logged off the hot path.

:class:`BatchWriter` is the machinery, for any record kind (the event log of
recommendation endpoints uses it too); :class:`PredictionLogWriter` writes
:class:`~leptonic.core.endpoint.Prediction` records. A request appends its
record to an in-memory buffer (a deque append: no lock, no I/O) and returns. A background
thread moves the buffer to the metadata store in batches, every
``interval`` seconds or as soon as ``batch_size`` records wait. ``close()``
stops the thread and writes everything that is left, so a graceful shutdown
loses nothing.

If the store refuses a batch (it is down, or locked for too long) the batch is
kept and retried with back-off; records are only dropped from memory once
they are written. A batch that can never be written (a record the store
rejects as invalid) is split until the bad record is isolated, and that
record is written to a spill file (JSON lines under ``spill_dir``) with the
error, so that it is neither lost nor blocks the others.

Memory is bounded: while the store stays down, at most ``max_pending`` records
wait. Past that the oldest are set aside in chunks, to the spill file when
there is one, else dropped and counted in ``dropped`` (logged once when the
overflow starts and once, with the count, when writes succeed again).
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import orjson

from leptonic.core.endpoint import Prediction
from leptonic.errors import AlreadyExists, InvalidInput, NotFound, StoreError

__all__ = ["BatchWriter", "PredictionLogWriter", "PredictionSink"]


class PredictionSink(Protocol):
    """Where batches go: a metadata store, or a
    :class:`~leptonic.serving.log_shipper.ProcessAppender`."""

    def append_predictions(self, predictions: Sequence[Prediction]) -> int: ...


logger = logging.getLogger(__name__)

#: Errors that retrying will not fix: the store refused the records themselves (a
#: ValueError or TypeError: text a driver cannot encode, such as NUL for PostgreSQL,
#: a number out of range). Their batch is halved until the refused record is alone,
#: and that one is set aside, instead of holding up every record behind it.
_PERMANENT = (InvalidInput, AlreadyExists, NotFound, ValueError, TypeError, OverflowError)


T = TypeVar("T")


class BatchWriter(abc.ABC, Generic[T]):
    """Buffer records in memory and write them to a store in the background.

    Subclasses say how a batch is written (:meth:`_store_batch`), how a
    record is named in the log and how it is spilled.

    Parameters
    ----------
    store
        Where batches go (what :meth:`_store_batch` writes to).
    batch_size
        Flush as soon as this many records wait (and write at most this many
        per statement); default: the class's ``default_batch_size``.
    interval
        Seconds between flushes when fewer records wait; default: the class's
        ``default_interval``.
    spill_dir
        Folder for records the store rejects permanently (JSON lines).
    max_retry_delay
        Cap of the back-off between retries of a failing store, in seconds.
    max_pending
        The most records kept waiting in memory (at least ``batch_size``); past
        it the oldest are spilled (with ``spill_dir``) or dropped; default: the
        class's ``default_max_pending``.
    """

    #: What the records are called in log messages.
    label = "log"
    #: The spill file's name, in ``spill_dir``.
    spill_file = "log.spill.jsonl"
    default_batch_size = 2000
    default_interval = 0.2
    #: Records kept in memory at most while the store is down (a few hundred MB).
    default_max_pending = 100_000

    def __init__(
        self,
        store: Any,
        *,
        batch_size: int | None = None,
        interval: float | None = None,
        spill_dir: str | Path | None = None,
        max_retry_delay: float = 5.0,
        max_pending: int | None = None,
    ) -> None:
        batch_size = self.default_batch_size if batch_size is None else batch_size
        interval = self.default_interval if interval is None else interval
        if max_pending is None:
            max_pending = max(self.default_max_pending, batch_size)
        self.store = store
        if batch_size < 1:
            raise InvalidInput("batch_size must be at least 1", field="batch_size")
        if interval <= 0:
            raise InvalidInput("interval must be positive (seconds)", field="interval")
        if max_pending < batch_size:
            raise InvalidInput(
                f"max_pending ({max_pending}) must be at least batch_size ({batch_size}); "
                "raise max_pending or lower batch_size",
                field="max_pending",
            )
        self.batch_size = batch_size
        self.max_pending = max_pending
        # an overflow sets aside this many more than the excess, so it happens in chunks
        self._shed_slack = min(batch_size, max_pending // 10)
        self.interval = interval
        self.spill_dir = Path(spill_dir) if spill_dir is not None else None
        self.max_retry_delay = max_retry_delay
        self._buffer: deque[T] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._shed_lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self.written = 0
        self.spilled = 0
        self.dropped = 0  # over max_pending without a spill file: lost
        self.failures = 0
        self._overflow = 0  # records set aside by the current overflow
        self.last_error: str | None = None
        self._abandoned = False  # close() gave up waiting on a stuck write
        self._thread = threading.Thread(
            target=self._loop, name=f"leptonic-{self.label.replace(' ', '-')}", daemon=True
        )
        self._thread.start()

    # -- the hot path ------------------------------------------------------------
    def append(self, record: T) -> None:
        """Queue one record (cheap; no I/O, except to set aside a chunk of the oldest
        records once ``max_pending`` wait)."""
        buffer = self._buffer
        buffer.append(record)
        n = len(buffer)
        if n == self.batch_size:  # once per batch: the writer drains them all
            self._wake.set()
        elif n > self.max_pending:  # the store has been down a while
            self._shed()

    @property
    def pending(self) -> int:
        """Records queued and not yet written."""
        return len(self._buffer)

    def _shed(self) -> None:
        """Set aside the oldest records until ``max_pending`` minus a slack wait:
        spilled with a spill folder, else dropped (and counted)."""
        if not self._shed_lock.acquire(blocking=False):
            return  # another thread is at it
        try:
            buffer = self._buffer
            excess = len(buffer) - self.max_pending
            if excess <= 0:
                return
            oldest: list[T] = []
            try:
                for _ in range(excess + self._shed_slack):
                    oldest.append(buffer.popleft())
            except IndexError:  # the writer took some meanwhile
                pass
            if not oldest:
                return
            first = self._overflow == 0
            self._overflow += len(oldest)
            if self.spill_dir is None:
                self.dropped += len(oldest)
            else:
                reason = StoreError(
                    f"more than max_pending={self.max_pending} records waited for the store "
                    f"({self.last_error or 'it is not accepting writes'})"
                )
                try:  # on the request path: a failing disk must not fail the answer
                    self._spill_lines(oldest, reason)
                except Exception as exc:
                    self.dropped += len(oldest)
                    logger.error(
                        "%s: could not spill %d record(s) to %s (%s: %s); they are dropped",
                        self.label,
                        len(oldest),
                        self.spill_dir,
                        type(exc).__name__,
                        exc,
                    )
                else:
                    self.spilled += len(oldest)
        finally:
            self._shed_lock.release()
        if first:
            logger.error(
                "%s: more than %d records wait for the store (last error: %s); the "
                "oldest are %s until it accepts writes again",
                self.label,
                self.max_pending,
                self.last_error,
                "dropped (no spill folder is set)"
                if self.spill_dir is None
                else f"set aside in {self.spill_dir / self.spill_file}",
            )

    def _overflow_ended(self) -> None:
        """Report an overflow (records spilled or dropped) once the store writes again."""
        with self._shed_lock:
            n, self._overflow = self._overflow, 0
        if n:
            logger.error(
                "%s: while the store was down, %d record(s) over max_pending=%d were %s",
                self.label,
                n,
                self.max_pending,
                "dropped: they are lost"
                if self.spill_dir is None
                else f"set aside in {self.spill_dir / self.spill_file}",
            )

    # -- the background side ------------------------------------------------------------
    def _loop(self) -> None:
        delay = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.interval if delay == 0 else delay)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
            except Exception as exc:  # the store is down: keep the records, back off
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("%s: write failed, will retry: %s", self.label, self.last_error)
                delay = min(self.max_retry_delay, max(self.interval, delay * 2 or 0.25))
                if self._abandoned:  # the stuck write failed after close(): set its batch aside
                    self._spill_queued(exc)
            else:
                delay = 0.0
                if self._overflow:
                    self._overflow_ended()

    def flush(self) -> int:
        """Write everything queued now; returns the number written.

        Raises the store's error if a batch cannot be written for a reason
        that may pass (the records stay queued, in order).
        """
        total = 0
        with self._flush_lock:
            buffer = self._buffer
            try:
                while buffer:
                    batch: list[T] = []
                    pop = buffer.popleft
                    try:
                        for _ in range(self.batch_size):
                            batch.append(pop())
                    except IndexError:
                        pass
                    done = [0, 0]  # records settled (stored or spilled), records stored
                    try:
                        self._write(batch, done)
                    except BaseException:
                        # keep what is not settled, in order (a split batch may have
                        # stored its first part: that part is not sent again)
                        buffer.extendleft(reversed(batch[done[0] :]))
                        raise
                    finally:
                        total += done[1]
            finally:
                self.written += total
        return total

    @abc.abstractmethod
    def _store_batch(self, batch: Sequence[T]) -> None:
        """Write one batch, all or none (raises the store's error)."""

    def _describe(self, record: T) -> str:
        """The record, as named in an error message."""
        return repr(record)

    def _spill_entry(self, record: T) -> dict[str, Any]:
        """The record as a JSON-ready dict, for the spill file."""
        if is_dataclass(record) and not isinstance(record, type):
            return {"record": asdict(record)}
        return {"record": repr(record)}

    def _write(self, batch: Sequence[T], done: list[int]) -> None:
        """Store ``batch``; a refused one is halved until the refused records are
        alone, and those are spilled. ``done`` counts the records settled so far
        (always the first ones of the batch) and those stored."""
        try:
            self._store_batch(batch)
        except _PERMANENT as exc:
            if len(batch) == 1:
                self._spill(batch[0], exc)
                done[0] += 1
                return
            mid = len(batch) // 2
            self._write(batch[:mid], done)
            self._write(batch[mid:], done)
        else:
            done[0] += len(batch)
            done[1] += len(batch)

    def _spill_queued(self, exc: Exception) -> int:
        """Set aside every queued record (spill); returns how many."""
        left = list(self._buffer)
        self._buffer.clear()
        for record in left:
            self._spill(record, exc)
        return len(left)

    def _spill(self, record: T, exc: Exception) -> None:
        self.spilled += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        logger.error(
            "%s: the store refused %s (%s)", self.label, self._describe(record), self.last_error
        )
        self._spill_lines([record], exc)

    def _spill_lines(self, records: Sequence[T], exc: Exception) -> None:
        """Append ``records`` to the spill file with the error (nothing without one)."""
        if self.spill_dir is None:
            return
        error = f"{type(exc).__name__}: {exc}"
        options = orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        lines = []
        for record in records:
            entry = {"error": error, **self._spill_entry(record)}
            try:  # whatever the record holds, it is kept
                lines.append(orjson.dumps(entry, default=repr, option=options))
            except (TypeError, ValueError):
                lines.append(orjson.dumps({"error": error, "record": repr(record)}))
        lines.append(b"")
        with self._spill_lock:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            with open(self.spill_dir / self.spill_file, "ab") as f:
                f.write(b"\n".join(lines))

    def close(self, timeout: float = 30.0) -> None:
        """Stop the background thread and write what is left.

        Retries a failing store until ``timeout`` seconds have passed; what
        still cannot be written then is spilled (if a spill folder is set)
        and reported in the log.
        """
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():  # stuck in a write that does not return: do not wait on it
            self._abandoned = True
            n = self._spill_queued(StoreError(f"the {self.label} writer is stuck in a write"))
            logger.error(
                "%s: a write did not return in %.0f s; %d queued record(s) set aside",
                self.label,
                timeout,
                n,
            )
            self._overflow_ended()
            return
        deadline = time.monotonic() + timeout
        delay = 0.1
        while self._buffer:
            try:
                self.flush()
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline:
                    n = self._spill_queued(exc)
                    logger.error("%s: %d record(s) could not be written at shutdown", self.label, n)
                    break
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        self._overflow_ended()

    def __enter__(self) -> BatchWriter[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PredictionLogWriter(BatchWriter[Prediction]):
    """Buffer predictions in memory and write them to the store in the background.

    Parameters
    ----------
    store
        Where the prediction log lives (a metadata store, or anything with its
        ``append_predictions``, such as a
        :class:`~leptonic.serving.log_shipper.ProcessAppender`).
    batch_size, interval, spill_dir, max_retry_delay, max_pending
        As for :class:`BatchWriter`.
    """

    label = "prediction log"
    spill_file = "prediction-log.spill.jsonl"
    store: PredictionSink

    def _store_batch(self, batch: Sequence[Prediction]) -> None:
        self.store.append_predictions(batch)

    def _describe(self, record: Prediction) -> str:
        return f"request {record.request_id}"

    def _spill_entry(self, record: Prediction) -> dict[str, Any]:
        return {"prediction": record}  # orjson writes the dataclass itself, in C

    def __enter__(self) -> PredictionLogWriter:
        return self
