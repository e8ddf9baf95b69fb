"""The REST routes, one module per resource; :data:`api_router` holds them all.

Routes are thin: they parse the request, check the caller's access
(:mod:`leptonic.api.auth`), call one platform or job service function and
serialise the result (:mod:`leptonic.api.schemas`).
"""

from __future__ import annotations

from fastapi import APIRouter

from leptonic.api.routes.admin import router as _admin
from leptonic.api.routes.datasets import router as _datasets
from leptonic.api.routes.endpoints import router as _endpoints
from leptonic.api.routes.models import router as _models
from leptonic.api.routes.runs import router as _runs
from leptonic.api.routes.workspaces import router as _workspaces

__all__ = ["api_router"]

api_router = APIRouter()
for _router in (_workspaces, _datasets, _runs, _models, _endpoints, _admin):
    api_router.include_router(_router)
