"""Endpoints: deploy, traffic (canary, promote, rollback, shadow), decision
policies, decisions, outcomes, the prediction log, monitoring and alerts.

Roles: viewers read; developers ask for decisions, deploy endpoints, set
shadows, post outcomes, run monitoring checks and start retraining (all of
which write);
changes to what live traffic gets (canary, promote, rollback, policy,
recalibration) and deleting old predictions need the admin role, like promoting a
model to production.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from leptonic.api import jobs
from leptonic.api.auth import Developer, Viewer, WorkspaceAdmin
from leptonic.api.endpoint_schemas import (
    AlertOut,
    AlertStatusIn,
    CanaryIn,
    DeployIn,
    EndpointIn,
    EndpointOut,
    MonitorIn,
    PolicyIn,
    PolicyOut,
    PredictionOut,
    PruneIn,
    ReasonIn,
    RecalibrateIn,
    RetrainIn,
    ShadowIn,
)
from leptonic.api.schemas import (
    JobOut,
    Limit,
    Offset,
    Page,
    ScoreRequest,
    page_of,
    probe_page,
)
from leptonic.core.access import Role
from leptonic.errors import InvalidInput, PermissionDenied
from leptonic.serving.requests import parse_json

__all__ = ["router"]

router = APIRouter(tags=["endpoints"])

_BASE = "/workspaces/{ws}/endpoints"
_ONE = _BASE + "/{name}"


@router.get(_BASE, response_model=Page[EndpointOut])
def list_endpoints(scope: Viewer, limit: Limit = 50, offset: Offset = 0) -> object:
    items = scope.platform.endpoints.list_endpoints(scope.workspace)
    return page_of(items, limit, offset, EndpointOut.model_validate)


@router.post(_BASE, response_model=EndpointOut, status_code=status.HTTP_201_CREATED)
def create_endpoint(scope: Developer, body: EndpointIn) -> object:
    """Deploy a binary model version behind a new endpoint, with a decision policy."""
    endpoint = scope.platform.endpoints.create(
        scope.workspace,
        body.name,
        body.model,
        body.version,
        policy=body.policy,
        entity_key=body.entity_key,
        description=body.description,
    )
    return EndpointOut.model_validate(endpoint)


@router.get(_ONE, response_model=EndpointOut)
def get_endpoint(scope: Viewer, name: str) -> object:
    return EndpointOut.model_validate(scope.platform.endpoints.get(scope.workspace, name))


@router.post(_ONE + "/canary", response_model=EndpointOut)
def canary(scope: WorkspaceAdmin, name: str, body: CanaryIn) -> object:
    """Send a percentage of entities (sticky by the entity key) to another version."""
    endpoint = scope.platform.endpoints.canary(
        scope.workspace, name, body.model, body.version, body.percent, reason=body.reason
    )
    return EndpointOut.model_validate(endpoint)


@router.post(_ONE + "/deploy", response_model=EndpointOut)
def deploy(scope: WorkspaceAdmin, name: str, body: DeployIn) -> object:
    """Serve one version to all traffic at once (a text or recommendation endpoint's new
    version; a decision endpoint without a canary). Rollback undoes it."""
    endpoint = scope.platform.endpoints.deploy(
        scope.workspace, name, body.model, body.version, reason=body.reason
    )
    return EndpointOut.model_validate(endpoint)


@router.post(_ONE + "/promote", response_model=EndpointOut)
def promote(scope: WorkspaceAdmin, name: str, body: ReasonIn) -> object:
    """Make the canary the primary at 100 %."""
    endpoint = scope.platform.endpoints.promote(scope.workspace, name, reason=body.reason)
    return EndpointOut.model_validate(endpoint)


@router.post(_ONE + "/rollback", response_model=EndpointOut)
def rollback(scope: WorkspaceAdmin, name: str, body: ReasonIn) -> object:
    """Drop the canary, or undo the last promotion."""
    endpoint = scope.platform.endpoints.rollback(scope.workspace, name, reason=body.reason)
    return EndpointOut.model_validate(endpoint)


@router.put(_ONE + "/shadow", response_model=EndpointOut)
def shadow(scope: Developer, name: str, body: ShadowIn) -> object:
    """Score a version in the shadow of live traffic (logged, never returned)."""
    endpoint = scope.platform.endpoints.set_shadow(
        scope.workspace, name, body.model, body.version, reason=body.reason
    )
    return EndpointOut.model_validate(endpoint)


@router.get(_ONE + "/policies", response_model=Page[PolicyOut])
def list_policies(scope: Viewer, name: str, limit: Limit = 50, offset: Offset = 0) -> object:
    items = scope.platform.endpoints.policies(scope.workspace, name)
    return page_of(items, limit, offset, PolicyOut.model_validate)


@router.post(_ONE + "/policies", response_model=PolicyOut, status_code=status.HTTP_201_CREATED)
def set_policy(scope: WorkspaceAdmin, name: str, body: PolicyIn) -> object:
    """Store and activate a new decision policy version."""
    policy = scope.platform.endpoints.set_policy(
        scope.workspace, name, body.spec, reason=body.reason
    )
    return PolicyOut.model_validate(policy)


@router.post(
    _ONE + "/decide",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def decide(request: Request, scope: Developer, name: str) -> Response:
    """One decision from the endpoint served inside this server (the same
    runtime as ``leptonic endpoint serve``): the body is one record of the
    model's input fields."""
    hosts = request.app.state.endpoint_hosts
    host = await run_in_threadpool(hosts.get, scope.workspace, name)
    body = await _read_body(request)
    runtime = host.runtime
    payload, record = runtime.decide_json(body)
    if runtime.shadow is None:
        return Response(payload, media_type="application/json")
    request_id = orjson.loads(payload)["request_id"]

    async def score_shadow() -> None:
        # after the answer is sent, on the event loop as the decision was; a failure
        # is logged with the request id and counted (the host's /health), never raised
        runtime.score_shadow(record, request_id)

    return Response(payload, media_type="application/json", background=BackgroundTask(score_shadow))


