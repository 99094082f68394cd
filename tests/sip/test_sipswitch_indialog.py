"""SipSwitch in-dialog features on the wire: peers' re-INVITEs (hold, resume, new address, late
offer, glare), our hold re-INVITEs, REFER with its NOTIFYs, and a CANCEL crossing our 200.

The peer is :class:`RawPeer` (hand-written UDP SIP) with a loopback RTP phone where the media
path matters; what it receives is what is asserted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiosipua.message import SipRequest, SipResponse
from tests.media.phones import Phone as RtpPhone
from tests.sip.test_sipswitch import (
    TENANT,
    RawPeer,
    Stack,
    answered_incoming,
    invite_text,
    offer,
    sipp_done,
    sipp_scenario,
)

from callbridge.adapters.sipswitch import HoldReinvite
from callbridge.domain.calls import HangupCause
from callbridge.ports.switch import DialRequest, SwitchEvent, SwitchEventKind
from callbridge.sip.sdp import RemoteMedia, parse_remote
from callbridge.sip.source import Source

HELD, RESUMED = SwitchEventKind.HELD, SwitchEventKind.RESUMED


def sdp(port: int, direction: str = "sendrecv", *, host: str = "127.0.0.1", v: int = 2) -> str:
    return (
        f"v=0\r\no=- 1 {v} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na={direction}\r\n"
    )


def in_dialog(
    peer: RawPeer,
    stack: Stack,
    method: str,
    call_id: str,
    to: str,
    cseq: int,
    *,
    headers: Sequence[str] = (),
    body_type: str | None = None,
) -> str:
    """A request from the caller (``peer``) inside its dialog with the switch."""
    tag = "".join(ch for ch in call_id if ch.isalnum())
    lines = [
        f"{method} sip:callbridge@127.0.0.1:{stack.endpoint.port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-{method}-{cseq}-{tag}",
        "Max-Forwards: 70",
        'From: "Carol" <sip:5550100@127.0.0.1>;tag=peer-tag',
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {'ACK' if method == 'ACK' else method}",
        f"Contact: <sip:5550100@127.0.0.1:{peer.port}>",
        *headers,
    ]
    if body_type is not None:
        lines.append(f"Content-Type: {body_type}")
    return "\n".join(lines)


def ack(peer: RawPeer, stack: Stack, call_id: str, to: str, cseq: int, body: str = "") -> None:
    text = in_dialog(
        peer, stack, "ACK", call_id, to, cseq, body_type="application/sdp" if body else None
    )
    peer.send(text, stack, body)


def reply(
    peer: RawPeer, stack: Stack, request: SipRequest, status: int, reason: str, body: str = ""
) -> None:
    """The peer's response to a request the switch sent it."""
    lines = [f"SIP/2.0 {status} {reason}"]
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        lines += [f"{name}: {value}" for value in request.headers.get(name)]
    if status < 300 and request.method == "INVITE":
        lines.append(f"Contact: <sip:5550100@127.0.0.1:{peer.port}>")
    if body:
        lines.append("Content-Type: application/sdp")
    peer.send("\n".join(lines), stack, body)


async def response_to(peer: RawPeer, cseq: str, wait_s: float = 5.0) -> SipResponse:
    """The next final response with this CSeq (``"2 INVITE"``), skipping everything else."""
    async with asyncio.timeout(wait_s):
        while True:
            message = await peer.messages.get()
            if (
                isinstance(message, SipResponse)
                and message.status_code >= 200
                and message.headers.get_first("cseq") == cseq
            ):
                return message


async def request_from(peer: RawPeer, method: str, wait_s: float = 5.0) -> SipRequest:
    """The next request with ``method`` the switch sent the peer (responses are skipped)."""
    async with asyncio.timeout(wait_s):
        while True:
            message = await peer.messages.get()
            if isinstance(message, SipRequest) and message.method == method:
                return message


def remote(message: SipRequest | SipResponse) -> RemoteMedia:
    parsed = parse_remote(message.body or b"")
    assert isinstance(parsed, RemoteMedia), parsed
    return parsed


async def rtp_arrives(phone: RtpPhone, wait_s: float = 0.4) -> int:
    mark = phone.mark()
    await asyncio.sleep(wait_s)
    return len(phone.packets(mark))


