"""Training as background jobs: progress, cancellation, heartbeats, recovery after a crash."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from api._support import TRAIN, Server
from leptonic import Platform
from leptonic.api import jobs
from leptonic.api.jobs import STALE_AFTER_S, JobRunner
from leptonic.core._time import utcnow
from leptonic.core.job import Job, JobStatus
from leptonic.core.run import Run, RunStatus
from leptonic.errors import Conflict, StoreError
from leptonic.storage.metadata.base import ORPHANED_JOB_ERROR, MetadataStore

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
        r = c.post(f"{W}/runs/{run_id[:12]}/cancel")
        assert r.status_code == 202 and r.json()["status"] == "cancelled"  # at once, no worker
        assert r.json()["finished_at"] is not None
        assert progress_of(c, run_id)["status"] == "cancelled"
        assert c.get(f"{W}/jobs", params={"status": "queued"}).json()["items"] == []
        again = c.post(f"{W}/runs/{run_id}/cancel")
        assert again.status_code == 409 and "already finished (cancelled)" in again.text
        server.run_jobs()  # nothing left to run
        assert progress_of(c, run_id)["status"] == "cancelled"
        run = c.get(f"{W}/runs/{run_id}").json()  # it never started, yet it is listed
        assert run["status"] == "cancelled" and run["finished_at"] is not None
        cancelled = c.get(f"{W}/runs", params={"status": "cancelled"}).json()["items"]
        assert [r["id"] for r in cancelled] == [run_id]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({**TRAIN, "target": "no_such_column"}, "target"),
        ({**TRAIN, "features": ["age", "nope"]}, "features"),
        ({**TRAIN, "positive_label": {"a": 1}}, "positive_label"),
        ({"task": "recommendation"}, "user"),
        ({"task": "recommendation", "user": "applicant_id", "item": "nope"}, "item"),
        ({"task": "text-classification", "text": "nope", "mode": "tfidf"}, "text"),
    ],
)
def test_a_spec_naming_no_column_of_the_data_is_refused_before_queueing(
    server: Server, applicants_csv: Path, spec: dict[str, Any], field: str
) -> None:
    with setup_workspace(server, applicants_csv) as c:
        r = c.post(f"{W}/runs", json={"dataset": "applicants", "spec": spec})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == f"spec.{field}"
        assert c.get(f"{W}/jobs").json()["items"] == []


def _alpha(server: Server) -> tuple[Platform, MetadataStore]:
    """The server's platform, with an empty workspace ``alpha``, and its store."""
    server.platform.create_workspace("alpha")
    return server.platform, server.platform.metadata


def _running_run(store: MetadataStore) -> Run:
    return store.create_run(
        Run(id="r" * 32, workspace="alpha", status=RunStatus.RUNNING, spec={}, seed=0)
    )


def _ended(store: MetadataStore, job_id: str) -> Job:
    """The job of ``alpha`` once it has ended (a worker or the keeper ends it meanwhile)."""
    job: Job = wait_until(lambda: (j := store.get_job("alpha", job_id)).status.finished and j, 30)
    return job


def test_orphaned_jobs_fail_with_their_runs(server: Server) -> None:
    lp, store = _alpha(server)
    run = _running_run(store)
    store.create_job(Job(id="orphan", workspace="alpha", kind="train", payload={}, run_id=run.id))
    store.create_job(
        Job(id="waiting", workspace="alpha", kind="train", payload={}, run_id="q" * 32)
    )
    last_beat = utcnow() - timedelta(seconds=STALE_AFTER_S + 1)
    claimed = store.claim_next_job(owner="a-server-that-crashed", at=last_beat)
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
    assert store.get_job("alpha", "waiting").status == JobStatus.FAILED  # no such user: recorded
    runner.stop()


def _score_job(job_id: str = "j", created_by: str = "root") -> Job:
    payload = {"model": "m", "version": 1, "dataset": "d", "dataset_version": 1, "output": None}
    return Job(id=job_id, workspace="alpha", kind="score", payload=payload, created_by=created_by)


def _scored(*args: Any, **kwargs: Any) -> tuple[Any, bool]:
    """What ``Platform.score`` returns, for tests that stand in for it."""
    return SimpleNamespace(dataset="d-scores", version=1, num_rows=3), True


def test_a_second_server_leaves_live_jobs_alone(server: Server) -> None:
    lp, store = _alpha(server)
    store.create_job(_score_job("live"))
    first = JobRunner(lp, workers=0)
    claimed = store.claim_next_job(owner=first.instance_id, at=utcnow())
    assert claimed is not None
    second = JobRunner(lp, workers=0)
    try:
        assert second.start() == []
    finally:
        second.stop()
    assert store.get_job("alpha", "live") == claimed


