"""Background jobs: training requests queued in the store, run by a pool of worker threads.

A request creates a :class:`~leptonic.core.job.Job` (``queued``) with its run id
fixed up front (:func:`submit_training`). Each :class:`JobRunner` worker claims
the oldest queued job with :meth:`MetadataStore.claim_next_job`, runs it
through :meth:`Platform.train` as the user who asked, and records progress
and the outcome on the job. When a job is claimed its submitter must still hold
the role it needs in the workspace, or the job fails saying so. Cancelling
a queued job ends it at once (it never starts); cancelling a running job sets
``cancel_requested``, which the worker sees at the next progress step, and
stops the run (:class:`~leptonic.errors.Cancelled`).

Heartbeats: a keeper thread of each runner writes ``heartbeat_at`` on the jobs
it runs every :data:`HEARTBEAT_S` seconds, progress or not. A ``running`` job
whose heartbeat is older than :data:`STALE_AFTER_S` was cut off (its server
crashed, hung or lost the database, or could not record the job's end):
:meth:`JobRunner.recover` fails it and its run, at start and then every
heartbeat, whichever server owns it, so no run stays ``running`` forever and
a second server leaves the first one's live jobs alone. Every write of a
worker is conditional on the job still being ``running`` and its own, so a
job failed by a sweep is never flipped back (the worker stops at its next
step and logs it). Jobs still queued are simply picked up.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from leptonic.core._time import utcnow
from leptonic.core.access import Role
from leptonic.core.job import Job, JobStatus
from leptonic.core.run import Run, RunStatus
from leptonic.core.uri import ObjectRef
from leptonic.errors import (
    AlreadyExists,
    Cancelled,
    Conflict,
    InvalidInput,
    LeptonicError,
    NotFound,
    PermissionDenied,
)
from leptonic.platform import Platform, check_score_output
from leptonic.storage.metadata.base import ORPHANED_JOB_ERROR, safe_text
from leptonic.tasks.runner_tasks import check_spec_columns
from leptonic.tasks.spec import TrainSpec, spec_from_stored, spec_to_dict

if TYPE_CHECKING:
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.textcls.spec import TextClassificationSpec

__all__ = [
    "HEARTBEAT_S",
    "STALE_AFTER_S",
    "JobRunner",
    "cancel_job",
    "cancel_run",
    "job_for_run",
    "list_jobs",
    "run_progress",
    "submit_event_retrain",
    "submit_scoring",
    "submit_training",
]

logger = logging.getLogger("leptonic.jobs")

#: Log lines kept in a job's progress.
LOG_TAIL = 20

#: Error of a job stopped because its server shut down.
SHUTDOWN_ERROR = "interrupted: the server shut down while this job ran; start it again"

#: Seconds between the heartbeats a runner writes on each job it runs.
HEARTBEAT_S = 10.0

#: Seconds without a heartbeat after which a running job counts as cut off (six beats).
STALE_AFTER_S = 6 * HEARTBEAT_S

_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class _ShuttingDown(LeptonicError):
    """Raised inside a job when its server stops; the run ends failed, not cancelled."""

    code = "shutting_down"


class _Lost(LeptonicError):
    """Raised inside a job that is no longer this runner's to run (a sweep failed it)."""

    code = "job_lost"


# -- service functions used by the routes ---------------------------------------------
def _submit_batch(
    platform: Platform,
    workspace: str,
    kind: str,
    subject: ObjectRef,
    payload: dict[str, Any],
    dataset: str,
    dataset_version: int | None,
    output: str | None,
) -> Job:
    """Queue a job that streams a dataset version (pinned now) into a new one."""
    from leptonic.core.names import validate_name

    if output is not None:
        validate_name(output, "dataset")
    dv = platform.dataset_version(workspace, dataset, dataset_version)
    if output is not None:
        check_score_output(dv.dataset, output)
    job = platform.metadata.create_job(
        Job(
            id=uuid.uuid4().hex,
            workspace=workspace,
            kind=kind,
            payload={
                **payload,
                "dataset": dv.dataset,
                "dataset_version": dv.version,
                "output": output,
            },
            created_by=platform.actor,
            progress={"done": 0, "total": dv.num_rows, "message": "queued", "log": []},
        )
    )
    platform.audit(
        f"{subject.kind}.{'score' if kind == 'score' else 'batch'}.submit",
        workspace,
        [subject, ObjectRef(workspace, "dataset", dv.dataset, dv.version)],
        job=job.id,
    )
    return job


