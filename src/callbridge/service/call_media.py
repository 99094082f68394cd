"""What a call's parties hear and send: hold (from the API and from a party's own phone), mute,
DTMF and recording (with its suppression windows).
"""

from __future__ import annotations

import logging

from ..domain.calls import Call, HoldState, Leg, LegState
from ..domain.directory import RecordingType
from ..domain.events import call_event
from .auth import Actor
from .call_base import _Draft
from .call_dial import CallDialling

log = logging.getLogger(__name__)


class CallMedia(CallDialling):
    """Hold, mute, DTMF and recording commands; a party holding from its phone."""

    async def hold(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.hold(leg_id))
            await self.core.switch.hold(leg_id)
        return d.call

    async def unhold(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.unhold(leg_id))
            await self.core.switch.unhold(leg_id)
        return d.call

    async def mute(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.mute(leg_id))
            await self.core.switch.mute(leg_id)
        return d.call

    async def unmute(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.unmute(leg_id))
            await self.core.switch.unmute(leg_id)
        return d.call

    async def send_dtmf(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str, digits: str
    ) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.dtmf_sent(leg_id, digits))
            await self.core.switch.send_dtmf(leg_id, digits)
        return d.call

    async def _party_hold(self, d: _Draft, leg: Leg, held: bool) -> None:
        """A party put the call on hold from its phone (``HELD``) or resumed (``RESUMED``).

        The other answered parties of its bridge are held (they hear music) or unheld through
        the same steps as the hold command, so the event log shows ``leg.held``/``leg.unheld``
        for them after ``leg.party_held``/``leg.party_resumed``. Kept small on purpose: a peer
        already in the wanted state is left alone, and resuming unholds every held peer, also
        one an agent had held through the API.
        """
        call = d.call
        kind = "leg.party_held" if held else "leg.party_resumed"
        d.emit([call_event(kind, call.id, leg_id=leg.id)])
        if leg.state is not LegState.ANSWERED or call.ended:
            return
        for peer in call.peers_of(leg.id):
            if peer.state is not LegState.ANSWERED:
                continue
            if held and peer.hold is HoldState.ACTIVE:
                d.emit(call.hold(peer.id))
                await self.core.switch.hold(peer.id)
            elif not held and peer.hold is HoldState.HELD:
                d.emit(call.unhold(peer.id))
                await self.core.switch.unhold(peer.id)

    # ------------------------------------------------------------------ recording

    async def start_recording(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            rec_id = self.core.new_id()
            d.emit(d.call.start_recording(rec_id, self.core.clock.now()))
            await self.core.switch.record_start(rec_id, call_id)
        return d.call

    async def _record_if_mandatory(self, d: _Draft) -> None:
        """Start recording a call once a party whose extension records every call
        (``recording_type`` ``Mandatory``) is connected; once per call (a recording stopped by
        hand stays stopped)."""
        call = d.call
        if call.recording is not None or call.ended:
            return
        for leg in call.live_legs():
            ext = (
                None
                if leg.extension_id is None
                else self.directory.extensions.get(leg.extension_id)
            )
            if (
                ext is not None
                and leg.bridge_id is not None
                and ext.recording_type is RecordingType.MANDATORY
            ):
                rec_id = self.core.new_id()
                d.emit(call.start_recording(rec_id, self.core.clock.now()))
                await self.core.switch.record_start(rec_id, call.id)
                log.info(
                    "call %s tenant %s: recording %s (extension %s records every call)",
                    call.id, call.tenant_id, rec_id, ext.number,
                )  # fmt: skip
                return

    async def suppress_recording(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.suppress_recording(self.core.clock.now(), actor.id))
            assert d.call.recording is not None
            await self.core.switch.record_pause(d.call.recording.id)
        return d.call

    async def unsuppress_recording(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.unsuppress_recording(self.core.clock.now(), actor.id))
            assert d.call.recording is not None
            await self.core.switch.record_resume(d.call.recording.id)
        return d.call

    async def stop_recording(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.stop_recording(self.core.clock.now()))
            assert d.call.recording is not None
            await self.core.switch.record_stop(d.call.recording.id)
        return d.call
