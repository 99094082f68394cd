"""SIP dialogs (RFC 3261 §12): construction per role, in-dialog requests, CSeq checks, states."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiosipua.message import SipMessage, SipRequest, SipResponse

from callbridge.adapters.clock import SystemClock
from callbridge.domain.errors import IllegalTransition
from callbridge.sip.client import SipClient, build_ack_for_2xx
from callbridge.sip.dialogs import (
    ALLOW,
    DIALOG_MACHINE,
    Dialog,
    DialogEvent,
    DialogKey,
    DialogState,
    Role,
    build_invite,
    incoming_key,
    response_key,
    uri_of,
)
from callbridge.sip.endpoint import SipEndpoint, Source
from callbridge.sip.responses import header_tag, make_response

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
OUR_CONTACT = "<sip:cb@192.0.2.1:5060>"


def roundtrip(message: SipRequest | SipResponse) -> SipRequest | SipResponse:
    return SipMessage.parse(bytes(message))


def as_request(message: SipRequest | SipResponse) -> SipRequest:
    assert isinstance(message, SipRequest)
    return message


def as_response(message: SipRequest | SipResponse) -> SipResponse:
    assert isinstance(message, SipResponse)
    return message


def invite() -> SipRequest:
    return build_invite(
        request_uri="sip:1001@192.0.2.20:5062;transport=udp",
        from_uri='"Call Bridge" <sip:cb@example.com>',
        from_tag="ourtag",
        to_uri="sip:1001@example.com",
        call_id="call-1@192.0.2.1",
        contact="sip:cb@192.0.2.1:5060",
        sdp=SDP,
    )


def answer(request: SipRequest, status: int = 200, *, record_route: bool = True) -> SipResponse:
    """The peer's response as it arrives (Via added as the client would, then parsed)."""
    request = as_request(roundtrip(request))
    request.headers.set_single("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport")
    response = make_response(request, status, to_tag="theirtag")
    if record_route:
        # each proxy adds itself on top: p2 (next to the UAS) first, p1 (next to us) last
        response.headers.append("Record-Route", "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>")
    response.headers.append("Contact", "<sip:1001@198.51.100.7:5062;transport=udp>;expires=60")
    return as_response(roundtrip(response))


# -- build_invite --------------------------------------------------------------------------


def test_build_invite_round_trips() -> None:
    parsed = as_request(roundtrip(invite()))
    assert parsed.method == "INVITE"
    assert parsed.uri == "sip:1001@192.0.2.20:5062;transport=udp"
    h = parsed.headers
    assert h.get_first("from") == '"Call Bridge" <sip:cb@example.com>;tag=ourtag'
    assert h.get_first("to") == "<sip:1001@example.com>"
    assert h.get_first("call-id") == "call-1@192.0.2.1"
    assert h.get_first("cseq") == "1 INVITE"
    assert h.get_first("max-forwards") == "70"
    assert h.get_first("contact") == "<sip:cb@192.0.2.1:5060>"
    assert ", ".join(h.get("allow")) == ALLOW
    assert h.get_first("content-type") == "application/sdp"
    assert h.get_first("content-length") == str(len(SDP))
    assert "supported" not in h
    assert "via" not in h
    assert parsed.body == SDP


def test_build_invite_supported_and_extra_headers() -> None:
    request = build_invite(
        request_uri="sip:a@b",
        from_uri="sip:c@d",
        from_tag="t",
        to_uri="sip:a@b",
        call_id="x",
        contact="sip:c@192.0.2.1",
        sdp=SDP,
        cseq=7,
        supported=("replaces", "timer"),
        extra_headers={"X-Callbridge-Leg": "leg-1"},
    )
    parsed = as_request(roundtrip(request))
    assert ", ".join(parsed.headers.get("supported")) == "replaces, timer"
    assert parsed.headers.get_first("x-callbridge-leg") == "leg-1"
    assert parsed.headers.get_first("cseq") == "7 INVITE"


