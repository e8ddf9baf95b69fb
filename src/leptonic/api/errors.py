"""The one place where errors become HTTP statuses and JSON bodies.

Services raise :mod:`leptonic.errors`; :data:`ERROR_STATUS` maps each class
(and, through the class hierarchy, its subclasses) to a status. Every error
body has the same shape::

    {"error": {"code": "not_found", "message": "...", "field": "workspace"}}

Request validation errors become ``422`` with the first bad location as
``field``; unexpected exceptions become ``500`` with a generic message (the
details go to the server log only).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leptonic.errors import (
    AlreadyExists,
    Cancelled,
    ConfigError,
    Conflict,
    InvalidInput,
    LeptonicError,
    MissingExtra,
    NotFitted,
    NotFound,
    PermissionDenied,
    StoreError,
    Unauthenticated,
    UnsafeArtifact,
)

__all__ = [
    "ERROR_BODY_SCHEMA",
    "ERROR_STATUS",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "document_errors",
    "error_response",
    "install_error_handlers",
    "status_for",
]

logger = logging.getLogger("leptonic.api")


class PayloadTooLarge(InvalidInput):
    """An upload is larger than the server accepts."""

    code = "payload_too_large"


class UnsupportedMediaType(InvalidInput):
    """A request body of a type the route does not read (a form for a raw file)."""

    code = "unsupported_media_type"


#: Domain error class → HTTP status. A subclass takes the status of its nearest listed class.
ERROR_STATUS: dict[type[LeptonicError], int] = {
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    Cancelled: 409,
    NotFitted: 409,
    InvalidInput: 422,  # InvalidName, DataError, SchemaError, TargetError
    UnsafeArtifact: 422,
    Unauthenticated: 401,
    PermissionDenied: 403,
    MissingExtra: 501,
    StoreError: 503,
    ConfigError: 500,
    LeptonicError: 500,
}

_HTTP_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    404: "not_found",
    405: "method_not_allowed",
}


#: The JSON schema of every error body (OpenAPI component ``Error``).
ERROR_BODY_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string", "description": "e.g. invalid_input, not_found"},
                "message": {"type": "string", "description": "What is wrong and how to fix it."},
                "field": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "The input at fault (a body field, parameter or column).",
                },
            },
        }
    },
}


def document_errors(app: FastAPI) -> None:
    """Describe the error body in ``app``'s OpenAPI schema: every operation's ``422``
    (FastAPI's own ``{"detail": [...]}`` validation schema, which this app never
    sends) and a ``default`` response for the other errors refer to ``Error``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas["Error"] = ERROR_BODY_SCHEMA
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {
                        "description": "Invalid input: the field at fault and how to fix it",
                        "content": body,
                    }
                responses.setdefault(
                    "default",
                    {"description": "An error (401, 403, 404, 409, 413, ...)", "content": body},
                )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def status_for(exc: LeptonicError) -> int:
    """The HTTP status of a domain error (by its nearest class in :data:`ERROR_STATUS`)."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500  # pragma: no cover - LeptonicError is in the table


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON error body every failing request gets."""
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


async def _domain_error(request: Request, raised: Exception) -> JSONResponse:
    exc = cast(LeptonicError, raised)
    status = status_for(exc)
    if status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, exc.code, exc.message, exc.field, headers)


def _location(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or None


async def _validation_error(request: Request, raised: Exception) -> JSONResponse:
    errors = list(cast(RequestValidationError, raised).errors())
    if not errors:
        return error_response(422, "invalid_input", "invalid request")
    first = errors[0]
    if first.get("type") == "json_invalid":  # its location is a character position
        reason = (first.get("ctx") or {}).get("error") or "not JSON"
        return error_response(
            422, "invalid_input", f"the request body is not valid JSON ({reason})", "body"
        )
    field = _location(first.get("loc", ()))
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, LeptonicError):
        inner = cause.field
        field = f"{field}.{inner}" if field and inner else (inner or field)
        return error_response(422, cause.code, cause.message, field)
    message = f"{field or 'request'}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return error_response(422, "invalid_input", message, field)


async def _http_error(request: Request, raised: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, raised)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's answer to a body its parser gave up on (bad UTF-8, too deep)
        return error_response(
            422,
            "invalid_input",
            "the request body could not be read as JSON: send UTF-8 JSON that is not "
            "nested too deeply",
            "body",
        )
    return error_response(exc.status_code, code, str(exc.detail), None, exc.headers)


async def _unencodable(request: Request, raised: Exception) -> JSONResponse:
    """Text a store cannot encode comes from the request (this server's own text is
    Unicode): a lone surrogate escape such as ``\\ud800`` in a JSON string."""
    if "surrogate" not in str(raised):
        logger.error("unexpected error in %s %s", request.method, request.url.path, exc_info=raised)
        return error_response(
            500, "internal_error", "internal server error; the server log has the details"
        )
    return error_response(
        422,
        "invalid_input",
        "the request holds text with an unpaired surrogate (an escape such as \\ud800 "
        "alone), which is not text; send valid Unicode text",
    )


class CatchAllMiddleware:
    """Turn an unexpected exception into a generic ``500`` JSON body (and log it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(
                500, "internal_error", "internal server error; the server log has the details"
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the JSON shape above."""
    app.add_exception_handler(LeptonicError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(UnicodeEncodeError, _unencodable)
    app.add_middleware(CatchAllMiddleware)
