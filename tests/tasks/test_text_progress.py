"""Progress of long text work (``textcls._progress``): counts, ETA lines, stages of one bar."""

from __future__ import annotations

import pytest

from leptonic.errors import Cancelled
from leptonic.tasks.textcls._progress import Progress, format_seconds, stage_progress


def test_seconds_read_as_minutes_and_hours() -> None:
    assert [format_seconds(s) for s in (-3, 0, 59.4, 75, 3599, 4000)] == [
        "0s",
        "0s",
        "59s",
        "1m15s",
        "59m59s",
        "1h06m",
    ]


def test_progress_counts_logs_and_can_be_cancelled() -> None:
    seen: list[tuple[int, int]] = []
    lines: list[str] = []
    bar = Progress(4, what="steps", progress=lambda d, t: seen.append((d, t)), log=lines.append)
    bar._every = 0.0  # a line at every step
    bar.advance(note="epoch 1")
    bar.advance(2)
    bar.finish()
    assert seen == [(1, 4), (3, 4), (4, 4)]
    assert lines[0].startswith("steps 1/4 ·") and lines[0].endswith("· epoch 1")
    assert "ETA" in lines[-1]

    def cancel(done: int, total: int) -> None:
        raise Cancelled("stopped by the user")

    with pytest.raises(Cancelled):
        Progress(2, what="steps", progress=cancel).advance()


def test_stages_fill_one_bar_in_order() -> None:
    seen: list[tuple[int, int]] = []
    first = stage_progress(lambda d, t: seen.append((d, t)), 0, 30, 100)
    second = stage_progress(lambda d, t: seen.append((d, t)), 30, 70, 100)
    assert first is not None and second is not None
    for done in range(1, 4):
        first(done, 3)  # its own count: 3 steps
    for done in (1, 5, 10, 12):  # more than it expected: held at its share's end
        second(done, 10)
    assert seen == [(10, 100), (20, 100), (30, 100), (37, 100), (65, 100), (100, 100), (100, 100)]
    assert stage_progress(None, 0, 1, 2) is None