def test_build_invite_refuses_header_injection_and_empty_tag() -> None:
    kwargs = {
        "request_uri": "sip:a@b",
        "from_uri": "sip:c@d",
        "to_uri": "sip:a@b",
        "call_id": "x",
        "contact": "sip:c@192.0.2.1",
        "sdp": SDP,
    }
    with pytest.raises(ValueError):
        build_invite(from_tag="", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build_invite(from_tag="t", extra_headers={"X-A": "1\r\nX-B: 2"}, **kwargs)  # type: ignore[arg-type]


# -- UAC -----------------------------------------------------------------------------------


def test_uac_dialog_from_200_with_record_route() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    assert dialog.role is Role.UAC
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.key == ("call-1@192.0.2.1", "ourtag", "theirtag")
    assert dialog.remote_target == "sip:1001@198.51.100.7:5062;transport=udp"
    assert dialog.route_set == ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")
    assert dialog.local_address == '"Call Bridge" <sip:cb@example.com>'
    assert dialog.remote_address == "<sip:1001@example.com>"
    assert dialog.contact == OUR_CONTACT
    assert dialog.local_cseq == 1
    assert dialog.remote_cseq is None


def test_uac_bye_goes_to_contact_with_reversed_route_set() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    bye = as_request(
        roundtrip(dialog.new_request("BYE", extra_headers=[("Reason", "Q.850;cause=16")]))
    )
    assert bye.method == "BYE"
    assert bye.uri == "sip:1001@198.51.100.7:5062;transport=udp"
    assert bye.headers.get("route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.headers.get_first("from") == '"Call Bridge" <sip:cb@example.com>;tag=ourtag'
    assert bye.headers.get_first("to") == "<sip:1001@example.com>;tag=theirtag"
    assert bye.headers.get_first("call-id") == "call-1@192.0.2.1"
    assert bye.headers.get_first("cseq") == "2 BYE"
    assert bye.headers.get_first("max-forwards") == "70"
    assert bye.headers.get_first("reason") == "Q.850;cause=16"
    assert "contact" not in bye.headers
    assert "via" not in bye.headers
    assert bye.body == b""


def test_uac_dialog_agrees_with_the_clients_2xx_ack() -> None:
    request = invite()
    response = answer(request)
    dialog = Dialog.from_uac(request, response)
    ack = build_ack_for_2xx(request, response)
    ours = dialog.new_ack(request)
    assert ours.uri == ack.uri
    assert ours.headers.get("route") == ack.headers.get("route")
    assert ours.headers.get_first("cseq") == ack.headers.get_first("cseq") == "1 ACK"
    assert header_tag(ours.headers.get_first("to") or "") == "theirtag"
    assert dialog.local_cseq == 1  # an ACK takes no new CSeq


def test_uac_early_dialog_from_180_then_confirmed_by_200() -> None:
    request = invite()
    ringing = answer(request, 180, record_route=False)
    dialog = Dialog.from_uac(request, ringing)
    assert dialog.state is DialogState.EARLY
    assert dialog.route_set == ()
    dialog.provisional()
    assert dialog.state is DialogState.EARLY
    dialog.confirm()
    assert dialog.state is DialogState.CONFIRMED
    with pytest.raises(IllegalTransition) as refused:
        dialog.provisional()
    assert refused.value.code == "sip_dialog_cannot_provisional"
    assert dialog.state is DialogState.CONFIRMED


@pytest.mark.parametrize("status", [100, 300, 486])
def test_uac_dialog_needs_a_dialog_creating_response(status: int) -> None:
    request = invite()
    with pytest.raises(ValueError):
        Dialog.from_uac(request, answer(request, status))


def test_uac_dialog_needs_a_to_tag() -> None:
    request = invite()
    response = answer(request, 183)
    response.headers.set_single("To", "<sip:1001@example.com>")
    with pytest.raises(ValueError):
        Dialog.from_uac(request, response)


def test_uac_response_without_contact_keeps_the_request_uri() -> None:
    request = invite()
    response = answer(request, 180)
    response.headers.remove("contact")
    dialog = Dialog.from_uac(request, response)
    assert dialog.remote_target == request.uri


def test_response_key_matches_the_dialog_key() -> None:
    request = invite()
    response = answer(request)
    assert response_key(response) == Dialog.from_uac(request, response).key
    response.headers.set_single("To", "<sip:1001@example.com>")
    assert response_key(response) is None


# -- UAS -----------------------------------------------------------------------------------


def incoming() -> SipRequest:
    raw = (
        "INVITE sip:cb@192.0.2.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKp2\r\n"
        "Via: SIP/2.0/UDP 198.51.100.9:5060;branch=z9hG4bKcaller\r\n"
        "Record-Route: <sip:p2.example.com;lr>\r\n"
        "Record-Route: <sip:p1.example.com;lr>\r\n"
        "Max-Forwards: 68\r\n"
        'From: "Customer" <sip:+15551234@trunk.example>;tag=caller1\r\n'
        "To: <sip:+15559876@callbridge.example>\r\n"
        "Call-ID: in-1@trunk\r\n"
        "CSeq: 101 INVITE\r\n"
        "Contact: <sip:+15551234@198.51.100.9:5060>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(SDP)}\r\n\r\n"
    ).encode() + SDP
    return as_request(SipMessage.parse(raw))


def in_dialog(
    method: str, cseq: int, *, to_tag: str = "ourtag", from_tag: str = "caller1"
) -> SipRequest:
    request = SipRequest(method=method, uri="sip:cb@192.0.2.1:5060")
    request.headers.append("Via", "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKx")
    request.headers.append("From", f"<sip:+15551234@trunk.example>;tag={from_tag}")
    request.headers.append("To", f"<sip:+15559876@callbridge.example>;tag={to_tag}")
    request.headers.append("Call-ID", "in-1@trunk")
    request.headers.append("CSeq", f"{cseq} {method}")
    return as_request(roundtrip(request))


def uas() -> Dialog:
    return Dialog.from_uas(incoming(), local_tag="ourtag", contact=OUR_CONTACT)


def test_uas_dialog_from_an_invite() -> None:
    dialog = uas()
    assert dialog.role is Role.UAS
    assert dialog.state is DialogState.EARLY
    assert dialog.key == ("in-1@trunk", "ourtag", "caller1")
    assert dialog.remote_target == "sip:+15551234@198.51.100.9:5060"
    # UAS keeps the Record-Route order (§12.1.1)
    assert dialog.route_set == ("<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>")
    assert dialog.local_address == "<sip:+15559876@callbridge.example>"
    assert dialog.remote_address == '"Customer" <sip:+15551234@trunk.example>'
    assert dialog.remote_cseq == 101
    assert dialog.local_cseq == 0


def test_uas_200_carries_our_tag_contact_and_allow() -> None:
    dialog = uas()
    request = incoming()
    ok = as_response(
        roundtrip(dialog.respond(request, 200, body=SDP, content_type="application/sdp"))
    )
    assert ok.status_code == 200
    assert ok.reason_phrase == "OK"
    assert header_tag(ok.headers.get_first("to") or "") == "ourtag"
    assert ok.headers.get_first("contact") == OUR_CONTACT
    assert ", ".join(ok.headers.get("allow")) == ALLOW
    assert ok.headers.get("via") == request.headers.get("via")
    assert ok.body == SDP
    dialog.confirm()
    ringing = dialog.respond(request, 180)
    assert ringing.headers.get_first("contact") == OUR_CONTACT
    assert "allow" not in ringing.headers
    busy = dialog.respond(request, 486)
    assert "contact" not in busy.headers


def test_uas_bye_uses_the_route_set_in_order_and_cseq_from_1() -> None:
    dialog = uas()
    dialog.confirm()
    bye = as_request(roundtrip(dialog.new_request("BYE")))
    assert bye.uri == "sip:+15551234@198.51.100.9:5060"
    assert bye.headers.get("route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.headers.get_first("from") == "<sip:+15559876@callbridge.example>;tag=ourtag"
    assert bye.headers.get_first("to") == '"Customer" <sip:+15551234@trunk.example>;tag=caller1'
    assert bye.headers.get_first("cseq") == "1 BYE"


def test_incoming_key() -> None:
    assert incoming_key(incoming()) is None  # no To tag: an initial request
    assert incoming_key(in_dialog("BYE", 102)) == ("in-1@trunk", "ourtag", "caller1")
    assert incoming_key(in_dialog("BYE", 102)) == uas().key


# -- CSeq ----------------------------------------------------------------------------------


def test_local_cseq_increments_per_request() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    seen = [
        dialog.new_request(method).headers.get_first("cseq")
        for method in ("INFO", "INVITE", "NOTIFY", "REFER", "BYE")
    ]
    assert seen == ["2 INFO", "3 INVITE", "4 NOTIFY", "5 REFER", "6 BYE"]
    assert dialog.local_cseq == 6


def test_in_dialog_requests_and_contact() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    reinvite = as_request(
        roundtrip(dialog.new_request("invite", body=SDP, content_type="application/sdp"))
    )
    assert reinvite.method == "INVITE"
    assert reinvite.headers.get_first("contact") == OUR_CONTACT
    assert reinvite.headers.get_first("content-type") == "application/sdp"
    assert reinvite.body == SDP
    for method in ("NOTIFY", "REFER", "UPDATE"):
        assert dialog.new_request(method).headers.get_first("contact") == OUR_CONTACT
    for method in ("BYE", "INFO"):
        assert "contact" not in dialog.new_request(method).headers


def test_new_request_refuses_ack_cancel_and_bodies_without_type() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    for method in ("ACK", "CANCEL"):
        with pytest.raises(ValueError):
            dialog.new_request(method)
    with pytest.raises(ValueError):
        dialog.new_request("INFO", body=b"Signal=1\r\n")
    with pytest.raises(ValueError):
        dialog.new_ack(dialog.new_request("BYE"))
    assert dialog.local_cseq == 2  # only the BYE took a number


def test_remote_cseq_must_increase() -> None:
    dialog = uas()
    dialog.confirm()
    assert dialog.refusal(in_dialog("ACK", 101)) is None
    assert dialog.refusal(in_dialog("INFO", 101)) == 500
    assert dialog.refusal(in_dialog("INFO", 100)) == 500
    assert dialog.remote_cseq == 101
    assert dialog.refusal(in_dialog("INFO", 105)) is None
    assert dialog.remote_cseq == 105
    assert dialog.refusal(in_dialog("INFO", 105)) == 500
    assert dialog.refusal(in_dialog("BYE", 106)) is None


def test_uac_accepts_any_first_remote_cseq() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    bye = SipRequest(method="BYE", uri="sip:cb@192.0.2.1:5060")
    bye.headers.append("From", "<sip:1001@example.com>;tag=theirtag")
    bye.headers.append("To", '"Call Bridge" <sip:cb@example.com>;tag=ourtag')
    bye.headers.append("Call-ID", "call-1@192.0.2.1")
    bye.headers.append("CSeq", "0 BYE")
    assert dialog.refusal(bye) is None
    assert dialog.remote_cseq == 0


def test_foreign_or_malformed_requests_are_refused() -> None:
    dialog = uas()
    assert dialog.refusal(in_dialog("BYE", 200, to_tag="other")) == 481
    assert dialog.refusal(in_dialog("BYE", 200, from_tag="other")) == 481
    mismatched = in_dialog("BYE", 200)
    mismatched.headers.set_single("CSeq", "200 INFO")
    assert dialog.refusal(mismatched) == 400
    missing = in_dialog("BYE", 200)
    missing.headers.remove("cseq")
    assert dialog.refusal(missing) == 400
    assert dialog.remote_cseq == 101
    dialog.terminate()
    assert dialog.refusal(in_dialog("BYE", 300)) == 481


# -- target refresh, strict routing ---------------------------------------------------------


def test_update_target_on_reinvite_2xx() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    dialog.update_target('"Phone" <sip:1001@198.51.100.8:5070;transport=tcp>;expires=30')
    assert dialog.remote_target == "sip:1001@198.51.100.8:5070;transport=tcp"
    assert dialog.new_request("BYE").uri == "sip:1001@198.51.100.8:5070;transport=tcp"
    dialog.update_target("sip:1001@198.51.100.9;ob")
    assert dialog.remote_target == "sip:1001@198.51.100.9"
    with pytest.raises(ValueError):
        dialog.update_target("")


def test_strict_router_becomes_the_request_uri() -> None:
    request = invite()
    response = answer(request, record_route=False)
    response.headers.append("Record-Route", "<sip:p2.example.com;lr>")
    response.headers.append("Record-Route", "<sip:strict.example.com>")
    dialog = Dialog.from_uac(request, response)
    bye = dialog.new_request("BYE")
    assert bye.uri == "sip:strict.example.com"
    assert bye.headers.get("route") == [
        "<sip:p2.example.com;lr>",
        "<sip:1001@198.51.100.7:5062;transport=udp>",
    ]


@pytest.mark.parametrize(
    ("value", "uri"),
    [
        ("<sip:a@b;lr>", "sip:a@b;lr"),
        ('"A, B" <sip:a@b>;tag=1', "sip:a@b"),
        ("sip:a@b;tag=1", "sip:a@b"),
        ("<sip:a@b>, <sip:c@d>", "sip:a@b"),
    ],
)
def test_uri_of(value: str, uri: str) -> None:
    assert uri_of(value) == uri


# -- states --------------------------------------------------------------------------------

TABLE = {
    (DialogState.EARLY, DialogEvent.PROVISIONAL): DialogState.EARLY,
    (DialogState.EARLY, DialogEvent.CONFIRM): DialogState.CONFIRMED,
    (DialogState.EARLY, DialogEvent.TERMINATE): DialogState.TERMINATED,
    (DialogState.CONFIRMED, DialogEvent.TERMINATE): DialogState.TERMINATED,
}


@pytest.mark.parametrize("state", list(DialogState))
@pytest.mark.parametrize("event", list(DialogEvent))
def test_state_table(state: DialogState, event: DialogEvent) -> None:
    expected = TABLE.get((state, event))
    if expected is None:
        assert not DIALOG_MACHINE.allows(state, event)
        with pytest.raises(IllegalTransition):
            DIALOG_MACHINE.next(state, event)
    else:
        assert DIALOG_MACHINE.next(state, event) is expected


def test_illegal_transitions_leave_the_dialog_unchanged() -> None:
    dialog = uas()
    dialog.confirm()
    with pytest.raises(IllegalTransition) as again:
        dialog.confirm()
    assert again.value.code == "sip_dialog_already_confirmed"
    assert dialog.state is DialogState.CONFIRMED
    dialog.terminate()
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(IllegalTransition) as twice:
        dialog.terminate()
    assert twice.value.code == "sip_dialog_already_terminated"
    for event in (dialog.confirm, dialog.provisional):
        with pytest.raises(IllegalTransition):
            event()
    assert dialog.state is DialogState.TERMINATED


def test_terminated_dialog_builds_no_requests() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    dialog.terminate()
    with pytest.raises(IllegalTransition):
        dialog.new_request("BYE")
    with pytest.raises(IllegalTransition):
        dialog.new_ack(request)
    assert dialog.local_cseq == 1


def test_early_dialog_can_end_without_confirming() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request, 183))
    dialog.terminate()
    assert dialog.state is DialogState.TERMINATED


def test_a_refused_request_takes_no_cseq() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    with pytest.raises(ValueError):
        dialog.new_request("INFO", extra_headers={"X-A": "1\r\nX-B: 2"})
    assert dialog.local_cseq == 1
    assert dialog.new_request("INFO").headers.get_first("cseq") == "2 INFO"


# -- real sockets: both roles on two endpoints ----------------------------------------------


@pytest.fixture
async def endpoints() -> AsyncIterator[tuple[SipEndpoint, SipEndpoint]]:
    a = SipEndpoint("127.0.0.1", 0)
    b = SipEndpoint("127.0.0.1", 0)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_real_call_both_dialogs_invite_ack_and_bye_from_the_callee(
    endpoints: tuple[SipEndpoint, SipEndpoint], transport: str
) -> None:
    caller_ep, callee_ep = endpoints
    callee_dialogs: dict[DialogKey, Dialog] = {}
    caller_dialogs: dict[DialogKey, Dialog] = {}
    acked = asyncio.Event()
    bye_seen: list[SipRequest] = []

    async def on_invite(request: SipRequest, source: Source) -> SipResponse:
        dialog = Dialog.from_uas(
            request, local_tag="callee", contact=f"<sip:b@127.0.0.1:{callee_ep.port}>"
        )
        callee_dialogs[dialog.key] = dialog
        callee_ep.reply(request, dialog.respond(request, 180), source)
        dialog.confirm()
        return dialog.respond(request, 200, body=SDP, content_type="application/sdp")

    async def on_ack(request: SipRequest, source: Source) -> None:
        key = incoming_key(request)
        assert key is not None
        assert callee_dialogs[key].refusal(request) is None
        acked.set()

    async def on_bye(request: SipRequest, source: Source) -> SipResponse:
        key = incoming_key(request)
        dialog = caller_dialogs.get(key) if key else None
        if dialog is None:
            return make_response(request, 481)
        refusal = dialog.refusal(request)
        if refusal is not None:
            return make_response(request, refusal)
        bye_seen.append(request)
        dialog.terminate()
        return dialog.respond(request, 200)

    callee_ep.register("INVITE", on_invite)
    callee_ep.register("ACK", on_ack)
    caller_ep.register("BYE", on_bye)
    caller = SipClient(caller_ep, SystemClock(), t1=0.05)
    callee = SipClient(callee_ep, SystemClock(), t1=0.05)
    try:
        invite = build_invite(
            request_uri=f"sip:b@127.0.0.1:{callee_ep.port}",
            from_uri="sip:a@127.0.0.1",
            from_tag="caller",
            to_uri="sip:b@127.0.0.1",
            call_id=f"dialog-{transport}@test",
            contact=f"sip:a@127.0.0.1:{caller_ep.port}",
            sdp=SDP,
        )
        tx = await caller.invite(invite, Source(transport, "127.0.0.1", callee_ep.port))
        async with asyncio.timeout(5):
            responses = [response async for response in tx]
        assert [r.status_code for r in responses][-2:] == [180, 200]
        early = Dialog.from_uac(invite, responses[-2])
        assert early.state is DialogState.EARLY
        ok = responses[-1]
        assert ok.body == SDP
        dialog = Dialog.from_uac(invite, ok)
        assert dialog.key == early.key == (f"dialog-{transport}@test", "caller", "callee")
        caller_dialogs[dialog.key] = dialog
        await caller.ack(tx, dialog.new_ack(invite))
        async with asyncio.timeout(5):
            await acked.wait()

        callee_dialog = callee_dialogs[("dialog-" + transport + "@test", "callee", "caller")]
        assert callee_dialog.remote_target == f"sip:a@127.0.0.1:{caller_ep.port}"
        bye = callee_dialog.new_request("BYE", extra_headers={"Reason": "Q.850;cause=16"})
        callee_dialog.terminate()
        bye_tx = await callee.request(bye, Source(transport, "127.0.0.1", caller_ep.port))
        async with asyncio.timeout(5):
            assert (await bye_tx.final()).status_code == 200
        assert len(bye_seen) == 1
        assert bye_seen[0].headers.get_first("cseq") == "1 BYE"
        assert dialog.state is DialogState.TERMINATED

        # a stale in-dialog request after the BYE: the dialog is gone -> 481
        late = SipRequest(method="BYE", uri=bye.uri)
        for name in ("From", "To", "Call-ID"):
            late.headers.append(name, bye.headers.get_first(name) or "")
        late.headers.append("CSeq", "2 BYE")
        late.headers.append("Max-Forwards", "70")
        late_tx = await callee.request(late, Source(transport, "127.0.0.1", caller_ep.port))
        async with asyncio.timeout(5):
            assert (await late_tx.final()).status_code == 481
    finally:
        await caller.close()
        await callee.close()