# --- their re-INVITEs ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def reinvite_every_leg(stack: Stack) -> None:
    """The raw peers here are unregistered outside callers: re-INVITE them on hold too."""
    stack.switch.hold_reinvite = HoldReinvite.ALL


async def test_peer_hold_and_resume_answer_directions_move_media_and_are_reported(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "re-hold@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    moved = await RtpPhone.open(None)
    try:
        await stack.switch.start_music(leg)  # the engine sends to wherever the peer says
        assert await rtp_arrives(moved) == 0
        body = sdp(moved.addr[1], "sendonly")
        peer.send(
            in_dialog(peer, stack, "INVITE", call_id, to, 2, body_type="application/sdp"),
            stack,
            body,
        )
        ok = await response_to(peer, "2 INVITE")
        assert ok.status_code == 200, bytes(ok)
        assert remote(ok).direction == "recvonly"
        assert await stack.next_event() == SwitchEvent(HELD, leg)
        ack(peer, stack, call_id, to, 2)
        assert await rtp_arrives(moved) >= 10  # set_remote followed the new address

        body = sdp(moved.addr[1], "sendrecv", v=3)
        peer.send(
            in_dialog(peer, stack, "INVITE", call_id, to, 3, body_type="application/sdp"),
            stack,
            body,
        )
        ok = await response_to(peer, "3 INVITE")
        assert ok.status_code == 200 and remote(ok).direction == "sendrecv"
        assert await stack.next_event() == SwitchEvent(RESUMED, leg)
        ack(peer, stack, call_id, to, 3)

        body = sdp(moved.addr[1], "inactive", v=4)
        peer.send(
            in_dialog(peer, stack, "INVITE", call_id, to, 4, body_type="application/sdp"),
            stack,
            body,
        )
        ok = await response_to(peer, "4 INVITE")
        assert remote(ok).direction == "inactive"
        assert await stack.next_event() == SwitchEvent(HELD, leg)
        ack(peer, stack, call_id, to, 4)
        await asyncio.sleep(0.1)
        assert stack.events.empty()
    finally:
        await moved.close()


async def test_old_style_hold_keeps_the_media_address(stack: Stack, peer: RawPeer) -> None:
    call_id = "re-old@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    phone = await RtpPhone.open(None)
    try:
        await stack.switch.start_music(leg)
        body = sdp(phone.addr[1])
        peer.send(
            in_dialog(peer, stack, "INVITE", call_id, to, 2, body_type="application/sdp"),
            stack,
            body,
        )
        assert (await response_to(peer, "2 INVITE")).status_code == 200
        ack(peer, stack, call_id, to, 2)
        body = sdp(phone.addr[1], host="0.0.0.0", v=3)  # RFC 2543 hold
        peer.send(
            in_dialog(peer, stack, "INVITE", call_id, to, 3, body_type="application/sdp"),
            stack,
            body,
        )
        ok = await response_to(peer, "3 INVITE")
        assert remote(ok).direction == "inactive"
        assert await stack.next_event() == SwitchEvent(HELD, leg)
        ack(peer, stack, call_id, to, 3)
        assert await rtp_arrives(phone) >= 10  # still sent to the last real address
    finally:
        await phone.close()


async def test_late_offer_reinvite_gets_our_offer_and_the_ack_answer_moves_media(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "re-late@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    phone = await RtpPhone.open(None)
    try:
        await stack.switch.start_music(leg)
        peer.send(in_dialog(peer, stack, "INVITE", call_id, to, 2), stack)
        ok = await response_to(peer, "2 INVITE")
        ours = remote(ok)
        assert ok.status_code == 200 and ours.direction == "sendrecv"
        assert set(ours.codecs) == {"PCMU", "PCMA"}  # a full offer, not an answer
        assert await rtp_arrives(phone) == 0
        ack(peer, stack, call_id, to, 2, sdp(phone.addr[1]))
        assert await rtp_arrives(phone) >= 10
        assert stack.events.empty()  # no hold change
    finally:
        await phone.close()


async def test_reinvite_changing_the_codec_changes_what_we_send(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "re-codec@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    phone = await RtpPhone.open(None, codec="PCMA")
    try:
        await stack.switch.start_music(leg)
        body = sdp(phone.addr[1]).replace("RTP/AVP 0 101", "RTP/AVP 8 101")
        body = body.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000")
        peer.send(
            in_dialog(peer, stack, "INVITE", call_id, to, 2, body_type="application/sdp"),
            stack,
            body,
        )
        ok = await response_to(peer, "2 INVITE")
        assert remote(ok).codecs == ("PCMA",)
        ack(peer, stack, call_id, to, 2)
        await asyncio.sleep(0.2)
        mark = phone.mark()
        await asyncio.sleep(0.3)
        assert len(phone.packets(mark, pt=8)) >= 10 and not phone.packets(mark, pt=0)
    finally:
        await phone.close()


async def test_reinvite_in_an_early_dialog_gets_500_retry_after(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "re-early@test"
    peer.send(invite_text(peer, stack, call_id), stack, offer(40000))
    incoming = await stack.next_event()
    await stack.switch.accept(incoming.leg_id, "call-early", TENANT)
    ringing = await peer.response(180)
    to = ringing.headers.get_first("to") or ""
    peer.send(
        in_dialog(peer, stack, "INVITE", call_id, to, 2, body_type="application/sdp"),
        stack,
        sdp(40016),
    )
    refused = await response_to(peer, "2 INVITE")
    assert refused.status_code == 500 and refused.headers.get_first("retry-after")
    await stack.switch.answer(incoming.leg_id)  # the call itself goes on
    assert (await response_to(peer, "1 INVITE")).status_code == 200


async def test_reinvite_while_one_of_theirs_awaits_its_ack_gets_500_retry_after(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "re-500@test"
    _leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    peer.send(
        in_dialog(peer, stack, "INVITE", call_id, to, 2, body_type="application/sdp"),
        stack,
        sdp(40002),
    )
    assert (await response_to(peer, "2 INVITE")).status_code == 200
    peer.send(
        in_dialog(peer, stack, "INVITE", call_id, to, 3, body_type="application/sdp"),
        stack,
        sdp(40004),
    )
    refused = await response_to(peer, "3 INVITE")
    assert refused.status_code == 500
    assert 0 < int(refused.headers.get_first("retry-after") or "0") <= 10
    ack(peer, stack, call_id, to, 2)
    await asyncio.sleep(0.05)
    peer.send(
        in_dialog(peer, stack, "INVITE", call_id, to, 4, body_type="application/sdp"),
        stack,
        sdp(40006),
    )
    assert (await response_to(peer, "4 INVITE")).status_code == 200
    ack(peer, stack, call_id, to, 4)


async def test_reinvite_in_an_unknown_dialog_gets_481(stack: Stack, peer: RawPeer) -> None:
    _leg, to = await answered_incoming(stack, peer, "re-481@test", ack=True)
    text = in_dialog(peer, stack, "INVITE", "no-such-call@test", to, 2, body_type="application/sdp")
    peer.send(text, stack, sdp(40008))
    assert (await response_to(peer, "2 INVITE")).status_code == 481


# --- our re-INVITEs --------------------------------------------------------------------------


async def test_core_hold_sends_sendonly_reinvite_with_glare_491_and_retry(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "re-ours@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    await stack.switch.hold(leg)
    first = await request_from(peer, "INVITE")
    assert remote(first).direction == "sendonly"  # we keep sending the music
    assert first.headers.get_first("to", "").startswith('"Carol"')  # towards the caller
    # the peer's own re-INVITE crosses ours: 491
    peer.send(
        in_dialog(peer, stack, "INVITE", call_id, to, 2, body_type="application/sdp"),
        stack,
        sdp(40010),
    )
    assert (await response_to(peer, "2 INVITE")).status_code == 491
    # ... and it answers ours 491 too: we retry after 0-2 s (the caller owns the Call-ID)
    reply(peer, stack, first, 491, "Request Pending")
    again = await request_from(peer, "INVITE", wait_s=4.0)
    first_cseq = int((first.headers.get_first("cseq") or "").split()[0])
    assert int((again.headers.get_first("cseq") or "").split()[0]) > first_cseq
    assert remote(again).direction == "sendonly"
    reply(peer, stack, again, 200, "OK", sdp(40010, "recvonly", v=3))
    acked = await request_from(peer, "ACK")
    assert (
        acked.headers.get_first("cseq") == f"{again.headers.get_first('cseq', '').split()[0]} ACK"
    )
    # unhold: sendrecv again
    await stack.switch.unhold(leg)
    resumed = await request_from(peer, "INVITE")
    assert remote(resumed).direction == "sendrecv"
    reply(peer, stack, resumed, 200, "OK", sdp(40010, v=4))
    await request_from(peer, "ACK")
    await asyncio.sleep(0.1)
    assert stack.events.empty()  # our own re-INVITEs produce no HELD/RESUMED


async def test_hold_while_a_reinvite_is_pending_is_sent_after_it(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "re-queue@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    await stack.switch.hold(leg)
    first = await request_from(peer, "INVITE")
    await stack.switch.unhold(leg)  # wanted again while the first is pending
    await stack.switch.hold(leg)
    await stack.switch.unhold(leg)
    await asyncio.sleep(0.2)
    pending = [peer.messages.get_nowait() for _ in range(peer.messages.qsize())]
    assert all(bytes(m) == bytes(first) for m in pending)  # retransmissions: one at a time
    reply(peer, stack, first, 200, "OK", sdp(40012, "recvonly", v=3))
    second = await request_from(peer, "INVITE")
    assert remote(second).direction == "sendrecv"  # only the latest wish is sent
    reply(peer, stack, second, 200, "OK", sdp(40012, v=4))
    await request_from(peer, "ACK")
    await asyncio.sleep(0.3)
    assert not any(
        isinstance(m, SipRequest) and m.method == "INVITE"
        for m in [peer.messages.get_nowait() for _ in range(peer.messages.qsize())]
    )


async def test_refused_hold_reinvite_leaves_the_call_up(stack: Stack, peer: RawPeer) -> None:
    call_id = "re-488@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    await stack.switch.hold(leg)
    first = await request_from(peer, "INVITE")
    reply(peer, stack, first, 488, "Not Acceptable Here")
    await request_from(peer, "ACK")  # the transaction's ACK for a non-2xx
    await asyncio.sleep(0.2)
    await stack.switch.unhold(leg)  # still answered and controllable
    resumed = await request_from(peer, "INVITE")
    assert remote(resumed).direction == "sendrecv"
    reply(peer, stack, resumed, 481, "Call/Transaction Does Not Exist")
    # 481: the peer lost the dialog, so the leg ends
    assert await stack.next_event() == SwitchEvent(SwitchEventKind.HUNGUP, leg, HangupCause.FAILED)


async def test_2xx_to_our_reinvite_after_the_peer_hung_up_is_still_acked(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "re-bye@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    await stack.switch.hold(leg)
    pending = await request_from(peer, "INVITE")
    peer.send(in_dialog(peer, stack, "BYE", call_id, to, 2), stack)
    assert (await response_to(peer, "2 BYE")).status_code == 200
    assert await stack.next_event() == SwitchEvent(SwitchEventKind.HUNGUP, leg, HangupCause.NORMAL)
    reply(peer, stack, pending, 200, "OK", sdp(40014, "recvonly", v=3))
    late_ack = await request_from(peer, "ACK")
    assert late_ack.headers.get_first("cseq") == pending.headers.get_first("cseq", "").replace(
        "INVITE", "ACK"
    )
    await asyncio.sleep(0.1)
    assert stack.events.empty()


async def test_hold_reinvite_can_be_turned_off(stack: Stack, peer: RawPeer) -> None:
    stack.switch.hold_reinvite = HoldReinvite.OFF
    leg, _to = await answered_incoming(stack, peer, "re-off@test", ack=True)
    await asyncio.sleep(0.3)  # let any resent 200 that crossed the ACK arrive
    while not peer.messages.empty():
        peer.messages.get_nowait()
    await stack.switch.hold(leg)
    await stack.switch.unhold(leg)
    await asyncio.sleep(0.5)
    assert peer.messages.empty()


# --- REFER -------------------------------------------------------------------------------------


async def test_by_default_only_phones_are_reinvited_on_hold(stack: Stack, peer: RawPeer) -> None:
    stack.switch.hold_reinvite = HoldReinvite.PHONES  # the default: this caller is no phone
    leg, _to = await answered_incoming(stack, peer, "re-phones@test", ack=True)
    await asyncio.sleep(0.3)  # let any resent 200 that crossed the ACK arrive
    while not peer.messages.empty():
        peer.messages.get_nowait()
    await stack.switch.hold(leg)
    await asyncio.sleep(0.5)
    assert peer.messages.empty()  # no re-INVITE: the hold is in the media only


async def test_refer_from_the_phone_202_notify_trying_then_200_and_bye(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "refer-ok@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    headers = ["Refer-To: <sip:103@127.0.0.1>", "Referred-By: <sip:5550100@127.0.0.1>"]
    peer.send(in_dialog(peer, stack, "REFER", call_id, to, 2, headers=headers), stack)
    assert (await response_to(peer, "2 REFER")).status_code == 202
    trying = await request_from(peer, "NOTIFY")
    assert trying.body == b"SIP/2.0 100 Trying\r\n"
    assert (trying.headers.get_first("content-type") or "").startswith("message/sipfrag")
    assert trying.headers.get_first("event") == "refer"
    assert (trying.headers.get_first("subscription-state") or "").startswith("active")
    reply(peer, stack, trying, 200, "OK")
    assert await stack.next_event() == SwitchEvent(
        SwitchEventKind.TRANSFER_REQUESTED, leg, to_number="103"
    )
    await stack.switch.hangup(leg, HangupCause.TRANSFERRED)  # the core transferred the peer
    done = await request_from(peer, "NOTIFY")
    assert done.body == b"SIP/2.0 200 OK\r\n"
    assert (done.headers.get_first("subscription-state") or "").startswith("terminated")
    reply(peer, stack, done, 200, "OK")
    bye = await request_from(peer, "BYE")
    reply(peer, stack, bye, 200, "OK")


async def test_unanswered_final_notify_does_not_hold_the_bye_back(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "refer-mute@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    headers = ["Refer-To: <sip:103@127.0.0.1>"]
    peer.send(in_dialog(peer, stack, "REFER", call_id, to, 2, headers=headers), stack)
    assert (await response_to(peer, "2 REFER")).status_code == 202
    reply(peer, stack, await request_from(peer, "NOTIFY"), 200, "OK")
    await stack.next_event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await stack.switch.hangup(leg, HangupCause.TRANSFERRED)
    final = await request_from(peer, "NOTIFY")  # never answered by the phone
    assert final.body == b"SIP/2.0 200 OK\r\n"
    bye = await request_from(peer, "BYE", wait_s=5.0)
    assert 1.5 < loop.time() - started < 4.0  # after the 2 s wait, not 64*T1
    reply(peer, stack, bye, 200, "OK")


async def test_refer_refused_by_the_core_notifies_404_and_the_call_goes_on(
    stack: Stack, peer: RawPeer
) -> None:
    call_id = "refer-404@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    headers = ["Refer-To: sip:999@127.0.0.1"]
    peer.send(in_dialog(peer, stack, "REFER", call_id, to, 2, headers=headers), stack)
    assert (await response_to(peer, "2 REFER")).status_code == 202
    reply(peer, stack, await request_from(peer, "NOTIFY"), 200, "OK")
    event = await stack.next_event()
    assert (event.kind, event.to_number) == (SwitchEventKind.TRANSFER_REQUESTED, "999")
    await stack.switch.refuse_transfer(leg, "extension_not_found")
    refused = await request_from(peer, "NOTIFY")
    assert refused.body == b"SIP/2.0 404 Not Found\r\n"
    assert (refused.headers.get_first("subscription-state") or "").startswith("terminated")
    reply(peer, stack, refused, 200, "OK")
    await stack.switch.mute(leg)  # the leg is still up
    await asyncio.sleep(0.1)
    assert not any(
        isinstance(m, SipRequest) and m.method == "BYE"
        for m in [peer.messages.get_nowait() for _ in range(peer.messages.qsize())]
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([], 400),  # no Refer-To
        (["Refer-To: <sip:103@127.0.0.1?Replaces=abc%3Bto-tag%3Dx%3Bfrom-tag%3Dy>"], 403),
        (["Refer-To: <sip:127.0.0.1>"], 400),  # no user part
    ],
    ids=["no-refer-to", "attended", "no-user"],
)
async def test_unusable_refers_are_refused(
    stack: Stack, peer: RawPeer, headers: list[str], status: int
) -> None:
    call_id = f"refer-bad-{status}-{len(headers)}@test"
    _leg, to = await answered_incoming(stack, peer, call_id, ack=True)
    peer.send(in_dialog(peer, stack, "REFER", call_id, to, 2, headers=headers), stack)
    assert (await response_to(peer, "2 REFER")).status_code == status
    await asyncio.sleep(0.1)
    assert stack.events.empty()


# --- CANCEL after our 200 -------------------------------------------------------------------


async def test_cancel_crossing_our_200_is_answered_and_ignored(stack: Stack, peer: RawPeer) -> None:
    call_id = "cancel-late@test"
    leg, to = await answered_incoming(stack, peer, call_id, ack=False)
    cancel = f"""
        CANCEL sip:2000@127.0.0.1:{stack.endpoint.port} SIP/2.0
        Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-inv1
        Max-Forwards: 70
        From: "Carol" <sip:5550100@127.0.0.1>;tag=peer-tag
        To: <sip:2000@127.0.0.1>
        Call-ID: {call_id}
        CSeq: 1 CANCEL
    """
    peer.send(cancel, stack)
    assert (await response_to(peer, "1 CANCEL")).status_code == 200
    ack(peer, stack, call_id, to, 1)
    await asyncio.sleep(0.2)
    assert stack.events.empty()
    await stack.switch.mute(leg)  # still answered


# --- digest towards the trunk -----------------------------------------------------------------


async def test_trunk_digest_challenge_is_answered_once(stack: Stack, tmp_path: Path) -> None:
    async with sipp_scenario("sipswitch_uas_auth.xml", tmp_path) as (process, port):
        stack.switch.trunk = Source("UDP", "127.0.0.1", port)
        stack.switch.trunk_username, stack.switch.trunk_password = "trunkuser", "trunkpass"
        await stack.switch.dial(DialRequest("leg-au", "call-au", TENANT, "+15550000", True, "1"))
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-au")
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.ANSWERED, "leg-au")
        await stack.switch.hangup("leg-au", HangupCause.NORMAL)
        await sipp_done(process, tmp_path)


async def test_trunk_digest_with_a_wrong_password_fails_the_scenario(
    stack: Stack, tmp_path: Path
) -> None:
    async with sipp_scenario("sipswitch_uas_auth.xml", tmp_path) as (process, port):
        stack.switch.trunk = Source("UDP", "127.0.0.1", port)
        stack.switch.trunk_username, stack.switch.trunk_password = "trunkuser", "wrong"
        await stack.switch.dial(DialRequest("leg-aw", "call-aw", TENANT, "+15550000", True, "1"))
        assert await stack.next_event() == SwitchEvent(
            SwitchEventKind.HUNGUP, "leg-aw", HangupCause.REJECTED
        )  # the 403
        with pytest.raises(AssertionError, match="sipp exited"):
            await sipp_done(process, tmp_path)  # verifyauth said no


async def test_second_challenge_is_rejected(stack: Stack, tmp_path: Path) -> None:
    async with sipp_scenario("sipswitch_uas_auth_twice.xml", tmp_path) as (process, port):
        stack.switch.trunk = Source("UDP", "127.0.0.1", port)
        stack.switch.trunk_username, stack.switch.trunk_password = "trunkuser", "trunkpass"
        await stack.switch.dial(DialRequest("leg-a2", "call-a2", TENANT, "+15550000", True, "1"))
        assert await stack.next_event() == SwitchEvent(
            SwitchEventKind.HUNGUP, "leg-a2", HangupCause.REJECTED
        )
        await sipp_done(process, tmp_path)  # the retry carried Proxy-Authorization


async def test_challenge_without_credentials_is_rejected(stack: Stack, tmp_path: Path) -> None:
    async with sipp_scenario("sipswitch_uas_auth_once.xml", tmp_path) as (process, port):
        stack.switch.trunk = Source("UDP", "127.0.0.1", port)
        await stack.switch.dial(DialRequest("leg-a0", "call-a0", TENANT, "+15550000", True, "1"))
        assert await stack.next_event() == SwitchEvent(
            SwitchEventKind.HUNGUP, "leg-a0", HangupCause.REJECTED
        )
        await sipp_done(process, tmp_path)
