"""SipSwitch over real sockets on 127.0.0.1: SipEndpoint + SipClient + EmbeddedMediaEngine +
Registrar, with SIPp as the phone (callee) or as the caller.

Needs ``sipp`` (Debian package ``sip-tester``); skipped without it, except under CI where it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosipua.message import SipMessage, SipRequest, SipResponse
from tests.media.phones import Phone as RtpPhone
from tests.sip.test_endpoint_sipp import error_logs, free_port, free_port_both, sipp_binary
from tests.sip.test_registrar import REALM, Phone, lookup

from callbridge.adapters.clock import SystemClock
from callbridge.adapters.sipswitch import HoldReinvite, SipSwitch, user_part
from callbridge.domain.calls import HangupCause
from callbridge.media.embedded import EmbeddedMediaEngine
from callbridge.ports.switch import DialRequest, SwitchError, SwitchEvent, SwitchEventKind
from callbridge.sip.client import SipClient
from callbridge.sip.endpoint import SipEndpoint
from callbridge.sip.registrar import Registrar
from callbridge.sip.sdp import RemoteMedia, parse_remote
from callbridge.sip.source import Source

SCENARIOS = Path(__file__).parent / "scenarios"
TENANT = "tenant-a"
USERNAMES = {(TENANT, "1001"): "1001", (TENANT, "1002"): "1002"}


@dataclass
class Stack:
    endpoint: SipEndpoint
    client: SipClient
    media: EmbeddedMediaEngine
    registrar: Registrar
    switch: SipSwitch
    events: asyncio.Queue[SwitchEvent]

    async def next_event(self, wait_s: float = 10.0) -> SwitchEvent:
        async with asyncio.timeout(wait_s):
            return await self.events.get()

    async def register_phone(self, user: str, port: int) -> None:
        phone = Phone(
            self.registrar,
            user,
            source=("UDP", "127.0.0.1", port),
            contact=f"<sip:{user}@127.0.0.1:{port}>",
        )
        response = await phone.register()
        assert response.status_code == 200
        [binding] = self.registrar.contacts(user)
        assert binding.source.port == port


@contextlib.asynccontextmanager
async def open_stack(
    tmp_path: Path,
    *,
    host: str = "127.0.0.1",
    tcp: bool = False,
    public_host: str = "",
    hold_reinvite: HoldReinvite = HoldReinvite.PHONES,
    username_for: Callable[[str, str], str | None] | None = None,
) -> AsyncIterator[Stack]:
    """The switch and everything under it on loopback (UDP, optionally TCP too), its events in
    a queue; torn down in reverse order."""
    clock = SystemClock()
    endpoint = SipEndpoint(host, 0, udp=True, tcp=tcp)
    await endpoint.start()
    client = SipClient(endpoint, clock, t1=0.1, public_host=public_host)
    media = EmbeddedMediaEngine(host, clock=clock, public_host=public_host)
    await media.start()
    registrar = Registrar(REALM, lookup, clock)
    switch = SipSwitch(
        endpoint,
        client,
        media,
        registrar,
        clock,
        trunk=None,
        username_for=username_for or (lambda tenant, number: USERNAMES.get((tenant, number))),
        recordings_dir=tmp_path,
        public_host=public_host,
        hold_reinvite=hold_reinvite,
    )
    events: asyncio.Queue[SwitchEvent] = asyncio.Queue()
    switch.set_listener(events.put_nowait)
    await switch.start()
    try:
        yield Stack(endpoint, client, media, registrar, switch, events)
    finally:
        await switch.stop()
        await client.close()
        await media.stop()
        await endpoint.stop()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(tmp_path) as opened:
        yield opened


async def start_sipp(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    sipp = sipp_binary()
    return await asyncio.create_subprocess_exec(
        sipp,
        *args,
        *["-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", str(free_port(socket.SOCK_DGRAM))],
        *["-ci", "127.0.0.1", "-cp", str(free_port(socket.SOCK_DGRAM))],
        *["-m", "1", "-timeout", "15s", "-timeout_error", "-nostdin", "-trace_err"],
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


@contextlib.asynccontextmanager
async def sipp_scenario(
    name: str, cwd: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """SIPp running ``scenarios/<name>`` on a free port (killed on exit): ``(process, port)``."""
    port = free_port_both()
    process = await start_sipp("-sf", str(SCENARIOS / name), "-p", str(port), cwd=cwd)
    try:
        yield process, port
    finally:
        await kill(process)


async def sipp_done(process: asyncio.subprocess.Process, cwd: Path) -> None:
    async with asyncio.timeout(20):
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"sipp exited {process.returncode}\n{text[-3000:]}\n" + (
        error_logs(cwd)
    )


async def kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


def dial(leg_id: str, number: str = "1001", timeout_s: float = 10.0) -> DialRequest:
    return DialRequest(
        leg_id=leg_id,
        call_id="call-1",
        tenant_id=TENANT,
        number=number,
        external=False,
        caller_id="5551234",
        timeout_s=timeout_s,
    )


def test_user_part() -> None:
    assert user_part('"Alice" <sip:1001@example.com;transport=udp>;tag=x') == "1001"
    assert user_part("<sip:+15551234@10.0.0.1:5060>") == "+15551234"
    assert user_part("sip:example.com") == ""


async def test_no_registered_contact_fails_asynchronously(stack: Stack) -> None:
    seen: list[SwitchEvent] = []
    stack.switch.set_listener(seen.append)
    await stack.switch.dial(dial("leg-x"))
    assert seen == []  # never synchronously from a command
    await asyncio.sleep(0.05)
    assert seen == [SwitchEvent(SwitchEventKind.HUNGUP, "leg-x", HangupCause.FAILED)]
    with pytest.raises(SwitchError):
        await stack.switch.hangup("leg-x", HangupCause.NORMAL)


async def test_unknown_extension_and_missing_trunk_fail(stack: Stack) -> None:
    await stack.switch.dial(dial("leg-a", number="9999"))
    external = DialRequest("leg-b", "call-1", TENANT, "+15550000", True, "1001")
    await stack.switch.dial(external)
    got = {(await stack.next_event()).leg_id, (await stack.next_event()).leg_id}
    assert got == {"leg-a", "leg-b"}


async def test_dial_phone_rings_answers_then_our_bye(stack: Stack, tmp_path: Path) -> None:
    port = free_port_both()
    process = await start_sipp("-sn", "uas", "-p", str(port), cwd=tmp_path)
    try:
        await stack.register_phone("1001", port)
        await stack.switch.dial(dial("leg-1"))
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-1")
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.ANSWERED, "leg-1")
        await stack.switch.hold("leg-1")
        await stack.switch.unhold("leg-1")
        await stack.switch.hangup("leg-1", HangupCause.NORMAL)
        await sipp_done(process, tmp_path)
        await asyncio.sleep(0.1)
        assert stack.events.empty()  # our hangup produces no event
        with pytest.raises(SwitchError):
            await stack.switch.hold("leg-1")
    finally:
        await kill(process)


async def test_busy_phone_gives_hungup_busy(stack: Stack, tmp_path: Path) -> None:
    async with sipp_scenario("sipswitch_uas_busy.xml", tmp_path) as (process, port):
        await stack.register_phone("1001", port)
        await stack.switch.dial(dial("leg-2"))
        assert await stack.next_event() == SwitchEvent(
            SwitchEventKind.HUNGUP, "leg-2", HangupCause.BUSY
        )
        await sipp_done(process, tmp_path)


async def test_ring_timeout_cancels_and_gives_no_answer(stack: Stack, tmp_path: Path) -> None:
    async with sipp_scenario("sipswitch_uas_ring_cancel.xml", tmp_path) as (process, port):
        await stack.register_phone("1001", port)
        await stack.switch.dial(dial("leg-3", timeout_s=1.0))
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-3")
        assert await stack.next_event() == SwitchEvent(
            SwitchEventKind.HUNGUP, "leg-3", HangupCause.NO_ANSWER
        )
        await sipp_done(process, tmp_path)


async def test_core_hangup_while_ringing_cancels(stack: Stack, tmp_path: Path) -> None:
    async with sipp_scenario("sipswitch_uas_ring_cancel.xml", tmp_path) as (process, port):
        await stack.register_phone("1001", port)
        await stack.switch.dial(dial("leg-4"))
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-4")
        await stack.switch.hangup("leg-4", HangupCause.CANCELLED)
        await sipp_done(process, tmp_path)
        await asyncio.sleep(0.1)
        assert stack.events.empty()


async def test_incoming_call_accepted_answered_then_caller_bye(
    stack: Stack, tmp_path: Path
) -> None:
    port = free_port_both()
    process = await start_sipp(
        f"127.0.0.1:{stack.endpoint.port}",
        *["-sn", "uac", "-s", "2000", "-p", str(port)],
        cwd=tmp_path,
    )
    try:
        incoming = await stack.next_event()
        assert incoming.kind is SwitchEventKind.INCOMING
        assert incoming.to_number == "2000"
        assert incoming.from_number == "sipp"
        leg = incoming.leg_id
        await stack.switch.accept(leg, "call-9", TENANT)
        await stack.switch.answer(leg)
        assert await stack.next_event() == SwitchEvent(
            SwitchEventKind.HUNGUP, leg, HangupCause.NORMAL
        )
        await sipp_done(process, tmp_path)
    finally:
        await kill(process)


# --- a hand-driven caller on a raw UDP socket ----------------------------------------------------


class RawPeer(asyncio.DatagramProtocol):
    """A SIP caller on 127.0.0.1 that sends hand-written requests and queues what comes back."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[SipRequest | SipResponse] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> RawPeer:
        peer = cls()
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: peer, local_addr=("127.0.0.1", 0))
        return peer

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = SipMessage.parse(data)
        assert isinstance(message, SipRequest | SipResponse)
        self.messages.put_nowait(message)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, text: str, stack: Stack, body: str = "") -> None:
        assert self.transport is not None
        lines = [line.strip() for line in text.strip().splitlines()]
        lines.append(f"Content-Length: {len(body.encode())}")
        payload = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        self.transport.sendto(payload, ("127.0.0.1", stack.endpoint.port))

    async def next(self, wait_s: float = 5.0) -> SipRequest | SipResponse:
        async with asyncio.timeout(wait_s):
            return await self.messages.get()

    async def response(self, status: int, wait_s: float = 5.0) -> SipResponse:
        """The next response with ``status`` (skipping others, e.g. 100 Trying)."""
        async with asyncio.timeout(wait_s):
            while True:
                message = await self.messages.get()
                if isinstance(message, SipResponse) and message.status_code == status:
                    return message

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def offer(port: int) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
    )


