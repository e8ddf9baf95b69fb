"""Python client for the Leptonic REST API.

:class:`Client` mirrors the methods of :class:`~leptonic.platform.Platform`
(same names, same records back, same errors raised), so code written against
a local platform runs against a server too. Errors come back as the
:mod:`leptonic.errors` class named by the response's ``code``.

Examples
--------
>>> import leptonic
>>> with leptonic.Client("http://127.0.0.1:8000", token) as lp:  # doctest: +SKIP
...     version, _ = lp.add_data("credit-risk", "applicants.csv", target="default")
...     run = lp.train("credit-risk", "applicants", leptonic.TrainSpec(target="default"))
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import time
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
import pyarrow as pa

from leptonic import errors
from leptonic._sdk_endpoints import RemoteEndpoints
from leptonic.config import Settings
from leptonic.core.access import ApiToken, Membership, User
from leptonic.core.audit import AuditEvent
from leptonic.core.dataset import Dataset, DatasetVersion
from leptonic.core.job import Job
from leptonic.core.model_version import Model, ModelVersion, StageTransition
from leptonic.core.run import Run
from leptonic.core.uri import ObjectRef
from leptonic.core.workspace import Workspace
from leptonic.tasks.spec import TrainSpec

if typing.TYPE_CHECKING:
    from leptonic.tasks.recsys.spec import RecommenderSpec
    from leptonic.tasks.textcls.spec import TextClassificationSpec

#: A training spec of any task.
AnySpec = typing.Union[TrainSpec, "RecommenderSpec", "TextClassificationSpec"]

__all__ = ["Client", "RunFailed"]

R = TypeVar("R")


class RunFailed(errors.LeptonicError, RuntimeError):
    """A run on the server failed with an error that is no :mod:`leptonic.errors` class
    (its message holds the run id and the error the server recorded)."""


def _q(segment: str, what: str = "name") -> str:
    """``segment`` escaped for one URL path segment (no ``/`` or ``..`` tricks).

    ``what`` is the argument it came from, named in the error for an empty
    segment or ``.`` / ``..`` (which URL handling would drop, reaching another route).
    """
    text = str(segment)
    if not text:  # "/workspaces/" is another route (or a redirect), not this one
        raise errors.InvalidInput(f"{what} is empty; give a name or id", field=what)
    if text in (".", ".."):  # dropped from the path: /runs/.. would be the workspace itself
        raise errors.InvalidInput(
            f"{what} {text!r} is not a name or id (it would name another path of the API); "
            "give the real one",
            field=what,
        )
    return quote(text, safe="")


def _ws(workspace: str) -> str:
    """The API path of ``workspace``."""
    return f"/workspaces/{_q(workspace, 'workspace')}"


def _bearer(token: str | None) -> str | None:
    """``token`` without surrounding whitespace (a copied line's newline); None if empty.

    Raises :class:`~leptonic.errors.InvalidInput` for whitespace or a non-ASCII
    character inside it: no HTTP header can carry it, and no token has one.
    """
    if token is None:
        return None
    text = token.strip()
    bad = next((c for c in text if not "!" <= c <= "~"), None)
    if bad is not None:
        raise errors.InvalidInput(
            f"the API token holds {bad!r}, which no token has (tokens are printable ASCII, "
            "lep_...); give it exactly as `leptonic tokens create` printed it",
            field="token",
        )
    return text or None


def _recorded_error(what: str, status: str, recorded: str | None) -> errors.LeptonicError:
    """The error a failed or cancelled run or job recorded (``"TargetError: ..."``) as
    its :mod:`leptonic.errors` class (:class:`RunFailed` for any other), the message
    starting with ``what`` (``run <id>``) and ``status``."""
    text = recorded or ""
    name, sep, message = text.partition(": ")
    cls: Any = getattr(errors, name, None) if sep and name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, errors.LeptonicError)):
        cls = errors.Cancelled if status == "cancelled" else RunFailed
        message = text or "no error was recorded; see its log"
    exc = cls.__new__(cls)
    errors.LeptonicError.__init__(exc, f"{what} {status}: {message}")
    return exc


def _run_error(run: Run) -> errors.LeptonicError:
    """The error a run that did not succeed recorded, with the run id in the message."""
    return _recorded_error(f"run {run.id}", run.status.value, run.error)


#: Bytes per chunk of a streamed upload.
UPLOAD_CHUNK = 1024 * 1024

#: The largest data contract an upload carries, as JSON (the server's limit).
MAX_CONTRACT_BYTES = 1024 * 1024

#: The longest contract sent as the ``contract`` query parameter (longer: a form field).
MAX_CONTRACT_PARAM = 8192


def _form(boundary: str, contract: bytes, file: Iterator[bytes]) -> Iterator[bytes]:
    """A ``multipart/form-data`` upload of ``contract`` and ``file``, streamed."""
    mark = f"--{boundary}\r\n".encode("ascii")
    yield mark + b'Content-Disposition: form-data; name="contract"\r\n'
    yield b"Content-Type: application/json\r\n\r\n" + contract + b"\r\n" + mark
    yield b'Content-Disposition: form-data; name="file"; filename="upload"\r\n'
    yield b"Content-Type: application/octet-stream\r\n\r\n"
    yield from file
    yield f"\r\n--{boundary}--\r\n".encode("ascii")


#: The largest page the server gives (``leptonic.api.schemas.MAX_PAGE``).
MAX_PAGE = 500

_BY_STATUS: dict[int, type[errors.LeptonicError]] = {
    401: errors.Unauthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.InvalidInput,
    422: errors.InvalidInput,
    501: errors.MissingExtra,
    503: errors.StoreError,
}


def _error_classes(base: type[errors.LeptonicError]) -> dict[str, type[errors.LeptonicError]]:
    found = {base.code: base}
    for sub in base.__subclasses__():
        for code, cls in _error_classes(sub).items():
            found.setdefault(code, cls)  # a subclass without its own code maps to its parent
    return found


def _error(response: httpx.Response) -> errors.LeptonicError:
    """The domain error a failed response stands for."""
    try:
        body = response.json()["error"]
        code, message, field = str(body["code"]), str(body["message"]), body.get("field")
    except (ValueError, KeyError, TypeError):
        code, field = "", None
        message = f"HTTP {response.status_code} from {response.url}: {response.text[:200]}"
    cls = _error_classes(errors.LeptonicError).get(code)
    if cls is None:
        cls = _BY_STATUS.get(response.status_code, errors.LeptonicError)
    exc = cls.__new__(cls)
    errors.LeptonicError.__init__(exc, message, field=field)
    return exc


def _decode(tp: Any, value: Any) -> Any:
    """``value`` (from JSON) as type ``tp``: datetimes, enums, tuples and records."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return tuple(_decode(item, v) for v in value)
    if tp is datetime:
        return datetime.fromisoformat(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _record(tp, value)
    return value


def _record(cls: type[R], data: dict[str, Any], **extra: Any) -> R:
    """A frozen record of type ``cls`` from its JSON form (fields the API omits: empty)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = dict(extra)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in kwargs:
            continue
        if f.name in data:
            kwargs[f.name] = _decode(hints[f.name], data[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = ""
    return cls(**kwargs)


class Client:
    """A Leptonic server, with the methods of :class:`~leptonic.platform.Platform`.

    Parameters
    ----------
    url
        The server's base URL (``http://host:8000``).
    token
        An API token (``lep_...``).
    transport
        An httpx transport (tests pass one that reaches an in-process app).
    timeout
        Seconds to wait for each response.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        secret = _bearer(token)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, transport=transport, timeout=timeout
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Client:
        """The server named by ``LEPTONIC_URL``, with ``LEPTONIC_TOKEN``."""
        if not settings.url:
            raise errors.ConfigError("LEPTONIC_URL is not set: point it at a Leptonic server")
        return cls(settings.url, settings.token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def endpoints(self) -> RemoteEndpoints:
        """Real-time decision endpoints (the methods of ``Platform.endpoints``)."""
        return RemoteEndpoints(self)

    # -- plumbing ---------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        params = kwargs.pop("params", None)
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout) or method == "GET":
                raise errors.StoreError(
                    f"the Leptonic server at {self.url} did not answer in time ({exc}); try again"
                ) from exc
            # sent, unanswered: the server may have done it; resending could do it twice
            raise errors.StoreError(
                f"the Leptonic server at {self.url} did not answer {method} {path} in time; "
                "it may have been carried out: check (list the runs, jobs or versions) "
                "before sending it again"
            ) from exc
        except httpx.TransportError as exc:
            raise errors.StoreError(
                f"cannot reach the Leptonic server at {self.url}: {exc}; "
                "is `leptonic server` running there?"
            ) from exc
        if response.status_code >= 400:
            raise _error(response)
        if not 200 <= response.status_code < 300:  # a redirect: not an answer of this API
            raise errors.StoreError(
                f"the Leptonic server at {self.url} answered {method} {path} with HTTP "
                f"{response.status_code}; check LEPTONIC_URL (it names the server, e.g. "
                "http://host:8000)"
            )
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def _all(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        offset: int | None = 0
        while offset is not None:
            page = self._json("GET", path, params={**params, "limit": 500, "offset": offset})
            yield from page["items"]
            offset = page["next_offset"]

    def _page(self, path: str, limit: int, offset: int, **params: Any) -> list[dict[str, Any]]:
        """``limit`` items from ``offset``, in pages of at most 500 (the server's largest)."""
        for name, value in (("limit", limit), ("offset", offset)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise errors.InvalidInput(
                    f"{name} must be a whole number >= 0, got {value!r}", field=name
                )
        items: list[dict[str, Any]] = []
        next_offset: int | None = offset
        while next_offset is not None and len(items) < limit:
            size = min(MAX_PAGE, limit - len(items))
            page = self._json("GET", path, params={**params, "limit": size, "offset": next_offset})
            items.extend(page["items"])
            next_offset = page["next_offset"] if page["items"] else None
        return items[:limit]

    # -- caller, users, tokens, roles ---------------------------------------------
    def me(self) -> tuple[User, list[Membership]]:
        """The caller and their roles."""
        data = self._json("GET", "/me")
        return _record(User, data["user"]), [_record(Membership, m) for m in data["memberships"]]

    def create_user(self, name: str, *, admin: bool = False, display_name: str = "") -> User:
        body = {"name": name, "admin": admin, "display_name": display_name}
        return _record(User, self._json("POST", "/users", json=body))

    def list_users(self) -> list[User]:
        return [_record(User, u) for u in self._all("/users")]

    def create_token(
        self, user: str, name: str = "default", *, expires_in_days: float | None = None
    ) -> tuple[ApiToken, str]:
        """A new token of ``user``: ``(record, secret)``; the secret is shown only now."""
        body = {"name": name, "expires_in_days": expires_in_days}
        data = self._json("POST", f"/users/{_q(user, 'user')}/tokens", json=body)
        return _record(ApiToken, data), data["secret"]

    def list_tokens(self, user: str) -> list[ApiToken]:
        return [_record(ApiToken, t) for t in self._all(f"/users/{_q(user, 'user')}/tokens")]

    def revoke_token(self, token_id: str) -> ApiToken:
        return _record(ApiToken, self._json("DELETE", f"/tokens/{_q(token_id, 'token_id')}"))

    def set_member(
        self, workspace: str, user: str, role: str, *, raw_pii: bool = False
    ) -> Membership:
        body = {"role": str(role), "raw_pii": raw_pii}
        data = self._json("PUT", f"{_ws(workspace)}/members/{_q(user, 'user')}", json=body)
        return _record(Membership, data)

    def remove_member(self, workspace: str, user: str) -> None:
        self._send("DELETE", f"{_ws(workspace)}/members/{_q(user, 'user')}")

    def memberships(self, *, workspace: str) -> list[Membership]:
        """The members of ``workspace``."""
        return [_record(Membership, m) for m in self._all(f"{_ws(workspace)}/members")]

    def audit_log(
        self,
        *,
        workspace: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AuditEvent]:
        """Audit events, newest first."""
        params = {"workspace": workspace, "actor": actor, "action": action}
        return [_record(AuditEvent, e) for e in self._page("/audit", limit, offset, **params)]

    # -- workspaces -----------------------------------------------------------------
    def create_workspace(self, name: str, description: str = "") -> Workspace:
        data = self._json("POST", "/workspaces", json={"name": name, "description": description})
        return _record(Workspace, data, pii_salt="")

    def list_workspaces(self) -> list[Workspace]:
        return [_record(Workspace, w, pii_salt="") for w in self._all("/workspaces")]

    def get_workspace(self, name: str) -> Workspace:
        return _record(Workspace, self._json("GET", f"/workspaces/{_q(name, 'name')}"), pii_salt="")

    # -- data -------------------------------------------------------------------------
    def add_data(
        self,
        workspace: str,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        target: str | None = None,
        fmt: str | None = None,
        delimiter: str | None = None,
        encoding: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        contract: str | os.PathLike[str] | None = None,
        description: str = "",
    ) -> tuple[DatasetVersion, bool]:
        """Upload a file (streamed in chunks) as a new version; ``(version, created)``.

        ``progress`` is called with ``(0, bytes sent so far)``; ``contract`` is
        a contract file (TOML or JSON), checked here and sent with the upload (a
        form field, at most :data:`MAX_CONTRACT_BYTES` as JSON).
        """
        from leptonic.governance.schema import load_contract
        from leptonic.platform import _default_dataset_name

        declared = None
        if contract is not None:
            declared = json.dumps(load_contract(contract).to_dict()).encode("utf-8")
            if len(declared) > MAX_CONTRACT_BYTES:
                raise errors.InvalidInput(
                    f"the contract {contract} is {len(declared)} bytes as JSON, more than the "
                    f"{MAX_CONTRACT_BYTES} (1 MiB) an upload carries; declare the columns that "
                    "need it and let the rest be inferred",
                    field="contract",
                )
        source = Path(path)
        if not source.is_file():
            raise errors.DataError(f"{source}: no such file", field="path")
        dataset = name or _default_dataset_name(source)
        self.get_workspace(workspace)  # a missing workspace is said before the upload

        def chunks() -> Iterator[bytes]:
            sent = 0
            with source.open("rb") as f:
                while chunk := f.read(UPLOAD_CHUNK):
                    sent += len(chunk)
                    yield chunk
                    if progress is not None:
                        progress(0, sent)

        params = {
            "target": target,
            "format": fmt,
            "delimiter": delimiter,
            "encoding": encoding,
            "filename": source.name,
            "description": description or None,
        }
        body: Iterator[bytes] = chunks()
        content_type = "application/octet-stream"
        if declared is not None and len(declared) <= MAX_CONTRACT_PARAM:
            params["contract"] = declared.decode("utf-8")  # what every server version reads
        elif declared is not None:  # a form: the contract field, then the file
            boundary = uuid.uuid4().hex
            body = _form(boundary, declared, body)
            content_type = f"multipart/form-data; boundary={boundary}"
        data = self._json(
            "POST",
            f"{_ws(workspace)}/datasets/{_q(dataset, 'dataset')}/versions",
            params=params,
            content=body,
            headers={"Content-Type": content_type},
        )
        return _record(DatasetVersion, data["version"]), bool(data["created"])

    def list_datasets(self, workspace: str) -> list[Dataset]:
        return [_record(Dataset, d) for d in self._all(f"{_ws(workspace)}/datasets")]

    def dataset_versions(self, workspace: str, dataset: str) -> list[DatasetVersion]:
        path = f"{_ws(workspace)}/datasets/{_q(dataset, 'dataset')}/versions"
        return [_record(DatasetVersion, v) for v in self._all(path)]

    def dataset_version(
        self, workspace: str, dataset: str, version: int | None = None
    ) -> DatasetVersion:
        """One version (the latest when ``version`` is None)."""
        if version is None:
            versions = self.dataset_versions(workspace, dataset)
            if not versions:
                raise errors.NotFound(f"dataset {dataset!r} has no versions", field="dataset")
            return versions[-1]
        path = f"{_ws(workspace)}/datasets/{_q(dataset, 'dataset')}/versions/{version}"
        return _record(DatasetVersion, self._json("GET", path))

    def profile(self, workspace: str, dataset: str, version: int | None = None) -> dict[str, Any]:
        """The quality report of a version."""
        path = f"{_ws(workspace)}/datasets/{_q(dataset, 'dataset')}/profile"
        return dict(self._json("GET", path, params={"version": version}))

    def preview(
        self,
        workspace: str,
        dataset: str,
        version: int | None = None,
        *,
        limit: int = 20,
        raw: bool = False,
    ) -> pa.Table:
        """The first rows, with PII masked unless ``raw`` (and the caller may)."""
        params = {"version": version, "limit": limit, "raw": str(raw).lower()}
        data = self._json(
            "GET", f"{_ws(workspace)}/datasets/{_q(dataset, 'dataset')}/preview", params=params
        )
        return pa.table({c: [row.get(c) for row in data["rows"]] for c in data["columns"]})

    # -- training, runs and jobs -----------------------------------------------------------
    def start_run(
        self,
        workspace: str,
        dataset: str,
        spec: AnySpec,
        *,
        version: int | None = None,
        model_name: str | None = None,
    ) -> Job:
        """Queue a training run on the server (any task's spec); its id is ``job.run_id``."""
        from leptonic.tasks.spec import spec_to_dict

        body = {
            "dataset": dataset,
            "version": version,
            "spec": spec_to_dict(spec),
            "model": model_name,
        }
        data = self._json("POST", f"{_ws(workspace)}/runs", json=body)
        return _record(Job, data["job"])

    def wait_for_run(
        self,
        workspace: str,
        run_id: str,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Run:
        """Poll the run's progress until its job ends; return the run.

        Raises :class:`~leptonic.errors.Conflict` on ``timeout`` (seconds).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.run_progress(workspace, run_id)
            if progress is not None:
                progress(state["done"], state["total"])
            if state["status"] in ("succeeded", "failed", "cancelled"):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise errors.Conflict(
                    f"run {run_id} is still {state['status']} after {timeout} s", field="run"
                )
            time.sleep(poll)
        try:
            return self.get_run(workspace, run_id)
        except errors.NotFound:
            raise errors.Conflict(
                f"run {run_id} never started: {state['error'] or state['status']}", field="run"
            ) from None

    def train(
        self,
        workspace: str,
        dataset: str,
        spec: AnySpec,
        *,
        version: int | None = None,
        model_name: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        poll: float = 1.0,
    ) -> Run:
        """Train on the server and wait for the run to end.

        Like ``Platform.train``, a run that did not succeed raises the error the
        server recorded (its :mod:`leptonic.errors` class, e.g.
        :class:`~leptonic.errors.TargetError`; :class:`RunFailed` for any other),
        with the run id in the message.
        """
        job = self.start_run(workspace, dataset, spec, version=version, model_name=model_name)
        run = self.wait_for_run(workspace, job.run_id or "", poll=poll, progress=progress)
        if run.status.value != "succeeded":
            raise _run_error(run)
        return run

    def run_progress(self, workspace: str, run_id: str) -> dict[str, Any]:
        """``done``, ``total``, ``status``, ``message``, ``log`` (last lines), ``error``."""
        return dict(self._json("GET", f"{_ws(workspace)}/runs/{_q(run_id, 'run_id')}/progress"))

    def cancel_run(self, workspace: str, run_id: str) -> Job:
        return _record(
            Job, self._json("POST", f"{_ws(workspace)}/runs/{_q(run_id, 'run_id')}/cancel")
        )

    def list_runs(
        self, workspace: str, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Run]:
        path = f"{_ws(workspace)}/runs"
        return [_record(Run, r) for r in self._page(path, limit, offset, status=status)]

    def get_run(self, workspace: str, run_id: str) -> Run:
        return _record(Run, self._json("GET", f"{_ws(workspace)}/runs/{_q(run_id, 'run_id')}"))

    def run_artifact(self, workspace: str, run_id: str, name: str) -> bytes:
        """``report.html`` or ``log.txt`` of a run."""
        routes = {"report.html": "report", "log.txt": "log"}
        if name not in routes:
            raise errors.NotFound(
                f"the API serves only {', '.join(routes)} of a run, not {name!r}", field="artifact"
            )
        return self._send(
            "GET", f"{_ws(workspace)}/runs/{_q(run_id, 'run_id')}/{routes[name]}"
        ).content

    def write_report(self, workspace: str, run_id: str, path: str | os.PathLike[str]) -> Path:
        """Write the run's HTML report to ``path``, atomically (a folder is refused)."""
        from leptonic.platform import write_report_file

        return write_report_file(
            path, run_id, lambda: self.run_artifact(workspace, run_id, "report.html")
        )

    def list_jobs(
        self, workspace: str, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Job]:
        path = f"{_ws(workspace)}/jobs"
        return [_record(Job, j) for j in self._page(path, limit, offset, status=status)]

    def get_job(self, workspace: str, job_id: str) -> Job:
        return _record(Job, self._json("GET", f"{_ws(workspace)}/jobs/{_q(job_id, 'job_id')}"))

    def cancel_job(self, workspace: str, job_id: str) -> Job:
        """Ask a job of any kind (training, scoring, batch decisions, retrain) to stop."""
        return _record(
            Job, self._json("POST", f"{_ws(workspace)}/jobs/{_q(job_id, 'job_id')}/cancel")
        )

    def wait_for_job(
        self, workspace: str, job_id: str, *, poll: float = 1.0, timeout: float | None = None
    ) -> Job:
        """Poll a job until it ends; return it (check ``status`` and ``result``).

        Raises :class:`~leptonic.errors.Conflict` on ``timeout`` (seconds).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(workspace, job_id)
            if job.status.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise errors.Conflict(
                    f"job {job_id} is still {job.status.value} after {timeout} s", field="job"
                )
            time.sleep(poll)

    def score(
        self,
        workspace: str,
        model: str,
        version: int,
        dataset: str,
        *,
        dataset_version: int | None = None,
        output: str | None = None,
        wait: bool = True,
        poll: float = 1.0,
    ) -> Job:
        """Score a dataset version with a model version on the server (a background job).

        With ``wait`` the finished job is returned; its ``result`` names the
        output dataset and version. A failed job raises the error it recorded.
        """
        body = {"dataset": dataset, "dataset_version": dataset_version, "output": output}
        path = f"{_ws(workspace)}/models/{_q(model, 'model')}/versions/{version}/score"
        job = _record(Job, self._json("POST", path, json=body))
        if not wait:
            return job
        job = self.wait_for_job(workspace, job.id, poll=poll)
        if job.status.value != "succeeded":
            raise errors.Conflict(
                f"scoring job {job.id} {job.status.value}: {job.error}", field="job"
            )
        return job

    # -- models and lineage ------------------------------------------------------------------
    def list_models(self, workspace: str) -> list[Model]:
        return [_record(Model, m) for m in self._all(f"{_ws(workspace)}/models")]

    def model_versions(self, workspace: str, model: str) -> list[ModelVersion]:
        path = f"{_ws(workspace)}/models/{_q(model, 'model')}/versions"
        return [_record(ModelVersion, v) for v in self._all(path)]

    def model_version(self, workspace: str, model: str, version: int) -> ModelVersion:
        path = f"{_ws(workspace)}/models/{_q(model, 'model')}/versions/{version}"
        return _record(ModelVersion, self._json("GET", path))

    def promote(
        self, workspace: str, model: str, version: int, stage: str, *, reason: str
    ) -> ModelVersion:
        """Move a version to ``stage`` (promote or demote), recording why."""
        path = f"{_ws(workspace)}/models/{_q(model, 'model')}/versions/{version}/stage"
        data = self._json("POST", path, json={"stage": str(stage), "reason": reason})
        return _record(ModelVersion, data)

    def stage_history(
        self, workspace: str, model: str, version: int | None = None
    ) -> list[StageTransition]:
        base = f"{_ws(workspace)}/models/{_q(model, 'model')}"
        path = f"{base}/history" if version is None else f"{base}/versions/{version}/history"
        return [_record(StageTransition, t) for t in self._all(path)]

    def lineage(
        self, ref: str | ObjectRef, direction: Literal["upstream", "downstream"] = "downstream"
    ) -> list[tuple[int, ObjectRef]]:
        """Everything made from ``ref`` (or that ``ref`` was made from), with depth."""
        obj = ObjectRef.parse(ref) if isinstance(ref, str) else ref
        path = f"{_ws(obj.workspace)}/lineage"
        items = self._all(path, ref=str(obj), direction=direction)
        return [(int(i["depth"]), ObjectRef.parse(i["ref"])) for i in items]
