"""The :class:`SipSwitch` class: lifecycle, hangup and the media commands; the SIP concerns
come from the mixins (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from ...domain.calls import HangupCause
from ...ports.switch import SwitchError, SwitchEvent, SwitchEventKind, SwitchListener
from .base import SwitchBase
from .incoming import IncomingMixin
from .legs import LegState
from .outgoing import OutgoingMixin
from .refer import ReferMixin
from .reinvite import ReinviteMixin

if TYPE_CHECKING:
    from ...ports.switch import Switch

_BYE_WAIT_S = 2.0  # how long stop() waits for the BYEs' responses
_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "REFER")


class SipSwitch(OutgoingMixin, IncomingMixin, ReinviteMixin, ReferMixin, SwitchBase):
    """A B2BUA on :class:`SipEndpoint` + :class:`SipClient` + a :class:`MediaEngine`.

    ``recordings_dir`` is where ``record_start`` writes ``<recording_id>.wav`` (recording is
    refused without it). ``hold_reinvite``: re-INVITE held legs with ``sendonly``.
    ``trunk_username``/``trunk_password``: answer a trunk's 401/407 once. ``public_host``: the
    address in our Contact when the endpoint is bound to a wildcard address.
    """

    # --- lifecycle -----------------------------------------------------------------------------

    def set_listener(self, listener: SwitchListener) -> None:
        self._listener = listener

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self.media.on_dtmf = self._on_dtmf
        self.endpoint.register("INVITE", self._on_invite)
        self.endpoint.register("ACK", self._on_ack)
        self.endpoint.register("BYE", self._on_bye)
        self.endpoint.register("CANCEL", self._on_cancel)
        self.endpoint.register("REFER", self._on_refer)

    async def stop(self) -> None:
        """BYE every confirmed dialog, CANCEL/refuse ringing ones, release all media."""
        if not self._running:
            return
        self._running = False
        for method in _METHODS:
            self.endpoint.unregister(method)
        if self.media.on_dtmf == self._on_dtmf:
            self.media.on_dtmf = None
        finals: list[Awaitable[Any]] = []
        for leg in list(self._legs.values()):
            pending = await self._end(leg, HangupCause.SHUTDOWN)
            if pending is not None:
                finals.append(pending)
        if finals:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_BYE_WAIT_S):
                    await asyncio.gather(*finals, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._legs.clear()
        self._by_dialog.clear()
        self._incoming.clear()

    # --- hangup --------------------------------------------------------------------------------

    async def hangup(self, leg_id: str, cause: HangupCause) -> None:
        leg = self._leg(leg_id)
        await self._end(leg, cause)

    # --- media ---------------------------------------------------------------------------------

    def _on_dtmf(self, leg_id: str, digit: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is not None and leg.state is LegState.ANSWERED:
            self._emit(SwitchEvent(SwitchEventKind.DTMF, leg_id, digits=digit))

    async def bridge(self, bridge_id: str, leg_ids: Sequence[str], mixing: bool) -> None:
        for leg_id in leg_ids:
            self._answered(leg_id)
        await self._media(self.media.connect(bridge_id, list(leg_ids)))

    async def unbridge(self, bridge_id: str, leg_id: str) -> None:
        self._leg(leg_id)
        await self._media(self.media.disconnect(bridge_id, leg_id))

    async def hold(self, leg_id: str) -> None:
        """Music to the leg (the engine) and, with ``hold_reinvite``, a ``sendonly`` re-INVITE:
        the phone shows the call as held and may stop sending; we keep sending the music."""
        leg = self._answered(leg_id)
        await self._media(self.media.hold(leg_id))
        self._want(leg, "sendonly")

    async def unhold(self, leg_id: str) -> None:
        leg = self._answered(leg_id)
        await self._media(self.media.unhold(leg_id))
        self._want(leg, "sendrecv")

    async def mute(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.mute(leg_id))

    async def unmute(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.unmute(leg_id))

    async def set_audibility(self, leg_id: str, heard_by: Sequence[str] | None) -> None:
        self._answered(leg_id)
        await self._media(self.media.set_audibility(leg_id, heard_by))

    async def start_music(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.start_music(leg_id))

    async def stop_music(self, leg_id: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.stop_music(leg_id))

    async def record_start(self, recording_id: str, call_id: str) -> None:
        self._check_running()
        if self.recordings_dir is None:
            raise SwitchError("no recordings directory configured", code="recording_unavailable")
        legs = [
            leg.leg_id
            for leg in self._legs.values()
            if leg.call_id == call_id and leg.state is LegState.ANSWERED
        ]
        if not legs:
            raise SwitchError(f"call {call_id} has no answered leg", code="leg_not_answered")
        path = self.recordings_dir / f"{recording_id}.wav"
        await self._media(self.media.record_start(recording_id, legs, path))
        self._recordings[recording_id] = legs

    async def record_pause(self, recording_id: str) -> None:
        self._check_running()
        await self._media(self.media.record_pause(recording_id))

    async def record_resume(self, recording_id: str) -> None:
        self._check_running()
        await self._media(self.media.record_resume(recording_id))

    async def record_stop(self, recording_id: str) -> None:
        self._check_running()
        await self._media(self.media.record_stop(recording_id))
        self._recordings.pop(recording_id, None)

    async def send_dtmf(self, leg_id: str, digits: str) -> None:
        self._answered(leg_id)
        await self._media(self.media.send_dtmf(leg_id, digits))


def _conforms(switch: SipSwitch) -> Switch:
    return switch  # mypy checks that SipSwitch implements the port
