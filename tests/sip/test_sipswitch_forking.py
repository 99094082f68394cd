"""Parallel forking of an outgoing leg to every registered binding of the extension: the first
2xx wins, the other INVITEs are CANCELled and a 2xx crossing that CANCEL is ACKed and BYEd; when
every fork fails the best failure is reported; the ring timeout CANCELs them all.

Each binding is a :class:`RawPeer` acting as the phone (a UAS written by hand).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiosipua.message import SipRequest
from tests.sip.test_registrar import Phone
from tests.sip.test_sipswitch import RawPeer, Stack, dial, offer
from tests.sip.test_sipswitch_indialog import request_from

from callbridge.domain.calls import HangupCause
from callbridge.ports.switch import SwitchEvent, SwitchEventKind


def answer_as_phone(
    phone: RawPeer,
    stack: Stack,
    invite: SipRequest,
    status: int,
    reason: str,
    *,
    tag: str,
    body: str = "",
) -> None:
    """The phone's response to our INVITE (or to a CANCEL/BYE when ``invite`` is one)."""
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {value}" for value in invite.headers.get("via")]
    lines.append(f"From: {invite.headers.get_first('from')}")
    to = invite.headers.get_first("to") or ""
    lines.append(f"To: {to}" if ";tag=" in to else f"To: {to};tag={tag}")
    lines.append(f"Call-ID: {invite.headers.get_first('call-id')}")
    lines.append(f"CSeq: {invite.headers.get_first('cseq')}")
    if invite.method == "INVITE" and 100 < status < 300:
        lines.append(f"Contact: <sip:1001@127.0.0.1:{phone.port}>")
    if body:
        lines.append("Content-Type: application/sdp")
    phone.send("\n".join(lines), stack, body)


@pytest.fixture
async def phones(stack: Stack) -> AsyncIterator[tuple[RawPeer, RawPeer]]:
    first, second = await RawPeer.open(), await RawPeer.open()
    try:
        for raw in (first, second):
            phone = Phone(
                stack.registrar,
                "1001",
                source=("UDP", "127.0.0.1", raw.port),
                contact=f"<sip:1001@127.0.0.1:{raw.port}>",
            )
            assert (await phone.register()).status_code == 200
        assert len(stack.registrar.contacts("1001")) == 2
        yield first, second
    finally:
        first.close()
        second.close()
        await asyncio.sleep(0)


async def test_first_2xx_wins_the_other_fork_is_cancelled_and_its_late_2xx_byed(
    stack: Stack, phones: tuple[RawPeer, RawPeer]
) -> None:
    a, b = phones
    await stack.switch.dial(dial("leg-f1"))
    invite_a, invite_b = await request_from(a, "INVITE"), await request_from(b, "INVITE")
    assert invite_a.headers.get_first("call-id") == invite_b.headers.get_first("call-id")
    answer_as_phone(a, stack, invite_a, 180, "Ringing", tag="ta")
    answer_as_phone(b, stack, invite_b, 180, "Ringing", tag="tb")
    assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-f1")
    answer_as_phone(a, stack, invite_a, 200, "OK", tag="ta", body=offer(40020))
    assert await stack.next_event() == SwitchEvent(SwitchEventKind.ANSWERED, "leg-f1")
    assert (await request_from(a, "ACK")).headers.get_first("cseq") == "1 ACK"
    cancel = await request_from(b, "CANCEL")
    answer_as_phone(b, stack, cancel, 200, "OK", tag="tb")
    # b answered anyway (its 200 crossed the CANCEL): ACK it, then BYE it
    answer_as_phone(b, stack, invite_b, 200, "OK", tag="tb", body=offer(40022))
    assert (await request_from(b, "ACK")).headers.get_first("cseq") == "1 ACK"
    bye = await request_from(b, "BYE")
    assert ";tag=tb" in (bye.headers.get_first("to") or "")
    answer_as_phone(b, stack, bye, 200, "OK", tag="tb")
    await asyncio.sleep(0.2)
    assert stack.events.empty()
    await stack.switch.hangup("leg-f1", HangupCause.NORMAL)  # the call is with a
    bye_a = await request_from(a, "BYE")
    assert ";tag=ta" in (bye_a.headers.get_first("to") or "")
    answer_as_phone(a, stack, bye_a, 200, "OK", tag="ta")


async def test_every_fork_failing_reports_the_best_failure(
    stack: Stack, phones: tuple[RawPeer, RawPeer]
) -> None:
    a, b = phones
    await stack.switch.dial(dial("leg-f2"))
    invite_a, invite_b = await request_from(a, "INVITE"), await request_from(b, "INVITE")
    answer_as_phone(a, stack, invite_a, 480, "Temporarily Unavailable", tag="ta")
    await request_from(a, "ACK")
    await asyncio.sleep(0.2)
    assert stack.events.empty()  # b still rings
    answer_as_phone(b, stack, invite_b, 486, "Busy Here", tag="tb")
    await request_from(b, "ACK")
    assert await stack.next_event() == SwitchEvent(
        SwitchEventKind.HUNGUP, "leg-f2", HangupCause.BUSY
    )


async def test_ring_timeout_cancels_every_fork(
    stack: Stack, phones: tuple[RawPeer, RawPeer]
) -> None:
    a, b = phones
    await stack.switch.dial(dial("leg-f3", timeout_s=0.5))
    invites = [await request_from(a, "INVITE"), await request_from(b, "INVITE")]
    for phone, invite, tag in zip((a, b), invites, ("ta", "tb"), strict=True):
        answer_as_phone(phone, stack, invite, 180, "Ringing", tag=tag)
    assert await stack.next_event() == SwitchEvent(SwitchEventKind.RINGING, "leg-f3")
    for phone, invite, tag in zip((a, b), invites, ("ta", "tb"), strict=True):
        cancel = await request_from(phone, "CANCEL")
        answer_as_phone(phone, stack, cancel, 200, "OK", tag=tag)
        answer_as_phone(phone, stack, invite, 487, "Request Terminated", tag=tag)
    assert await stack.next_event() == SwitchEvent(
        SwitchEventKind.HUNGUP, "leg-f3", HangupCause.NO_ANSWER
    )
