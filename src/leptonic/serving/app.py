"""The data plane: a lean ASGI app that answers one endpoint's decisions.

Routes (all JSON)::

    POST /decide      one record → decision, score, reasons, request id
    POST /feedback    outcomes by request id or entity key (developer role)
    GET  /health      liveness, served revision, queued log records
    GET  /            what is served: routes, shadow, policy version, inputs

No framework sits on the hot path: the app reads the body, calls
:meth:`EndpointRuntime.decide_json` and writes the bytes back. Callers
authenticate with the platform's API tokens (``Authorization: Bearer
lep_...``); a token's user and role are cached for ``ttl`` seconds, so a
request does not touch the store, and a token not in the cache is looked up in
a worker thread, so a slow store does not hold up the event loop. Deciding and posting outcomes write to the
prediction log, so both need the ``developer`` role in the endpoint's
workspace (viewers only read); ``GET /`` needs any role.

On shutdown (uvicorn's lifespan) the host stops and the prediction log is
written out, so a graceful restart loses no record.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from leptonic.core.access import Role
from leptonic.core.audit import AuditEvent
from leptonic.core.endpoint import Feedback
from leptonic.core.uri import ObjectRef
from leptonic.errors import (
    InvalidInput,
    LeptonicError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from leptonic.serving.feedback import parse_feedback, record_feedback
from leptonic.serving.host import EndpointHost
from leptonic.serving.requests import parse_json
from leptonic.storage.metadata.base import MetadataStore

__all__ = ["DEFAULT_MAX_BODY", "DataPlaneApp", "EndpointApp", "TokenAuth"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Largest request body accepted, in bytes.
DEFAULT_MAX_BODY = 64 * 1024

_JSON = [(b"content-type", b"application/json")]

_STATUS: list[tuple[type[LeptonicError], int]] = [
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (InvalidInput, 422),
]


def _status(exc: LeptonicError) -> int:
    if exc.code == "payload_too_large":
        return 413
    if exc.code in ("overloaded", "batcher_closed"):
        return 503
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    from leptonic.api.errors import status_for

    return status_for(exc)


def _error_body(status: int, code: str, message: str, field: str | None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "field": field}})


class TokenAuth:
    """API tokens → the caller's role in one workspace, cached for ``ttl`` seconds (a
    refused token is refused again from the cache for as long)."""

    def __init__(self, metadata: MetadataStore, workspace: str, *, ttl: float = 30.0) -> None:
        self.metadata = metadata
        self.workspace = workspace
        self.ttl = ttl
        self._cache: dict[bytes, tuple[float, str, Role | None]] = {}
        # tokens refused (unknown, revoked, expired, malformed): refused again without a
        # query for ``ttl`` seconds
        self._refused: dict[bytes, tuple[float, str, str | None]] = {}
        self._lock = threading.Lock()

    def caller(self, header: bytes | None) -> tuple[str, Role]:
        """The user and role of an ``Authorization`` header value; raises if none.

        On a cache miss this queries the store in the calling thread: on an event
        loop use :meth:`caller_async`, which queries it in a worker thread.
        """
        header, now = _present(header), time.monotonic()
        found = self._cached(header, now)
        if found is None:
            try:
                found = self._lookup(header)
            except Unauthenticated as exc:
                self._refuse(header, now, exc)
                raise
            self._remember(header, now, found)
        return self._allowed(found)

    async def caller_async(self, header: bytes | None) -> tuple[str, Role]:
        """:meth:`caller` for the event loop: a cached token is answered at once,
        without awaiting; a token not in the cache is looked up in a worker thread,
        so that a slow store (or a flood of unknown tokens) does not stall the
        other requests."""
        header, now = _present(header), time.monotonic()
        found = self._cached(header, now)
        if found is None:
            try:  # a malformed header is refused here, without a thread
                found = await asyncio.to_thread(self._lookup_digest, _digest(header))
            except Unauthenticated as exc:
                self._refuse(header, now, exc)
                raise
            self._remember(header, now, found)
        return self._allowed(found)

    def _cached(self, header: bytes, now: float) -> tuple[str, Role | None] | None:
        """The cached user and role of ``header``; None if it must be looked up.
        A token refused less than ``ttl`` seconds ago is refused again, so a flood
        of bad tokens causes no query."""
        cached = self._cache.get(header)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        refused = self._refused.get(header)
        if refused is not None and refused[0] > now:
            raise Unauthenticated(refused[1], field=refused[2])
        return None

    def _remember(self, header: bytes, now: float, found: tuple[str, Role | None]) -> None:
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[header] = (now + self.ttl, *found)

    def _refuse(self, header: bytes, now: float, exc: Unauthenticated) -> None:
        with self._lock:
            if len(self._refused) > 10_000:
                self._refused.clear()
            self._refused[header] = (now + self.ttl, exc.message, exc.field)

    def _allowed(self, found: tuple[str, Role | None]) -> tuple[str, Role]:
        user, role = found
        if role is None:
            raise NotFound(f"workspace {self.workspace!r} not found", field="workspace")
        return user, role

    def _lookup(self, header: bytes) -> tuple[str, Role | None]:
        return self._lookup_digest(_digest(header))

    def _lookup_digest(self, digest: str) -> tuple[str, Role | None]:
        """The user and role of a token's hash: store queries (blocking)."""
        try:
            token = self.metadata.get_token_by_hash(digest)
        except NotFound:
            raise Unauthenticated(
                "unknown API token; create one with `leptonic tokens create`"
            ) from None
        if not token.is_active():
            state = "revoked" if token.revoked_at is not None else "expired"
            raise Unauthenticated(f"API token {token.prefix}… is {state}; create a new one")
        user = self.metadata.get_user(token.user)
        if user.is_admin:
            return user.name, Role.ADMIN
        membership = self.metadata.get_membership(self.workspace, user.name)
        return user.name, (membership.role if membership else None)