def invite_text(peer: RawPeer, stack: Stack, call_id: str, branch: str = "z9hG4bK-inv1") -> str:
    return f"""
        INVITE sip:2000@127.0.0.1:{stack.endpoint.port} SIP/2.0
        Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch={branch}
        Max-Forwards: 70
        From: "Carol" <sip:5550100@127.0.0.1>;tag=peer-tag
        To: <sip:2000@127.0.0.1>
        Call-ID: {call_id}
        CSeq: 1 INVITE
        Contact: <sip:5550100@127.0.0.1:{peer.port}>
        Content-Type: application/sdp
    """


@pytest.fixture
async def peer() -> AsyncIterator[RawPeer]:
    raw = await RawPeer.open()
    try:
        yield raw
    finally:
        raw.close()
        await asyncio.sleep(0)  # let the transport really close


async def test_incoming_200_is_resent_until_ack_then_dtmf_and_bye_on_stop(
    stack: Stack, peer: RawPeer, tmp_path: Path
) -> None:
    recordings = tmp_path
    rtp = await RtpPhone.open(None)
    try:
        peer.send(invite_text(peer, stack, "raw-1@test"), stack, offer(rtp.addr[1]))
        trying = await peer.next()
        assert isinstance(trying, SipResponse) and trying.status_code == 100
        incoming = await stack.next_event()
        assert (incoming.kind, incoming.from_number, incoming.to_number) == (
            SwitchEventKind.INCOMING,
            "5550100",
            "2000",
        )
        leg = incoming.leg_id
        await stack.switch.accept(leg, "call-1", TENANT)
        assert (await peer.response(180)).status_code == 180
        await stack.switch.answer(leg)
        ok = await peer.response(200)
        again = await peer.response(200, wait_s=2.0)  # no ACK yet: resent (T1 = 0.1 s)
        assert bytes(again) == bytes(ok)
        answer = parse_remote(ok.body or b"")
        assert isinstance(answer, RemoteMedia)
        to = ok.headers.get_first("to")
        peer.send(
            f"""
            ACK sip:callbridge@127.0.0.1:{stack.endpoint.port} SIP/2.0
            Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-ack1
            Max-Forwards: 70
            From: "Carol" <sip:5550100@127.0.0.1>;tag=peer-tag
            To: {to}
            Call-ID: raw-1@test
            CSeq: 1 ACK
            """,
            stack,
        )
        await asyncio.sleep(0.6)
        while not peer.messages.empty():  # at most what crossed the ACK
            late = peer.messages.get_nowait()
            assert isinstance(late, SipResponse) and late.status_code == 200
        await asyncio.sleep(0.6)
        assert peer.messages.empty()  # the ACK stopped the retransmissions

        # DTMF from the caller's RTP becomes a DTMF event
        rtp.target = (answer.host, answer.port)
        for duration in (160, 320, 480):
            rtp.send_event(5, 16000, duration, end=False, pt=101)
            await asyncio.sleep(0.005)
        for _ in range(3):
            rtp.send_event(5, 16000, 480, end=True, pt=101)
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.DTMF, leg, digits="5")

        # the media commands reach the engine (1:1)
        mark = rtp.mark()
        await stack.switch.send_dtmf(leg, "1")
        assert rtp.packets(mark, pt=101)
        await stack.switch.bridge("br-1", [leg], mixing=True)
        await stack.switch.mute(leg)
        await stack.switch.unmute(leg)
        await stack.switch.set_audibility(leg, [])  # supervision: heard by nobody
        await stack.switch.set_audibility(leg, None)
        await stack.switch.unbridge("br-1", leg)
        await stack.switch.start_music(leg)
        await stack.switch.stop_music(leg)
        await stack.switch.record_start("rec-1", "call-1")
        await stack.switch.record_pause("rec-1")
        await stack.switch.record_resume("rec-1")
        await stack.switch.record_stop("rec-1")
        assert (recordings / "rec-1.wav").exists()
        with pytest.raises(SwitchError):
            await stack.switch.record_start("rec-2", "no-such-call")

        # stop() BYEs the confirmed dialog (answered here by the peer)
        stopping = asyncio.ensure_future(stack.switch.stop())
        bye = await peer.next()
        assert isinstance(bye, SipRequest) and bye.method == "BYE"
        assert "cause=41" in (bye.headers.get_first("reason") or "")
        assert bye.uri == f"sip:5550100@127.0.0.1:{peer.port}"
        lines = ["SIP/2.0 200 OK"] + [
            f"{name}: {bye.headers.get_first(name)}"
            for name in ("Via", "From", "To", "Call-ID", "CSeq")
        ]
        peer.send("\n".join(lines), stack)
        async with asyncio.timeout(5):
            await stopping
        assert stack.events.empty()
    finally:
        await rtp.close()