def test_the_keeper_sweeps_stale_jobs_while_the_server_runs(server: Server) -> None:
    lp, store = _alpha(server)
    run = _running_run(store)
    runner = JobRunner(lp, workers=0, heartbeat_interval=0.02, stale_after=1.0)
    try:
        assert runner.start() == []
        # a server that stopped beating after this one started
        store.create_job(_score_job("cut"))
        store.claim_next_job(owner="a-hung-server", at=utcnow() - timedelta(seconds=2))
        store.update_job("alpha", "cut", run_id=run.id)
        job = _ended(store, "cut")
    finally:
        runner.stop()
    assert job.status == JobStatus.FAILED and job.error == ORPHANED_JOB_ERROR
    assert store.get_run("alpha", run.id).status == RunStatus.FAILED


def test_running_jobs_heartbeat_without_progress(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    lp, store = _alpha(server)
    release = threading.Event()

    def slow_score(*args: Any, **kwargs: Any) -> tuple[Any, bool]:
        release.wait(30)  # one long step, no progress reported
        return _scored()

    monkeypatch.setattr(lp, "score", slow_score)
    store.create_job(_score_job())
    runner = JobRunner(lp, workers=1, poll_interval=0.02, heartbeat_interval=0.02)
    try:
        runner.start()
        # its last progress: "started"; every later heartbeat is the keeper's
        started = wait_until(
            lambda: (j := store.get_job("alpha", "j")).progress.get("message") == "started" and j,
            30,
        )
        wait_until(lambda: store.get_job("alpha", "j").heartbeat_at > started.heartbeat_at, 30)
        assert store.get_job("alpha", "j").status == JobStatus.RUNNING
        release.set()
        job = _ended(store, "j")
    finally:
        release.set()
        runner.stop()
    assert job.status == JobStatus.SUCCEEDED and job.result["dataset"] == "d-scores"


def test_a_job_failed_by_a_sweep_is_not_flipped_back(
    server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lp, store = _alpha(server)

    def swept_meanwhile(*args: Any, **kwargs: Any) -> tuple[Any, bool]:
        now = utcnow()  # another server took this one for dead
        assert [j.id for j in store.fail_stale_jobs(now + timedelta(hours=1), now)] == ["j"]
        return _scored()

    monkeypatch.setattr(lp, "score", swept_meanwhile)
    store.create_job(_score_job())
    with caplog.at_level(logging.WARNING, logger="leptonic.jobs"):
        server.run_jobs()
    job = store.get_job("alpha", "j")
    assert job.status == JobStatus.FAILED and job.error == ORPHANED_JOB_ERROR
    assert job.result == {} and "but it was failed meanwhile" in caplog.text
    # the finishing write itself is conditional too
    store.create_job(Job(id="k", workspace="alpha", kind="mystery", payload={}))
    runner = JobRunner(lp, workers=0)
    claimed = store.claim_next_job(owner=runner.instance_id, at=utcnow())
    assert claimed is not None
    store.fail_stale_jobs(utcnow() + timedelta(hours=1), utcnow())
    with caplog.at_level(logging.WARNING, logger="leptonic.jobs"):
        ended = runner.execute(claimed)
    assert ended.status == JobStatus.FAILED and ended.error == ORPHANED_JOB_ERROR
    assert store.get_job("alpha", "k") == ended and "left as it is" in caplog.text


def test_a_job_whose_end_was_not_recorded_is_swept(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    lp, store = _alpha(server)
    conditional = store.update_job_if

    def end_not_recorded(*args: Any, **changes: Any) -> Job | None:
        if "finished_at" in changes:
            raise StoreError("the database went away")
        return conditional(*args, **changes)

    monkeypatch.setattr(store, "update_job_if", end_not_recorded)
    store.create_job(_score_job())
    monkeypatch.setattr(lp, "score", _scored)
    runner = JobRunner(lp, workers=0, heartbeat_interval=0.02, stale_after=0.5)
    try:
        runner.start()
        with pytest.raises(StoreError):
            runner.run_one()
        assert store.get_job("alpha", "j").status == JobStatus.RUNNING
        job = _ended(store, "j")
    finally:
        runner.stop()
    assert job.status == JobStatus.FAILED and job.error == ORPHANED_JOB_ERROR


def test_a_cancel_that_loses_the_race_to_the_end(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    lp, store = _alpha(server)
    store.create_job(Job(id="j", workspace="alpha", kind="train", payload={}, run_id="r" * 32))
    seen = store.claim_next_job(owner="worker", at=utcnow())  # running, as the canceller saw it
    store.update_job("alpha", "j", status=JobStatus.SUCCEEDED, finished_at=utcnow())
    monkeypatch.setattr(store, "find_job_by_run", lambda workspace, run_id: seen)
    with pytest.raises(Conflict, match=r"already finished \(succeeded\)"):
        jobs.cancel_run(lp, "alpha", "r" * 32)
    assert store.get_job("alpha", "j").cancel_requested is False
    assert lp.audit_log(action="run.cancel") == []


def test_cancel_a_scoring_job_by_its_id(populated: Server) -> None:
    with populated.client("dev") as c:
        r = c.post(f"{W}/models/scorecard/versions/1/score", json={"dataset": "applicants"})
        job_id = r.json()["id"]
        r = c.post(f"{W}/jobs/{job_id}/cancel")
        assert r.status_code == 202 and r.json()["cancel_requested"] is True
        populated.run_jobs()
        assert c.get(f"{W}/jobs/{job_id}").json()["status"] == "cancelled"
        again = c.post(f"{W}/jobs/{job_id}/cancel")
        assert again.status_code == 409 and "already finished" in again.text
        assert c.post(f"{W}/jobs/nope/cancel").status_code == 404
    with populated.client("ana") as c:
        actions = [e["action"] for e in c.get(f"{W}/audit").json()["items"]]
        assert actions[0] == "job.cancel"


def test_jobs_of_a_submitter_who_lost_the_role_fail(populated: Server) -> None:
    admin = populated.platform.as_user("setup")
    with populated.client("dev") as c:
        r = c.post(f"{W}/runs", json={"dataset": "applicants", "spec": TRAIN})
        run_id, job_id = r.json()["run_id"], r.json()["job"]["id"]
        admin.set_member("alpha", "dev", "viewer")
        populated.run_jobs()
        job = c.get(f"{W}/jobs/{job_id}").json()
        assert job["status"] == "failed"
        assert "'dev' no longer has the developer role" in job["error"]
        assert "PermissionDenied" in job["error"] and "viewer" in job["error"]
        # it never started, yet it is listed with the runs, by its status too
        run = c.get(f"{W}/runs/{run_id}").json()
        assert run["status"] == "failed" and run["error"] == job["error"]
        assert run["inputs"] == ["leptonic://alpha/dataset/applicants/1"]
        assert run["finished_at"] is not None and run["created_by"] == "dev"
        failed = c.get(f"{W}/runs", params={"status": "failed"}).json()["items"]
        assert [r["id"] for r in failed] == [run_id]
    # serving a retrain's result needs an admin, when it runs as when it was asked
    populated.platform.metadata.create_job(
        Job(
            id="retrain",
            workspace="alpha",
            kind="retrain-events",
            payload={"endpoint": "scorecard", "min_new_events": 1, "promote": True, "reason": "x"},
            created_by="dev",
        )
    )
    admin.set_member("alpha", "dev", "developer")
    populated.run_jobs()
    job = populated.platform.metadata.get_job("alpha", "retrain")
    assert job.status == JobStatus.FAILED and "the admin role" in (job.error or "")


def test_unknown_job_kind_fails_cleanly(server: Server) -> None:
    server.platform.create_workspace("alpha")
    store = server.platform.metadata
    store.create_job(Job(id="j", workspace="alpha", kind="mystery", payload={}))
    server.run_jobs()
    job = store.get_job("alpha", "j")
    assert job.status == JobStatus.FAILED and "mystery" in (job.error or "")


def test_a_job_failing_with_a_nul_in_its_error_still_records_its_end(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.platform.create_workspace("alpha")
    store = server.platform.metadata

    def fail(self: JobRunner, job: Job, update: Any) -> dict[str, Any]:
        raise RuntimeError("bad\x00byte")  # no store keeps NUL in text

    monkeypatch.setattr(JobRunner, "_score", fail)
    server.platform.create_user("boss", admin=True)
    store.create_job(Job(id="j", workspace="alpha", kind="score", payload={}, created_by="boss"))
    server.run_jobs()
    job = store.get_job("alpha", "j")
    assert job.status == JobStatus.FAILED and job.error == "RuntimeError: bad\ufffdbyte"


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


def test_a_cancel_after_the_output_is_written_is_too_late(
    make_server: Any, applicants_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(workers=1)
    score = Platform.score

    def score_then_cancelled(self: Platform, workspace: str, *args: Any, **kw: Any) -> Any:
        out = score(self, workspace, *args, **kw)  # the output dataset is written
        (job,) = [j for j in self.metadata.list_jobs(workspace) if j.kind == "score"]
        jobs.cancel_job(self, workspace, job.id)  # a cancel that arrives just then
        return out

    monkeypatch.setattr(Platform, "score", score_then_cancelled)
    with setup_workspace(server, applicants_csv) as c:
        r = c.post(f"{W}/runs", json={"dataset": "applicants", "spec": TRAIN, "model": "sc"})
        run_id = r.json()["run_id"]
        wait_until(lambda: progress_of(c, run_id)["status"] in FINISHED)
        job_id = c.post(f"{W}/models/sc/versions/1/score", json={"dataset": "applicants"}).json()[
            "id"
        ]
        job = wait_until(
            lambda: (j := c.get(f"{W}/jobs/{job_id}").json())["status"] in FINISHED and j
        )
    assert job["status"] == "succeeded", job  # what it did is what it reports
    assert job["result"]["dataset"] == "applicants-scores"
