"""The prediction log writer: off the hot path, nothing lost, bad records isolated."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leptonic.core.endpoint import Prediction
from leptonic.errors import InvalidInput, StoreError
from leptonic.serving.prediction_log import PredictionLogWriter
from leptonic.storage.metadata.memory import MemoryMetadataStore
from support import with_endpoint


def _store() -> MemoryMetadataStore:
    return with_endpoint(MemoryMetadataStore())


def _prediction(i: int) -> Prediction:
    return Prediction(
        workspace="ws",
        endpoint="ep",
        request_id=f"r{i:06d}",
        model="m",
        version=1,
        score=0.1,
        decision="approve",
        at=datetime.now(UTC),
        inputs={"x": i},
    )


def test_everything_queued_is_written_on_close() -> None:
    store = _store()
    writer = PredictionLogWriter(store, batch_size=100, interval=0.05)
    threads = [
        threading.Thread(
            target=lambda k=k: [writer.append(_prediction(k * 1000 + i)) for i in range(500)]
        )
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert store.count_predictions("ws", "ep") == 2000
    assert writer.written == 2000 and writer.pending == 0


class _Flaky:
    """A store that fails its first appends, as a database restarting would."""

    def __init__(self, inner: MemoryMetadataStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    def append_predictions(self, predictions: Sequence[Prediction]) -> int:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("database is restarting")
        return self.inner.append_predictions(predictions)


def test_a_failing_store_is_retried_in_order() -> None:
    store = _store()
    flaky = _Flaky(store, failures=3)
    writer = PredictionLogWriter(flaky, batch_size=50, interval=0.01, max_retry_delay=0.05)  # type: ignore[arg-type]
    for i in range(120):
        writer.append(_prediction(i))
    writer.close()
    logged = store.list_predictions("ws", "ep", limit=None, newest_first=False)
    assert [p.request_id for p in logged] == [f"r{i:06d}" for i in range(120)]
    assert writer.failures >= 1 and "restarting" in (writer.last_error or "")


def test_a_rejected_record_is_spilled_not_lost(tmp_path: Path) -> None:
    store = _store()
    writer = PredictionLogWriter(store, batch_size=10, interval=10, spill_dir=tmp_path)
    for i in range(9):
        writer.append(_prediction(i))
    writer.append(_prediction(3))  # a repeat: the store refuses it
    writer.close()
    assert store.count_predictions("ws", "ep") == 9
    lines = (tmp_path / "prediction-log.spill.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["prediction"]["request_id"] == "r000003"
    assert writer.spilled == 1


def test_bad_settings() -> None:
    with pytest.raises(InvalidInput):
        PredictionLogWriter(_store(), batch_size=0)
    with pytest.raises(InvalidInput):
        PredictionLogWriter(_store(), interval=0)
    with pytest.raises(InvalidInput, match="max_pending") as info:
        PredictionLogWriter(_store(), batch_size=100, max_pending=99)
    assert info.value.field == "max_pending"
    writer = PredictionLogWriter(_store())
    assert writer.max_pending == PredictionLogWriter.default_max_pending == 100_000
    writer.close()


def _stop_thread(writer: PredictionLogWriter) -> None:
    writer._stop.set()
    writer._wake.set()
    writer._thread.join()


class _RefusingOnce:
    """A store that refuses request r000003 for good, and fails once (a passing
    failure) on the first batch that starts with r000004."""

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.failed = False

    def append_predictions(self, batch: Sequence[Prediction]) -> int:
        ids = [p.request_id for p in batch]
        if "r000003" in ids:
            raise InvalidInput("refused", field="inputs")
        if ids[0] == "r000004" and not self.failed:
            self.failed = True
            raise StoreError("the database went away")
        self.stored.extend(ids)
        return len(ids)


def test_a_split_batch_does_not_store_its_first_part_twice(tmp_path: Path) -> None:
    store = _RefusingOnce()
    writer = PredictionLogWriter(store, batch_size=8, interval=60, spill_dir=tmp_path)  # type: ignore[arg-type]
    _stop_thread(writer)  # this test calls flush() itself
    for i in range(8):
        writer.append(_prediction(i))
    with pytest.raises(StoreError):
        writer.flush()  # r000000-r000002 stored, r000003 spilled, then the store fails
    assert writer.pending == 4 and writer.written == 3
    assert writer.flush() == 4
    writer.close()
    assert store.stored == [f"r{i:06d}" for i in range(8) if i != 3]
    assert writer.written == 7 and writer.spilled == 1


def test_a_spilled_record_is_kept_whatever_it_holds(tmp_path: Path) -> None:
    store = _RefusingOnce()
    writer = PredictionLogWriter(store, batch_size=8, interval=60, spill_dir=tmp_path)  # type: ignore[arg-type]
    _stop_thread(writer)
    odd = _prediction(3)
    odd.inputs[1] = object()  # type: ignore[index]
    writer.append(odd)
    assert writer.flush() == 0 and writer.spilled == 1
    writer.close()
    (line,) = (tmp_path / PredictionLogWriter.spill_file).read_text().splitlines()
    assert json.loads(line)["prediction"]["inputs"]["1"].startswith("<object")


def test_close_does_not_wait_on_a_write_that_never_returns(tmp_path: Path) -> None:
    release = threading.Event()

    class Stuck:
        def append_predictions(self, batch: Sequence[Prediction]) -> int:
            release.wait(30)
            raise StoreError("the writer process was stopped")

    writer = PredictionLogWriter(Stuck(), batch_size=2, interval=60, spill_dir=tmp_path)  # type: ignore[arg-type]
    for i in range(5):
        writer.append(_prediction(i))
    time.sleep(0.2)  # the thread is now inside a write
    t0 = time.monotonic()
    writer.close(timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert writer.spilled == 3  # what was still queued is set aside, not dropped
    release.set()  # the stuck write fails now: its batch is set aside too
    writer._thread.join(5)
    assert writer.spilled == 5 and writer.written == 0 and writer.pending == 0


class _Undecodable:
    """A store whose driver cannot encode one record's text (as PostgreSQL refuses NUL)."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    def append_predictions(self, batch: Sequence[Prediction]) -> int:
        if any("\x00" in (p.entity or "") for p in batch):
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")
        self.stored.extend(p.request_id for p in batch)
        return len(batch)


