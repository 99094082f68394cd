"""Re-INVITEs (RFC 3261 §14, RFC 3264 §8): the peer's (hold, resume, new address or codec, late
offer) and ours (``sendonly`` towards a leg the core holds, ``sendrecv`` on unhold)."""

from __future__ import annotations

import random

from aiosipua.message import SipRequest, SipResponse

from ...media.port import Codec
from ...ports.switch import SwitchError, SwitchEvent, SwitchEventKind
from ...sip.client import build_ack_for_2xx
from ...sip.dialogs import DialogState, incoming_key
from ...sip.responses import make_response
from ...sip.sdp import Direction, RemoteMedia, SdpError, choose, is_hold_address, parse_remote
from ...sip.source import Source
from .base import SwitchBase, log
from .legs import HoldReinvite, Leg, LegState

_SDP = "application/sdp"


def _cseq_number(message: SipRequest | SipResponse) -> int | None:
    number = (message.headers.get_first("cseq") or "").strip().partition(" ")[0]
    return int(number) if number.isdigit() else None


class ReinviteMixin(SwitchBase):
    # --- theirs --------------------------------------------------------------------------------

    async def _on_reinvite(self, request: SipRequest, source: Source) -> SipResponse | None:
        key = incoming_key(request)
        leg = self._by_dialog.get(key) if key is not None else None
        if leg is None or leg.dialog is None:
            return make_response(request, 481, "Call/Transaction Does Not Exist")
        dialog = leg.dialog
        refusal = dialog.refusal(request)
        if refusal is not None:
            return make_response(request, refusal)
        if leg.reinvite_out:
            return dialog.respond(request, 491)  # glare: ours is pending (§14.2)
        if leg.state is not LegState.ANSWERED or leg.reinvite_in or leg.ok is not None:
            # an INVITE of theirs is still pending (unanswered or not ACKed): §14.2
            retry = str(random.randint(1, 10))
            return dialog.respond(request, 500, extra_headers={"Retry-After": retry})
        assert leg.address is not None
        leg.reinvite_in = True
        if request.body:
            offer = parse_remote(request.body)
            if isinstance(offer, SdpError):
                leg.reinvite_in = False
                return dialog.respond(request, offer.status, offer.reason[:100])
            result = leg.session.answer(offer, leg.address, direction=leg.wanted)
            if isinstance(result, SdpError):
                leg.reinvite_in = False
                return dialog.respond(request, 488)
            sdp, codec, dtmf_pt = result
            try:
                await self._set_remote(leg, offer, codec, dtmf_pt)
            except SwitchError as exc:
                log.warning("sip switch: re-INVITE on leg %s: %s", leg.leg_id, exc)
                leg.reinvite_in = False
                return dialog.respond(request, 500)
            if leg.ended:
                return dialog.respond(request, 481)
            leg.sent = leg.wanted
        else:  # late offer: ours goes in the 200, their answer comes in the ACK
            sdp = leg.session.next_offer(leg.address, direction=leg.wanted)
            leg.late_offer = True
            offer = None
        contact = request.headers.get_first("contact")
        if contact:
            try:
                dialog.update_target(contact)
            except ValueError:
                log.debug("re-INVITE on leg %s with an empty Contact", leg.leg_id)
        ok = dialog.respond(request, 200, body=sdp, content_type=_SDP)
        self._send_ok(leg, request, ok)
        if offer is not None:
            self._peer_hold(leg, offer.on_hold)
        return None

    async def _set_remote(
        self, leg: Leg, remote: RemoteMedia, codec: Codec, dtmf: int | None
    ) -> None:
        """``media.set_remote`` from a new offer/answer, unless it changes nothing; an RFC 2543
        hold (``c=0.0.0.0``) keeps the previous address and only changes the codec."""
        host, port = remote.host, remote.port
        if is_hold_address(host) and leg.remote is not None:
            host, port = leg.remote[0], leg.remote[1]
        elif is_hold_address(host):
            return
        wanted = (host, port, codec, dtmf)
        if wanted == leg.remote:
            return
        await self._media(self.media.set_remote(leg.leg_id, host, port, codec, dtmf))
        leg.remote = wanted

    def _peer_hold(self, leg: Leg, held: bool) -> None:
        """Tell the core when the peer puts us on hold (``HELD``) or resumes (``RESUMED``)."""
        if held == leg.peer_hold or leg.state is not LegState.ANSWERED:
            return
        leg.peer_hold = held
        kind = SwitchEventKind.HELD if held else SwitchEventKind.RESUMED
        self._emit(SwitchEvent(kind, leg.leg_id))

    async def _on_ack(self, request: SipRequest, source: Source) -> None:
        key = incoming_key(request)
        leg = self._by_dialog.get(key) if key is not None else None
        if leg is None or leg.ok is None or leg.ok_request is None:
            return None
        if _cseq_number(request) != _cseq_number(leg.ok_request):
            return None  # a late ACK of an earlier 200
        if leg.ok_timer is not None:
            leg.ok_timer.cancel()
            leg.ok_timer = None
        leg.ok = leg.ok_request = None
        if leg.late_offer:
            leg.late_offer = False
            await self._late_answer(leg, request.body or b"")
        leg.reinvite_in = False
        if not leg.ended:
            self._kick_reinvite(leg)
        return None

    async def _late_answer(self, leg: Leg, body: bytes) -> None:
        """The answer in the ACK to our offer in a 2xx (RFC 3264 §4)."""
        remote = parse_remote(body) if body else SdpError("no answer in the ACK")
        chosen = choose(remote) if not isinstance(remote, SdpError) else remote
        if isinstance(remote, SdpError) or isinstance(chosen, SdpError):
            # §13.3.1.4 would allow a BYE; keeping the media as it was is kinder to the call
            log.warning("sip switch: leg %s: unusable answer in the ACK: %s", leg.leg_id, chosen)
            return
        try:
            await self._set_remote(leg, remote, chosen[0], chosen[1])
        except SwitchError as exc:
            log.warning("sip switch: leg %s: %s", leg.leg_id, exc)
            return
        leg.sent = leg.wanted
        self._peer_hold(leg, remote.on_hold)

    # --- ours ----------------------------------------------------------------------------------

    def _want(self, leg: Leg, direction: Direction) -> None:
        """The core (un)holds the leg: re-INVITE it as ``hold_reinvite`` says. By default only
        phones are: trunk and outside callers' legs just hear the music, because carriers and
        simple UAs often mishandle a B2BUA's sendonly re-INVITE (a SIPp scenario aborts the
        call) and there is no display on their side to show the hold."""
        mode = self.hold_reinvite
        if mode is HoldReinvite.OFF or (mode is HoldReinvite.PHONES and not leg.phone):
            return
        leg.wanted = direction
        self._kick_reinvite(leg)

    def _kick_reinvite(self, leg: Leg) -> None:
        if (
            leg.ended
            or leg.state is not LegState.ANSWERED
            or leg.reinvite_out
            or leg.reinvite_in
            or leg.ok is not None
            or leg.retry_timer is not None
            or leg.wanted == leg.sent
        ):
            return  # nothing to do, or tried again when what is pending completes
        leg.reinvite_out = True
        self._spawn(self._run_reinvite(leg, leg.wanted))

    async def _run_reinvite(self, leg: Leg, direction: Direction) -> None:
        dialog, destination, address = leg.dialog, leg.destination, leg.address
        try:
            if dialog is None or destination is None or address is None:
                return
            if dialog.state is not DialogState.CONFIRMED:
                return
            sdp = leg.session.next_offer(address, direction=direction)
            invite = dialog.new_request("INVITE", body=sdp, content_type=_SDP)
            tx = await self.client.invite(invite, destination)
            final = await tx.final()
            status = final.status_code
            if 200 <= status < 300:
                if dialog.state is DialogState.CONFIRMED:
                    await self.client.ack(tx, dialog.new_ack(invite))
                else:  # the leg ended (BYE) while the re-INVITE was out: ACK it all the same
                    await self.client.ack(tx, build_ack_for_2xx(invite, final))
                if leg.ended:
                    return
                contact = final.headers.get_first("contact")
                if contact:
                    try:
                        dialog.update_target(contact)
                    except ValueError:
                        log.debug("2xx to our re-INVITE with an empty Contact")
                await self._our_offer_answered(leg, final, direction)
            elif leg.ended:
                return
            elif status == 491:
                # §14.1: retry after 2.1-4 s if we own the Call-ID (we sent the INVITE), else 0-2 s
                low, high = (2.1, 4.0) if leg.outgoing else (0.0, 2.0)
                delay = random.uniform(low, high)
                leg.retry_timer = self.clock.call_later(delay, lambda: self._retry(leg))
            elif status in (408, 481):
                log.info(
                    "sip switch: re-INVITE on leg %s got %d: the dialog is gone", leg.leg_id, status
                )
                self._fail(leg)
            else:
                log.warning(
                    "sip switch: re-INVITE (%s) on leg %s refused with %d; media unchanged",
                    direction,
                    leg.leg_id,
                    status,
                )
                leg.sent = direction  # do not insist; the core's state stands
        finally:
            leg.reinvite_out = False
            if not leg.ended:
                self._kick_reinvite(leg)

    def _retry(self, leg: Leg) -> None:
        leg.retry_timer = None
        self._kick_reinvite(leg)

    async def _our_offer_answered(self, leg: Leg, ok: SipResponse, direction: Direction) -> None:
        remote = parse_remote(ok.body or b"")
        chosen = choose(remote) if not isinstance(remote, SdpError) else remote
        if isinstance(remote, SdpError) or isinstance(chosen, SdpError):
            log.warning(
                "sip switch: leg %s: unusable answer to our re-INVITE: %s", leg.leg_id, chosen
            )
            leg.sent = direction
            return
        try:
            await self._set_remote(leg, remote, chosen[0], chosen[1])
        except SwitchError as exc:
            log.warning("sip switch: leg %s: %s", leg.leg_id, exc)
        leg.sent = direction
