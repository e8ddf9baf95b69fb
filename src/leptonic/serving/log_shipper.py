"""Writing the prediction log from a separate process.

Inserting a decision into the metadata store costs about as much CPU as
making it (JSON, index updates, commits), and in the serving process that
work would also hold the GIL away from requests. :class:`ProcessAppender`
moves it to a child process (``python -m leptonic.serving.log_shipper``):
the serving process only serialises each batch with orjson (a few
microseconds a record) and writes it to the child's standard input;
the child decodes the batches and hands them to its own
:class:`~leptonic.serving.prediction_log.PredictionLogWriter`, which writes
them to the store with its retries and spill file.

It has the store's ``append_predictions`` method, so a
:class:`~leptonic.serving.prediction_log.PredictionLogWriter` in the serving
process uses it as its store. :meth:`ProcessAppender.close` sends an end
marker and waits for the child to write everything it received, so a
graceful shutdown loses nothing. If the child dies, the batch being sent fails with
:class:`~leptonic.errors.StoreError` (the writer keeps it and retries) and
the next attempt starts a new child; records the dead child had received
whole but not yet written are lost, and the child's log says so. A record
that cannot be written as JSON fails its batch with
:class:`~leptonic.errors.InvalidInput`, which the writer sets aside (spill).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson

from leptonic.core.endpoint import Prediction
from leptonic.errors import InvalidInput, StoreError

__all__ = ["ProcessAppender"]

logger = logging.getLogger(__name__)

#: Each batch on the pipe is prefixed with its length; 0 ends the stream.
_HEADER = struct.Struct(">I")
#: A frame length that asks the child to write everything received and say so; the
#: sync's number follows (a ``_HEADER``), and the child's acknowledgement echoes it.
_SYNC = 0xFFFFFFFF


def _encode(batch: Sequence[Prediction]) -> bytes:
    # orjson serialises dataclasses itself, in C
    return orjson.dumps(list(batch), option=orjson.OPT_NAIVE_UTC)


def _decode(payload: bytes) -> list[Prediction]:
    out = []
    for row in orjson.loads(payload):
        row["at"] = datetime.fromisoformat(row["at"])
        out.append(Prediction(**row))
    return out


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) < n:
        raise EOFError
    return bytes(data)


def _child(uri: str, spill_dir: str | None, stream: BinaryIO, out: BinaryIO) -> dict[str, int]:
    """The child process: read length-prefixed batches until an empty one (or
    the end of the pipe), write them all, report counts."""
    from leptonic.serving.prediction_log import PredictionLogWriter
    from leptonic.storage.registry import open_metadata_store

    store = open_metadata_store(uri)
    writer = PredictionLogWriter(store, spill_dir=spill_dir)
    received = 0
    try:
        while True:
            try:
                size = _HEADER.unpack(_read_exact(stream, _HEADER.size))[0]
                if size == 0:
                    break
                if size == _SYNC:  # the serving process waits until all is written
                    number = _HEADER.unpack(_read_exact(stream, _HEADER.size))[0]
                    try:
                        writer.flush()
                        ack: dict[str, Any] = {"sync": number, "synced": received}
                    except Exception as exc:
                        ack = {
                            "sync": number,
                            "synced": received,
                            "error": f"{type(exc).__name__}: {exc}",
                        }
                    out.write(orjson.dumps(ack) + b"\n")
                    out.flush()
                    continue
                payload = _read_exact(stream, size)
            except EOFError:  # the serving process is gone: write what we have
                logger.error("prediction log writer: the serving process went away")
                break
            for p in _decode(payload):
                writer.append(p)
                received += 1
    finally:
        writer.close()
        store.close()
    summary = {
        "received": received,
        "written": writer.written,
        "spilled": writer.spilled,
        "dropped": writer.dropped,
    }
    out.write(orjson.dumps(summary) + b"\n")
    out.flush()
    return summary


class ProcessAppender:
    """Ship prediction batches to a child process that writes them to ``uri``'s store.

    The child is ``python -m leptonic.serving.log_shipper URI [SPILL_DIR]``;
    batches travel over its standard input, each prefixed with its length.

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
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self.sent = 0
        self.restarts = -1
        self.summary: dict[str, int] | None = None
        self._child_sent = 0  # records sent to the current child
        self._syncs = 0  # the number of the last sync asked for
        self._output = bytearray()  # what the child wrote that is not read yet

    def _start(self) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "leptonic.serving.log_shipper", self.uri]
        if self.spill_dir is not None:
            args.append(self.spill_dir)
        # its own session: a Ctrl-C at the terminal reaches the serving process only,
        # which then sends the end marker; the child writes what it has and exits
        self._process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        self._child_sent = 0
        self._output = bytearray()
        self.restarts += 1
        return self._process

    def append_predictions(self, predictions: Sequence[Prediction]) -> int:
        """Send one batch to the child (it is written there, in order)."""
        if not predictions:
            return 0
        with self._lock:
            process = self._process
            if process is not None and process.poll() is not None:
                _discard(process)  # it died: its pipes go, a new one starts
                process = None
            if process is None:
                process = self._start()
            assert process.stdin is not None
            try:
                self._send(process.stdin, predictions)
            except InvalidInput:  # a bad record: the writer sets it aside
                raise
            except (OSError, ValueError) as exc:
                self._process = None
                _discard(process)
                raise StoreError(
                    f"the prediction log writer process stopped ({exc}); a new one is started"
                ) from exc
        self.sent += len(predictions)
        self._child_sent += len(predictions)
        return len(predictions)

    @staticmethod
    def _send(stdin: IO[bytes], predictions: Sequence[Prediction]) -> None:
        """Write one batch as one frame (the child reads it whole or not at all)."""
        try:
            payload = _encode(predictions)
        except orjson.JSONEncodeError as exc:  # before anything is written
            raise InvalidInput(
                f"a prediction cannot be logged: {exc}", field="predictions"
            ) from None
        stdin.write(_HEADER.pack(len(payload)) + payload)
        stdin.flush()

    def sync(self, timeout: float = 30.0) -> None:
        """Wait until the child has written everything sent so far (an outcome posted
        right after its decision then finds it). :class:`StoreError` if it cannot.

        Each sync is numbered and the child's acknowledgement echoes the number, so
        the late answer to a sync that timed out is skipped, not taken for this one.
        """
        with self._lock:
            process = self._process
            if process is None or self._child_sent == 0:
                return
            assert process.stdin is not None and process.stdout is not None
            self._syncs = number = (self._syncs + 1) & 0xFFFFFFFF
            deadline = time.monotonic() + timeout
            try:
                process.stdin.write(_HEADER.pack(_SYNC) + _HEADER.pack(number))
                process.stdin.flush()
                while True:
                    line = self._read_line(process, deadline)
                    if line is None:
                        raise StoreError(
                            f"the prediction log writer process did not write its queue "
                            f"within {timeout:.0f} s; try again"
                        )
                    ack = _parse_line(line)
                    if ack is not None and ack.get("sync") == number:
                        break  # an older sync's late answer, or anything else: skipped
            except (OSError, ValueError) as exc:
                raise StoreError(f"the prediction log writer process stopped ({exc})") from exc
            if "error" in ack:
                raise StoreError(f"the prediction log could not be written: {ack['error']}")

    def _read_line(self, process: subprocess.Popen[bytes], deadline: float) -> bytes | None:
        """The child's next output line, or None at the deadline or the end of its output.

        Reads the pipe's descriptor directly: what the child wrote past the line is
        kept in ``_output``, where ``select`` (which sees only the descriptor) would
        not find it in a buffered reader.
        """
        assert process.stdout is not None
        fd = process.stdout.fileno()
        output = self._output
        while b"\n" not in output:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0.0))
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            output += chunk
        end = output.index(b"\n") + 1
        line = bytes(output[:end])
        del output[:end]
        return line

    def close(self, timeout: float = 90.0) -> None:
        """Send the end marker and wait until the child has written everything.

        ``timeout`` is longer than the child's own (30 s for its writer to
        finish, 30 s more of retries while the store fails). A child that
        stopped reading (its pipe full, a batch being sent blocked) is stopped
        once ``timeout`` has passed.
        """
        if not self._lock.acquire(timeout=timeout):
            stuck = self._process
            logger.error("prediction log writer: the child stopped reading; stopping it")
            if stuck is not None:
                stuck.kill()  # the blocked write then fails and lets the lock go
            self._lock.acquire()
        try:
            process, self._process = self._process, None
        finally:
            self._lock.release()
        if process is None:
            return
        try:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(_HEADER.pack(0))
            process.stdin.close()
            process.wait(timeout)  # it writes everything, reports and exits
            output = bytes(self._output) + process.stdout.read()
            self._output = bytearray()
            # the summary is the last line; late answers to syncs that timed out come first
            for line in output.splitlines():
                report = _parse_line(line)
                if report is not None and "received" in report:
                    self.summary = report
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            logger.error("prediction log writer ended badly: %s", exc)
        finally:
            _discard(process)
        received = None if self.summary is None else self.summary.get("received")
        if received != self._child_sent:
            logger.error(
                "prediction log writer: %d record(s) sent to the writer process, %s received "
                "by it: the difference is lost (was the writer process killed?)",
                self._child_sent,
                "none reported" if received is None else received,
            )
        dropped = 0 if self.summary is None else self.summary.get("dropped", 0)
        if dropped:
            logger.error(
                "prediction log writer: %d record(s) were dropped by the writer process while "
                "the store was down (more than its max_pending waited); set a spill folder "
                "to keep them",
                dropped,
            )


def _parse_line(line: bytes) -> dict[str, Any] | None:
    """One JSON object line of the child's output; None for anything else."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _discard(process: subprocess.Popen[bytes]) -> None:
    """Close a child's pipes and reap it (stopping it first if it still runs)."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()
    if process.poll() is None:  # its input is closed: it writes what it has and exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
    if process.poll() is None:  # it ignores SIGTERM (see main): stop it
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the child process."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.exit("usage: python -m leptonic.serving.log_shipper URI [SPILL_DIR]")
    logging.basicConfig(level=logging.WARNING)
    # The serving process decides when this one ends (the end marker, or the end of
    # its input when the serving process is gone); a signal to the whole process
    # group (Ctrl-C, a service manager stopping the group) must not cut it short
    # before it has written what it was sent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # the serving process answers requests; this one may wait for idle CPU
    os.nice(10)
    _child(args[0], args[1] if len(args) > 1 else None, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
