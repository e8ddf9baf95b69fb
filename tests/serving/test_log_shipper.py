"""The prediction log written by a child process: everything sent is written, in order."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from leptonic.core.endpoint import Prediction
from leptonic.errors import StoreError
from leptonic.serving.log_shipper import ProcessAppender
from leptonic.storage.metadata.base import MetadataStore
from leptonic.storage.registry import open_metadata_store
from support import with_endpoint


def _predictions(start: int, n: int) -> list[Prediction]:
    return [
        Prediction(
            workspace="ws",
            endpoint="ep",
            request_id=f"r{i:06d}",
            model="m",
            version=1,
            score=i / 1000,
            decision="approve",
            at=datetime.now(UTC),
            inputs={"x": i},
            reasons=[{"item": i, "score": 0.5, "because": None}],
        )
        for i in range(start, start + n)
    ]


def _logged(store: MetadataStore) -> list[str]:
    rows = store.list_predictions("ws", "ep", limit=None, newest_first=False)
    return sorted(p.request_id for p in rows)


def test_batches_larger_than_a_write_arrive_whole(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    appender = ProcessAppender(uri, spill_dir=tmp_path / "spill")
    assert appender.append_predictions(_predictions(0, 300)) == 300  # three writes
    assert appender.append_predictions(_predictions(300, 5)) == 5
    assert appender.append_predictions([]) == 0
    appender.close()
    assert appender.summary == {"received": 305, "written": 305, "spilled": 0, "dropped": 0}
    assert _logged(store) == [f"r{i:06d}" for i in range(305)]
    first = store.list_predictions("ws", "ep", limit=1, newest_first=False)[0]
    assert first.reasons == [{"item": 0, "score": 0.5, "because": None}]
    store.close()


def test_a_dead_writer_process_is_replaced(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    appender = ProcessAppender(uri)
    appender.append_predictions(_predictions(0, 3))
    process = appender._process
    assert process is not None
    process.kill()
    process.wait()
    appender.append_predictions(_predictions(3, 4))  # a new child takes these
    appender.close()
    assert appender.restarts == 1
    assert appender.summary == {"received": 4, "written": 4, "spilled": 0, "dropped": 0}
    assert set(_logged(store)) >= {f"r{i:06d}" for i in range(3, 7)}
    store.close()


def test_the_child_writes_the_whole_batches_it_received(tmp_path: Path) -> None:
    import io

    from leptonic.serving.log_shipper import _HEADER, _child, _encode

    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    whole = _encode(_predictions(0, 3))
    cut = _encode(_predictions(3, 3))
    stream = _HEADER.pack(len(whole)) + whole + _HEADER.pack(len(cut)) + cut[:10]  # then EOF
    summary = _child(uri, None, io.BytesIO(stream), io.BytesIO())
    assert summary == {"received": 3, "written": 3, "spilled": 0, "dropped": 0}
    assert _logged(store) == [f"r{i:06d}" for i in range(3)]
    store.close()


def test_a_child_that_stopped_reading_does_not_hang_close(tmp_path: Path) -> None:
    import subprocess
    import threading
    import time

    appender = ProcessAppender(f"sqlite:///{tmp_path / 'meta.db'}")

    def deaf_child() -> subprocess.Popen[bytes]:
        appender._process = subprocess.Popen(
            ["sleep", "60"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        return appender._process

    appender._start = deaf_child  # type: ignore[method-assign]
    big = _predictions(0, 2000)  # far more than a pipe holds: the write blocks
    sender = threading.Thread(target=lambda: _swallow(appender.append_predictions, big))
    sender.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    appender.close(timeout=1.0)
    sender.join(10)
    assert not sender.is_alive() and time.monotonic() - t0 < 10


def _swallow(fn: Any, *args: Any) -> None:
    with contextlib.suppress(Exception):
        fn(*args)


def test_a_record_that_is_not_json_is_set_aside(tmp_path: Path) -> None:
    import json

    from leptonic.serving.prediction_log import PredictionLogWriter

    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    appender = ProcessAppender(uri)
    writer = PredictionLogWriter(appender, spill_dir=tmp_path / "spill")
    records = _predictions(0, 200)
    records[150].inputs["x"] = {1, 2}  # a set: JSON has none
    for p in records:
        writer.append(p)
    writer.close()
    appender.close()
    assert writer.spilled == 1
    assert _logged(store) == [f"r{i:06d}" for i in range(200) if i != 150]
    lines = (tmp_path / "spill" / PredictionLogWriter.spill_file).read_text().splitlines()
    assert [json.loads(line)["prediction"]["request_id"] for line in lines] == ["r000150"]
    store.close()


def test_a_signal_to_the_process_group_does_not_cut_the_writer_short(
    tmp_path: Path, caplog: Any
) -> None:
    import os
    import signal
    import time

    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    appender = ProcessAppender(uri)
    appender.append_predictions(_predictions(0, 50))
    process = appender._process
    assert process is not None and os.getpgid(process.pid) != os.getpgid(0)  # not our group
    deadline = time.monotonic() + 30
    while len(_logged(store)) < 50 and time.monotonic() < deadline:  # it runs and writes
        time.sleep(0.1)
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, a service manager's stop
        os.kill(process.pid, sig)
    appender.append_predictions(_predictions(50, 50))
    appender.close()
    assert appender.summary == {"received": 100, "written": 100, "spilled": 0, "dropped": 0}
    assert appender.restarts == 0 and len(_logged(store)) == 100
    store.close()


def test_records_lost_with_a_killed_writer_are_reported(tmp_path: Path, caplog: Any) -> None:
    import os
    import signal
    import time

    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    appender = ProcessAppender(uri)
    process = appender._start()
    os.kill(process.pid, signal.SIGKILL)
    time.sleep(0.2)
    with contextlib.suppress(Exception):
        appender._send(process.stdin, _predictions(0, 3))  # type: ignore[arg-type]
        appender._child_sent += 3
    appender.close()
    assert "is lost" in caplog.text
    store.close()


def test_sync_returns_once_everything_sent_is_written(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    appender = ProcessAppender(uri)
    appender.sync()  # nothing sent yet: nothing to wait for
    for start in range(0, 60, 20):
        appender.append_predictions(_predictions(start, 20))
        appender.sync()
        assert len(_logged(store)) == start + 20  # written, not only received
    appender.close()
    assert appender.summary == {"received": 60, "written": 60, "spilled": 0, "dropped": 0}
    store.close()


def test_a_late_answer_to_a_timed_out_sync_is_not_taken_for_the_next(
    tmp_path: Path, caplog: Any
) -> None:
    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    appender = ProcessAppender(uri)
    try:
        appender.append_predictions(_predictions(0, 20))
        with pytest.raises(StoreError, match="did not write its queue"):
            appender.sync(timeout=0.0)  # the child is still starting: it answers later
        appender.append_predictions(_predictions(20, 2000))
        appender.sync(timeout=30)  # skips that late answer and waits for its own
        assert len(_logged(store)) == 2020  # written before sync returned
    finally:
        appender.close()
    assert appender.summary == {"received": 2020, "written": 2020, "spilled": 0, "dropped": 0}
    assert "lost" not in caplog.text
    store.close()


def test_close_skips_a_late_answer_to_find_the_summary(tmp_path: Path, caplog: Any) -> None:
    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    appender = ProcessAppender(uri)
    appender.append_predictions(_predictions(0, 20))
    with pytest.raises(StoreError):
        appender.sync(timeout=0.0)  # its answer comes after: just before the summary
    appender.close()
    assert appender.summary == {"received": 20, "written": 20, "spilled": 0, "dropped": 0}
    assert "lost" not in caplog.text and len(_logged(store)) == 20
    store.close()


def test_the_child_echoes_the_number_of_each_sync(tmp_path: Path) -> None:
    import io

    from leptonic.serving.log_shipper import _HEADER, _SYNC, _child, _encode

    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    store = with_endpoint(open_metadata_store(uri))
    batch = _encode(_predictions(0, 3))
    sync = _HEADER.pack(_SYNC) + _HEADER.pack(7)
    stream = _HEADER.pack(len(batch)) + batch + sync + _HEADER.pack(0)
    out = io.BytesIO()
    _child(uri, None, io.BytesIO(stream), out)
    ack, summary = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert ack == {"sync": 7, "synced": 3}
    assert summary == {"received": 3, "written": 3, "spilled": 0, "dropped": 0}
    store.close()
