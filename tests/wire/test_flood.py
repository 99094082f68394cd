"""A flood of malformed SIP and foreign RTP does not stop a call in progress (issue #3, point 6).

While an agent (baresip) and a customer (SIPp) talk, another socket throws 20,000 malformed or
mutated SIP datagrams at the switch's SIP port and 5,000 datagrams at every even port of the
engine's RTP range: garbage, and well-formed RTP carrying a tone of its own from a foreign source
(the engine latches to the address it saw first, so nobody may hear the intruder). The wire must
show the call carrying on untouched: ~50 packets/s both ways in every second of the flood, each
party hearing the other and not the intruder; afterwards a kill still BYEs both sides.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import time

import pytest
from tests.sip.fuzzing import mutate
from tests.sip.test_endpoint import flood_seeds
from tests.wire.rig import (
    TONES,
    Rig,
    assert_flowing,
    assert_hears,
    assert_not_hears,
    captured,
)
from tests.wire.rtp import tone_pcm
from tests.wire.test_calls import connect, report

from callbridge.media import g711
from callbridge.media.rtp import RtpPacket

pytestmark = pytest.mark.asyncio(loop_scope="module")

SIP_FLOOD = 20_000
RTP_FLOOD = 5_000
INTRUDER_HZ = 800.0  # not one of the parties' tones


def sip_payloads(source_port: int) -> list[bytes]:
    rng = random.Random(3_4475)
    seeds = flood_seeds(source_port)
    return [
        rng.randbytes(rng.randint(0, 1400)) if i % 4 == 0 else mutate(rng, rng.choice(seeds), seeds)
        for i in range(SIP_FLOOD)
    ]


def rtp_payloads() -> list[bytes]:
    """Half garbage, half RTP with the intruder's tone (PCMU, 20 ms frames)."""
    rng = random.Random(3_3550)
    ulaw = g711.encode(tone_pcm(INTRUDER_HZ, 1.0, amplitude=12000), "PCMU")
    out: list[bytes] = []
    for i in range(RTP_FLOOD):
        if i % 2:
            out.append(rng.randbytes(rng.randint(1, 300)))
        else:
            frame = ulaw[(i * 160) % 8000 : (i * 160) % 8000 + 160]
            packet = RtpPacket(0, False, i & 0xFFFF, i * 160, 0x1D1E, frame)
            out.append(bytes(packet))
    return out


def blast(sip: list[bytes], sip_port: int, rtp: list[bytes], rtp_ports: list[int]) -> None:
    """In a thread: bursts of 100 SIP + 25 RTP datagrams every 10 ms (about 12,500/s, 2 s)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        r = 0
        for start in range(0, len(sip), 100):
            for payload in sip[start : start + 100]:
                sock.sendto(payload, ("127.0.0.1", sip_port))
            for _ in range(25):
                if r < len(rtp):
                    sock.sendto(rtp[r], ("127.0.0.1", rtp_ports[r % len(rtp_ports)]))
                    r += 1
            time.sleep(0.010)
    finally:
        sock.close()


async def test_a_malformed_flood_does_not_disturb_a_call_in_progress(clean: Rig) -> None:
    rig = clean
    agent = rig.agents["112"]
    sip = sip_payloads(rig.stack.sip_port)
    rtp = rtp_payloads()
    engine_ports = list(range(rig.rtp.start + (rig.rtp.start % 2), rig.rtp.stop, 2))
    sip_stack = rig.stack.container.sip
    assert sip_stack is not None
    before = dataclasses.replace(sip_stack.endpoint.stats)
    async with captured(rig) as capture:
        c = await connect(rig)
        legs = (c.agent_leg, c.customer_leg)
        dropped_before = sum(sip_stack.media.stats(leg).dropped for leg in legs)
        started = time.time()
        flood = asyncio.create_task(
            asyncio.to_thread(blast, sip, rig.stack.sip_port, rtp, engine_ports)
        )
        await flood
        flooded = (started + 0.3, time.time())  # from when the first bursts were in
        await asyncio.sleep(0.5)  # let the switch read what the kernel still holds
        dropped = sum(sip_stack.media.stats(leg).dropped for leg in legs) - dropped_before
        mark = agent.mark()
        await rig.stack.api("POST", f"/calls/{c.call_id}/kill")
        await agent.wait_event("CALL_CLOSED", mark)
        await c.customer.done()
        wire = await capture.stop()
    report(wire, rig, c.customer, flooded, "during the flood")
    after = sip_stack.endpoint.stats
    malformed = (after.malformed_answered + after.malformed_dropped) - (
        before.malformed_answered + before.malformed_dropped
    )
    print(
        f"    SIP datagrams read {after.received - before.received}, malformed {malformed}, "
        f"RTP dropped on the call's legs {dropped}"
    )
    assert after.received - before.received >= SIP_FLOOD * 0.9  # the flood did reach the switch
    assert malformed >= SIP_FLOOD // 4  # at least the random-bytes quarter was refused
    assert dropped > 0  # the foreign datagrams reached the legs' ports and were thrown away
    assert after.handler_errors == before.handler_errors
    cust = rig.sipp_ports(c.customer)
    to_agent = wire.flow(rig.engine, rig.agent_ports("112"), *flooded)
    to_customer = wire.flow(rig.engine, cust, *flooded)
    assert flooded[1] - flooded[0] >= 0.6, flooded
    for flow in (to_agent, to_customer):
        assert_flowing(flow)
        assert flow.tone(INTRUDER_HZ) < 0.02, "hears the intruder: " + flow.describe(TONES)
    assert_hears(to_agent, "customer")
    assert_not_hears(to_agent, "112")
    assert_hears(to_customer, "112")
    assert sorted(rig.byes(wire)) == sorted([agent.sip_port, c.customer.port])
    assert (await rig.stack.cdr(c.call_id))["cause"] == "killed"
