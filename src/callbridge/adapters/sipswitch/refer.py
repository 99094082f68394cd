"""REFER from a phone (blind transfer pressed on the phone, RFC 3515) and its NOTIFYs."""

from __future__ import annotations

from aiosipua.message import SipRequest, SipResponse

from ...domain.calls import HangupCause
from ...ports.switch import SwitchEvent, SwitchEventKind
from ...sip.dialogs import DialogState, incoming_key
from ...sip.responses import REASON_PHRASES, make_response
from ...sip.source import Source
from .base import SwitchBase, log
from .legs import Leg, LegState, Refer, user_part

SIPFRAG = "message/sipfrag;version=2.0"


def refusal_status(code: str) -> int:
    """The SIP status reported (in the NOTIFY's sipfrag) for a refused transfer's domain code."""
    if code.endswith("_not_found"):
        return 404
    if code == "number_malformed":
        return 484
    return 403


class ReferMixin(SwitchBase):
    async def _on_refer(self, request: SipRequest, source: Source) -> SipResponse | None:
        key = incoming_key(request)
        leg = self._by_dialog.get(key) if key is not None else None
        if leg is None or leg.dialog is None:
            return make_response(request, 481, "Call/Transaction Does Not Exist")
        dialog = leg.dialog
        refusal = dialog.refusal(request)
        if refusal is not None:
            return make_response(request, refusal)
        if leg.state is not LegState.ANSWERED:
            return dialog.respond(request, 403, "Transfer needs an answered call")
        targets = request.headers.get("refer-to") or request.headers.get("r")
        if len(targets) != 1:
            return dialog.respond(request, 400, "Exactly one Refer-To is needed")
        target = targets[0]
        if "replaces" in target.lower():
            return dialog.respond(request, 403, "Attended transfer is not supported")
        number = user_part(target)
        if not number:
            return dialog.respond(request, 400, "Refer-To has no user part")
        if leg.refer is not None:
            return dialog.respond(request, 403, "A transfer is already in progress")
        leg.refer = Refer(number)
        assert leg.destination is not None
        self.endpoint.reply(request, dialog.respond(request, 202), leg.destination)
        self._notify(leg, 100, "active;expires=60")
        log.info("sip switch: leg %s asks to transfer its party to %s", leg.leg_id, number)
        self._emit(SwitchEvent(SwitchEventKind.TRANSFER_REQUESTED, leg.leg_id, to_number=number))
        return None

    def _notify_request(self, leg: Leg, status: int, state: str) -> SipRequest | None:
        dialog = leg.dialog
        if dialog is None or dialog.state is not DialogState.CONFIRMED:
            return None
        frag = f"SIP/2.0 {status} {REASON_PHRASES.get(status, 'Unknown')}\r\n".encode()
        return dialog.new_request(
            "NOTIFY",
            body=frag,
            content_type=SIPFRAG,
            extra_headers=[("Event", "refer"), ("Subscription-State", state)],
        )

    def _notify(self, leg: Leg, status: int, state: str) -> None:
        notify = self._notify_request(leg, status, state)
        if notify is not None:
            self._spawn(self._send_in_order([notify], leg))

    def _final_notify(self, leg: Leg, cause: HangupCause) -> SipRequest | None:
        refer = leg.refer
        if refer is None or refer.notified_final:
            return None
        refer.notified_final = True
        status = 200 if cause is HangupCause.TRANSFERRED else 487
        return self._notify_request(leg, status, "terminated;reason=noresource")

    async def refuse_transfer(self, leg_id: str, code: str) -> None:
        """The core did not carry out the leg's ``TRANSFER_REQUESTED``: final NOTIFY with a 4xx."""
        leg = self._answered(leg_id)
        refer = leg.refer
        if refer is None or refer.notified_final:
            return
        refer.notified_final = True
        self._notify(leg, refusal_status(code), "terminated;reason=noresource")
        leg.refer = None  # the phone may try another transfer
