"""Writing the prediction log from a separate process.

Inserting a decision into the metadata store costs about as much CPU as
making it (JSON, index updates, commits), and in the serving process that
work would also hold the GIL away from requests. :class:`ProcessAppender`
moves it to a child process: the serving process only serialises each
batch with orjson (a few microseconds a record) and writes it to a pipe;
the child decodes the batches and hands them to its own
:class:`~leptonic.serving.prediction_log.PredictionLogWriter`, which writes
them to the store with its retries and spill file.

It has the store's ``append_predictions`` method, so a
:class:`~leptonic.serving.prediction_log.PredictionLogWriter` in the serving
process uses it as its store. :meth:`ProcessAppender.close` sends an end
marker and waits for the child to write everything it received, so a
graceful shutdown loses nothing. If the child dies, the batch being sent
fails with :class:`~leptonic.errors.StoreError` (the writer keeps it and
retries) and the next attempt starts a new child; records the dead child
had received but not yet written are lost, and the child's log says so.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from leptonic.core.endpoint import Prediction
from leptonic.errors import StoreError

__all__ = ["ProcessAppender"]

logger = logging.getLogger(__name__)

_END = b""


def _encode(batch: Sequence[Prediction]) -> bytes:
    # orjson serialises dataclasses itself, in C
    return orjson.dumps(list(batch), option=orjson.OPT_NAIVE_UTC)


def _decode(payload: bytes) -> list[Prediction]:
    out = []
    for row in orjson.loads(payload):
        row["at"] = datetime.fromisoformat(row["at"])
        out.append(Prediction(**row))
    return out


def _child(uri: str, conn: Connection, spill_dir: str | None) -> None:
    """The child process: receive batches until the end marker, write them all."""
    from leptonic.serving.prediction_log import PredictionLogWriter
    from leptonic.storage.registry import open_metadata_store

    store = open_metadata_store(uri)
    writer = PredictionLogWriter(store, spill_dir=spill_dir)
    received = 0
    try:
        while True:
            try:
                payload = conn.recv_bytes()
            except EOFError:  # the serving process is gone: write what we have
                logger.error("prediction log shipper: the serving process went away")
                break
            if payload == _END:
                break
            for p in _decode(payload):
                writer.append(p)
                received += 1
    finally:
        writer.close()
        store.close()
        try:
            conn.send_bytes(orjson.dumps({"received": received, "written": writer.written}))
        except OSError:
            pass
        conn.close()


class ProcessAppender:
    """Ship prediction batches to a child process that writes them to ``uri``'s store.

    Parameters
    ----------
    uri
        The metadata store's URI (the child opens its own connection).
    spill_dir
        Where the child's writer puts records the store refuses.
    """

    def __init__(self, uri: str, *, spill_dir: str | Path | None = None) -> None:
        self.uri = uri
        self.spill_dir = str(spill_dir) if spill_dir is not None else None
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self.sent = 0
        self.restarts = -1
        self.summary: dict[str, int] | None = None

    def _start(self) -> Connection:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_child,
            args=(self.uri, child, self.spill_dir),
            name="leptonic-prediction-log",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self.restarts += 1
        return parent

    def append_predictions(self, predictions: Sequence[Prediction]) -> int:
        """Send one batch to the child (it is written there, in order)."""
        payload = _encode(predictions)
        with self._lock:
            conn = self._conn
            if conn is None or not self._process.is_alive():
                conn = self._start()
            try:
                conn.send_bytes(payload)
            except (OSError, EOFError) as exc:
                self._conn = None
                raise StoreError(
                    f"the prediction log writer process stopped ({exc}); a new one is started"
                ) from exc
        self.sent += len(predictions)
        return len(predictions)

    def close(self, timeout: float = 60.0) -> None:
        """Send the end marker and wait until the child has written everything."""
        with self._lock:
            conn, process = self._conn, self._process
            self._conn = None
        if conn is None or process is None:
            return
        try:
            conn.send_bytes(_END)
            if conn.poll(timeout):
                self.summary = orjson.loads(conn.recv_bytes())
        except (OSError, EOFError) as exc:
            logger.error("prediction log shipper ended badly: %s", exc)
        finally:
            conn.close()
        process.join(timeout)
        if process.is_alive():
            logger.error("prediction log shipper did not finish in %.0f s; stopping it", timeout)
            process.terminate()
