"""The data plane of a text endpoint: a lean ASGI app with dynamic micro-batching.

Routes (all JSON)::

    POST /predict   {"text": "...", "top_k"?, "probabilities"?}
                    → label, probability, decision, top-k, request id
                    or {"texts": [...], ...} → {"predictions": [...]}  (developer role:
                    answers are logged)
    GET  /health    liveness, served version, batcher counters, queued log records
    GET  /          what is served: classes, policy (any role)

Texts from concurrent requests are gathered by the host's
:class:`~leptonic.serving.batching.MicroBatcher` into one forward pass, which
runs in a worker thread while the event loop keeps reading requests. A bad
request gets a 4xx JSON body ``{"error": {"code", "message", "field"}}``
naming the field (an empty text, one longer than the model's ``max_chars``,
an unknown field, a bad ``top_k``); a full queue gets 503 with
``Retry-After``. On shutdown the batcher answers what it holds, then the
prediction log is written out.
"""

from __future__ import annotations

from leptonic.core.access import Role
from leptonic.serving.app import DataPlaneApp, Receive, Scope, Send, TokenAuth
from leptonic.serving.requests import parse_json
from leptonic.serving.text import TextHost

__all__ = ["MAX_TEXT_BODY", "TextApp"]

#: Largest request body, in bytes: room for a batch of long texts. A text longer
#: than the model's ``max_chars`` is refused with 422 naming it.
MAX_TEXT_BODY = 2 * 1024 * 1024


class TextApp(DataPlaneApp):
    """The ASGI application serving one :class:`~leptonic.serving.text.TextHost`.

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

    host: TextHost

    def __init__(
        self, host: TextHost, *, auth: TokenAuth | None = None, max_body: int = MAX_TEXT_BODY
    ) -> None:
        super().__init__(host, auth=auth, max_body=max_body)

    async def _startup(self) -> None:
        await self.host.start()

    async def _shutdown(self) -> None:
        await self.host.stop()

    async def _route(
        self, scope: Scope, receive: Receive, send: Send, path: str, method: str
    ) -> bool:
        if path == "/predict":
            self._allow(method, "POST")
            await self._authorise(scope, Role.DEVELOPER)
            body = await self._body(scope, receive)
            await self._send_json(send, 200, await self.host.predict(parse_json(body)))
            return True
        if path == "/health":
            await self._send_json(send, 200, self.host.health())
            return True
        if path == "/":
            await self._authorise(scope, None)
            await self._send_json(send, 200, self.host.info())
            return True
        return False
