"""SipSwitch over real sockets on 127.0.0.1: SipEndpoint + SipClient + EmbeddedMediaEngine +
Registrar, with SIPp as the phone (callee) or as the caller.

Needs ``sipp`` (Debian package ``sip-tester``); skipped without it, except under CI where it fails.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.sip.test_endpoint_sipp import error_logs, free_port, free_port_both, sipp_binary
from tests.sip.test_registrar import REALM, Phone, lookup

from callbridge.adapters.clock import SystemClock
from callbridge.adapters.sipswitch import SipSwitch, user_part
from callbridge.domain.calls import HangupCause
from callbridge.media.embedded import EmbeddedMediaEngine
from callbridge.ports.switch import DialRequest, SwitchError, SwitchEvent, SwitchEventKind
from callbridge.sip.client import SipClient
from callbridge.sip.endpoint import SipEndpoint
from callbridge.sip.registrar import Registrar

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


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    clock = SystemClock()
    endpoint = SipEndpoint("127.0.0.1", 0, tcp=False)
    await endpoint.start()
    client = SipClient(endpoint, clock, t1=0.1)
    media = EmbeddedMediaEngine("127.0.0.1", clock=clock)
    await media.start()
    registrar = Registrar(REALM, lookup, clock)
    switch = SipSwitch(
        endpoint,
        client,
        media,
        registrar,
        clock,
        trunk=None,
        username_for=lambda tenant, number: USERNAMES.get((tenant, number)),
        recordings_dir=tmp_path,
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
    port = free_port_both()
    scenario = str(SCENARIOS / "sipswitch_uas_busy.xml")
    process = await start_sipp("-sf", scenario, "-p", str(port), cwd=tmp_path)
    try:
        await stack.register_phone("1001", port)
        await stack.switch.dial(dial("leg-2"))
        assert await stack.next_event() == SwitchEvent(
            SwitchEventKind.HUNGUP, "leg-2", HangupCause.BUSY
        )
        await sipp_done(process, tmp_path)
    finally:
        await kill(process)


async def test_ring_timeout_cancels_and_gives_no_answer(stack: Stack, tmp_path: Path) -> None:
    port = free_port_both()
    scenario = str(SCENARIOS / "sipswitch_uas_ring_cancel.xml")
    process = await start_sipp("-sf", scenario, "-p", str(port), cwd=tmp_path)
    try:
        await stack.register_phone("1001", port)
        await stack.switch.dial(dial("leg-3", timeout_s=1.0))
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-3")
        assert await stack.next_event() == SwitchEvent(
            SwitchEventKind.HUNGUP, "leg-3", HangupCause.NO_ANSWER
        )
        await sipp_done(process, tmp_path)
    finally:
        await kill(process)


async def test_core_hangup_while_ringing_cancels(stack: Stack, tmp_path: Path) -> None:
    port = free_port_both()
    scenario = str(SCENARIOS / "sipswitch_uas_ring_cancel.xml")
    process = await start_sipp("-sf", scenario, "-p", str(port), cwd=tmp_path)
    try:
        await stack.register_phone("1001", port)
        await stack.switch.dial(dial("leg-4"))
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-4")
        await stack.switch.hangup("leg-4", HangupCause.CANCELLED)
        await sipp_done(process, tmp_path)
        await asyncio.sleep(0.1)
        assert stack.events.empty()
    finally:
        await kill(process)


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
