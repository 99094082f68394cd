"""Native routes: a queue's waiting calls, the supervisor's actions on them, live statistics.

Reads need ``Voice IQs View``; actions need ``Call Control`` (``pick`` also ``Agent Control``,
and an agent may only pick for itself). Every POST honours ``Idempotency-Key``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ...service.acd_desk import (
    MAX_PRIORITY,
    MIN_PRIORITY,
    AgentLiveStats,
    QueueLiveStats,
    WaitingCall,
)
from .deps import ActorDep, ContainerDep

router = APIRouter()

WAITING = "/tenants/{tenant_id}/queues/{queue_id}/waiting"
ONE = WAITING + "/{call_id}"


class TransferTarget(BaseModel):
    target: str = Field(
        min_length=1, description="An extension number, a queue's extension or an outside number"
    )


class MoveTarget(BaseModel):
    queue_id: str = Field(min_length=1)


class PickBy(BaseModel):
    extension_id: str = Field(min_length=1, description="The agent who takes the call")


class CallbackNumber(BaseModel):
    number: str = Field(min_length=1, description="The number to call the customer back on")


@router.get(WAITING, response_model=list[WaitingCall], tags=["queues"], summary="Waiting calls")
async def list_waiting(
    tenant_id: str, queue_id: str, actor: ActorDep, c: ContainerDep
) -> list[WaitingCall]:
    """The calls in the queue, first in line first: waiting, or offered to ringing agents."""
    return c.acd.desk.waiting(actor, tenant_id, queue_id)


@router.post(
    ONE + "/transfer",
    status_code=204,
    tags=["queues"],
    summary="Transfer a waiting call (wait_transfer)",
)
async def transfer_waiting(
    tenant_id: str,
    queue_id: str,
    call_id: str,
    body: TransferTarget,
    actor: ActorDep,
    c: ContainerDep,
) -> Response:
    """The caller leaves the queue and is transferred; a queue's extension moves it instead."""
    await c.acd.desk.transfer(actor, tenant_id, queue_id, call_id, body.target)
    return Response(status_code=204)


@router.post(
    ONE + "/move", status_code=204, tags=["queues"], summary="Move to another queue (wait_redirect)"
)
async def move_waiting(
    tenant_id: str, queue_id: str, call_id: str, body: MoveTarget, actor: ActorDep, c: ContainerDep
) -> Response:
    """The caller keeps their arrival order in the other queue; a full queue refuses."""
    await c.acd.desk.move(actor, tenant_id, queue_id, call_id, body.queue_id)
    return Response(status_code=204)


@router.post(ONE + "/kill", status_code=204, tags=["queues"], summary="End a waiting call")
async def kill_waiting(
    tenant_id: str, queue_id: str, call_id: str, actor: ActorDep, c: ContainerDep
) -> Response:
    await c.acd.desk.kill(actor, tenant_id, queue_id, call_id)
    return Response(status_code=204)


@router.post(ONE + "/pick", status_code=204, tags=["queues"], summary="An agent takes this call")
async def pick_waiting(
    tenant_id: str, queue_id: str, call_id: str, body: PickBy, actor: ActorDep, c: ContainerDep
) -> Response:
    """Out of turn: the agent (a ready, idle member of the queue) is rung at once."""
    await c.acd.desk.pick(actor, tenant_id, queue_id, call_id, body.extension_id)
    return Response(status_code=204)


@router.post(ONE + "/callback", status_code=204, tags=["queues"], summary="Call the customer back")
async def callback_waiting(
    tenant_id: str,
    queue_id: str,
    call_id: str,
    body: CallbackNumber,
    actor: ActorDep,
    c: ContainerDep,
) -> Response:
    """The caller hangs up but keeps their place; the agent who takes it is rung first, and on
    answer the customer is dialled."""
    await c.acd.desk.callback(actor, tenant_id, queue_id, call_id, body.number)
    return Response(status_code=204)


class NewPriority(BaseModel):
    priority: int = Field(
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description="The caller's priority: higher is served first, arrival order within",
    )


@router.post(
    ONE + "/priority", status_code=204, tags=["queues"], summary="Re-prioritise a waiting call"
)
async def reprioritise_waiting(
    tenant_id: str,
    queue_id: str,
    call_id: str,
    body: NewPriority,
    actor: ActorDep,
    c: ContainerDep,
) -> Response:
    """The caller moves within the line to the new priority, keeping their arrival order among
    the callers of that priority; a ringing offer keeps ringing. Outside 0..9: 422
    ``request_invalid``."""
    await c.acd.desk.reprioritise(actor, tenant_id, queue_id, call_id, body.priority)
    return Response(status_code=204)


@router.get(
    "/tenants/{tenant_id}/queues/{queue_id}/stats",
    response_model=QueueLiveStats,
    tags=["queues"],
    summary="Live queue statistics",
)
async def queue_stats(
    tenant_id: str, queue_id: str, actor: ActorDep, c: ContainerDep
) -> QueueLiveStats:
    return c.acd.desk.queue_stats(actor, tenant_id, queue_id)


@router.get(
    "/tenants/{tenant_id}/agents/{extension_id}/stats",
    response_model=AgentLiveStats,
    tags=["agents"],
    summary="Live agent statistics",
)
async def agent_stats(
    tenant_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> AgentLiveStats:
    return c.acd.desk.agent_stats(actor, tenant_id, extension_id)
