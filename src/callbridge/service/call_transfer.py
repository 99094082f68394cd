"""Moving a party: blind transfer (from the API and by SIP REFER from a party's phone), park
and unpark.
"""

from __future__ import annotations

import contextlib
import logging

from ..domain.calls import Call, HangupCause, Leg, LegRole, PartyKind
from ..domain.errors import Conflict, DomainError
from ..domain.events import call_event
from ..domain.tenancy import Permission
from ..ports.switch import SwitchError
from .auth import Actor
from .call_base import Target, _Draft
from .call_dial import CallDialling

log = logging.getLogger(__name__)


class CallTransfers(CallDialling):
    """Transfer, park and unpark commands; a transfer requested from a phone."""

    async def transfer(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str, target: str
    ) -> Call:
        """Blind transfer: ``leg_id`` stays; its peer leaves; a new leg to ``target`` replaces it.

        With a queue as target, the party waits in that queue instead.
        """
        resolved = self.resolve(tenant_id, target)
        async with self._command(actor, tenant_id, call_id) as d:
            self._transfer_checks(d.call, leg_id)
            await self._blind_transfer(d, leg_id, resolved, target)
        return d.call

    @staticmethod
    def _transfer_checks(call: Call, leg_id: str) -> list[Leg]:
        """Refuse a transfer of ``leg_id`` before anything changes; its peers otherwise."""
        call._answered_leg(leg_id)
        peers = call.peers_of(leg_id)
        if len(peers) > 1:
            raise Conflict("the party is in a conference; kick instead", code="leg_in_conference")
        return peers

    async def _blind_transfer(
        self,
        d: _Draft,
        leg_id: str,
        resolved: Target,
        target: str,
        *,
        requested_by: str | None = None,
    ) -> None:
        call = d.call
        leg = call.leg(leg_id)
        peers = call.peers_of(leg_id)
        d.emit([call_event("leg.transferring", call.id, leg_id=leg_id, target=target)])
        for peer in peers:
            if peer.id == requested_by:
                # the phone that asked (SIP REFER) may have hung up already: nothing to hang up
                with contextlib.suppress(SwitchError):
                    await self.core.switch.hangup(peer.id, HangupCause.TRANSFERRED)
                d.emit(call.leg_hungup(peer.id, HangupCause.TRANSFERRED, self.core.clock.now()))
            else:
                await self._hangup_leg(d, peer.id, HangupCause.TRANSFERRED)
        if leg.hold.value == "held":
            d.emit(call.unhold(leg_id))
            await self.core.switch.unhold(leg_id)
        if resolved.queue is not None:
            await self._enter_queue(d, leg, resolved.queue)
        else:
            if leg.bridge_id is not None:  # wait outside the bridge, hearing music
                bridge_id = leg.bridge_id
                d.emit(call.leave_bridge(leg_id))
                await self.core.switch.unbridge(bridge_id, leg_id)
            if not self._hears_music(call, leg):  # a queued caller already does (#4)
                await self.core.switch.start_music(leg_id)
            await self._dial(
                d,
                resolved,
                LegRole.TRANSFER_TARGET,
                caller_id=leg.number,
                connect_to=leg_id,
            )
        await self._cascade(d, HangupCause.TRANSFERRED)

    async def _transfer_requested(self, d: _Draft, leg: Leg, number: str) -> None:
        """A party pressed blind transfer on its phone (SIP REFER): its one peer is transferred
        to ``number`` through :meth:`_blind_transfer` (which hangs the party up, cause
        ``transferred``); if that cannot be done the switch is told with ``refuse_transfer``.
        Only extension legs may ask (``transfer_forbidden`` otherwise: a caller from outside
        must not send the agent to a number of its choosing over the trunk)."""
        call = d.call
        try:
            if leg.kind is not PartyKind.EXTENSION:
                # a customer (or any trunk party) must not send the agent to a number of its
                # choosing through our trunk: only the platform's own phones may transfer
                raise Conflict("only an extension's phone may transfer", code="transfer_forbidden")
            peers = call.peers_of(leg.id)
            if len(peers) != 1:
                raise Conflict(
                    "only a party with exactly one peer can transfer it", code="transfer_no_peer"
                )
            resolved = self.resolve(call.tenant_id, number)
            self._transfer_checks(call, peers[0].id)
        except DomainError as exc:
            log.info(
                "call %s: transfer from leg %s to %s refused: %s", call.id, leg.id, number, exc
            )
            d.emit(
                [
                    call_event(
                        "leg.transfer_refused", call.id, leg_id=leg.id, target=number, code=exc.code
                    )
                ]
            )
            with contextlib.suppress(SwitchError):  # the phone may have hung up meanwhile
                await self.core.switch.refuse_transfer(leg.id, exc.code)
            return
        await self._blind_transfer(d, peers[0].id, resolved, number, requested_by=leg.id)

    async def park(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str, slot: str | None = None
    ) -> tuple[Call, str]:
        async with self._command(actor, tenant_id, call_id) as d:
            call = d.call
            lot = self._lot(tenant_id)
            chosen = lot.choose(slot)
            leg = call._answered_leg(leg_id)
            bridge_id = leg.bridge_id
            if leg.hold.value == "held":
                d.emit(call.unhold(leg_id))
                await self.core.switch.unhold(leg_id)
            d.emit(call.park(leg_id, chosen))
            if bridge_id is not None:
                await self.core.switch.unbridge(bridge_id, leg_id)
            await self.core.switch.start_music(leg_id)
            if chosen in lot.slots:  # taken while we awaited the switch
                raise Conflict(f"parking slot {chosen} is occupied", code="slot_occupied")
            lot.occupy(chosen, call.id, leg_id)
            await self._cascade(d, HangupCause.NORMAL)
        return d.call, chosen

    async def unpark(self, actor: Actor, tenant_id: str, slot: str, extension_id: str) -> Call:
        actor.require(Permission.CALL_CONTROL)
        ext = self.directory.extension(actor, tenant_id, extension_id)
        parked = self._lot(tenant_id).occupant(slot)
        async with self._command(actor, tenant_id, parked.call_id) as d:
            call = d.call
            if any(o.live and o.connect_to == parked.leg_id for o in call.legs.values()):
                raise Conflict(f"slot {slot} is already being unparked", code="unpark_in_progress")
            await self._dial(
                d,
                Target(ext.number, extension=ext),
                LegRole.UNPARK_TARGET,
                caller_id=call.leg(parked.leg_id).number,
                connect_to=parked.leg_id,
            )
        return d.call
