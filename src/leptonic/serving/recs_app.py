"""The data plane of a recommendation endpoint: a lean ASGI app.

Routes (all JSON)::

    POST /recommend   {"user", "k"?, "filter"?, "exclude_seen"?, "user_attributes"?}
                      → items with score and "because" (developer role: it is logged)
    GET  /similar?item=...&k=...   (or POST {"item", "k"?, "filter"?}) → similar items
    POST /events      one event {"user", "item", "weight"?, "kind"?, "at"?}, a list of
                      them or {"events": [...]} → applied at once, stored (developer role)
    GET  /health      liveness, served version, queued events and log records
    GET  /            what is served (any role)

Like :class:`~leptonic.serving.app.EndpointApp`, no framework sits on the hot
path and callers authenticate with the platform's API tokens. A bad request
gets a 4xx JSON body ``{"error": {"code", "message", "field"}}`` naming the
field: 422 for a bad value (unknown user or item in an event, k out of range,
a malformed time), 404 for an unknown item in ``/similar``, 409 for an event
recorded before. On shutdown (uvicorn's lifespan) the host writes out every
queued event and recommendation.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

import orjson

from leptonic.core.access import Role
from leptonic.errors import InvalidInput, LeptonicError
from leptonic.serving.app import (
    DEFAULT_MAX_BODY,
    DataPlaneApp,
    Receive,
    Scope,
    Send,
    TokenAuth,
    _error_body,
    _MethodNotAllowed,
    _respond,
    _status,
)
from leptonic.serving.recs import RecsHost
from leptonic.serving.requests import parse_json

__all__ = ["MAX_EVENTS_BODY", "RecsApp"]

logger = logging.getLogger(__name__)

#: Largest body of ``POST /events`` (a batch of events), in bytes.
MAX_EVENTS_BODY = 4 * 1024 * 1024


class RecsApp(DataPlaneApp):
    """The ASGI application serving one :class:`~leptonic.serving.recs.RecsHost`.

    Parameters
    ----------
    host
        The endpoint served.
    auth
        Token checking; None serves without authentication (tests, a trusted
        network behind a gateway that authenticates).
    max_body, max_events_body
        Largest accepted body in bytes, of ``/events`` and of the other routes (413 above).
    """

    host: RecsHost

    def __init__(
        self,
        host: RecsHost,
        *,
        auth: TokenAuth | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        max_events_body: int = MAX_EVENTS_BODY,
    ) -> None:
        super().__init__(host, auth=auth, max_body=max_body)
        self.max_events_body = max_events_body

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            if path == "/recommend":
                if method != "POST":
                    raise _MethodNotAllowed("POST")
                self._authorise(scope, Role.DEVELOPER)
                body = await self._body(scope, receive, self.max_body)
                answer = self.host.runtime.recommend(parse_json(body))
                await _respond(send, 200, orjson.dumps(answer))
                return
            if path == "/events":
                if method != "POST":
                    raise _MethodNotAllowed("POST")
                self._authorise(scope, Role.DEVELOPER)
                body = await self._body(scope, receive, self.max_events_body)
                answer = self.host.post_events(parse_json(body))
                await _respond(send, 200, orjson.dumps(answer))
                return
            if path == "/similar":
                if method == "GET":
                    self._authorise(scope, Role.VIEWER)
                    record = _query(scope)
                elif method == "POST":
                    self._authorise(scope, Role.VIEWER)
                    record = parse_json(await self._body(scope, receive, self.max_body))
                else:
                    raise _MethodNotAllowed("GET, POST")
                await _respond(send, 200, orjson.dumps(self.host.runtime.similar(record)))
                return
            if path == "/health":
                await _respond(send, 200, orjson.dumps(self.host.health()))
                return
            if path == "/":
                self._authorise(scope, None)
                await _respond(send, 200, orjson.dumps(self.host.info()))
                return
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


def _query(scope: Scope) -> dict[str, Any]:
    """``/similar``'s query string as a request record (``k`` as a number)."""
    raw: bytes = scope.get("query_string", b"")
    try:
        params = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidInput("the query string is not UTF-8", field="query") from None
    record: dict[str, Any] = {}
    for name, values in params.items():
        if len(values) > 1:
            raise InvalidInput(f"give {name!r} once in the query string", field=name)
        record[name] = values[0]
    if "k" in record:
        text = record["k"].strip()
        if not text.lstrip("-").isdigit() or len(text) > 12:
            raise InvalidInput(f"k must be a whole number, got {record['k']!r}", field="k")
        record["k"] = int(text)
    return record
