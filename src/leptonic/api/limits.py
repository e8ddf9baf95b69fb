"""The size of a request body, refused before the app reads (and parses) it.

FastAPI reads and parses a JSON body before a route's dependencies run, so
before the caller is authenticated: without a limit, anyone could make the
server hold and parse any amount of JSON. :class:`BodyLimitMiddleware`
answers ``413`` to a body larger than its limit, except on the routes that
stream an upload to disk under their own limit (a dataset version).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leptonic.api.errors import error_response

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimitMiddleware"]

#: Largest JSON request body accepted by default (specs, policies, feedback batches).
DEFAULT_MAX_BODY_BYTES = 16 * 1024**2

#: POST routes that stream their body to disk, with a limit of their own.
_STREAMED = re.compile(r"/api/v\d+/workspaces/[^/]+/datasets/[^/]+/versions/?$")


class BodyLimitMiddleware:
    """Answer ``413`` to a request body over ``limit`` bytes (declared, or as read)."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # (searched, not matched: behind a proxy the path starts with the root path)
        if scope["type"] != "http" or _STREAMED.search(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            # the server delivers no more than the declared length: check it alone
            if declared > self.limit:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # no length given (chunked): read the body here, up to the limit, then replay it
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"the request body is larger than this server's limit of {self.limit:,} bytes",
            "body",
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers") or ()
    for name, value in headers:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None
