"""The platform server: a FastAPI app over :class:`~leptonic.platform.Platform`.

:func:`create_app` builds it (routes in :mod:`leptonic.api.routes`, access
rules in :mod:`leptonic.api.auth`, the one error → status table in
:mod:`leptonic.api.errors`, background jobs in :mod:`leptonic.api.jobs`).
Run it with ``leptonic server``.
"""

from __future__ import annotations

from leptonic.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
