"""Endpoints through the REST API: ``Client(...).endpoints`` has the methods of
``Platform(...).endpoints`` (:class:`~leptonic.serving.service.EndpointService`)
that the API serves."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leptonic.core.dataset import DatasetVersion
from leptonic.core.endpoint import Alert, Endpoint, PolicyVersion, Prediction
from leptonic.core.job import Job
from leptonic.errors import NotFound

if TYPE_CHECKING:
    from leptonic.sdk import Client

__all__ = ["RemoteEndpoints"]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


class RemoteEndpoints:
    """The endpoints of a Leptonic server, as the client's user.

    The methods of :class:`~leptonic.serving.service.EndpointService` with the same
    arguments, where the API has a route for them. The differences:

    - ``feedback`` returns how many outcomes were recorded, not the records;
    - ``retrain`` queues a job (follow it with ``client.wait_for_job``) and takes no
      ``canary_percent``: start the canary with :meth:`canary` once the job has
      registered the new version; a recommendation endpoint's retrain on its events
      (``retrain_from_events`` locally) is ``retrain`` too;
    - ``decide_batch`` runs as a job on the server and waits for it;
    - ``set_routes`` has no route: change traffic with :meth:`canary`,
      :meth:`deploy`, :meth:`promote` and :meth:`rollback`;
    - ``baseline``, ``retrain_plan`` and ``audit_retrain`` are the server's own steps
      and have no route.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def _path(self, workspace: str, name: str | None = None) -> str:
        from leptonic.sdk import _q

        base = f"/workspaces/{_q(workspace, 'workspace')}/endpoints"
        return base if name is None else f"{base}/{_q(name, 'name')}"

    def _endpoint(self, data: dict[str, Any]) -> Endpoint:
        from leptonic.sdk import _record

        return _record(Endpoint, data)

    def create(
        self,
        workspace: str,
        name: str,
        model: str,
        version: int,
        *,
        policy: Mapping[str, Any] | None = None,
        entity_key: str | None = None,
        description: str = "",
    ) -> Endpoint:
        body = {
            "name": name,
            "model": model,
            "version": version,
            "policy": dict(policy) if policy is not None else None,
            "entity_key": entity_key,
            "description": description,
        }
        return self._endpoint(self._client._json("POST", self._path(workspace), json=body))

    def get(self, workspace: str, name: str) -> Endpoint:
        return self._endpoint(self._client._json("GET", self._path(workspace, name)))

    def list_endpoints(self, workspace: str) -> list[Endpoint]:
        return [self._endpoint(d) for d in self._client._all(self._path(workspace))]

    def canary(
        self, workspace: str, name: str, model: str, version: int, percent: float, *, reason: str
    ) -> Endpoint:
        body = {"model": model, "version": version, "percent": percent, "reason": reason}
        path = self._path(workspace, name) + "/canary"
        return self._endpoint(self._client._json("POST", path, json=body))

    def deploy(
        self, workspace: str, name: str, model: str, version: int, *, reason: str
    ) -> Endpoint:
        body = {"model": model, "version": version, "reason": reason}
        path = self._path(workspace, name) + "/deploy"
        return self._endpoint(self._client._json("POST", path, json=body))

    def prune(self, workspace: str, name: str, *, older_than_days: float, reason: str) -> int:
        """Delete the predictions logged more than ``older_than_days`` days ago (and
        their outcomes); returns how many were deleted."""
        body = {"older_than_days": older_than_days, "reason": reason}
        path = self._path(workspace, name) + "/predictions/prune"
        return int(self._client._json("POST", path, json=body)["deleted"])

    def promote(self, workspace: str, name: str, *, reason: str) -> Endpoint:
        path = self._path(workspace, name) + "/promote"
        return self._endpoint(self._client._json("POST", path, json={"reason": reason}))

    def rollback(self, workspace: str, name: str, *, reason: str) -> Endpoint:
        path = self._path(workspace, name) + "/rollback"
        return self._endpoint(self._client._json("POST", path, json={"reason": reason}))

    def set_shadow(
        self, workspace: str, name: str, model: str | None, version: int | None, *, reason: str
    ) -> Endpoint:
        body = {"model": model, "version": version, "reason": reason}
        path = self._path(workspace, name) + "/shadow"
        return self._endpoint(self._client._json("PUT", path, json=body))

    def set_policy(
        self, workspace: str, name: str, spec: Mapping[str, Any], *, reason: str
    ) -> PolicyVersion:
        from leptonic.sdk import _record

        path = self._path(workspace, name) + "/policies"
        data = self._client._json("POST", path, json={"spec": dict(spec), "reason": reason})
        return _record(PolicyVersion, data)

    def policies(self, workspace: str, name: str) -> list[PolicyVersion]:
        from leptonic.sdk import _record

        path = self._path(workspace, name) + "/policies"
        return [_record(PolicyVersion, d) for d in self._client._all(path)]

    def policy(self, workspace: str, name: str, version: int | None = None) -> PolicyVersion:
        """A policy version of the endpoint (the active one when ``version`` is None)."""
        if version is None:
            version = self.get(workspace, name).policy_version
        for policy in self.policies(workspace, name):
            if policy.version == version:
                return policy
        raise NotFound(
            f"endpoint {name!r} in workspace {workspace!r} has no policy version {version}",
            field="version",
        )

    def decide(self, workspace: str, name: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """One decision from the endpoint served inside the server."""
        path = self._path(workspace, name) + "/decide"
        answer: dict[str, Any] = self._client._json("POST", path, json=dict(record))
        return answer

    def feedback(self, workspace: str, name: str, payload: Any) -> int:
        """Post outcomes; returns how many were recorded."""
        path = self._path(workspace, name) + "/feedback"
        return int(self._client._json("POST", path, json=payload)["recorded"])

    def predictions(
        self,
        workspace: str,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        route: str | None = "live",
        limit: int = 100,
        offset: int = 0,
        raw: bool = False,
    ) -> list[Prediction]:
        """The prediction log, newest first (``route`` None: both routes); a text
        endpoint's kept texts as hashes unless ``raw`` (which needs the raw_pii grant)."""
        from leptonic.sdk import _record

        path = self._path(workspace, name) + "/predictions"
        params: dict[str, Any] = {
            "route": "all" if route is None else route,
            "since": _iso(since),
            "until": _iso(until),
            **({"raw": "true"} if raw else {}),
        }
        items = self._client._page(path, limit, offset, **params)
        return [_record(Prediction, d, workspace=workspace, endpoint=name) for d in items]

    def monitor(
        self,
        workspace: str,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        last: int | None = None,
        rules: Mapping[str, Any] | None = None,
        webhook: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "since": _iso(since),
            "until": _iso(until),
            "last": last,
            "rules": dict(rules) if rules is not None else None,
            "webhook": webhook,
        }
        result: dict[str, Any] = self._client._json(
            "POST", self._path(workspace, name) + "/monitor", json=body
        )
        return result

    def monitor_report(self, workspace: str, name: str) -> str:
        path = self._path(workspace, name) + "/monitor/report"
        return self._client._send("GET", path).text

    def alerts(
        self,
        workspace: str,
        name: str,
        *,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Alert]:
        from leptonic.sdk import _record

        path = self._path(workspace, name) + "/alerts"
        items = self._client._page(path, limit, offset, status=status)
        return [_record(Alert, d) for d in items]

    def set_alert_status(self, workspace: str, name: str, alert_id: int, status: str) -> Alert:
        from leptonic.sdk import _record

        path = self._path(workspace, name) + f"/alerts/{int(alert_id)}"
        return _record(Alert, self._client._json("POST", path, json={"status": status}))

    def recalibrate(
        self,
        workspace: str,
        name: str,
        *,
        target_approval_rate: float | None = None,
        target_bad_rate: float | None = None,
        since: datetime | None = None,
        last: int | None = None,
        reason: str,
    ) -> PolicyVersion:
        from leptonic.sdk import _record

        body = {
            "target_approval_rate": target_approval_rate,
            "target_bad_rate": target_bad_rate,
            "since": _iso(since),
            "last": last,
            "reason": reason,
        }
        path = self._path(workspace, name) + "/recalibrate"
        return _record(PolicyVersion, self._client._json("POST", path, json=body))

    def retrain(
        self,
        workspace: str,
        name: str,
        *,
        dataset: str | None = None,
        dataset_version: int | None = None,
        model: str | None = None,
        min_new_events: int = 1,
        promote: bool = True,
        reason: str = "retrain",
    ) -> Job:
        """Queue retraining; follow it with ``client.wait_for_job``. A recommendation
        endpoint retrains on its data plus its new events (``min_new_events``, ``promote``)."""
        from leptonic.sdk import _record

        body = {
            "dataset": dataset,
            "dataset_version": dataset_version,
            "model": model,
            "min_new_events": min_new_events,
            "promote": promote,
            "reason": reason,
        }
        path = self._path(workspace, name) + "/retrain"
        return _record(Job, self._client._json("POST", path, json=body))

    def decide_batch(
        self,
        workspace: str,
        name: str,
        dataset: str,
        *,
        dataset_version: int | None = None,
        output: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        poll: float = 1.0,
    ) -> tuple[DatasetVersion, bool]:
        """Decide every row of a dataset version with the endpoint's primary version and
        policy into a new dataset version (default ``<dataset>-decisions``): a job on the
        server, waited for here; ``(version written, created)``.

        ``progress`` is called with ``(rows done, rows in all)`` as the job reports
        them; a job that fails raises the error it recorded.
        """
        from leptonic.sdk import _record, _recorded_error

        body = {"dataset": dataset, "dataset_version": dataset_version, "output": output}
        path = self._path(workspace, name) + "/batch"
        job = _record(Job, self._client._json("POST", path, json=body))
        while not job.status.finished:
            time.sleep(poll)
            job = self._client.get_job(workspace, job.id)
            if progress is not None and job.progress.get("total"):
                progress(int(job.progress.get("done", 0)), int(job.progress["total"]))
        if job.status.value != "succeeded":
            raise _recorded_error(f"batch decisions job {job.id}", job.status.value, job.error)
        written = self._client.dataset_version(
            workspace, job.result["dataset"], job.result["version"]
        )
        return written, bool(job.result.get("created", True))