async def test_cancel_from_the_caller_before_answer(stack: Stack, peer: RawPeer) -> None:
    peer.send(invite_text(peer, stack, "raw-2@test"), stack, offer(40000))
    incoming = await stack.next_event()
    await stack.switch.accept(incoming.leg_id, "call-2", TENANT)
    await peer.response(180)
    peer.send(
        f"""
        CANCEL sip:2000@127.0.0.1:{stack.endpoint.port} SIP/2.0
        Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-inv1
        Max-Forwards: 70
        From: "Carol" <sip:5550100@127.0.0.1>;tag=peer-tag
        To: <sip:2000@127.0.0.1>
        Call-ID: raw-2@test
        CSeq: 1 CANCEL
        """,
        stack,
    )
    replies = [await peer.next() for _ in range(2)]
    assert {r.status_code for r in replies if isinstance(r, SipResponse)} == {200, 487}
    assert await stack.next_event() == SwitchEvent(
        SwitchEventKind.HUNGUP, incoming.leg_id, HangupCause.CANCELLED
    )
    with pytest.raises(SwitchError):
        await stack.switch.answer(incoming.leg_id)


async def test_core_refuses_an_unanswered_incoming_leg(stack: Stack, peer: RawPeer) -> None:
    peer.send(invite_text(peer, stack, "raw-3@test"), stack, offer(40000))
    incoming = await stack.next_event()
    await stack.switch.hangup(incoming.leg_id, HangupCause.BUSY)
    assert (await peer.response(486)).status_code == 486
    await asyncio.sleep(0.1)
    assert stack.events.empty()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("", 488),  # no offer: late offers are not supported yet
        ("v=0\r\nthis is not sdp\r\n", 400),
        (offer(40000).replace("RTP/AVP 0 101", "RTP/AVP 18 101"), 488),  # G.729 only
    ],
    ids=["no-sdp", "garbage", "no-common-codec"],
)
async def test_unusable_offers_are_refused(
    stack: Stack, peer: RawPeer, body: str, status: int
) -> None:
    peer.send(invite_text(peer, stack, f"raw-{status}-{len(body)}@test"), stack, body)
    response = await peer.response(status)
    assert response.status_code == status
    await asyncio.sleep(0.1)
    assert stack.events.empty()


