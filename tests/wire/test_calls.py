"""Call control over real SIP, proven on the wire.

One stack, two baresip agents (112: 1400 Hz, 113: 1900 Hz) for the module; SIPp customers per
test (2600 Hz). Each test captures the engine's RTP range and the SIP port with ``dumpcap`` and
judges by packets: RTP counts per flow per second, and which tones are in the G.711 audio each
party receives (Goertzel), never by API state alone.
"""

from __future__ import annotations

import pytest

from tests.wire.rig import (
    Rig,
    assert_flowing,
    assert_hears,
    assert_not_hears,
    captured,
    listen,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_answered_call_relays_both_ways_and_kill_byes_both(clean: Rig) -> None:
    rig = clean
    agent = rig.agents["112"]
    async with captured(rig) as capture:
        customer = await rig.customer_uas()
        mark = agent.mark()
        call_id = await rig.stack.originate("112", "5550100")
        await agent.wait_event("CALL_ESTABLISHED", mark)
        await rig.stack.wait_bridged(call_id, 2)
        window = await listen(2.0)
        await rig.stack.api("POST", f"/calls/{call_id}/kill")
        await agent.wait_event("CALL_CLOSED", mark)
        await customer.done()
        wire = await capture.stop()
    cust = rig.sipp_ports(customer)
    to_agent = wire.flow(rig.engine, rig.agent_ports("112"), *window)
    to_customer = wire.flow(rig.engine, cust, *window)
    print(to_agent.describe({"112": 1400, "customer": 2600}))
    print(to_customer.describe({"112": 1400, "customer": 2600}))
    assert_flowing(to_agent)
    assert_flowing(to_customer)
    assert_flowing(wire.flow(rig.agent_ports("112"), rig.engine, *window))
    assert_flowing(wire.flow(cust, rig.engine, *window))
    assert_hears(to_agent, "customer")
    assert_not_hears(to_agent, "112")
    assert_hears(to_customer, "112")
    assert_not_hears(to_customer, "customer")
    byes = [s for s in wire.sip(rig.stack.sip_port) if s[3].startswith("BYE ")]
    print(wire.sip(rig.stack.sip_port))
    assert len({s[2] for s in byes}) == 2, byes
    cdr = await rig.stack.cdr(call_id)
    assert cdr["cause"] == "killed", cdr
