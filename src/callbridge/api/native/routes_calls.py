"""Native routes: calls and their parties, parking, recordings, the simulator."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ...adapters.simswitch import EndpointScript
from ...domain.calls import Call
from ...domain.events import StoredEvent
from ...domain.parking import ParkingLot
from .deps import ActorDep, ContainerDep

router = APIRouter()
CALL = "/tenants/{tenant_id}/calls/{call_id}"
LEG = CALL + "/legs/{leg_id}"


class Originate(BaseModel):
    extension_id: str = Field(description="The extension rung first (the agent)")
    target: str = Field(
        description="Extension number or external number dialled once the extension answers"
    )
    outbound_queue_id: str | None = Field(
        default=None, description="Outbound queue whose caller id is presented"
    )


class TargetBody(BaseModel):
    target: str = Field(description="Extension number, queue extension or external number")


class ParkBody(BaseModel):
    slot: str | None = Field(default=None, description="701-710; omitted: the first free slot")


class Parked(BaseModel):
    slot: str
    call: Call


class UnparkBody(BaseModel):
    extension_id: str


class JoinBody(BaseModel):
    other_call_id: str = Field(description="The held call sharing a party with this one")


class SuperviseBody(BaseModel):
    extension_id: str = Field(description="The supervisor's extension, rung first")
    mode: str = Field(
        description="`listen` (hears both sides, heard by nobody), `whisper` (heard by the "
        "agent only) or `barge` (a normal party); anything else: `supervision_mode_invalid`"
    )
    agent_leg_id: str = Field(description="The answered, bridged agent leg to supervise")


class SupervisionModeBody(BaseModel):
    mode: str = Field(description="`listen`, `whisper` or `barge`")


class DtmfBody(BaseModel):
    digits: str = Field(min_length=1, max_length=64)


@router.get(
    "/tenants/{tenant_id}/calls", response_model=list[Call], tags=["calls"], summary="Live calls"
)
async def list_calls(tenant_id: str, actor: ActorDep, c: ContainerDep) -> list[Call]:
    return c.calls.list_calls(actor, tenant_id)


@router.post(
    "/tenants/{tenant_id}/calls",
    response_model=Call,
    status_code=201,
    tags=["calls"],
    summary="Originate (click-to-call): ring the extension, then the target",
)
async def originate(tenant_id: str, body: Originate, actor: ActorDep, c: ContainerDep) -> Call:
    return await c.calls.originate(
        actor, tenant_id, body.extension_id, body.target, outbound_queue_id=body.outbound_queue_id
    )


@router.get(
    CALL, response_model=Call, tags=["calls"], summary="A live call; `seq` is the event it reflects"
)
async def get_call(tenant_id: str, call_id: str, actor: ActorDep, c: ContainerDep) -> Call:
    return c.calls.get(actor, tenant_id, call_id)


@router.get(
    CALL + "/timeline",
    response_model=list[StoredEvent],
    tags=["calls"],
    summary="Every event of a call (live or ended), in order",
)
async def timeline(
    tenant_id: str, call_id: str, actor: ActorDep, c: ContainerDep
) -> list[StoredEvent]:
    events = await c.calls.timeline(actor, tenant_id, call_id)
    return [e for e in events if actor.may_receive(e.category)]


@router.post(CALL + "/kill", response_model=Call, tags=["calls"], summary="Hang up every leg")
async def kill(tenant_id: str, call_id: str, actor: ActorDep, c: ContainerDep) -> Call:
    return await c.calls.kill(actor, tenant_id, call_id)


@router.post(
    CALL + "/parties",
    response_model=Call,
    status_code=202,
    tags=["conference"],
    summary="Dial a third party into the call (a conference once it answers)",
)
async def add_party(
    tenant_id: str, call_id: str, body: TargetBody, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.add_party(actor, tenant_id, call_id, body.target)


@router.post(
    CALL + "/supervision",
    response_model=Call,
    status_code=202,
    tags=["supervision"],
    summary="Supervise an agent: ring the supervisor, who joins in listen, whisper or barge mode",
    description="Needs the `Call Monitor` permission. The supervisor leg (role `supervisor`) "
    "joins the agent's bridge once it answers (`supervision.started`); errors: "
    "`not_supervisable` (the leg is not an answered, bridged agent), `supervisor_in_call`, "
    "`supervision_mode_invalid`.",
)
async def supervise(
    tenant_id: str, call_id: str, body: SuperviseBody, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.supervise(
        actor, tenant_id, call_id, body.extension_id, body.mode, body.agent_leg_id
    )


@router.put(
    CALL + "/supervision/{leg_id}",
    response_model=Call,
    tags=["supervision"],
    summary="Switch a joined supervisor between listen, whisper and barge",
    description="Needs `Call Monitor`; emits `supervision.mode_changed` (nothing if unchanged). "
    "Errors: `not_supervisor`, `supervision_not_started`, `supervision_mode_invalid`.",
)
async def set_supervision_mode(
    tenant_id: str,
    call_id: str,
    leg_id: str,
    body: SupervisionModeBody,
    actor: ActorDep,
    c: ContainerDep,
) -> Call:
    return await c.calls.set_supervision_mode(actor, tenant_id, call_id, leg_id, body.mode)


@router.delete(
    CALL + "/supervision/{leg_id}",
    response_model=Call,
    tags=["supervision"],
    summary="End a supervision: hang the supervisor leg up (`supervision.ended`)",
)
async def end_supervision(
    tenant_id: str, call_id: str, leg_id: str, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.end_supervision(actor, tenant_id, call_id, leg_id)


@router.post(
    CALL + "/join",
    response_model=Call,
    tags=["conference"],
    summary="Join this call and another sharing a party into one conference",
)
async def join(
    tenant_id: str, call_id: str, body: JoinBody, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.join(actor, tenant_id, call_id, body.other_call_id)


@router.post(LEG + "/hangup", response_model=Call, tags=["parties"])
async def hangup(
    tenant_id: str, call_id: str, leg_id: str, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.hangup(actor, tenant_id, call_id, leg_id)


@router.post(LEG + "/kick", response_model=Call, tags=["conference"])
async def kick(tenant_id: str, call_id: str, leg_id: str, actor: ActorDep, c: ContainerDep) -> Call:
    return await c.calls.kick(actor, tenant_id, call_id, leg_id)


@router.post(LEG + "/hold", response_model=Call, tags=["parties"], summary="The party hears music")
async def hold(tenant_id: str, call_id: str, leg_id: str, actor: ActorDep, c: ContainerDep) -> Call:
    return await c.calls.hold(actor, tenant_id, call_id, leg_id)


@router.post(LEG + "/unhold", response_model=Call, tags=["parties"])
async def unhold(
    tenant_id: str, call_id: str, leg_id: str, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.unhold(actor, tenant_id, call_id, leg_id)


@router.post(LEG + "/mute", response_model=Call, tags=["parties"])
async def mute(tenant_id: str, call_id: str, leg_id: str, actor: ActorDep, c: ContainerDep) -> Call:
    return await c.calls.mute(actor, tenant_id, call_id, leg_id)


@router.post(LEG + "/unmute", response_model=Call, tags=["parties"])
async def unmute(
    tenant_id: str, call_id: str, leg_id: str, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.unmute(actor, tenant_id, call_id, leg_id)


@router.post(
    LEG + "/transfer",
    response_model=Call,
    tags=["parties"],
    summary="Blind transfer: this party stays, its peer is replaced by the target",
)
async def transfer(
    tenant_id: str, call_id: str, leg_id: str, body: TargetBody, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.transfer(actor, tenant_id, call_id, leg_id, body.target)


@router.post(LEG + "/park", response_model=Parked, tags=["parking"])
async def park(
    tenant_id: str, call_id: str, leg_id: str, body: ParkBody, actor: ActorDep, c: ContainerDep
) -> Parked:
    call, slot = await c.calls.park(actor, tenant_id, call_id, leg_id, body.slot)
    return Parked(slot=slot, call=call)


@router.post(LEG + "/dtmf", response_model=Call, tags=["parties"])
async def dtmf(
    tenant_id: str, call_id: str, leg_id: str, body: DtmfBody, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.send_dtmf(actor, tenant_id, call_id, leg_id, body.digits)


@router.get("/tenants/{tenant_id}/parking", response_model=ParkingLot, tags=["parking"])
async def parking(tenant_id: str, actor: ActorDep, c: ContainerDep) -> ParkingLot:
    return c.calls.parking_lot(actor, tenant_id)


@router.post(
    "/tenants/{tenant_id}/parking/{slot}/unpark",
    response_model=Call,
    tags=["parking"],
    summary="Ring an extension and connect it to the leg parked in the slot",
)
async def unpark(
    tenant_id: str, slot: str, body: UnparkBody, actor: ActorDep, c: ContainerDep
) -> Call:
    return await c.calls.unpark(actor, tenant_id, slot, body.extension_id)


@router.post(
    CALL + "/recording", response_model=Call, tags=["recording"], summary="Start recording"
)
async def record_start(tenant_id: str, call_id: str, actor: ActorDep, c: ContainerDep) -> Call:
    return await c.calls.start_recording(actor, tenant_id, call_id)


@router.post(
    CALL + "/recording/suppress", response_model=Call, tags=["recording"], summary="Pause (PCI)"
)
async def record_suppress(tenant_id: str, call_id: str, actor: ActorDep, c: ContainerDep) -> Call:
    return await c.calls.suppress_recording(actor, tenant_id, call_id)


@router.post(
    CALL + "/recording/unsuppress", response_model=Call, tags=["recording"], summary="Resume"
)
async def record_unsuppress(tenant_id: str, call_id: str, actor: ActorDep, c: ContainerDep) -> Call:
    return await c.calls.unsuppress_recording(actor, tenant_id, call_id)


@router.post(CALL + "/recording/stop", response_model=Call, tags=["recording"])
async def record_stop(tenant_id: str, call_id: str, actor: ActorDep, c: ContainerDep) -> Call:
    return await c.calls.stop_recording(actor, tenant_id, call_id)


# ---------------------------------------------------------------- simulator


class SimCall(BaseModel):
    from_number: str = Field(alias="from", description="The external number calling in")
    to: str = Field(description="An extension or queue extension of the tenant")


class SimCallStarted(BaseModel):
    call_id: str


@router.post(
    "/tenants/{tenant_id}/sim/calls",
    response_model=SimCallStarted,
    status_code=202,
    tags=["simulator"],
    summary="Place an inbound call from an external number",
)
async def sim_call(
    tenant_id: str, body: SimCall, actor: ActorDep, c: ContainerDep
) -> SimCallStarted:
    call_id = await c.calls.simulate_inbound(actor, tenant_id, body.from_number, body.to)
    return SimCallStarted(call_id=call_id)


@router.get("/sim/endpoints", response_model=dict[str, EndpointScript], tags=["simulator"])
async def sim_scripts(actor: ActorDep, c: ContainerDep) -> dict[str, EndpointScript]:
    return dict(c.simulator.scripts(actor))


@router.put(
    "/sim/endpoints/{number}",
    response_model=EndpointScript,
    tags=["simulator"],
    summary="Script how a number behaves when dialled (answer, busy, no_answer, ...)",
)
async def sim_set_script(
    number: str, body: EndpointScript, actor: ActorDep, c: ContainerDep
) -> EndpointScript:
    await c.simulator.set_script(actor, number, body)
    return body


@router.delete("/sim/endpoints/{number}", status_code=204, tags=["simulator"])
async def sim_clear_script(number: str, actor: ActorDep, c: ContainerDep) -> Response:
    await c.simulator.clear_script(actor, number)
    return Response(status_code=204)
