"""Incoming legs: an initial INVITE becomes ``INCOMING``; accept (180), answer (200 + SDP),
the 200 resent until its ACK; BYE and CANCEL from peers."""

from __future__ import annotations

import os

from aiosipua.message import SipRequest, SipResponse

from ...domain.calls import HangupCause
from ...ports.switch import SwitchError, SwitchEvent, SwitchEventKind
from ...sip.causes import cause_of_reason
from ...sip.dialogs import Dialog, incoming_key
from ...sip.responses import header_tag, make_response, new_tag
from ...sip.sdp import SdpError, SdpSession, choose, parse_remote
from ...sip.source import Source
from .base import SwitchBase, log
from .legs import Leg, LegState, user_part


class IncomingMixin(SwitchBase):
    async def _on_invite(self, request: SipRequest, source: Source) -> SipResponse | None:
        if incoming_key(request) is not None:
            return await self._on_reinvite(request, source)
        sender = request.headers.get_first("from") or ""
        from_tag = header_tag(sender)
        call_id = (request.headers.get_first("call-id") or "").strip()
        if from_tag is None or not call_id:
            return make_response(request, 400, "Missing From tag or Call-ID")
        if (call_id, from_tag) in self._incoming:
            return None  # a retransmission the endpoint did not absorb
        self.endpoint.reply(request, make_response(request, 100), source)
        if not request.body:
            return make_response(request, 488, "Not Acceptable Here")  # no initial late offer
        offer = parse_remote(request.body)
        if isinstance(offer, SdpError):
            return make_response(request, offer.status, offer.reason[:100])
        chosen = choose(offer)
        if isinstance(chosen, SdpError):
            return make_response(request, 488, "Not Acceptable Here")
        leg_id = f"sip-{os.urandom(8).hex()}"
        contact = self._contact(source.transport)
        try:
            dialog = Dialog.from_uas(request, local_tag=new_tag(), contact=contact)
        except ValueError as exc:
            return make_response(request, 400, str(exc)[:100])
        leg = Leg(
            leg_id,
            outgoing=False,
            session=SdpSession(int.from_bytes(os.urandom(4), "big")),
            destination=source,
            dialog=dialog,
            request=request,
            incoming_key=(call_id, from_tag),
            offer=offer,
            phone=self._from_registered_phone(user_part(sender), source),
        )
        self._legs[leg_id] = leg
        # kept for the leg's life: retransmissions, and a CANCEL crossing our 200 (ignored)
        self._incoming[(call_id, from_tag)] = leg
        self._by_dialog[dialog.key] = leg
        self._emit(
            SwitchEvent(
                SwitchEventKind.INCOMING,
                leg_id,
                from_number=user_part(sender),
                to_number=user_part(request.headers.get_first("to") or ""),
            )
        )
        return None

    def _from_registered_phone(self, username: str, source: Source) -> bool:
        """The INVITE came from where a live binding of its From user registered from."""
        return any(b.source == source for b in self.registrar.contacts(username))

    def _incoming_leg(self, leg_id: str) -> tuple[Leg, SipRequest, Dialog, Source]:
        leg = self._leg(leg_id)
        if leg.outgoing or leg.request is None or leg.dialog is None or leg.destination is None:
            raise SwitchError(f"leg {leg_id} is not an incoming leg", code="leg_not_incoming")
        return leg, leg.request, leg.dialog, leg.destination

    async def accept(self, leg_id: str, call_id: str, tenant_id: str) -> None:
        leg, request, dialog, source = self._incoming_leg(leg_id)
        if leg.state is not LegState.RINGING:
            raise SwitchError(f"leg {leg_id} is already answered", code="leg_answered")
        leg.call_id, leg.tenant_id = call_id, tenant_id
        self.endpoint.reply(request, dialog.respond(request, 180), source)

    async def answer(self, leg_id: str) -> None:
        leg, request, dialog, _source = self._incoming_leg(leg_id)
        if leg.state is not LegState.RINGING or leg.offer is None:
            raise SwitchError(f"leg {leg_id} is already answered", code="leg_answered")
        offer = leg.offer
        leg.address = await self._media(self.media.allocate(leg_id))
        result = leg.session.answer(offer, leg.address)
        if isinstance(result, SdpError):  # checked on arrival; kept for safety
            raise SwitchError(result.reason, code="sdp_error")
        sdp, codec, dtmf_pt = result
        await self._media(self.media.set_remote(leg_id, offer.host, offer.port, codec, dtmf_pt))
        leg.remote = (offer.host, offer.port, codec, dtmf_pt)
        if leg.state is not LegState.RINGING:
            return  # CANCELled while we allocated
        ok = dialog.respond(request, 200, body=sdp, content_type="application/sdp")
        dialog.confirm()
        leg.state = LegState.ANSWERED
        leg.peer_hold = offer.on_hold
        self._send_ok(leg, request, ok)

    def _send_ok(self, leg: Leg, request: SipRequest, ok: SipResponse) -> None:
        """Send a 2xx to an INVITE and resend it (T1 doubling up to T2) until its ACK."""
        assert leg.destination is not None
        leg.ok, leg.ok_request = ok, request
        self.endpoint.reply(request, ok, leg.destination)
        leg.ok_deadline = self.clock.monotonic() + 64 * self.client.t1
        leg.ok_interval = self.client.t1
        leg.ok_timer = self.clock.call_later(leg.ok_interval, lambda: self._resend_ok(leg))

    def _resend_ok(self, leg: Leg) -> None:
        leg.ok_timer = None
        if leg.state is not LegState.ANSWERED or leg.ok is None or leg.ok_request is None:
            return
        if self.clock.monotonic() >= leg.ok_deadline:
            log.warning("sip switch: no ACK for the 200 on leg %s", leg.leg_id)
            self._fail(leg)
            return
        if leg.destination is not None and leg.destination.transport == "UDP":
            self.endpoint.reply(leg.ok_request, leg.ok, leg.destination)
        leg.ok_interval = min(2 * leg.ok_interval, self.client.t2)
        leg.ok_timer = self.clock.call_later(leg.ok_interval, lambda: self._resend_ok(leg))

    async def _on_bye(self, request: SipRequest, source: Source) -> SipResponse:
        key = incoming_key(request)
        leg = self._by_dialog.get(key) if key is not None else None
        if leg is None or leg.dialog is None:
            return make_response(request, 481, "Call/Transaction Does Not Exist")
        refusal = leg.dialog.refusal(request)
        if refusal is not None:
            return make_response(request, refusal)
        response = leg.dialog.respond(request, 200)
        reason = request.headers.get_first("reason")
        cause = (cause_of_reason(reason) if reason else None) or HangupCause.NORMAL
        leg.dialog.terminate()
        was_ringing = leg.state is LegState.RINGING
        if was_ringing and not leg.outgoing and leg.request is not None:
            # BYE before our 200: the INVITE gets 487 (RFC 3261 §15.1.2)
            self.endpoint.reply(leg.request, make_response(leg.request, 487), source)
        self._forget(leg)
        self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, cause))
        return response

    async def _on_cancel(self, request: SipRequest, source: Source) -> SipResponse:
        sender = request.headers.get_first("from") or ""
        from_tag = header_tag(sender)
        call_id = (request.headers.get_first("call-id") or "").strip()
        leg = self._incoming.get((call_id, from_tag or ""))
        if leg is None:
            return make_response(request, 481, "Call/Transaction Does Not Exist")
        # RFC 3261 §9.2: a CANCEL after our final response has no effect (but gets its 200)
        ok = make_response(request, 200)
        if leg.state is LegState.RINGING and leg.request is not None and leg.dialog is not None:
            invite = leg.request
            self.endpoint.reply(invite, leg.dialog.respond(invite, 487), source)
            self._forget(leg)
            self._emit(SwitchEvent(SwitchEventKind.HUNGUP, leg.leg_id, HangupCause.CANCELLED))
        return ok
