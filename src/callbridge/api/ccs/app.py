"""The CCS sub-application, mounted at ``/6/v2``: REST under ``/api``, events on ``/sock``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ... import __version__
from ...bootstrap import Container
from ...domain.errors import DomainError
from . import routes_agents, routes_calls, routes_tenants, sock
from .errors import (
    CcsError,
    on_ccs_error,
    on_domain_error,
    on_http_error,
    on_unexpected,
    on_validation_error,
)
from .wire import CcsJson

MOUNT = "/6/v2"

DESCRIPTION = """
The Windstream "Contact Center Services" API as its vendor documents it (docs/ccs.md).
Authenticate with `Authorization: Bearer <token>`; errors are `{"success":false,"reason":…}`
(400), `{"status":401,"reason":"Unauthorized"}` (401).
"""


def create_ccs_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="callbridge — CCS dialect",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        default_response_class=CcsJson,
    )
    app.state.container = container
    app.add_exception_handler(CcsError, on_ccs_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    api = APIRouter(prefix="/api")
    api.include_router(routes_tenants.router)
    api.include_router(routes_agents.router)
    api.include_router(routes_calls.router)
    app.include_router(api)
    app.include_router(sock.router)
    return app
