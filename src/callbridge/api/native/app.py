"""The ASGI application: the native API, with the dialect sub-apps mounted beside it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ... import __version__
from ...bootstrap import Container
from ...domain.errors import DomainError
from ..ccs.app import MOUNT as CCS_MOUNT
from ..ccs.app import create_ccs_app
from ..json import Json
from . import (
    routes_access,
    routes_agents,
    routes_calls,
    routes_config,
    routes_dids,
    routes_events,
    routes_queues,
)
from .deps import ContainerDep
from .errors import on_domain_error, on_http_error, on_unexpected, on_validation_error
from .idempotency import IdempotencyMiddleware

DESCRIPTION = """
The native callbridge API. Authenticate with `Authorization: Bearer <token>`.

* Every mutating request accepts an `Idempotency-Key` header: the same key with the same request
  replays the first response (header `Idempotent-Replayed: true`); with another request it is
  refused (`idempotency_key_reused`).
* Errors have one shape: `{"error": {"code", "message", "details"}}`; `code` is stable.
* Another tenant's objects are reported as not found (404).
* Events: `GET /tenants/{id}/events` (pages), `/events/stream` (Server-Sent Events) and
  `/events/ws` (WebSocket), ordered by a per-tenant `seq`; resume with `after=<seq>` or
  `Last-Event-ID` and get every event exactly once.
"""


def create_app(container: Container, *, manage_lifecycle: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await container.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await container.stop()

    app = FastAPI(
        title="callbridge",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=Json,
    )
    app.state.container = container
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(IdempotencyMiddleware)

    api = APIRouter(prefix="/api/v1")
    api.include_router(routes_config.router)
    api.include_router(routes_agents.router)
    api.include_router(routes_queues.router)
    api.include_router(routes_access.router)
    api.include_router(routes_dids.router)
    api.include_router(routes_calls.router)
    api.include_router(routes_events.router)
    app.include_router(api)
    app.mount(CCS_MOUNT, create_ccs_app(container))  # (#5) the CCS dialect

    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Storage answers")
    async def readyz(c: ContainerDep) -> Json:
        try:
            await c.core.storage.schema_version()
        except Exception as exc:
            return Json({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return Json({"status": "ready"})

    return app