async def answered_incoming(
    stack: Stack, peer: RawPeer, call_id: str, *, ack: bool
) -> tuple[str, str]:
    """An incoming call from ``peer`` accepted and answered (and ACKed when ``ack``):
    ``(leg id, To header of our 200)``."""
    peer.send(invite_text(peer, stack, call_id), stack, offer(40000))
    incoming = await stack.next_event()
    await stack.switch.accept(incoming.leg_id, "call-x", TENANT)
    await stack.switch.answer(incoming.leg_id)
    ok = await peer.response(200)
    if ack:
        peer.send(
            f"""
            ACK sip:callbridge@127.0.0.1:{stack.endpoint.port} SIP/2.0
            Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-ack-{call_id.replace("@", "-")}
            Max-Forwards: 70
            From: "Carol" <sip:5550100@127.0.0.1>;tag=peer-tag
            To: {ok.headers.get_first("to")}
            Call-ID: {call_id}
            CSeq: 1 ACK
            """,
            stack,
        )
    return incoming.leg_id, ok.headers.get_first("to") or ""


async def test_caller_bye_reason_gives_the_cause(stack: Stack, peer: RawPeer) -> None:
    leg, to = await answered_incoming(stack, peer, "raw-bye@test", ack=True)
    peer.send(
        f"""
        BYE sip:callbridge@127.0.0.1:{stack.endpoint.port} SIP/2.0
        Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-bye1
        Max-Forwards: 70
        From: "Carol" <sip:5550100@127.0.0.1>;tag=peer-tag
        To: {to}
        Call-ID: raw-bye@test
        CSeq: 2 BYE
        Reason: Q.850;cause=17;text="User busy"
        """,
        stack,
    )
    assert await stack.next_event() == SwitchEvent(SwitchEventKind.HUNGUP, leg, HangupCause.BUSY)
    async with asyncio.timeout(5):
        while True:  # skip any resent 200 to the INVITE that crossed the ACK
            bye_ok = await peer.response(200)
            if bye_ok.headers.get_first("cseq") == "2 BYE":
                break


async def test_no_ack_for_our_200_ends_the_leg(stack: Stack, peer: RawPeer) -> None:
    stack.client.t1 = 0.02  # 64*T1 = 1.28 s
    leg, _ = await answered_incoming(stack, peer, "raw-noack@test", ack=False)
    assert await stack.next_event(wait_s=5.0) == SwitchEvent(
        SwitchEventKind.HUNGUP, leg, HangupCause.FAILED
    )
    async with asyncio.timeout(5):
        while True:
            message = await peer.next()
            if isinstance(message, SipRequest):
                assert message.method == "BYE"
                break


async def test_external_number_goes_to_the_trunk(stack: Stack, tmp_path: Path) -> None:
    port = free_port_both()
    process = await start_sipp("-sn", "uas", "-p", str(port), cwd=tmp_path)
    try:
        stack.switch.trunk = Source("UDP", "127.0.0.1", port)
        request = DialRequest("leg-t", "call-t", TENANT, "+15550000", True, "1001")
        await stack.switch.dial(request)
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-t")
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.ANSWERED, "leg-t")
        await stack.switch.hangup("leg-t", HangupCause.NORMAL)
        await sipp_done(process, tmp_path)
    finally:
        await kill(process)
