"""Carrying out the ACD engine's commands on calls (run by :class:`AcdService`'s worker, in order).

Every command re-checks what it acts on under the call's lock and does nothing when the call or
leg has gone meanwhile: the engine has been told (or will be, by the observer) in commit order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.acd import CallbackDue, CancelOffer, CancelReason, DestinationKind, Offer, Overflow
from ..domain.calls import Call, CallOrigin, CallState, HangupCause, Leg, LegRole, LegState
from ..domain.directory import Queue
from ..domain.errors import DomainError, NotFound
from .calls import Target, _Draft

if TYPE_CHECKING:
    from .acd import AcdService

log = logging.getLogger(__name__)

#: how a call ends when its queue overflows with nowhere to go
OVERFLOW_CAUSE = HangupCause.REJECTED


@dataclass(slots=True)
class OfferLeg:
    """An agent leg the service rang for the engine (an offer, then the connected agent)."""

    tenant_id: str
    call_id: str  # the engine's call id (a callback rings in a new call)
    agent_id: str
    leg_id: str
    answered: bool = False
    cancelled: bool = False  # the engine ended it; the leg is being hung up
    serial: int = 0  # the engine's offer serial: a leg reports on its own offer only
    ended: bool = False  # the leg has gone (forgotten once that is committed)


def waiting_leg(call: Call) -> Leg | None:
    """The party waiting in the queue: answered, unbridged, not parked, connecting to nobody."""
    for leg in sorted(call.live_legs(), key=lambda leg: leg.created_at):
        if (
            leg.state is LegState.ANSWERED
            and leg.bridge_id is None
            and leg.parked_slot is None
            and leg.connect_to is None
        ):
            return leg
    return None


class _Gone(Exception):
    """What the command was for has gone: nothing to do."""


async def ring(svc: AcdService, tenant_id: str, offers: list[Offer]) -> None:
    """Ring the agents' extensions in the customer's call (one commit for a ring-all); the
    customer keeps hearing music until one answers."""
    calls, engine = svc.calls, svc.engines[tenant_id]
    call_id = offers[0].call_id
    try:
        async with calls._mutate(call_id) as d:
            qc = engine.calls.get(call_id)
            customer = waiting_leg(d.call)
            if qc is None or customer is None or d.call.state is not CallState.QUEUED:
                raise _Gone
            rung = 0
            for cmd in offers:
                ext = svc.directory.extensions.get(cmd.agent_id)
                if ext is None or cmd.agent_id not in qc.offers:
                    continue  # withdrawn meanwhile: its CancelOffer follows
                leg = await calls._dial(
                    d,
                    Target(ext.number, extension=ext),
                    LegRole.TARGET,
                    caller_id=d.call.caller_id or customer.number,
                    connect_to=customer.id,
                )
                serial = qc.offers[cmd.agent_id]
                svc.remember(OfferLeg(tenant_id, call_id, cmd.agent_id, leg.id, serial=serial))
                rung += 1
            if not rung:
                raise _Gone
    except (_Gone, NotFound):
        return
    except DomainError as exc:  # the ring timeout will move the offers on
        log.warning("call %s: ringing agents failed: %s", call_id, exc)


async def cancel_offers(svc: AcdService, tenant_id: str, cancels: list[CancelOffer]) -> None:
    """Stop ringing the agents of one call; the engine has released their reservations.

    A ring timeout ends the leg with ``no_answer`` (the agent service counts it as a missed offer);
    a withdrawal (answered elsewhere, abandoned, moved, ...) with ``cancelled``, which is no miss.
    """
    legs: list[tuple[str, HangupCause]] = []
    for cmd in cancels:
        if svc.connected(tenant_id, cmd.call_id, cmd.agent_id):
            continue  # answered before we got here, and the engine took the answer: stale
        leg_id = svc.forget_offer(cmd.call_id, cmd.agent_id)
        if leg_id is not None:
            timeout = cmd.reason is CancelReason.TIMEOUT
            legs.append((leg_id, HangupCause.NO_ANSWER if timeout else HangupCause.CANCELLED))
    call_id = next((svc.calls.leg_call.get(leg) for leg, _ in legs), None)
    if call_id is None:
        return
    calls = svc.calls
    qc = svc.engines[tenant_id].calls.get(cancels[0].call_id)
    queue = None if qc is None else svc.directory.queues.get(qc.queue_id)
    try:
        async with calls._mutate(call_id) as d:
            gone = [(leg, cause) for leg, cause in legs if leg in d.call.legs]
            live = [(leg, cause) for leg, cause in gone if d.call.legs[leg].live]
            if not live:
                raise _Gone
            for leg_id, cause in live:
                await _release(svc, d, leg_id, cause, queue)
            await calls._cascade(d, HangupCause.NORMAL)
    except (_Gone, NotFound):
        return


async def _release(
    svc: AcdService, d: _Draft, leg_id: str, cause: HangupCause, queue: Queue | None
) -> None:
    """Hang up an agent leg. One that answered after all (the answer crossed the cancel) may
    already be bridged with the caller: the caller goes back to the queue's music first."""
    call = d.call
    leg = call.legs[leg_id]
    if leg.state is LegState.ANSWERED:
        cause = HangupCause.CANCELLED  # it was answered: not a miss
        peers = call.peers_of(leg_id)
        if queue is not None and len(peers) == 1 and peers[0].role is LegRole.CUSTOMER:
            await svc.calls._enter_queue(d, peers[0], queue)
    await svc.calls._hangup_leg(d, leg_id, cause)


