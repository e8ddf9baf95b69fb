"""The web UI: a single-page app served by the platform server itself.

:func:`mount` adds it to the API's FastAPI app: ``GET /`` and ``GET /ui/...``
answer the one HTML page, ``/ui/static/`` serves its scripts and styles from
this package. The page signs in with an API token (kept in the browser tab's
``sessionStorage``) and talks to the REST API under ``/api/v1`` only; every
asset is shipped here, so no page needs the internet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "UI_PREFIX", "mount"]

#: The package folder holding ``index.html``, the scripts and the stylesheet.
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Where the pages live (``/`` answers the same page).
UI_PREFIX = "/ui"

#: Only this server's own scripts, styles and API; images may also be inline
#: ``data:`` URLs (the plots of run reports).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def mount(app: FastAPI) -> None:
    """Serve the web UI from ``app``: ``/``, ``/ui/...`` and ``/ui/static/...``.

    Parameters
    ----------
    app
        The platform server (:func:`leptonic.api.create_app`); the UI calls
        its REST routes under ``/api/v1``.
    """
    index = STATIC_DIR / "index.html"
    app.mount(f"{UI_PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="ui-static")

    def page() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers=_HEADERS)

    for path in ("/", UI_PREFIX, f"{UI_PREFIX}/{{rest:path}}"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    vendor = f"{UI_PREFIX}/static/vendor/swagger-ui"

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Leptonic API",
            swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
            swagger_css_url=f"{vendor}/swagger-ui.css",
            swagger_favicon_url=f"{vendor}/favicon-32x32.png",
            # no validator badge: it would send the schema to an outside service
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
