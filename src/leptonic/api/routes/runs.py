"""Training runs (started as background jobs), their reports, logs and progress; jobs."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, PlainTextResponse

from leptonic.api import jobs
from leptonic.api.auth import Developer, Viewer
from leptonic.api.schemas import (
    JobOut,
    Limit,
    Offset,
    Page,
    ProgressOut,
    RunOut,
    TrainAccepted,
    TrainRequest,
    probe_page,
)
from leptonic.core.job import JobStatus
from leptonic.core.run import RunStatus
from leptonic.errors import NotFound

__all__ = ["router"]

router = APIRouter(tags=["runs"])


@router.post(
    "/workspaces/{ws}/runs", response_model=TrainAccepted, status_code=status.HTTP_202_ACCEPTED
)
def start_run(request: Request, scope: Developer, body: TrainRequest) -> object:
    """Queue a training run; follow it at ``/runs/{run_id}/progress``."""
    job = jobs.submit_training(
        scope.platform,
        scope.workspace,
        body.dataset,
        body.spec,
        version=body.version,
        model_name=body.model,
    )
    request.app.state.runner.wake()
    return {"job": JobOut.model_validate(job), "run_id": job.run_id}


@router.get("/workspaces/{ws}/runs", response_model=Page[RunOut])
def list_runs(
    scope: Viewer,
    status: RunStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> object:
    """Runs, newest first, optionally of one status."""
    runs = scope.platform.list_runs(scope.workspace, status=status, limit=limit + 1, offset=offset)
    return probe_page(runs, limit, offset, RunOut.model_validate)


@router.get("/workspaces/{ws}/runs/{run_id}", response_model=RunOut)
def get_run(scope: Viewer, run_id: str) -> object:
    """One run (a unique prefix of its id will do); the run of a job that waits in
    the queue (or is just starting) is shown from the job, before it has a record."""
    try:
        return RunOut.model_validate(scope.platform.get_run(scope.workspace, run_id))
    except NotFound:
        try:
            job = jobs.job_for_run(scope.platform, scope.workspace, run_id)
        except NotFound:
            job = None
        if job is None or job.run_id is None or job.status.finished or job.kind != "train":
            raise  # a retrain's run is known once it starts training
        if job.status is JobStatus.RUNNING:  # recorded meanwhile, or about to be
            try:
                return RunOut.model_validate(scope.platform.get_run(scope.workspace, job.run_id))
            except NotFound:
                pass
        status = RunStatus.QUEUED if job.status is JobStatus.QUEUED else RunStatus.RUNNING
        queued = jobs.run_of_job(job, status)
        return RunOut.model_validate(queued)


@router.get("/workspaces/{ws}/runs/{run_id}/report", response_class=HTMLResponse)
def run_report(scope: Viewer, run_id: str) -> HTMLResponse:
    """The run's HTML report (metrics, plots, leaderboard)."""
    data = scope.platform.run_artifact(scope.workspace, run_id, "report.html")
    return HTMLResponse(data)


@router.get("/workspaces/{ws}/runs/{run_id}/log", response_class=PlainTextResponse)
def run_log(scope: Viewer, run_id: str) -> PlainTextResponse:
    """The run's log (written when it ends; see ``/progress`` while it runs)."""
    data = scope.platform.run_artifact(scope.workspace, run_id, "log.txt")
    return PlainTextResponse(data)


@router.get("/workspaces/{ws}/runs/{run_id}/progress", response_model=ProgressOut)
def run_progress(scope: Viewer, run_id: str) -> object:
    """Trials done of the total, the job's status and the last log lines."""
    return jobs.run_progress(scope.platform, scope.workspace, run_id)


@router.post(
    "/workspaces/{ws}/runs/{run_id}/cancel",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
)
def cancel_run(scope: Developer, run_id: str) -> object:
    """Ask the run to stop; it ends ``cancelled`` at its next step."""
    return JobOut.model_validate(jobs.cancel_run(scope.platform, scope.workspace, run_id))


@router.get("/workspaces/{ws}/jobs", response_model=Page[JobOut])
def list_jobs(
    scope: Viewer,
    status: JobStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> object:
    """Background jobs, newest first."""
    found = jobs.list_jobs(
        scope.platform, scope.workspace, status=status, limit=limit + 1, offset=offset
    )
    return probe_page(found, limit, offset, JobOut.model_validate)


@router.get("/workspaces/{ws}/jobs/{job_id}", response_model=JobOut)
def get_job(scope: Viewer, job_id: str) -> object:
    return JobOut.model_validate(jobs.get_job(scope.platform, scope.workspace, job_id))


@router.post(
    "/workspaces/{ws}/jobs/{job_id}/cancel",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
)
def cancel_job(scope: Developer, job_id: str) -> object:
    """Ask a job of any kind (training, scoring, batch decisions, retrain) to stop; it
    ends ``cancelled`` at its next step, or never starts if still queued."""
    return JobOut.model_validate(jobs.cancel_job(scope.platform, scope.workspace, job_id))
