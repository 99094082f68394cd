"""Request bodies of the ``{"request": <action>, ...}`` endpoints (4.16-4.18, 4.22-4.28).

The spec's own example for 4.16-4.18 ends in a trailing comma
(``{ "request": "updateAgentState", "name": "Lunch Break", }``), and clients copy examples. A body
that is not JSON only because of trailing commas before ``}`` or ``]`` is therefore accepted as if
they were not there; anything else that is not a JSON object is a 400 naming the problem.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from .errors import CcsError


def strip_trailing_commas(text: str) -> str:
    """``text`` without the commas that directly precede ``}`` or ``]`` (outside strings)."""
    out: list[str] = []
    in_string = escaped = False
    pending_comma: int | None = None  # index in ``out`` of a comma not yet known to be trailing
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch in "}]" and pending_comma is not None:
            del out[pending_comma]
        if not ch.isspace():
            pending_comma = None
        if ch == ",":
            pending_comma = len(out)
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


def parse_object(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body (trailing commas tolerated)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CcsError("the request body is not UTF-8") from None
    if not text.strip():
        raise CcsError("a JSON request body is required")
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = json.loads(strip_trailing_commas(text))
        except ValueError as exc:
            raise CcsError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CcsError("the request body must be a JSON object")
    return value


async def read_object(request: Request) -> dict[str, Any]:
    return parse_object(await request.body())


def action_of(body: dict[str, Any], allowed: tuple[str, ...]) -> str:
    """The body's ``request``, one of ``allowed``; else a 400 naming it."""
    action = body.get("request")
    choices = ", ".join(f'"{a}"' for a in allowed)
    if action is None:
        raise CcsError(f'"request" is required: one of {choices}')
    if not isinstance(action, str) or action not in allowed:
        raise CcsError(f"unknown request {json.dumps(action)}: expected one of {choices}")
    return action


def optional_text(body: dict[str, Any], name: str) -> str | None:
    """A string field of the body, or ``None`` when absent; a non-string is a 400."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise CcsError(f'"{name}" must be a non-empty string')
    return value.strip()


def text_field(body: dict[str, Any], name: str) -> str:
    """A required string field of the body; missing or not a string is a 400 naming it."""
    value = optional_text(body, name)
    if value is None:
        raise CcsError(f'"{name}" is required')
    return value
