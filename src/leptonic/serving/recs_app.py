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

import asyncio
import logging
import re
from typing import Any
from urllib.parse import parse_qs

from leptonic.core.access import Role
from leptonic.errors import InvalidInput
from leptonic.serving.app import DEFAULT_MAX_BODY, DataPlaneApp, Receive, Scope, Send, TokenAuth
from leptonic.serving.recs import RecsHost
from leptonic.serving.requests import parse_json

__all__ = ["MAX_EVENTS_BODY", "RecsApp"]

logger = logging.getLogger(__name__)

_WHOLE = re.compile(r"-?[0-9]+")

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
        Largest accepted body in bytes, of the other routes and of ``/events`` (413 above).
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

    async def _route(
        self, scope: Scope, receive: Receive, send: Send, path: str, method: str
    ) -> bool:
        if path == "/recommend":
            self._allow(method, "POST")
            await self._authorise(scope, Role.DEVELOPER)
            body = await self._body(scope, receive, self.max_body)
            await self._send_json(send, 200, self.host.runtime.recommend(parse_json(body)))
            return True
        if path == "/events":
            self._allow(method, "POST")
            await self._authorise(scope, Role.DEVELOPER)
            body = await self._body(scope, receive, self.max_events_body)
            # in a worker thread: a large batch (each event folds its user in again),
            # or a reload replaying events under the host's lock, must not hold up
            # the other requests on the event loop
            answer = await asyncio.to_thread(self.host.post_events, parse_json(body))
            await self._send_json(send, 200, answer)
            return True
        if path == "/similar":
            self._allow(method, "GET, POST")
            await self._authorise(scope, Role.VIEWER)
            if method == "GET":
                record = _query(scope)
            else:
                record = parse_json(await self._body(scope, receive, self.max_body))
            await self._send_json(send, 200, self.host.runtime.similar(record))
            return True
        if path == "/health":
            await self._send_json(send, 200, self.host.health())
            return True
        if path == "/":
            await self._authorise(scope, None)
            await self._send_json(send, 200, self.host.info())
            return True
        return False


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
        if len(text) > 12 or not _WHOLE.fullmatch(text):
            raise InvalidInput(
                f"k must be a whole number (digits 0-9), got {record['k'][:20]!r}", field="k"
            )
        record["k"] = int(text)
    return record
