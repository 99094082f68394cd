"""The native error shape and the table that maps domain errors to HTTP statuses.

Every error is ``{"error": {"code": "...", "message": "...", "details": {...}}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ...domain.errors import (
    Conflict,
    DomainError,
    IllegalTransition,
    Invalid,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from ...ports.switch import SwitchError
from ..json import Json

log = logging.getLogger(__name__)

STATUS: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (Invalid, 422),
    (LimitExceeded, 422),
    (Conflict, 409),
    (IllegalTransition, 409),
    (PermissionDenied, 403),
    (Unauthenticated, 401),
    (SwitchError, 409),  # the switch refused: its state moved on (a party hung up ...)
]


def status_of(exc: DomainError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Json:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Json(error_body(code, message, details), status_code=status, headers=headers)


async def on_domain_error(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, DomainError)
    return error_response(status_of(exc), exc.code, exc.message, _jsonable(exc.details))


async def on_validation_error(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
    ]
    first = problems[0] if problems else {"field": "", "message": "invalid request"}
    return error_response(
        422,
        "request_invalid",
        f"{first['field']}: {first['message']}",
        {"problems": problems},
    )


async def on_http_error(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, HTTPException)
    code = {404: "route_not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def on_unexpected(request: Request, exc: Exception) -> Json:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; see the server log")


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, (str, int, float, bool, list, type(None))) else str(v)
        for k, v in details.items()
    }
