"""A real server process killed with SIGKILL mid-training, then restarted.

Once its heartbeats are stale, the job it was running must end ``failed``
(with its run) when the new server starts, the job queued behind it must be
picked up by the new server, and the SQLite database must pass
``PRAGMA integrity_check``. The first start prints the bootstrap token;
the second does not.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from api._support import free_port, start
from leptonic.api.auth import BOOTSTRAP_TOKEN_FILE
from leptonic.storage.metadata.base import ORPHANED_JOB_ERROR

FINISHED = ("succeeded", "failed", "cancelled")


def wait_for(check: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_kill_9_mid_training(
    tmp_path: Path, applicants_csv: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "leptonic.api.app:app_from_environ"]
    first, first_log = start([*uvicorn, "--host", "127.0.0.1", "--port", str(port)], home, port)
    processes.append(first)
    token = (home / BOOTSTRAP_TOKEN_FILE).read_text().strip()
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        c.post("/workspaces", json={"name": "alpha"}).raise_for_status()
        c.post(
            "/workspaces/alpha/datasets/applicants/versions",
            params={"target": "default", "filename": "applicants.csv"},
            content=applicants_csv.read_bytes(),
        ).raise_for_status()
        endless = {"target": "default", "candidates": ["logistic"], "trials": 100_000}
        long = c.post(
            "/workspaces/alpha/runs",
            json={"dataset": "applicants", "spec": {**endless, "timeout_s": None}},
        ).json()
        short = {"target": "default", "candidates": ["logistic"], "trials": 2}
        queued = c.post(
            "/workspaces/alpha/runs", json={"dataset": "applicants", "spec": short, "model": "m"}
        ).json()

        def progress(run: dict[str, Any]) -> dict[str, Any]:
            url = f"/workspaces/alpha/runs/{run['run_id']}/progress"
            data: dict[str, Any] = c.get(url).json()
            return data

        wait_for(lambda: progress(long)["done"] >= 3)
        assert progress(queued)["status"] == "queued"

    first.send_signal(signal.SIGKILL)
    first.wait(30)
    # Long enough ago that its jobs' heartbeats are stale (STALE_AFTER_S), as after a real outage.
    with closing(sqlite3.connect(home / "leptonic.db")) as db, db:
        db.execute("UPDATE jobs SET heartbeat_at = '2000-01-01 00:00:00.000000'")

    command = [sys.executable, "-m", "leptonic.cli.main", "server", "--port", str(port)]
    second, second_log = start(command, home, port)
    processes.append(second)
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        job = c.get(f"/workspaces/alpha/jobs/{long['job']['id']}").json()
        assert job["status"] == "failed" and job["error"] == ORPHANED_JOB_ERROR
        run = c.get(f"/workspaces/alpha/runs/{long['run_id']}").json()
        assert run["status"] == "failed" and run["finished_at"] is not None
        resumed = wait_for(lambda: (p := progress(queued))["status"] in FINISHED and p)
        assert resumed["status"] == "succeeded", resumed
        assert c.get("/workspaces/alpha/models/m/versions/1").status_code == 200
        assert c.get("/workspaces/alpha/runs", params={"status": "running"}).json()["items"] == []

    second.send_signal(signal.SIGTERM)
    assert second.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal when done
    assert "Application shutdown complete" in second_log.read_text()
    assert token in first_log.read_text() and token not in second_log.read_text()
    with sqlite3.connect(home / "leptonic.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
