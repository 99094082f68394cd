"""CCS 4.19-4.27: calls (list, one call, filter) and call actions (suppression, kill, wait_*).

Every path here is for tenant level users only (their own tenant). The spec documents the 400 body
of 4.19-4.22 as ``{"success": true, "reason": …}``; that quirk is reproduced on exactly those
(4.22 shares ``POST /calls/<id>`` with 4.23-4.27, so only for ``startSuppression``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request

from ...bootstrap import Container
from ...domain.calls import Call
from ...domain.cdr import CallRecord
from ...domain.tenancy import Permission, Tenant
from ...service.auth import Actor
from .deps import ActorDep, ContainerDep, need, own_tenant
from .errors import CcsError, quirk_success_true
from .render_calls import CallContext, call_object
from .request_body import action_of, read_object, text_field
from .routing import route
from .wire import ccs_datetime, listing, ok

log = logging.getLogger(__name__)

router = APIRouter()

START_SUPPRESSION = "startSuppression"
STOP_SUPPRESSION = "stopSuppression"
KILL = "kill"
WAIT_TRANSFER = "wait_transfer"
WAIT_REDIRECT = "wait_redirect"
WAIT_KILL = "wait_kill"
ACTIONS = (START_SUPPRESSION, STOP_SUPPRESSION, KILL, WAIT_TRANSFER, WAIT_REDIRECT, WAIT_KILL)

#: 4.21's query parameters (anything else is refused: a typo must not widen a search)
FILTER_PARAMS = ("calling_number", "called_number", "from_datetime", "to_datetime", "time_z")


def _context(c: Container, tenant: Tenant) -> CallContext:
    return CallContext(
        now=c.core.clock.now(),
        queues=c.directory.queues,
        extensions=c.directory.extensions,
    )


def _objects(c: Container, tenant: Tenant, items: list[Call | CallRecord]) -> list[Any]:
    ctx = _context(c, tenant)
    return [call_object(item, ctx) for item in items]


# ---------------------------------------------------------------- 4.19-4.21


@route(router, "GET", "/calls")
async def list_calls(request: Request, actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    """4.19: the tenant's live calls, oldest first (API, Calls Listing View)."""
    quirk_success_true(request)
    tenant = own_tenant(c, actor)
    need(actor, Permission.CALLS_LISTING_VIEW)
    calls: list[Call | CallRecord] = list(
        c.calls.list_calls(actor, tenant.id, permission=Permission.CALLS_LISTING_VIEW)
    )
    return listing(_objects(c, tenant, calls))


def _param(request: Request, name: str) -> str | None:
    """A query parameter without surrounding blanks (the spec's own 4.21 example has one before
    ``&from_datetime``); empty means not given."""
    raw = (request.query_params.get(name) or "").strip()
    return raw or None


def _datetime_param(request: Request, name: str, tz: ZoneInfo) -> datetime | None:
    raw = _param(request, name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise CcsError(f"{name} {raw!r} is not a datetime like 2021-10-07T07:22:21") from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _zone_param(request: Request) -> ZoneInfo:
    raw = _param(request, "time_z") or "UTC"
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise CcsError(f"time_z {raw!r} is not a timezone name like UTC or US/Eastern") from None


@route(router, "GET", "/calls/filter")
async def filter_calls(request: Request, actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    """4.21: live and finished calls by calling/called number and start time (API, Calls View)."""
    quirk_success_true(request)
    tenant = own_tenant(c, actor)
    need(actor, Permission.CALLS_VIEW)
    unknown = sorted(set(request.query_params) - set(FILTER_PARAMS))
    if unknown:
        raise CcsError(f"unknown parameter {unknown[0]}: expected {', '.join(FILTER_PARAMS)}")
    tz = _zone_param(request)
    found = await c.calls.search(
        actor,
        tenant.id,
        calling_number=_param(request, "calling_number"),
        called_number=_param(request, "called_number"),
        started_from=_datetime_param(request, "from_datetime", tz),
        started_to=_datetime_param(request, "to_datetime", tz),
    )
    return listing(_objects(c, tenant, found))


@route(router, "GET", "/calls/{call_id}")
async def get_call(
    call_id: str, request: Request, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    """4.20: one call, live or finished (API, Calls View)."""
    quirk_success_true(request)
    tenant = own_tenant(c, actor)
    need(actor, Permission.CALLS_VIEW)
    item = await c.calls.find(actor, tenant.id, call_id)
    return ok(**call_object(item, _context(c, tenant)))


# ---------------------------------------------------------------- 4.22-4.27


@route(router, "POST", "/calls/{call_id}")
async def act_on_call(
    call_id: str, request: Request, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    """4.22-4.27 by ``request`` (API, Call Control)."""
    body = await read_object(request)
    action = action_of(body, ACTIONS)
    if action == START_SUPPRESSION:
        quirk_success_true(request)
    tenant = own_tenant(c, actor)
    need(actor, Permission.CALL_CONTROL)
    result = await _act(c, actor, tenant, call_id, action, body)
    log.info("tenant %s call %s: %s", tenant.id, call_id, action)
    return result


async def _act(
    c: Container, actor: Actor, tenant: Tenant, call_id: str, action: str, body: dict[str, Any]
) -> dict[str, Any]:
    if action in (START_SUPPRESSION, STOP_SUPPRESSION):
        if action == START_SUPPRESSION:
            call = await c.calls.suppress_recording(actor, tenant.id, call_id)
        else:
            call = await c.calls.unsuppress_recording(actor, tenant.id, call_id)
        assert call.recording is not None  # the core refuses a call without one
        window = call.recording.suppressions[-1]
        fields: dict[str, Any] = {"suppressed_on": ccs_datetime(window.started_at)}
        if window.ended_at is not None:
            fields["resumed_on"] = ccs_datetime(window.ended_at)
        return ok(call_id=call.id, recording=call.recording.state.value, **fields)
    if action == KILL:
        await c.calls.kill(actor, tenant.id, call_id)
        return ok(call_id=call_id)
    target = text_field(body, "target") if action in (WAIT_TRANSFER, WAIT_REDIRECT) else ""
    queue_id = c.acd.desk.queue_of(actor, tenant.id, call_id)
    if action == WAIT_TRANSFER:
        await c.acd.desk.transfer(actor, tenant.id, queue_id, call_id, target)
        return ok(call_id=call_id, target=target)
    if action == WAIT_REDIRECT:
        await c.acd.desk.move(actor, tenant.id, queue_id, call_id, target)
        queue = c.directory.queue(actor, tenant.id, target)
        return ok(call_id=call_id, acd={"uuid": queue.id, "name": queue.name})
    await c.acd.desk.kill(actor, tenant.id, queue_id, call_id)
    return ok(call_id=call_id)