def test_a_record_the_driver_cannot_encode_does_not_hold_up_the_rest(tmp_path: Path) -> None:
    store = _Undecodable()
    writer = PredictionLogWriter(store, batch_size=4, interval=60, spill_dir=tmp_path)  # type: ignore[arg-type]
    _stop_thread(writer)
    for i in range(6):
        p = _prediction(i)
        writer.append(Prediction(**{**p.__dict__, "entity": "a\x00b" if i == 2 else "e"}))
    assert writer.flush() == 5 and writer.pending == 0  # one set aside, none held up
    writer.close()
    assert store.stored == [f"r{i:06d}" for i in range(6) if i != 2] and writer.spilled == 1


def _messages(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


def test_past_max_pending_the_oldest_are_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _store()
    down = _Flaky(store, failures=10**9)  # the store is down until told otherwise
    writer = PredictionLogWriter(down, batch_size=100, interval=60, max_pending=1000)  # type: ignore[arg-type]
    _stop_thread(writer)  # this test calls flush() itself
    with caplog.at_level(logging.ERROR, logger="leptonic.serving.prediction_log"):
        for i in range(5000):
            writer.append(_prediction(i))
        assert writer.pending <= 1000 and writer.dropped == 5000 - writer.pending
        with pytest.raises(StoreError):
            writer.flush()  # the records stay queued, still within the bound
        assert writer.pending <= 1000 and writer.spilled == 0
        assert len(_messages(caplog, "records wait for the store")) == 1  # once, not per record
        down.failures = 0  # the store is back
        writer.close()
    logged = [
        p.request_id for p in store.list_predictions("ws", "ep", limit=None, newest_first=False)
    ]
    assert logged == [f"r{i:06d}" for i in range(5000 - len(logged), 5000)]  # the newest, in order
    assert len(logged) + writer.dropped == 5000 and writer.written == len(logged)
    (summary,) = _messages(caplog, "over max_pending=1000")
    assert f"{writer.dropped} record(s)" in summary and "lost" in summary


def test_past_max_pending_the_oldest_are_spilled_with_a_spill_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store()
    down = _Flaky(store, failures=10**9)
    writer = PredictionLogWriter(
        down,  # type: ignore[arg-type]
        batch_size=100,
        interval=60,
        max_pending=1000,
        spill_dir=tmp_path,
    )
    _stop_thread(writer)
    with caplog.at_level(logging.ERROR, logger="leptonic.serving.prediction_log"):
        for i in range(3000):
            writer.append(_prediction(i))
        down.failures = 0
        writer.close()
    assert writer.dropped == 0 and 0 < writer.spilled == 3000 - writer.written
    lines = (tmp_path / PredictionLogWriter.spill_file).read_text().splitlines()
    spilled = [json.loads(line)["prediction"]["request_id"] for line in lines]
    assert spilled == [f"r{i:06d}" for i in range(writer.spilled)]  # the oldest, in order
    assert "max_pending=1000" in json.loads(lines[0])["error"]
    assert store.count_predictions("ws", "ep") == writer.written
    assert len(_messages(caplog, "records wait for the store")) == 1
    assert len(_messages(caplog, "over max_pending=1000")) == 1


def test_a_spill_that_fails_past_max_pending_drops_and_counts_without_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")  # the spill folder cannot be made: appends must not fail
    down = _Flaky(_store(), failures=10**9)
    writer = PredictionLogWriter(
        down,  # type: ignore[arg-type]
        batch_size=100,
        interval=60,
        max_pending=100,
        spill_dir=not_a_folder,
    )
    _stop_thread(writer)
    with caplog.at_level(logging.ERROR, logger="leptonic.serving.prediction_log"):
        for i in range(300):
            writer.append(_prediction(i))  # on the request path: never raises
    assert writer.pending <= 100 and writer.spilled == 0
    assert writer.dropped == 300 - writer.pending
    assert _messages(caplog, "could not spill")
    down.failures = 0  # the store is back: what was kept is written
    writer.close()
    assert writer.written == 300 - writer.dropped
