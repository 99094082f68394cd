"""SipSwitch over TCP with SIPp ``-t t1``: a dialled phone registered over TCP answers and takes
our BYE; a caller over TCP is answered and hangs up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.sip.test_endpoint_sipp import free_port_both
from tests.sip.test_registrar import Phone
from tests.sip.test_sipswitch import (
    TENANT,
    Stack,
    dial,
    kill,
    open_stack,
    sipp_done,
    start_sipp,
)

from callbridge.domain.calls import HangupCause
from callbridge.ports.switch import SwitchEvent, SwitchEventKind


@pytest.fixture
async def tcp_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(tmp_path, tcp=True) as opened:
        yield opened


async def test_dial_a_phone_registered_over_tcp_answer_and_bye(
    tcp_stack: Stack, tmp_path: Path
) -> None:
    stack = tcp_stack
    port = free_port_both()
    process = await start_sipp("-sn", "uas", "-t", "t1", "-p", str(port), cwd=tmp_path)
    try:
        phone = Phone(
            stack.registrar,
            "1001",
            source=("TCP", "127.0.0.1", port),
            contact=f"<sip:1001@127.0.0.1:{port};transport=tcp>",
        )
        assert (await phone.register()).status_code == 200
        await asyncio.sleep(0.3)  # SIPp's TCP listener
        await stack.switch.dial(dial("leg-tcp"))
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-tcp")
        assert await stack.next_event() == SwitchEvent(SwitchEventKind.ANSWERED, "leg-tcp")
        await stack.switch.hangup("leg-tcp", HangupCause.NORMAL)
        await sipp_done(process, tmp_path)  # the uas scenario needs our ACK and BYE over TCP
    finally:
        await kill(process)


async def test_caller_over_tcp_is_answered_and_hangs_up(tcp_stack: Stack, tmp_path: Path) -> None:
    stack = tcp_stack
    port = free_port_both()
    process = await start_sipp(
        f"127.0.0.1:{stack.endpoint.port}",
        *["-sn", "uac", "-t", "t1", "-s", "2000", "-p", str(port)],
        cwd=tmp_path,
    )
    try:
        incoming = await stack.next_event()
        assert incoming.kind is SwitchEventKind.INCOMING and incoming.to_number == "2000"
        await stack.switch.accept(incoming.leg_id, "call-tcp", TENANT)
        await stack.switch.answer(incoming.leg_id)
        assert await stack.next_event() == SwitchEvent(
            SwitchEventKind.HUNGUP, incoming.leg_id, HangupCause.NORMAL
        )
        await sipp_done(process, tmp_path)
    finally:
        await kill(process)