def submit_scoring(
    platform: Platform,
    workspace: str,
    model: str,
    version: int,
    dataset: str,
    *,
    dataset_version: int | None = None,
    output: str | None = None,
) -> Job:
    """Queue a batch-scoring job: a model version over a dataset version (pinned now)."""
    platform.model_version(workspace, model, version)
    return _submit_batch(
        platform,
        workspace,
        "score",
        ObjectRef(workspace, "model", model, version),
        {"model": model, "version": version},
        dataset,
        dataset_version,
        output,
    )


def submit_decisions(
    platform: Platform,
    workspace: str,
    endpoint: str,
    dataset: str,
    *,
    dataset_version: int | None = None,
    output: str | None = None,
) -> Job:
    """Queue batch decisions: an endpoint's primary version and policy over a dataset version."""
    platform.endpoints.get(workspace, endpoint)
    return _submit_batch(
        platform,
        workspace,
        "decide",
        ObjectRef(workspace, "endpoint", endpoint),
        {"endpoint": endpoint},
        dataset,
        dataset_version,
        output,
    )


def submit_event_retrain(
    platform: Platform,
    workspace: str,
    endpoint: str,
    *,
    min_new_events: int = 1,
    promote: bool = True,
    reason: str = "retrain",
) -> Job:
    """Queue the retrain of a recommendation endpoint on its new events.

    Its run id is fixed up front, as a training job's is (follow or cancel it by
    that id); no run is recorded under it when fewer than ``min_new_events``
    events arrived.
    """
    platform.endpoints.get(workspace, endpoint)
    if not reason.strip():
        raise InvalidInput("say why (a reason is recorded in the audit log)", field="reason")
    job = platform.metadata.create_job(
        Job(
            id=uuid.uuid4().hex,
            workspace=workspace,
            kind="retrain-events",
            payload={
                "endpoint": endpoint,
                "min_new_events": min_new_events,
                "promote": promote,
                "reason": reason.strip(),
            },
            created_by=platform.actor,
            run_id=uuid.uuid4().hex,
            progress={"done": 0, "total": 1, "message": "queued", "log": []},
        )
    )
    platform.audit(
        "endpoint.retrain.submit",
        workspace,
        [ObjectRef(workspace, "endpoint", endpoint)],
        job=job.id,
    )
    return job


def submit_training(
    platform: Platform,
    workspace: str,
    dataset: str,
    spec: TrainSpec | RecommenderSpec | TextClassificationSpec,
    *,
    version: int | None = None,
    model_name: str | None = None,
) -> Job:
    """Queue a training job on a dataset version (pinned now); its run id is fixed up front.

    ``spec`` is a spec of any task; the job stores its JSON form (with ``task``).
    The columns it names are checked against the version's schema first
    (:class:`SchemaError` or :class:`TargetError`, and no job).
    """
    if model_name is not None:
        from leptonic.core.names import validate_name
        from leptonic.registry.service import check_model_task

        validate_name(model_name, "model")
        check_model_task(platform.metadata, workspace, model_name, spec_to_dict(spec)["task"])
    dv = platform.dataset_version(workspace, dataset, version)
    try:  # a spec naming no column of the data is refused now, not by the worker
        check_spec_columns(dv, spec)
    except LeptonicError as exc:
        if exc.field is not None:  # the request's field, as the spec's own checks name it
            exc.field = f"spec.{exc.field}"
        raise
    run_id = uuid.uuid4().hex
    # A text run has no trial budget: its total comes with its first progress step.
    trials = getattr(spec, "trials", 0)
    job = platform.metadata.create_job(
        Job(
            id=uuid.uuid4().hex,
            workspace=workspace,
            kind="train",
            payload={
                "dataset": dv.dataset,
                "version": dv.version,
                "spec": spec_to_dict(spec),
                "model": model_name,
            },
            created_by=platform.actor,
            run_id=run_id,
            progress={"done": 0, "total": trials, "message": "queued", "log": []},
        )
    )
    platform.audit(
        "run.submit",
        workspace,
        [ObjectRef(workspace, "run", run_id)],
        job=job.id,
        dataset=dv.dataset,
        version=dv.version,
    )
    return job


