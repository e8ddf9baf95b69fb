"""The application factory: :func:`create_app` builds the server, no global state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from leptonic.api.auth import bootstrap_admin
from leptonic.api.errors import document_errors, install_error_handlers
from leptonic.api.jobs import JobRunner
from leptonic.api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from leptonic.api.routes import api_router
from leptonic.config import Settings
from leptonic.platform import Platform
from leptonic.serving.host import HostPool
from leptonic.ui import mount as mount_ui

__all__ = ["API_PREFIX", "DEFAULT_MAX_UPLOAD_BYTES", "app_from_environ", "create_app"]

logger = logging.getLogger("leptonic.api")

#: Where the REST routes live.
API_PREFIX = "/api/v1"

#: Largest dataset upload accepted by default (5 GiB).
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024**3

_DESCRIPTION = """\
Leptonic's control plane: workspaces per business line, governed datasets,
training runs as background jobs, the model registry, lineage, users, tokens
and roles, and the audit log.

Authenticate with `Authorization: Bearer lep_...`. The first start of a server
on an empty store creates the platform admin `admin` and prints its token once
(and writes it to `$LEPTONIC_HOME/bootstrap-token`, mode 0600).

Every list is paginated (`limit`, `offset` → `next_offset`); every error is
`{"error": {"code", "message", "field"}}`.
"""


def create_app(
    settings: Settings,
    *,
    platform: Platform | None = None,
    workers: int = 1,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    poll_interval: float = 0.5,
    bootstrap: bool = True,
) -> FastAPI:
    """The Leptonic REST API as an ASGI app.

    Parameters
    ----------
    settings
        Where the stores are (and ``home``, for the bootstrap token file).
    platform
        An already-open platform to serve (tests pass one over memory stores);
        it is not closed on shutdown. Opened from ``settings`` when omitted
        (and closed on shutdown).
    workers
        Background job worker threads (0: jobs stay queued).
    max_upload_bytes
        Largest dataset upload accepted; larger ones get ``413``.
    max_body_bytes
        Largest other request body (JSON) accepted, checked before it is read
        or the caller authenticated; larger ones get ``413``.
    poll_interval
        Seconds an idle job worker waits before looking for queued jobs again.
    bootstrap
        Create the first admin and token on a store without users.

    Returns
    -------
    FastAPI
        Routes under ``/api/v1``; OpenAPI at ``/openapi.json``, docs at ``/docs``.
        The platform and job runner are opened in the app's lifespan.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lp: Platform = (
            platform if platform is not None else await run_in_threadpool(Platform, settings)
        )
        try:  # a bad setting (e.g. workers < 0) closes the platform just opened
            runner = JobRunner(lp, workers=workers, poll_interval=poll_interval)
            hosts = HostPool(lp.metadata, lp.registry, spill_dir=settings.home / "spill")
        except BaseException:
            if platform is None:
                lp.close()
            raise
        try:
            if bootstrap:
                await run_in_threadpool(bootstrap_admin, lp, settings.home)
            orphans = await run_in_threadpool(runner.start)
            if orphans:
                logger.warning("failed %d job(s) cut off by an earlier stop", len(orphans))
            app.state.platform = lp
            app.state.runner = runner
            app.state.endpoint_hosts = hosts
            yield
        finally:
            await run_in_threadpool(runner.stop)
            await run_in_threadpool(hosts.close)
            if platform is None:
                lp.close()

    app = FastAPI(
        title="Leptonic",
        version=_version(),
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by the UI from vendored assets, so it works offline
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.max_upload_bytes = max_upload_bytes
    install_error_handlers(app)
    document_errors(app)
    app.add_middleware(BodyLimitMiddleware, limit=max_body_bytes)
    app.include_router(api_router, prefix=API_PREFIX)
    mount_ui(app)
    return app


def app_from_environ() -> FastAPI:
    """The app for the environment's settings: ``uvicorn --factory leptonic.api.app:app_from_environ``."""
    return create_app(Settings.from_environ())


def _version() -> str:
    from leptonic import __version__

    return __version__