@router.post(
    _ONE + "/feedback",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {}}},
        }
    },
)
async def feedback(request: Request, scope: Developer, name: str) -> dict[str, int]:
    """Outcomes: ``{"request_id" | "entity", "label": 0|1, "at"?}`` or a list of them."""
    payload = parse_json(await _read_body(request))
    # decisions served here may still wait in the log writer: write them first
    await run_in_threadpool(request.app.state.endpoint_hosts.log.flush)
    stored = await run_in_threadpool(
        scope.platform.endpoints.feedback, scope.workspace, name, payload
    )
    return {"recorded": len(stored)}


@router.get(_ONE + "/predictions", response_model=Page[PredictionOut])
def predictions(
    scope: Viewer,
    name: str,
    route: Annotated[str, Query(pattern="^(live|shadow|all)$")] = "live",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    raw: bool = False,
) -> object:
    """The prediction log, newest first (of one route, or ``all``; logged from ``since``
    to before ``until``): inputs masked as logged, and the texts a text endpoint keeps
    shown as their salted hash unless ``raw`` (which needs the raw_pii grant)."""
    if raw and not scope.raw_pii:
        raise PermissionDenied(
            f"raw personal data in {scope.workspace!r} needs the raw_pii grant; "
            "ask a workspace admin, or drop raw=true to see logged texts as hashes",
            field="raw",
        )
    items = scope.platform.endpoints.predictions(
        scope.workspace,
        name,
        since=since,
        until=until,
        route=None if route == "all" else route,
        limit=limit + 1,
        offset=offset,
        raw=raw,
    )
    return probe_page(items, limit, offset, PredictionOut.model_validate)


@router.post(_ONE + "/predictions/prune")
def prune(scope: WorkspaceAdmin, name: str, body: PruneIn) -> dict[str, int]:
    """Delete the predictions logged more than ``older_than_days`` days ago, with their
    outcomes (the log's retention)."""
    deleted = scope.platform.endpoints.prune(
        scope.workspace, name, older_than_days=body.older_than_days, reason=body.reason
    )
    return {"deleted": deleted}


@router.post(_ONE + "/monitor")
def monitor(scope: Developer, name: str, body: MonitorIn) -> dict[str, Any]:
    """Check drift (PSI) and performance on outcomes over a window; raise alerts."""
    return scope.platform.endpoints.monitor(
        scope.workspace,
        name,
        since=body.since,
        until=body.until,
        last=body.last,
        rules=body.rules,
        webhook=body.webhook,
    )


