"""Training as background jobs: progress, cancellation, recovery after a crash."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from api._support import TRAIN, Server
from leptonic.api.jobs import JobRunner
from leptonic.core.job import Job, JobStatus
from leptonic.core.run import Run, RunStatus
from leptonic.storage.metadata.base import ORPHANED_JOB_ERROR

W = "/workspaces/alpha"
FINISHED = ("succeeded", "failed", "cancelled")


def wait_until(check: Callable[[], Any], timeout: float = 120.0) -> Any:
    """Poll ``check`` until it returns something truthy (the job runs in another thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def setup_workspace(server: Server, csv: Path) -> httpx.Client:
    with server.client("root") as client:
        client.post("/workspaces", json={"name": "alpha"}).raise_for_status()
        client.post(
            f"{W}/datasets/applicants/versions",
            params={"target": "default", "filename": "a.csv"},
            content=csv.read_bytes(),
        ).raise_for_status()
    return server.client("root")


def progress_of(client: httpx.Client, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"{W}/runs/{run_id}/progress").json()
    return data


def test_training_job_runs_to_completion(make_server: Any, applicants_csv: Path) -> None:
    server = make_server(workers=1)
    with setup_workspace(server, applicants_csv) as c:
        r = c.post(f"{W}/runs", json={"dataset": "applicants", "spec": TRAIN, "model": "sc"})
        assert r.status_code == 202
        run_id, job_id = r.json()["run_id"], r.json()["job"]["id"]
        assert r.json()["job"]["status"] == "queued" and len(run_id) == 32
        seen: list[int] = []

        def finished() -> dict[str, Any] | None:
            p = progress_of(c, run_id)
            seen.append(p["done"])
            return p if p["status"] in FINISHED else None

        final = wait_until(finished)
        assert final["status"] == "succeeded", final
        assert final["done"] == final["total"] == 2 and seen == sorted(seen)
        assert any("registered sc v1" in line for line in final["log"])
        run = c.get(f"{W}/runs/{run_id}").json()
        assert run["status"] == "succeeded" and run["created_by"] == "root"
        job = c.get(f"{W}/jobs/{job_id}").json()
        assert job["status"] == "succeeded" and job["result"] == {
            "run_id": run_id,
            "model": "sc",
            "model_version": 1,
        }
        assert c.get(f"{W}/models/sc/versions/1").json()["run_id"] == run_id


def test_scoring_job_writes_a_scored_dataset(make_server: Any, applicants_csv: Path) -> None:
    server = make_server(workers=1)
    with setup_workspace(server, applicants_csv) as c:
        r = c.post(f"{W}/runs", json={"dataset": "applicants", "spec": TRAIN, "model": "sc"})
        run_id = r.json()["run_id"]
        wait_until(lambda: progress_of(c, run_id)["status"] in FINISHED)
        r = c.post(f"{W}/models/sc/versions/1/score", json={"dataset": "applicants"})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert r.json()["kind"] == "score"
        job = wait_until(
            lambda: (j := c.get(f"{W}/jobs/{job_id}").json())["status"] in FINISHED and j
        )
        assert job["status"] == "succeeded", job
        assert job["result"] == {"dataset": "applicants-scores", "version": 1, "created": True}
        assert job["progress"]["done"] == job["progress"]["total"] > 0
        version = c.get(f"{W}/datasets/applicants-scores/versions/1").json()
        assert [col["name"] for col in version["columns"]] == ["applicant_id", "score", "decision"]
        # a model that does not exist, or bad output names, are refused up front
        missing = c.post(f"{W}/models/sc/versions/9/score", json={"dataset": "applicants"})
        assert missing.status_code == 404
        bad = c.post(
            f"{W}/models/sc/versions/1/score", json={"dataset": "applicants", "output": "../x"}
        )
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "dataset"


def test_cancel_a_running_job(make_server: Any, applicants_csv: Path) -> None:
    server = make_server(workers=1)
    spec = {**TRAIN, "trials": 2000, "timeout_s": None}
    with setup_workspace(server, applicants_csv) as c:
        run_id = c.post(f"{W}/runs", json={"dataset": "applicants", "spec": spec}).json()["run_id"]
        wait_until(lambda: progress_of(c, run_id)["done"] >= 2)
        r = c.post(f"{W}/runs/{run_id}/cancel")
        assert r.status_code == 202 and r.json()["cancel_requested"] is True
        final = wait_until(lambda: (p := progress_of(c, run_id))["status"] in FINISHED and p)
        assert final["status"] == "cancelled" and final["done"] < 2000
        run = c.get(f"{W}/runs/{run_id}").json()
        assert run["status"] == "cancelled" and "Cancelled" in run["error"]
        assert "cancelled" in c.get(f"{W}/runs/{run_id}/log").text
        assert c.post(f"{W}/runs/{run_id}/cancel").status_code == 409
        actions = [e["action"] for e in c.get(f"{W}/audit").json()["items"]]
        assert actions[0] == "run.cancel"


def test_cancel_a_queued_job(server: Server, applicants_csv: Path) -> None:
    with setup_workspace(server, applicants_csv) as c:
        run_id = c.post(f"{W}/runs", json={"dataset": "applicants", "spec": TRAIN}).json()["run_id"]
        queued = c.get(f"{W}/runs/{run_id}")  # visible at once, from its job
        assert queued.status_code == 200 and queued.json()["status"] == "queued"
        assert queued.json()["inputs"] == ["leptonic://alpha/dataset/applicants/1"]
        assert c.post(f"{W}/runs/{run_id[:12]}/cancel").status_code == 202
        server.run_jobs()
        assert progress_of(c, run_id)["status"] == "cancelled"
        assert c.get(f"{W}/runs/{run_id}").status_code == 404  # it never started


def test_orphaned_jobs_fail_with_their_runs(server: Server) -> None:
    lp = server.platform
    lp.create_workspace("alpha")
    store = lp.metadata
    run = store.create_run(
        Run(id="r" * 32, workspace="alpha", status=RunStatus.RUNNING, spec={}, seed=0)
    )
    store.create_job(Job(id="orphan", workspace="alpha", kind="train", payload={}, run_id=run.id))
    store.create_job(
        Job(id="waiting", workspace="alpha", kind="train", payload={}, run_id="q" * 32)
    )
    claimed = store.claim_next_job(owner="a-server-that-crashed", at=run.created_at)
    assert claimed is not None and claimed.id == "orphan"

    runner = JobRunner(lp, workers=0)
    orphans = runner.start()
    assert [j.id for j in orphans] == ["orphan"]
    job = store.get_job("alpha", "orphan")
    assert job.status == JobStatus.FAILED and job.error == ORPHANED_JOB_ERROR
    failed = store.get_run("alpha", run.id)
    assert failed.status == RunStatus.FAILED and failed.error == ORPHANED_JOB_ERROR
    assert failed.finished_at is not None
    assert store.get_job("alpha", "waiting").status == JobStatus.QUEUED  # resumed later
    assert runner.run_one() is not None
    assert store.get_job("alpha", "waiting").status == JobStatus.FAILED  # bad payload, recorded
    runner.stop()


def test_unknown_job_kind_fails_cleanly(server: Server) -> None:
    server.platform.create_workspace("alpha")
    store = server.platform.metadata
    store.create_job(Job(id="j", workspace="alpha", kind="mystery", payload={}))
    server.run_jobs()
    job = store.get_job("alpha", "j")
    assert job.status == JobStatus.FAILED and "mystery" in (job.error or "")


def test_shutdown_stops_a_running_job(tmp_path: Path, applicants_csv: Path) -> None:
    from api._support import BASE
    from leptonic import Platform, Settings
    from leptonic.api import create_app
    from leptonic.api.jobs import SHUTDOWN_ERROR
    from leptonic.api.testing import serve_in_process
    from leptonic.storage.artifacts.memory import MemoryArtifactStore
    from leptonic.storage.metadata.memory import MemoryMetadataStore

    lp = Platform(
        Settings.for_home(tmp_path, "setup"),
        metadata=MemoryMetadataStore(),
        artifacts=MemoryArtifactStore(),
    )
    lp.create_user("root", admin=True)
    _, token = lp.create_token("root")
    lp.create_workspace("alpha")
    lp.add_data("alpha", applicants_csv, target="default")
    spec = {**TRAIN, "trials": 2000, "timeout_s": None}
    app = create_app(lp.settings, platform=lp, workers=1, poll_interval=0.05)
    with serve_in_process(app) as transport:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=BASE, transport=transport, headers=headers) as c:
            run_id = c.post(f"{W}/runs", json={"dataset": "applicants", "spec": spec}).json()[
                "run_id"
            ]
            wait_until(lambda: progress_of(c, run_id)["done"] >= 2)
    job = lp.metadata.list_jobs("alpha")[0]
    assert job.status == JobStatus.FAILED and job.error == SHUTDOWN_ERROR
    run = lp.metadata.get_run("alpha", run_id)
    assert run.status == RunStatus.FAILED and run.finished_at is not None
