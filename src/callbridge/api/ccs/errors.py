"""Every error in CCS's shapes: 400 ``{"success":false,"reason":…}``, 401 and 500 as printed.

Domain errors become 400 with the core's message as the reason (the spec documents no 403/404/409;
another tenant's objects are "not found" like missing ones). A handler can ask for the spec's
``"success": true`` 400 quirk of the calls endpoints with :func:`quirk_success_true`.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ...domain.errors import DomainError, Unauthenticated
from .wire import CcsJson, failure, internal_error, unauthorized

log = logging.getLogger(__name__)

_QUIRK = "ccs_error_success"


class CcsError(Exception):
    """A request the dialect refuses itself (bad body, wrong level of user, missing permission)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def quirk_success_true(request: Request) -> None:
    """Render this request's 400s as ``{"success": true, "reason": …}`` (spec 4.19-4.22)."""
    request.scope[_QUIRK] = True


def bad_request(request: Request, reason: str, status: int = 400) -> CcsJson:
    success = bool(request.scope.get(_QUIRK, False)) and status == 400
    return CcsJson(failure(reason, success=success), status_code=status)


async def on_ccs_error(request: Request, exc: Exception) -> CcsJson:
    assert isinstance(exc, CcsError)
    if exc.status == 401:
        return unauthorized()
    return bad_request(request, exc.reason, exc.status)


async def on_domain_error(request: Request, exc: Exception) -> CcsJson:
    assert isinstance(exc, DomainError)
    if isinstance(exc, Unauthenticated):
        return unauthorized()
    return bad_request(request, exc.message)


async def on_validation_error(request: Request, exc: Exception) -> CcsJson:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if not errors:
        return bad_request(request, "invalid request")
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"] if p != "body")
    return bad_request(request, f"{where}: {first['msg']}" if where else str(first["msg"]))


async def on_http_error(request: Request, exc: Exception) -> CcsJson:
    assert isinstance(exc, HTTPException)
    reason = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, str(exc.detail))
    return CcsJson(failure(reason), status_code=exc.status_code)


async def on_unexpected(request: Request, exc: Exception) -> CcsJson:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return internal_error()
