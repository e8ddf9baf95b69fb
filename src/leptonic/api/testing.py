"""Serve the app in-process: a synchronous httpx transport over the ASGI app.

For tests, notebooks and the SDK, without a network port. The app's lifespan
(platform, job runner) runs for as long as the context is open.

Examples
--------
>>> with serve_in_process(create_app(settings)) as transport:  # doctest: +SKIP
...     client = leptonic.Client("http://leptonic", token, transport=transport)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

__all__ = ["InProcessTransport", "serve_in_process"]


class InProcessTransport(httpx.BaseTransport):
    """Send each request to an ASGI app running on a blocking portal's event loop.

    Request bodies are read whole (this is for tests); the app sees a plain
    HTTP/1.1 request from ``127.0.0.1``.
    """

    def __init__(self, app: Any, portal: BlockingPortal) -> None:
        self._asgi = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        copy = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        status, headers, content = self._portal.call(self._send, copy)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _send(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        response = await self._asgi.handle_async_request(request)
        content = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        await response.aclose()
        return response.status_code, response.headers, content


@contextmanager
def serve_in_process(app: Any) -> Iterator[InProcessTransport]:
    """Run ``app``'s lifespan and yield a transport to it; shut it down on exit."""
    with start_blocking_portal() as portal:
        lifespan = app.router.lifespan_context(app)
        with portal.wrap_async_context_manager(lifespan):
            yield InProcessTransport(app, portal)
