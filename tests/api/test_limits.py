"""The request body limit: refused before the app reads the body or authenticates."""

from __future__ import annotations

from typing import Any

from api.test_routes import error_of


def test_json_bodies_over_the_limit_are_refused_unread(make_server: Any) -> None:
    server = make_server(max_body_bytes=1000)
    with server.client() as anonymous:  # no token: refused for its size first, unread
        big = {"name": "x" * 2000}
        assert error_of(anonymous.post("/workspaces", json=big), 413)["field"] == "body"

        def chunks() -> Any:  # no Content-Length: counted as it comes
            yield b'{"name": "'
            yield b"x" * 2000
            yield b'"}'

        r = anonymous.post("/workspaces", content=chunks())
        assert error_of(r, 413)["code"] == "payload_too_large"
    with server.client("root") as c:
        assert c.post("/workspaces", json={"name": "small"}).status_code == 201


def test_uploads_behind_a_root_path_keep_their_own_limit() -> None:
    import asyncio

    from leptonic.api.limits import BodyLimitMiddleware

    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])

    limited = BodyLimitMiddleware(app, limit=10)
    path = "/leptonic/api/v1/workspaces/w/datasets/d/versions"  # behind uvicorn --root-path
    scope = {
        "type": "http",
        "path": path,
        "root_path": "/leptonic",
        "headers": [(b"content-length", b"1000000")],
    }
    asyncio.run(limited(scope, None, None))
    assert seen == [path]  # passed on: the upload route streams under its own limit
