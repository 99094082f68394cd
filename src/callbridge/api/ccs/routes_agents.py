"""CCS 4.15-4.18 and 4.28: agent state (get, update by telco user, self, tenant admin) and
``POST /tenants/<tid>/extensions/<uuid>`` dispatching on ``request`` (``dial``,
``updateAgentState``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from ...bootstrap import Container
from ...domain.agents import PHONE_DISPLAY, AgentState, clock_duration
from ...domain.errors import IllegalTransition
from ...domain.tenancy import Permission
from ...service.auth import Actor
from .deps import ActorDep, ContainerDep, need, own_tenant, tenant_in_path
from .errors import CcsError
from .request_body import action_of, optional_text, read_object, text_field
from .routing import route
from .wire import ok

log = logging.getLogger(__name__)

router = APIRouter()

UPDATE_STATE = "updateAgentState"
DIAL = "dial"


def agent_state_body(state: AgentState, queue_name: str, now: datetime) -> dict[str, Any]:
    """4.15's body: the spec's keys, order and types (durations ``H:MM:SS``, queue ``"0"``)."""
    if state.queue_id is None:
        queue_duration = "0"
    else:
        since = state.queue_since or now
        queue_duration = clock_duration((now - since).total_seconds())
    return ok(
        queue_state={"state": state.queue_status, "queue": queue_name, "duration": queue_duration},
        phone_state={
            "state": PHONE_DISPLAY[state.phone],
            "duration": clock_duration((now - state.phone_since).total_seconds()),
        },
        consecutive_missed=state.consecutive_missed,
        agent_state={
            "state": {"type": state.presence.value, "name": state.presence_name},
            "duration": clock_duration((now - state.presence_since).total_seconds()),
        },
    )


def _self_extension(actor: Actor) -> str:
    ext_id = actor.principal.extension_id
    if ext_id is None:
        raise CcsError("the user has no extension of its own: name one in /extensions/<uuid>")
    return ext_id


def _read_state(c: Container, actor: Actor, tenant_id: str, extension_id: str) -> dict[str, Any]:
    need(actor, Permission.AGENT_CONTROL)
    state = c.agents.state(actor, tenant_id, extension_id)
    queue = None if state.queue_id is None else c.directory.queues.get(state.queue_id)
    return agent_state_body(state, queue.name if queue else "", c.core.clock.now())


async def _update_state(
    c: Container, actor: Actor, tenant_id: str, extension_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    need(actor, Permission.AGENT_CONTROL)
    name = text_field(body, "name")
    try:
        await c.agents.set_state(actor, tenant_id, extension_id, name)
    except IllegalTransition:
        # Project-defined: asking for the state the agent is already in (an agent desktop's
        # button pressed twice) is refused by the core's state machine, after its permission
        # checks; the dialect answers success (no change, no event), as a setter is expected to.
        kind, resolved = c.directory.resolve_presence(tenant_id, name)
        now = c.agents.state(actor, tenant_id, extension_id)
        if now.presence is not kind or now.presence_name != resolved:
            raise
        return ok()
    log.info("tenant %s agent %s: state set to %r", tenant_id, extension_id, name)
    return ok()


async def _dial(
    c: Container, actor: Actor, tenant_id: str, extension_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    if actor.is_telco:
        raise CcsError('"dial" is only for tenant level users')
    need(actor, Permission.CALL_CONTROL)
    target = text_field(body, "target")
    outbound = optional_text(body, "outbound_queue_uuid")
    call = await c.calls.originate(
        actor, tenant_id, extension_id, target, outbound_queue_id=outbound
    )
    return ok(call_id=call.id)


# ---------------------------------------------------------------- 4.15 (and conveniences)


@route(router, "GET", "/tenants/{tenant_id}/extensions/{extension_id}/agent_state")
async def get_agent_state(
    tenant_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    """4.15: an agent's state (API, Agent Control)."""
    need(actor, Permission.AGENT_CONTROL)
    tenant_in_path(c, actor, tenant_id)
    return _read_state(c, actor, tenant_id, extension_id)


@route(router, "GET", "/agent_state")
async def get_own_agent_state(actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    """Project-defined: the state of the user's own extension (tenant level)."""
    tenant = own_tenant(c, actor)
    need(actor, Permission.AGENT_CONTROL)
    return _read_state(c, actor, tenant.id, _self_extension(actor))


@route(router, "GET", "/extensions/{extension_id}/agent_state")
async def get_tenant_agent_state(
    extension_id: str, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    """Project-defined: an agent's state in the user's own tenant (tenant level)."""
    tenant = own_tenant(c, actor)
    return _read_state(c, actor, tenant.id, extension_id)


# ---------------------------------------------------------------- 4.16 / 4.28, 4.17, 4.18


@route(router, "POST", "/tenants/{tenant_id}/extensions/{extension_id}")
async def post_extension(
    tenant_id: str, extension_id: str, request: Request, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    """4.16 ``updateAgentState`` (API, Agent Control) or 4.28 ``dial`` (API, Call Control,
    tenant level users only)."""
    body = await read_object(request)
    action = action_of(body, (UPDATE_STATE, DIAL))
    tenant_in_path(c, actor, tenant_id)
    if action == DIAL:
        return await _dial(c, actor, tenant_id, extension_id, body)
    return await _update_state(c, actor, tenant_id, extension_id, body)


@route(router, "POST", "/agent_state")
async def post_own_agent_state(
    request: Request, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    """4.17: the user changes its own extension's state (API, Agent Control)."""
    tenant = own_tenant(c, actor)
    body = await read_object(request)
    action_of(body, (UPDATE_STATE,))
    need(actor, Permission.AGENT_CONTROL)
    return await _update_state(c, actor, tenant.id, _self_extension(actor), body)


@route(router, "POST", "/extensions/{extension_id}")
async def post_tenant_extension(
    extension_id: str, request: Request, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    """4.18: a tenant admin changes an agent's state (API, Agent Control)."""
    tenant = own_tenant(c, actor)
    body = await read_object(request)
    action_of(body, (UPDATE_STATE,))
    return await _update_state(c, actor, tenant.id, extension_id, body)
