"""A tabular run is recorded as ended whatever fails on the way out: the artifact store,
the echo's output pipe, the lineage write. The original error is what the caller sees."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from leptonic import Platform, Settings, TrainSpec
from leptonic.core import RunStatus
from leptonic.errors import StoreError
from leptonic.storage.artifacts.memory import MemoryArtifactStore
from leptonic.storage.registry import open_metadata_store
from leptonic.synthetic import write_applicants_csv

SPEC = TrainSpec(target="default", candidates=("logistic",), trials=1, timeout_s=None)


class FullStore(MemoryArtifactStore):
    """An artifact store that fails every write once ``full`` is set (a full disk)."""

    full = False

    def put_stream(self, stream: BinaryIO) -> str:
        if self.full:
            raise OSError(28, "No space left on device")
        return super().put_stream(stream)


@pytest.fixture
def lp(tmp_path: Path) -> Iterator[Platform]:
    settings = Settings.from_environ({"LEPTONIC_HOME": str(tmp_path), "LEPTONIC_USER": "ana"})
    platform = Platform(settings, metadata=open_metadata_store("memory://"), artifacts=FullStore())
    platform.create_workspace("ws")
    platform.add_data("ws", write_applicants_csv(tmp_path / "a.csv", n=200), target="default")
    yield platform
    platform.close()


def ended_failed(lp: Platform, error: str) -> None:
    (run,) = lp.list_runs("ws")
    assert run.status is RunStatus.FAILED
    assert run.finished_at is not None
    assert run.error is not None and error in run.error


def test_a_run_whose_log_cannot_be_saved_still_ends_failed(
    lp: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(lp.artifacts, FullStore)
    lp.artifacts.full = True  # the report fails, and so does the log in the failure path
    with (
        caplog.at_level(logging.WARNING, logger="leptonic.train"),
        pytest.raises(OSError, match="No space left on device"),
    ):
        lp.train("ws", "a", SPEC)
    ended_failed(lp, "OSError")
    assert "its log was not saved" in caplog.text


def test_a_run_whose_echo_breaks_still_ends_failed(
    lp: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    def echo(message: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with (
        caplog.at_level(logging.WARNING, logger="leptonic.train"),
        pytest.raises(BrokenPipeError),
    ):
        lp.train("ws", "a", SPEC, echo=echo)
    ended_failed(lp, "BrokenPipeError")
    (run,) = lp.list_runs("ws")
    assert "failed: BrokenPipeError" in lp.run_artifact("ws", run.id, "log.txt").decode()
    assert "could not log" in caplog.text


def test_a_run_whose_lineage_cannot_be_written_ends_failed(
    lp: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    def add_lineage(*args: Any, **kw: Any) -> None:
        raise StoreError("the metadata store went away")

    monkeypatch.setattr(lp.metadata, "add_lineage", add_lineage)
    with pytest.raises(StoreError, match="went away"):
        lp.train("ws", "a", SPEC)
    ended_failed(lp, "went away")