@router.get(_ONE + "/monitor/report", response_class=HTMLResponse)
def monitor_report(scope: Viewer, name: str) -> HTMLResponse:
    """A self-contained HTML page: drift and performance over time, with plots."""
    html = scope.platform.endpoints.monitor_report(scope.workspace, name)
    return HTMLResponse(html)


@router.get(_ONE + "/alerts", response_model=Page[AlertOut])
def alerts(
    scope: Viewer,
    name: str,
    state: Annotated[
        str | None, Query(alias="status", pattern="^(open|acknowledged|resolved)$")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> object:
    items = scope.platform.endpoints.alerts(
        scope.workspace, name, status=state, limit=limit + 1, offset=offset
    )
    return probe_page(items, limit, offset, AlertOut.model_validate)


@router.post(_ONE + "/alerts/{alert_id}", response_model=AlertOut)
def set_alert(scope: Developer, name: str, alert_id: int, body: AlertStatusIn) -> object:
    alert = scope.platform.endpoints.set_alert_status(scope.workspace, name, alert_id, body.status)
    return AlertOut.model_validate(alert)


@router.post(_ONE + "/recalibrate", response_model=PolicyOut, status_code=status.HTTP_201_CREATED)
def recalibrate(scope: WorkspaceAdmin, name: str, body: RecalibrateIn) -> object:
    """Move the approve threshold to hit a target approval or bad rate (a new policy version)."""
    policy = scope.platform.endpoints.recalibrate(
        scope.workspace,
        name,
        target_approval_rate=body.target_approval_rate,
        target_bad_rate=body.target_bad_rate,
        since=body.since,
        last=body.last,
        reason=body.reason,
    )
    return PolicyOut.model_validate(policy)


@router.post(_ONE + "/retrain", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
def retrain(request: Request, scope: Developer, name: str, body: RetrainIn) -> object:
    """Queue training of the primary's spec on the newest data; the result is a candidate
    version to put on canary. A recommendation endpoint retrains on its data plus the
    events it received since, and (with ``promote``) serves the result."""
    platform = scope.platform
    primary = platform.endpoints.get(scope.workspace, name).routes[0]
    if platform.model_version(scope.workspace, primary.model, primary.version).task == (
        "recommendation"
    ):
        given = [f for f in ("dataset", "dataset_version", "model") if getattr(body, f)]
        if given:
            raise InvalidInput(
                "a recommendation endpoint retrains on its own data and events: leave out "
                + ", ".join(given),
                field=given[0],
            )
        if body.promote:
            scope.require(Role.ADMIN)  # serving the result changes live traffic
        job = jobs.submit_event_retrain(
            platform,
            scope.workspace,
            name,
            min_new_events=body.min_new_events,
            promote=body.promote,
            reason=body.reason,
        )
        request.app.state.runner.wake()
        return JobOut.model_validate(job)
    plan = scope.platform.endpoints.retrain_plan(
        scope.workspace,
        name,
        dataset=body.dataset,
        dataset_version=body.dataset_version,
        model=body.model,
    )
    job = jobs.submit_training(
        scope.platform,
        scope.workspace,
        plan.dataset,
        plan.spec,
        version=plan.dataset_version,
        model_name=plan.model,
    )
    platform.endpoints.audit_retrain(
        scope.workspace, name, plan, job.run_id, body.reason, job=job.id
    )
    request.app.state.runner.wake()
    return JobOut.model_validate(job)


@router.post(_ONE + "/batch", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED)
def batch(request: Request, scope: Developer, name: str, body: ScoreRequest) -> object:
    """Queue decisions (policy and reason codes) for every row of a dataset version,
    streamed into a new dataset version (default ``<dataset>-decisions``)."""
    job = jobs.submit_decisions(
        scope.platform,
        scope.workspace,
        name,
        body.dataset,
        dataset_version=body.dataset_version,
        output=body.output,
    )
    request.app.state.runner.wake()
    return JobOut.model_validate(job)


async def _read_body(request: Request, limit: int = 1024 * 1024) -> bytes:
    from leptonic.api.errors import PayloadTooLarge

    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)
