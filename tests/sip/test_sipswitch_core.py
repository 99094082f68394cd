"""The core (CallService) on the real SIP switch: phones are hand-written UDP SIP peers registered
with digest. A click-to-call between extensions 101 and 102 is set up; 101's phone then holds
and resumes (re-INVITEs -> HELD/RESUMED -> the core holds 102: our sendonly re-INVITE reaches
102's phone) and presses blind transfer to 103 (REFER -> the core INVITEs 103's phone, bridges
it with 102, and 101's phone gets NOTIFY 200 and BYE)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiosipua.message import SipRequest
from tests.media.phones import random_port_range
from tests.sip.test_registrar import REALM, Phone
from tests.sip.test_sipswitch import RawPeer, offer
from tests.sip.test_sipswitch_forking import answer_as_phone
from tests.sip.test_sipswitch_indialog import remote, request_from, response_to
from tests.support import seed

from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.bootstrap import Container, build
from callbridge.domain.calls import CallState, HangupCause
from callbridge.service.auth import Actor
from callbridge.settings import Settings

PASSWORD = "a-long-sip-password"


@dataclass
class Line:
    """One extension's phone: a raw UDP peer registered as the extension's SIP account."""

    peer: RawPeer
    tag: str
    invite: SipRequest | None = None
    cseq: int = 1

    def request(self, port: int, method: str, *, headers: tuple[str, ...] = ()) -> str:
        """An in-dialog request from the phone (the switch's INVITE created the dialog); an ACK
        reuses the CSeq number of the last request (the re-INVITE it acknowledges)."""
        assert self.invite is not None
        if method != "ACK":
            self.cseq += 1
        branch = f"z9hG4bK-{self.tag}-{self.cseq}-{method}"
        ours = self.invite.headers.get_first("from")
        mine = f"{self.invite.headers.get_first('to')};tag={self.tag}"
        lines = [
            f"{method} sip:callbridge@127.0.0.1:{port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.peer.port};branch={branch}",
            "Max-Forwards: 70",
            f"From: {mine}",
            f"To: {ours}",
            f"Call-ID: {self.invite.headers.get_first('call-id')}",
            f"CSeq: {self.cseq} {method}",
            f"Contact: <sip:phone@127.0.0.1:{self.peer.port}>",
            *headers,
        ]
        return "\n".join(lines)


@dataclass
class Site:
    c: Container
    admin: Actor
    tenant: str
    ext: dict[str, str]
    lines: dict[str, Line]

    @property
    def port(self) -> int:
        assert self.c.sip is not None
        return self.c.sip.endpoint.port

    async def settle(self) -> None:
        await asyncio.sleep(0.05)
        await self.c.calls.settle()


@pytest.fixture
async def site(tmp_path: object) -> AsyncIterator[Site]:
    low, high = random_port_range()
    settings = Settings(
        storage="memory",
        switch="sip",
        sip_host="127.0.0.1",
        sip_port=0,
        sip_realm=REALM,
        rtp_port_min=low,
        rtp_port_max=high,
        data_dir=str(tmp_path),
    )
    c = build(settings, storage=MemoryStorage(), bus=MemoryEventBus())
    await c.start()
    lines: dict[str, Line] = {}
    try:
        data = await seed(c)
        tenants, exts = data["tenants"], data["exts"]
        assert isinstance(tenants, dict) and isinstance(exts, dict)
        d = c.directory
        admin = d.actor_for(d.principals["alpha-admin"])
        assert c.sip is not None
        for number in ("101", "102", "103"):
            await c.sip_accounts.set(admin, tenants["alpha"], exts[number], password=PASSWORD)
            raw = await RawPeer.open()
            lines[number] = Line(raw, tag=f"t{number}")
            phone = Phone(
                c.sip.registrar,
                number,
                password=PASSWORD,
                source=("UDP", "127.0.0.1", raw.port),
                contact=f"<sip:{number}@127.0.0.1:{raw.port}>",
            )
            assert (await phone.register()).status_code == 200
        yield Site(c, admin, tenants["alpha"], dict(exts), lines)
    finally:
        await c.stop()
        for line in lines.values():
            line.peer.close()


async def pick_up(site: Site, number: str, port: int) -> None:
    """The extension's phone rings, answers (with RTP at ``port``) and gets the ACK."""
    line = site.lines[number]
    line.invite = await request_from(line.peer, "INVITE")
    answer_as_phone(line.peer, site.c.sip, line.invite, 180, "Ringing", tag=line.tag)
    answer_as_phone(line.peer, site.c.sip, line.invite, 200, "OK", tag=line.tag, body=offer(port))
    await request_from(line.peer, "ACK")


async def test_hold_and_transfer_pressed_on_a_sip_phone_go_through_the_core(site: Site) -> None:
    call = await site.c.calls.originate(site.admin, site.tenant, site.ext["101"], "102")
    await pick_up(site, "101", 40100)
    await pick_up(site, "102", 40102)
    await site.settle()
    live = site.c.calls.get(site.admin, site.tenant, call.id)
    assert live.state is CallState.ANSWERED
    legs = {leg.number: leg.id for leg in live.legs.values()}
    agent, other = site.lines["101"], site.lines["102"]
    stack = site.c.sip

    # 101 holds: its re-INVITE is answered recvonly, and 102's phone is re-INVITEd sendonly
    agent.peer.send(
        agent.request(site.port, "INVITE", headers=("Content-Type: application/sdp",)),
        stack,
        offer(40100).replace("sendrecv", "sendonly"),
    )
    ok = await response_to(agent.peer, f"{agent.cseq} INVITE")
    assert remote(ok).direction == "recvonly"
    agent.peer.send(agent.request(site.port, "ACK"), stack)
    held = await request_from(other.peer, "INVITE")
    assert remote(held).direction == "sendonly"
    answer_as_phone(
        other.peer,
        stack,
        held,
        200,
        "OK",
        tag=other.tag,
        body=offer(40102).replace("sendrecv", "recvonly"),
    )
    await request_from(other.peer, "ACK")
    await site.settle()
    assert site.c.calls.get(site.admin, site.tenant, call.id).legs[legs["102"]].hold == "held"

    # 101 presses transfer to 103
    agent.peer.send(
        agent.request(site.port, "REFER", headers=("Refer-To: <sip:103@127.0.0.1>",)),
        stack,
    )
    assert (await response_to(agent.peer, f"{agent.cseq} REFER")).status_code == 202
    trying = await request_from(agent.peer, "NOTIFY")
    assert trying.body == b"SIP/2.0 100 Trying\r\n"
    answer_as_phone(agent.peer, stack, trying, 200, "OK", tag=agent.tag)
    done = await request_from(agent.peer, "NOTIFY")
    assert done.body == b"SIP/2.0 200 OK\r\n"
    answer_as_phone(agent.peer, stack, done, 200, "OK", tag=agent.tag)
    bye = await request_from(agent.peer, "BYE")
    answer_as_phone(agent.peer, stack, bye, 200, "OK", tag=agent.tag)
    # 102 is taken off hold (sendrecv re-INVITE) and 103's phone rings
    unheld = await request_from(other.peer, "INVITE")
    assert remote(unheld).direction == "sendrecv"
    answer_as_phone(other.peer, stack, unheld, 200, "OK", tag=other.tag, body=offer(40102))
    await pick_up(site, "103", 40104)
    await site.settle()
    live = site.c.calls.get(site.admin, site.tenant, call.id)
    target = next(leg for leg in live.legs.values() if leg.number == "103")
    assert live.legs[legs["101"]].cause is HangupCause.TRANSFERRED
    assert target.bridge_id is not None and target.bridge_id == live.legs[legs["102"]].bridge_id
    events = [e.type for e in await site.c.calls.timeline(site.admin, site.tenant, call.id)]
    assert (
        events.index("leg.party_held") < events.index("leg.held") < events.index("leg.transferring")
    )