def list_jobs(
    platform: Platform,
    workspace: str,
    *,
    status: JobStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Job]:
    """A workspace's jobs, newest first."""
    platform.get_workspace(workspace)
    return platform.metadata.list_jobs(workspace, status=status, limit=limit, offset=offset)


def get_job(platform: Platform, workspace: str, job_id: str) -> Job:
    return platform.metadata.get_job(workspace, job_id)


def job_for_run(platform: Platform, workspace: str, run_id: str) -> Job:
    """The job that runs (or ran) the run ``run_id`` (a unique prefix will do)."""
    if 0 < len(run_id) < 32:
        ids = platform.metadata.find_run_ids(workspace, run_id, limit=2)
        if len(ids) > 1:
            raise InvalidInput(
                f"run id prefix {run_id!r} is ambiguous; give more digits", field="run"
            )
        if not ids:  # a queued job's run has no record yet: look among the queued jobs
            queued = platform.metadata.list_jobs(workspace, status=JobStatus.QUEUED, limit=500)
            ids = sorted({j.run_id for j in queued if j.run_id and j.run_id.startswith(run_id)})
            if len(ids) > 1:
                raise InvalidInput(
                    f"run id prefix {run_id!r} is ambiguous; give more digits", field="run"
                )
        run_id = ids[0] if ids else run_id
    job = platform.metadata.find_job_by_run(workspace, run_id)
    if job is not None:
        return job
    raise NotFound(
        f"no server job for run {run_id!r} in workspace {workspace!r} "
        "(runs started from the command line have no job)",
        field="run",
    )


def cancel_run(platform: Platform, workspace: str, run_id: str) -> Job:
    """Ask the job of ``run_id`` to stop; :class:`Conflict` once it has finished."""
    job = job_for_run(platform, workspace, run_id)
    return _cancel(platform, job, "run", f"run {job.run_id}")


def cancel_job(platform: Platform, workspace: str, job_id: str) -> Job:
    """Ask a job of any kind (scoring, batch decisions too) to stop; :class:`Conflict`
    once it has finished."""
    job = platform.metadata.get_job(workspace, job_id)
    return _cancel(platform, job, "job", f"{job.kind} job {job.id}")


def _cancel(platform: Platform, job: Job, field: str, what: str) -> Job:
    """End the job as ``cancelled`` if it is still queued (it never starts; a training
    job's run is recorded as cancelled), or set
    ``cancel_requested`` if it is running (its worker stops at its next step); each
    one atomic step. :class:`Conflict` once the job has finished."""
    store = platform.metadata
    cancelled = store.update_job_if(
        job.workspace,
        job.id,
        when_status=JobStatus.QUEUED,
        status=JobStatus.CANCELLED,
        cancel_requested=True,
        finished_at=utcnow(),
    ) or store.update_job_if(
        job.workspace, job.id, when_status=JobStatus.RUNNING, cancel_requested=True
    )
    if cancelled is not None and cancelled.status is JobStatus.CANCELLED:
        record_unstarted_run(platform, cancelled)  # it never started: listed as cancelled
    if cancelled is None:
        status = store.get_job(job.workspace, job.id).status
        raise Conflict(
            f"{what} has already finished ({status.value}); nothing to cancel", field=field
        )
    refs = [ObjectRef(job.workspace, "run", job.run_id)] if job.run_id else []
    platform.audit(f"{field}.cancel", job.workspace, refs, job=job.id)
    return cancelled


