"""CCS's wire format: compact JSON in the spec's key order, its fixed bodies and its quirks.

The spec shows its fixed bodies in two spellings: errors compact (``{"success":false,"reason":…}``,
``{"status":401,"reason":"Unauthorized"}``) and the 500 body with one space
(``{"success": true,"reason":"Internal Server Error"}``). Those are reproduced byte for byte;
every other body is compact JSON with the spec's field names, nesting, order and value types
(totals as strings where the spec shows strings, numbers where it shows numbers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

#: 401 exactly as the spec prints it
UNAUTHORIZED = b'{"status":401,"reason":"Unauthorized"}'
#: 500 exactly as the spec prints it (quirk: "success": true)
INTERNAL_ERROR = b'{"success": true,"reason":"Internal Server Error"}'


def dumps(content: Any) -> bytes:
    return orjson.dumps(content)


class CcsJson(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return dumps(content)


def ok(**fields: Any) -> dict[str, Any]:
    """``{"success": true, …fields}`` in that order."""
    return {"success": True, **fields}


def listing(items: list[Any], *, total_as_string: bool = True) -> dict[str, Any]:
    """The spec's list envelope: ``{"total": "<n>", "success": true, "items": [...]}``."""
    total: str | int = str(len(items)) if total_as_string else len(items)
    return {"total": total, "success": True, "items": items}


def failure(reason: str, *, success: bool = False) -> dict[str, Any]:
    """A 400 body. ``success=True`` reproduces the spec's quirk on the calls endpoints (4.19-4.22),
    whose documented 400 body is ``{"success": true, "reason": <ReasonString>}``."""
    return {"success": success, "reason": reason}


def unauthorized() -> CcsJson:
    return CcsJson(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def internal_error() -> CcsJson:
    return CcsJson(INTERNAL_ERROR, status_code=500)


def ccs_datetime(moment: datetime | None) -> str:
    """``2021-03-12 07:23:02 AM`` (the spec's spelling, 4.3/4.4), always in UTC; ``""`` for none.

    The spec does not say which zone its datetimes are in. UTC everywhere (tenant details, calls,
    suppression windows) keeps one API consistent and matches the ``time_z=UTC`` of its 4.21
    example; a client converts to the tenant's ``timezone`` (4.4) for display.
    """
    if moment is None:
        return ""
    utc = moment.astimezone(UTC)
    hour = utc.hour % 12 or 12
    half = "AM" if utc.hour < 12 else "PM"
    return f"{utc:%Y-%m-%d} {hour:02d}:{utc:%M:%S} {half}"