def _digest(header: bytes) -> str:
    """The hash of the token in an ``Authorization`` header (as the store keeps it)."""
    scheme, _, secret = header.decode("latin-1").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith("lep_") or len(secret) > 200:
        raise Unauthenticated(
            "malformed Authorization header: send 'Bearer lep_...'", field="authorization"
        )
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _present(header: bytes | None) -> bytes:
    """``header``; raises if the request has no ``Authorization`` header."""
    if not header:
        raise Unauthenticated(
            "missing API token: send the header 'Authorization: Bearer lep_...'",
            field="authorization",
        )
    return header


class DataPlaneApp(abc.ABC):
    """What the data-plane apps share: lifespan (closing the host on shutdown),
    token checks and bounded request bodies. Subclasses route in :meth:`_http`.

    Parameters
    ----------
    host
        The endpoint served (it has a ``workspace`` and a ``close()``).
    auth
        Token checking; None serves without authentication (tests, a trusted
        network behind a gateway that authenticates).
    max_body
        Largest accepted body in bytes (413 above).
    """

    def __init__(
        self, host: Any, *, auth: TokenAuth | None = None, max_body: int = DEFAULT_MAX_BODY
    ) -> None:
        self.host = host
        self.auth = auth
        self.max_body = max_body
        self.closed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._startup()
                except Exception as exc:
                    logger.exception("endpoint start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self._shutdown()
                finally:
                    self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _startup(self) -> None:  # noqa: B027 (a hook: most apps need none)
        """Run once the server's event loop runs (before the first request)."""

    async def _shutdown(self) -> None:  # noqa: B027 (a hook: most apps need none)
        """Run on shutdown, on the event loop, before :meth:`close`."""

    def close(self) -> None:
        """Stop the host and write out what it queued (idempotent)."""
        if not self.closed:
            self.closed = True
            self.host.close()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one request; errors become JSON bodies naming the field."""
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            if not await self._route(scope, receive, send, path, method):
                await _respond(
                    send,
                    404,
                    _error_body(404, "not_found", f"no route {path}; see GET /", "path"),
                )
        except _MethodNotAllowed as exc:
            await _respond(
                send,
                405,
                _error_body(405, "method_not_allowed", f"use {exc.allowed} on {path}", None),
                [(b"allow", exc.allowed.encode())],
            )
        except LeptonicError as exc:
            status = _status(exc)
            if status >= 500:
                logger.error("%s %s failed: %s", method, path, exc)
            extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            if status == 503:
                extra.append((b"retry-after", b"1"))
            await _respond(
                send, status, _error_body(status, exc.code, exc.message, exc.field), extra
            )
        except Exception:
            logger.exception("unexpected error in %s %s", method, path)
            await _respond(
                send,
                500,
                _error_body(500, "internal_error", "internal error; the server log has it", None),
            )

    @abc.abstractmethod
    async def _route(
        self, scope: Scope, receive: Receive, send: Send, path: str, method: str
    ) -> bool:
        """Answer the request if ``path`` is one of this app's routes; False if not."""

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        """Refuse (405) a method not in ``allowed`` (e.g. ``"GET, POST"``)."""
        if method not in allowed.split(", "):
            raise _MethodNotAllowed(allowed)

    @staticmethod
    async def _send_json(send: Send, status: int, payload: Any) -> None:
        """Answer with ``payload`` (bytes as they are, anything else as JSON)."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        await _respond(send, status, body)

    async def _authorise(self, scope: Scope, needed: Role | None) -> str:
        """The calling user (``anonymous`` without authentication), if allowed.

        A cached token costs no await; one not in the cache is looked up in a
        worker thread, so the event loop keeps serving the other requests."""
        if self.auth is None:
            return "anonymous"
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        user, role = await self.auth.caller_async(header)
        if needed is not None and not role.allows(needed):
            raise PermissionDenied(
                f"this needs the {needed.value} role in workspace {self.host.workspace!r}; "
                f"{user!r} has {role.value}: ask a workspace admin"
            )
        return user

    async def _body(self, scope: Scope, receive: Receive, limit: int | None = None) -> bytes:
        """The request body; 413 above ``limit`` (default: ``max_body``)."""
        limit = self.max_body if limit is None else limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise InvalidInput(
                        "bad Content-Length header", field="content-length"
                    ) from None
                if declared > limit:
                    raise _too_large(limit)
                break
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise _too_large(limit)
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)


class EndpointApp(DataPlaneApp):
    """The ASGI application serving one :class:`EndpointHost`.

    Parameters
    ----------
    host
        The endpoint served.
    auth
        Token checking; None serves without authentication (tests, a trusted
        network behind a gateway that authenticates).
    max_body
        Largest accepted body in bytes (413 above).
    """

    host: EndpointHost

    async def _route(
        self, scope: Scope, receive: Receive, send: Send, path: str, method: str
    ) -> bool:
        if path == "/decide":
            self._allow(method, "POST")
            await self._authorise(scope, Role.DEVELOPER)
            body = await self._body(scope, receive)
            runtime = self.host.runtime
            payload, record = runtime.decide_json(body)
            await _respond(send, 200, payload)
            if runtime.shadow is not None:  # after the answer (a failure is logged and counted)
                runtime.score_shadow(record, orjson.loads(payload)["request_id"])
            return True
        if path == "/feedback":
            self._allow(method, "POST")
            user = await self._authorise(scope, Role.DEVELOPER)
            body = await self._body(scope, receive)
            items = parse_feedback(parse_json(body))
            stored = await asyncio.to_thread(self._record_feedback, user, items)
            await self._send_json(send, 200, {"recorded": len(stored)})
            return True
        if path == "/health":
            await self._send_json(send, 200, self._health())
            return True
        if path == "/":
            await self._authorise(scope, None)
            await self._send_json(send, 200, self._info())
            return True
        return False

    def _record_feedback(self, user: str, items: list[dict[str, Any]]) -> list[Feedback]:
        """Store outcomes (off the event loop): queued decisions are written first,
        so an outcome may follow its decision at once."""
        self.host.flush_log()
        runtime = self.host.runtime
        key = runtime.entity_key
        metadata = self.host.metadata
        stored = record_feedback(
            metadata,
            self.host.workspace,
            self.host.name,
            items,
            pii_entity=bool(key and key in runtime.pii),
        )
        metadata.append_audit(
            AuditEvent(
                actor=user,
                action="endpoint.feedback",
                workspace=self.host.workspace,
                objects=(str(ObjectRef(self.host.workspace, "endpoint", self.host.name)),),
                details={"outcomes": len(stored), "bad": int(sum(f.label for f in stored))},
            )
        )
        return stored

    def _health(self) -> dict[str, Any]:
        runtime = self.host.runtime
        return {
            "status": "ok",
            "endpoint": runtime.name,
            "workspace": runtime.workspace,
            "revision": runtime.revision,
            **self.host.log_health(),
        }

    def _info(self) -> dict[str, Any]:
        runtime = self.host.runtime
        return {
            "endpoint": runtime.name,
            "workspace": runtime.workspace,
            "revision": runtime.revision,
            "policy_version": runtime.policy_version,
            "routes": [
                {"model": s.model, "version": s.version, "percent": r.percent}
                for s, r in zip(runtime.live, runtime.endpoint.routes, strict=True)
            ],
            "shadow": (
                {"model": runtime.shadow.model, "version": runtime.shadow.version}
                if runtime.shadow
                else None
            ),
            "entity_key": runtime.entity_key,
            "inputs": runtime.schema.inputs,
        }


class _MethodNotAllowed(Exception):
    def __init__(self, allowed: str) -> None:
        self.allowed = allowed


def _too_large(limit: int) -> InvalidInput:
    from leptonic.api.errors import PayloadTooLarge

    return PayloadTooLarge(
        f"the request body is larger than {limit} bytes; send one record per request",
        field="body",
    )


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [*_JSON, (b"content-length", str(len(body)).encode())]
    if headers:
        head.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