def run_progress(platform: Platform, workspace: str, run_id: str) -> dict[str, Any]:
    """Progress of the job of ``run_id``: done/total, status, message, last log lines."""
    job = job_for_run(platform, workspace, run_id)
    p = job.progress
    return {
        "run_id": job.run_id,
        "job_id": job.id,
        "status": job.status,
        "done": int(p.get("done", 0)),
        "total": int(p.get("total", 0)),
        "message": str(p.get("message", "")),
        "log": [str(line) for line in p.get("log", [])],
        "error": job.error,
    }


# -- the runner ----------------------------------------------------------------------------
class JobRunner:
    """A pool of worker threads running queued jobs of one store, and a keeper thread.

    Parameters
    ----------
    platform
        The server's platform (its stores are shared by the workers).
    workers
        Worker threads; 0 runs nothing in the background (call :meth:`run_one`).
        The keeper (heartbeats, stale-job sweeps) runs after :meth:`start` either way.
    poll_interval
        Seconds an idle worker waits before looking for work again
        (:meth:`wake` cuts the wait short).
    instance_id
        This server's id, recorded as the owner of the jobs it runs.
    heartbeat_interval
        Seconds between the keeper's rounds: a heartbeat on each job this
        runner runs, then a sweep for stale jobs (:meth:`recover`).
    stale_after
        Seconds without a heartbeat after which a running job is failed; more
        than ``heartbeat_interval`` (several times, so a slow beat is no death).
    """

    def __init__(
        self,
        platform: Platform,
        *,
        workers: int = 1,
        poll_interval: float = 0.5,
        instance_id: str | None = None,
        heartbeat_interval: float = HEARTBEAT_S,
        stale_after: float = STALE_AFTER_S,
    ) -> None:
        if workers < 0:
            raise InvalidInput(f"workers must be 0 or more, got {workers}", field="workers")
        if not 0 < heartbeat_interval < stale_after:
            raise InvalidInput(
                f"need 0 < heartbeat_interval < stale_after, got {heartbeat_interval} and "
                f"{stale_after} seconds; a job is stale after several missed heartbeats",
                field="stale_after",
            )
        self.platform = platform
        self.workers = workers
        self.poll_interval = poll_interval
        self.instance_id = instance_id or uuid.uuid4().hex
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[str, str] = {}  # id → workspace of the jobs executing here
        self._running_lock = threading.Lock()

    # lifecycle
    def start(self) -> list[Job]:
        """Recover stale jobs, then start the keeper and the workers; returns the recovered jobs."""
        orphans = self.recover()
        threads = [threading.Thread(target=self._keep, name="leptonic-job-keeper", daemon=True)]
        threads += [
            threading.Thread(target=self._loop, name=f"leptonic-job-worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
            self._threads.append(thread)
        return orphans

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers, waiting ``timeout`` seconds in all (not per worker); a job
        still running ends failed (its run too)."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def wake(self) -> None:
        """Tell idle workers that a job was queued."""
        self._wake.set()

    def recover(self) -> list[Job]:
        """Fail the running jobs whose heartbeat is older than ``stale_after`` seconds,
        whoever owns them, and their runs; returns those jobs."""
        now = utcnow()
        stale_before = now - timedelta(seconds=self.stale_after)
        orphans = self.platform.metadata.fail_stale_jobs(stale_before=stale_before, at=now)
        for job in orphans:
            logger.warning(
                "job %s (run %s, owner %s) sent no heartbeat since %s: marked failed",
                job.id,
                job.run_id,
                job.owner,
                job.heartbeat_at,
            )
            if job.run_id is None:
                continue
            try:  # a run that ended meanwhile keeps its ending
                self.platform.metadata.update_run_if(
                    job.workspace,
                    job.run_id,
                    when_status=RunStatus.RUNNING,
                    status=RunStatus.FAILED,
                    error=job.error or ORPHANED_JOB_ERROR,
                    finished_at=now,
                )
            except NotFound:
                continue
        return orphans

    def beat(self) -> None:
        """Write a heartbeat on each job this runner is running."""
        with self._running_lock:
            running = list(self._running.items())
        for job_id, workspace in running:
            beaten = self.platform.metadata.update_job_if(
                workspace,
                job_id,
                when_status=JobStatus.RUNNING,
                when_owner=self.instance_id,
                heartbeat_at=utcnow(),
            )
            if beaten is None:  # failed by a sweep: the worker stops at its next step
                logger.warning("job %s is no longer this server's to run; it stops", job_id)
                with self._running_lock:
                    self._running.pop(job_id, None)

    # work
    def _keep(self) -> None:
        # beats every interval; sweeps (a write transaction) every half stale period,
        # often enough since a job goes stale only after ``stale_after``
        swept = time.monotonic()
        while not self._stopping.wait(self.heartbeat_interval):
            try:
                self.beat()
                if time.monotonic() - swept >= self.stale_after / 2:
                    swept = time.monotonic()
                    self.recover()
            except Exception:  # keep beating through store hiccups
                logger.exception("job keeper error")

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self.run_one()
            except Exception:  # keep the worker alive through store hiccups
                logger.exception("job worker error")
                job = None
            if job is None:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    def run_one(self) -> Job | None:
        """Claim and run the oldest queued job; None when nothing is queued."""
        if self._stopping.is_set():
            return None
        job = self.platform.metadata.claim_next_job(owner=self.instance_id, at=utcnow())
        if job is None:
            return None
        return self.execute(job)

    @contextmanager
    def _tracking(self, job: Job) -> Iterator[None]:
        """Keep ``job`` among those the keeper beats for while it runs here."""
        with self._running_lock:
            self._running[job.id] = job.workspace
        try:
            yield
        finally:
            with self._running_lock:
                self._running.pop(job.id, None)

    def execute(self, job: Job) -> Job:
        """Run a job claimed by this runner to its end and record the outcome on it."""
        work = {
            "train": self._train,
            "score": self._score,
            "decide": self._decide,
            "retrain-events": self._retrain_events,
        }.get(job.kind)
        state: dict[str, Any] = dict(job.progress)
        state.setdefault("log", [])
        with self._tracking(job):
            if work is None:
                error = f"unknown job kind {job.kind!r}"
                return self._finish(job, state, JobStatus.FAILED, error=error)
            update = self._updater(job, state)
            try:
                self._check_submitter(job)
                result = work(job, update)
            except Cancelled as exc:
                return self._finish(job, state, JobStatus.CANCELLED, error=str(exc))
            except _ShuttingDown:
                return self._finish(job, state, JobStatus.FAILED, error=SHUTDOWN_ERROR)
            except _Lost as exc:
                logger.warning("job %s stopped: %s", job.id, exc)
                return self.platform.metadata.get_job(job.workspace, job.id)
            except Exception as exc:
                logger.info("job %s failed: %s: %s", job.id, type(exc).__name__, exc)
                error = f"{type(exc).__name__}: {exc}"
                return self._finish(job, state, JobStatus.FAILED, error=error)
            state["done"] = state.get("total", state.get("done", 0))
            return self._finish(job, state, JobStatus.SUCCEEDED, result=result)

    def _check_submitter(self, job: Job) -> None:
        """Refuse a job whose submitter lost the role it needs since it was queued."""
        # Serving a retrain's result changes live traffic: the route asks an admin for it.
        promotes = job.kind == "retrain-events" and bool(job.payload.get("promote"))
        needed = Role.ADMIN if promotes else Role.DEVELOPER
        metadata = self.platform.metadata
        try:
            if metadata.get_user(job.created_by).is_admin:
                return
        except NotFound:
            pass  # no such user any more: no membership either
        membership = metadata.get_membership(job.workspace, job.created_by)
        if membership is None or not membership.role.allows(needed):
            have = membership.role.value if membership else "no role"
            raise PermissionDenied(
                f"{job.created_by!r} no longer has the {needed.value} role in workspace "
                f"{job.workspace!r} that this {job.kind} job needs (they have {have}); "
                "a workspace admin can restore it, then submit the job again"
            )

    def _score(self, job: Job, update: Callable[..., None]) -> dict[str, Any]:
        payload = job.payload
        platform = self.platform.as_user(job.created_by)

        def progress(done: int, total: int) -> None:
            update(done=done, total=total, message=f"scored {done} of {total} rows")

        update(message="started")
        scored, created = platform.score(
            job.workspace,
            payload["model"],
            payload["version"],
            payload["dataset"],
            dataset_version=payload.get("dataset_version"),
            output=payload.get("output"),
            progress=progress,
        )
        # written: a cancel that comes now is too late (the job ends succeeded)
        update(
            line=f"wrote {scored.dataset} v{scored.version} ({scored.num_rows} rows)", check=False
        )
        return {"dataset": scored.dataset, "version": scored.version, "created": created}

    def _decide(self, job: Job, update: Callable[..., None]) -> dict[str, Any]:
        payload = job.payload
        platform = self.platform.as_user(job.created_by)

        def progress(done: int, total: int) -> None:
            update(done=done, total=total, message=f"decided {done} of {total} rows")

        update(message="started")
        decided, created = platform.endpoints.decide_batch(
            job.workspace,
            payload["endpoint"],
            payload["dataset"],
            dataset_version=payload.get("dataset_version"),
            output=payload.get("output"),
            progress=progress,
        )
        # written: a cancel that comes now is too late (the job ends succeeded)
        update(
            line=f"wrote {decided.dataset} v{decided.version} ({decided.num_rows} rows)",
            check=False,
        )
        return {"dataset": decided.dataset, "version": decided.version, "created": created}

    def _retrain_events(self, job: Job, update: Callable[..., None]) -> dict[str, Any]:
        from leptonic.serving.recs_retrain import retrain_recommendation, settling_note

        payload = job.payload
        platform = self.platform.as_user(job.created_by)
        progress, echo = _training_callbacks(job, update)
        update(message="started")
        done = retrain_recommendation(
            platform,
            job.workspace,
            payload["endpoint"],
            min_new_events=payload["min_new_events"],
            promote=payload["promote"],
            reason=payload["reason"],
            progress=progress,
            echo=echo,
            run_id=job.run_id,
        )
        # done (maybe served already): a cancel that comes now is too late
        summary = done.summary()
        note = settling_note(summary)
        if done.outcome is None:
            update(
                line=f"{done.new_events} new event(s): fewer than asked, not retrained{note}",
                check=False,
            )
        else:
            update(
                line=f"run {done.outcome.run.id} on {done.new_events} new event(s){note}",
                check=False,
            )
        return summary

    def _train(self, job: Job, update: Callable[..., None]) -> dict[str, Any]:
        payload = job.payload
        platform = self.platform.as_user(job.created_by)
        progress, echo = _training_callbacks(job, update)
        update(message="started")
        outcome = platform.train(
            job.workspace,
            payload["dataset"],
            spec_from_stored(payload["spec"]),
            version=payload.get("version"),
            model_name=payload.get("model"),
            progress=progress,
            echo=echo,
            run_id=job.run_id,
        )
        mv = outcome.model_version
        return {
            "run_id": outcome.run.id,
            "model": mv.model if mv else None,
            "model_version": mv.version if mv else None,
        }

    def _updater(self, job: Job, state: dict[str, Any]) -> Callable[..., None]:
        """Record progress (and a heartbeat) on the job while it is still running here.

        With ``check``, stop the work when the server shuts down, when the job
        was cancelled, or when it is no longer this runner's (a sweep failed it).
        """
        metadata = self.platform.metadata
        what = f"run {job.run_id}" if job.run_id else f"{job.kind} job {job.id}"

        def update(line: str | None = None, *, check: bool = True, **changes: Any) -> None:
            if check and self._stopping.is_set():
                raise _ShuttingDown("the server is shutting down")
            state.update(changes)
            if line is not None:
                state["log"] = [*state["log"], line][-LOG_TAIL:]
            current = metadata.update_job_if(
                job.workspace,
                job.id,
                when_status=JobStatus.RUNNING,
                when_owner=self.instance_id,
                progress=dict(state),
                heartbeat_at=utcnow(),
            )
            if not check:
                return
            if current is None:
                raise _Lost(f"{what} is no longer running on this server (a sweep failed it)")
            if current.cancel_requested:
                raise Cancelled(f"{what} was cancelled on request")

        return update

    def _finish(
        self,
        job: Job,
        state: dict[str, Any],
        status: JobStatus,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> Job:
        """Record the job's end, unless it is no longer running here (then log and keep it)."""
        state["message"] = status.value
        now = utcnow()
        finished = self.platform.metadata.update_job_if(
            job.workspace,
            job.id,
            when_status=JobStatus.RUNNING,
            when_owner=self.instance_id,
            status=status,
            error=None if error is None else safe_text(error),  # recorded whatever it holds
            result=result or {},
            progress=dict(state),
            finished_at=now,
            heartbeat_at=now,
        )
        if finished is not None:
            if status in (JobStatus.FAILED, JobStatus.CANCELLED):
                record_unstarted_run(self.platform, finished)
            return finished
        current = self.platform.metadata.get_job(job.workspace, job.id)
        logger.warning(
            "job %s ended %s here, but it was %s meanwhile (%s); left as it is",
            job.id,
            status.value,
            current.status.value,
            current.error or "no error",
        )
        return current


def record_unstarted_run(platform: Platform, job: Job) -> None:
    """Give a training job that ended before its run was recorded (cancelled while
    queued, its submitter lost the role, the server shut down) a run record of that
    end, so that it is listed with the workspace's runs and found by its run id."""
    if job.kind != "train" or job.run_id is None or not job.status.finished:
        return
    store = platform.metadata
    if store.find_run_ids(job.workspace, job.run_id, limit=1):
        return
    try:
        store.create_run(
            run_of_job(job, RunStatus(job.status.value), error=job.error, at=job.finished_at)
        )
    except AlreadyExists:  # recorded meanwhile: its own end stands
        pass
    except Exception:  # the job's end is recorded; a missing stand-in is only logged
        logger.exception("could not record the run of job %s", job.id)


def run_of_job(
    job: Job, status: RunStatus, *, error: str | None = None, at: datetime | None = None
) -> Run:
    """The run a training job stands for, before (or without) a record of its own:
    its spec, seed, input dataset and submitter; ``at`` is when it ended."""
    payload = job.payload
    spec = dict(payload.get("spec") or {})
    dataset = ObjectRef(job.workspace, "dataset", payload["dataset"], payload["version"])
    return Run(
        id=job.run_id or "",
        workspace=job.workspace,
        status=status,
        spec=spec,
        seed=int(spec.get("seed", 0) or 0),
        inputs=(str(dataset),),
        error=error,
        created_by=job.created_by,
        created_at=job.created_at,
        finished_at=at,
    )


def _training_callbacks(
    job: Job, update: Callable[..., None]
) -> tuple[Callable[[int, int], None], Callable[[str], None]]:
    """The ``progress`` and ``echo`` a training run of ``job`` reports through."""

    def progress(done: int, total: int) -> None:
        update(done=done, total=total, message=f"trial {done} of {total}")

    def echo(line: str) -> None:
        # Called from the run's error handler too: it must never raise.
        try:
            update(line=line, check=False)
        except Exception:
            logger.exception("could not record a log line of job %s", job.id)

    return progress, echo