async def drop_leg(svc: AcdService, leg_id: str, queue_id: str | None) -> None:
    """Hang up an agent leg whose answer came too late (cause ``cancelled``: no miss).

    The call core may already have bridged the caller with it: a caller left alone with it goes
    back to the queue's music (still waiting or offered to another agent in the engine).
    """
    call_id = svc.calls.leg_call.get(leg_id)
    if call_id is None:
        return
    calls = svc.calls
    queue = None if queue_id is None else svc.directory.queues.get(queue_id)
    try:
        async with calls._mutate(call_id) as d:
            leg = d.call.legs.get(leg_id)
            if leg is None or not leg.live:
                raise _Gone
            await _release(svc, d, leg_id, HangupCause.CANCELLED, queue)
            await calls._cascade(d, HangupCause.NORMAL)
    except (_Gone, NotFound):
        return


async def overflow(svc: AcdService, tenant_id: str, cmd: Overflow) -> None:
    """Send the caller on: another queue, an extension or a number; or end the call."""
    async with svc.calls._locks(cmd.call_id):
        pass  # a new call overflowing on arrival is installed once its commit lets go
    call = svc.calls.calls.get(cmd.call_id)
    customer = None if call is None else waiting_leg(call)
    if call is None or customer is None:
        return
    dest = cmd.destination
    if dest is None:
        await end_call(svc, cmd.call_id, OVERFLOW_CAUSE)
        return
    await send_to(svc, tenant_id, call, customer.id, dest.kind, dest.target)


async def send_to(
    svc: AcdService, tenant_id: str, call: Call, leg_id: str, kind: DestinationKind, target: str
) -> None:
    """The normal paths: a queue is entered (the observer then arrives it there); an extension
    or a number is a blind transfer (the caller hears music until the target answers)."""
    d = svc.directory
    if kind is DestinationKind.QUEUE:
        await svc.calls.enter_queue(call.id, leg_id, d.queues[target])
        return
    number = d.extensions[target].number if kind is DestinationKind.EXTENSION else target
    await svc.calls.transfer(svc.actor(tenant_id), tenant_id, call.id, leg_id, number)


async def end_call(svc: AcdService, call_id: str, cause: HangupCause) -> None:
    calls = svc.calls
    try:
        async with calls._mutate(call_id) as d:
            for leg in d.call.live_legs():
                await calls._hangup_leg(d, leg.id, cause)
            await calls._cascade(d, cause)
    except NotFound:
        return


async def callback_due(svc: AcdService, tenant_id: str, cmd: CallbackDue) -> None:
    """Ring the agent in a new call; when the agent answers, dial the customer; bridge.

    The new call stands for the engine's (ended) queued call: the agent's answer, miss and
    hang-up are reported under the queued call's id.
    """
    calls, core = svc.calls, svc.core
    ext = svc.directory.extensions.get(cmd.agent_id)
    if ext is None:
        return
    queue = svc.directory.queues.get(cmd.queue_id)
    now = core.clock.now()
    call = Call(
        id=core.new_call_id(),
        tenant_id=tenant_id,
        origin=CallOrigin.ORIGINATE,
        from_number=ext.number,
        to_number=cmd.number,
        caller_id=(queue.caller_id if queue is not None else None) or ext.number,
        created_at=now,
    )
    draft = _Draft(call, [call.created_event()])
    svc.alias(call.id, cmd.call_id)
    async with calls._locks(call.id):
        leg = await calls._dial(
            draft,
            Target(ext.number, extension=ext),
            LegRole.ORIGINATOR,
            caller_id=cmd.number,
            then_dial=cmd.number,
        )
        qc = svc.engines[tenant_id].calls.get(cmd.call_id)
        serial = qc.offers.get(cmd.agent_id, 0) if qc is not None else 0
        svc.remember(OfferLeg(tenant_id, cmd.call_id, cmd.agent_id, leg.id, serial=serial))
        await calls._commit(draft)
    log.info(
        "call %s tenant %s: callback of %s via %s", call.id, tenant_id, cmd.call_id, ext.number
    )


async def stop_stale_offers(svc: AcdService, call: Call) -> None:
    """After a restart: stop agent legs still ringing for a queued caller (offers of the engine
    that died with the process), so the caller is re-arrived and the agent freed."""
    customer = waiting_leg(call)
    stale = [
        g
        for g in call.live_legs()
        if customer is not None
        and g.connect_to == customer.id
        and g.state is not LegState.ANSWERED
        and g.role is LegRole.TARGET
    ]
    if not stale:
        return
    calls = svc.calls
    async with calls._mutate(call.id) as d:
        for g in stale:
            await calls._hangup_leg(d, g.id, HangupCause.CANCELLED)
        await calls._cascade(d, HangupCause.CANCELLED)
