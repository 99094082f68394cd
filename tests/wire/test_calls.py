"""Call control over real SIP, proven on the wire.

One stack, two baresip agents (112: 1400 Hz, 113: 1900 Hz) for the module; SIPp customers per
test (2600 Hz). Each test captures the engine's RTP range and the SIP port with ``dumpcap`` and
judges by packets: RTP counts per flow per second, and which tones are in the G.711 audio each
party receives (Goertzel), never by API state alone.
"""

from __future__ import annotations

import asyncio
import time
import wave
from dataclasses import dataclass

import pytest
from tests.media.phones import tone_ratio
from tests.wire.peers import Sipp
from tests.wire.rig import (
    HEARS,
    TONES,
    Rig,
    assert_flowing,
    assert_hears,
    assert_music,
    assert_not_hears,
    assert_silent,
    assert_stopped,
    captured,
    listen,
    sip_requests,
    sip_responses,
)
from tests.wire.rtp import Wire

pytestmark = pytest.mark.asyncio(loop_scope="module")

CUSTOMER = "5550100"


@dataclass
class Connected:
    call_id: str
    customer: Sipp
    agent_leg: str
    customer_leg: str


async def connect(
    rig: Rig, agent: str = "112", dtmf: tuple[tuple[float, str], ...] = ()
) -> Connected:
    """Click-to-call: agent ``agent`` (baresip, auto-answer), then a SIPp customer on the trunk."""
    phone = rig.agents[agent]
    customer = await rig.customer_uas(dtmf=dtmf)
    mark = phone.mark()
    call_id = await rig.stack.originate(agent, CUSTOMER)
    await phone.wait_event("CALL_ESTABLISHED", mark)
    call = await rig.stack.wait_bridged(call_id, 2)
    return Connected(call_id, customer, rig.stack.leg(call, agent), rig.stack.leg(call, CUSTOMER))


def report(wire: Wire, rig: Rig, customer: Sipp, window: tuple[float, float], label: str) -> None:
    """Print every party's received flow (shown by ``pytest -s`` and on failure)."""
    print(f"--- {label}")
    for _, ports in [
        ("112", rig.agent_ports("112")),
        ("113", rig.agent_ports("113")),
        ("customer", rig.sipp_ports(customer)),
    ]:
        print("   ", wire.flow(rig.engine, ports, *window).describe(TONES))


async def test_answered_call_relays_both_ways_and_kill_byes_both(clean: Rig) -> None:
    rig = clean
    agent = rig.agents["112"]
    async with captured(rig) as capture:
        c = await connect(rig)
        window = await listen(2.0)
        mark = agent.mark()
        await rig.stack.api("POST", f"/calls/{c.call_id}/kill")
        await agent.wait_event("CALL_CLOSED", mark)  # baresip got (and answered) our BYE
        await c.customer.done()  # the SIPp scenario expects the BYE and answers it
        after = time.time()
        await asyncio.sleep(0.5)
        wire = await capture.stop()
    report(wire, rig, c.customer, window, "bridged")
    cust = rig.sipp_ports(c.customer)
    to_agent = wire.flow(rig.engine, rig.agent_ports("112"), *window)
    to_customer = wire.flow(rig.engine, cust, *window)
    for flow in (
        to_agent,
        to_customer,
        wire.flow(rig.agent_ports("112"), rig.engine, *window),
        wire.flow(cust, rig.engine, *window),
    ):
        assert_flowing(flow)
    assert_hears(to_agent, "customer")
    assert_not_hears(to_agent, "112")
    assert_hears(to_customer, "112")
    assert_not_hears(to_customer, "customer")
    # kill: one BYE to each side, each answered 200; then no RTP towards either
    assert sorted(rig.byes(wire)) == sorted([agent.sip_port, c.customer.port])
    answered = {port for _, port in sip_responses(wire, rig.stack.sip_port, 200)}
    assert {agent.sip_port, c.customer.port} <= answered
    assert_stopped(wire.flow(rig.engine, rig.agent_ports("112"), after, after + 0.5))
    assert_stopped(wire.flow(rig.engine, cust, after, after + 0.5))
    assert (await rig.stack.cdr(c.call_id))["cause"] == "killed"


async def test_hold_plays_music_to_the_held_party_only(clean: Rig) -> None:
    rig = clean
    async with captured(rig) as capture:
        c = await connect(rig)
        await rig.stack.api("POST", f"/calls/{c.call_id}/legs/{c.customer_leg}/hold")
        held = await listen(1.5)
        await rig.stack.api("POST", f"/calls/{c.call_id}/legs/{c.customer_leg}/unhold")
        resumed = await listen(1.5)
        wire = await capture.stop()
    report(wire, rig, c.customer, held, "customer held")
    report(wire, rig, c.customer, resumed, "unheld")
    cust = rig.sipp_ports(c.customer)
    agent = rig.agent_ports("112")
    # held: the customer hears only music; the agent hears silence (never the customer)
    assert_music(wire.flow(rig.engine, cust, *held))
    to_agent = wire.flow(rig.engine, agent, *held)
    assert_flowing(to_agent)
    assert_silent(to_agent)
    assert_not_hears(to_agent, "customer")
    # unheld: each hears the other again
    assert_hears(wire.flow(rig.engine, cust, *resumed), "112")
    assert_hears(wire.flow(rig.engine, agent, *resumed), "customer")


async def test_mute_removes_the_muted_party_from_the_other_side(clean: Rig) -> None:
    rig = clean
    async with captured(rig) as capture:
        c = await connect(rig)
        await rig.stack.api("POST", f"/calls/{c.call_id}/legs/{c.customer_leg}/mute")
        muted = await listen(1.5)
        await rig.stack.api("POST", f"/calls/{c.call_id}/legs/{c.customer_leg}/unmute")
        unmuted = await listen(1.5)
        wire = await capture.stop()
    report(wire, rig, c.customer, muted, "customer muted")
    report(wire, rig, c.customer, unmuted, "unmuted")
    cust = rig.sipp_ports(c.customer)
    agent = rig.agent_ports("112")
    to_agent = wire.flow(rig.engine, agent, *muted)
    assert_flowing(to_agent)
    assert_not_hears(to_agent, "customer")
    assert_silent(to_agent)
    to_customer = wire.flow(rig.engine, cust, *muted)  # the muted party still hears
    assert_flowing(to_customer)
    assert_hears(to_customer, "112")
    assert_hears(wire.flow(rig.engine, agent, *unmuted), "customer")


async def test_blind_transfer_moves_the_flow_to_the_new_agent(clean: Rig) -> None:
    rig = clean
    old, new = rig.agents["112"], rig.agents["113"]
    async with captured(rig) as capture:
        c = await connect(rig)
        before = await listen(1.0, settle=0.2)
        mark_old, mark_new = old.mark(), new.mark()
        await rig.stack.api(
            "POST",
            f"/calls/{c.call_id}/legs/{c.customer_leg}/transfer",
            {"target": "113"},
        )
        await old.wait_event("CALL_CLOSED", mark_old)
        await new.wait_event("CALL_ESTABLISHED", mark_new)
        call = await rig.stack.wait_bridged(c.call_id, 2)
        assert rig.stack.leg(call, "113")
        after = await listen(1.5)
        wire = await capture.stop()
    report(wire, rig, c.customer, before, "before transfer")
    report(wire, rig, c.customer, after, "after transfer")
    cust = rig.sipp_ports(c.customer)
    assert_hears(wire.flow(rig.engine, cust, *before), "112")
    assert_flowing(wire.flow(rig.engine, rig.agent_ports("112"), *before))
    # the old flow stopped, a new one to 113 started; the customer now hears 113, not 112
    assert_stopped(wire.flow(rig.engine, rig.agent_ports("112"), *after))
    to_new = wire.flow(rig.engine, rig.agent_ports("113"), *after)
    assert_flowing(to_new)
    assert_hears(to_new, "customer")
    to_customer = wire.flow(rig.engine, cust, *after)
    assert_flowing(to_customer)
    assert_hears(to_customer, "113")
    assert_not_hears(to_customer, "112")
    assert rig.byes(wire) == [old.sip_port]


async def test_park_plays_music_and_unpark_connects_another_agent(clean: Rig) -> None:
    rig = clean
    old, new = rig.agents["112"], rig.agents["113"]
    async with captured(rig) as capture:
        c = await connect(rig)
        mark_old = old.mark()
        parked = await rig.stack.api(
            "POST", f"/calls/{c.call_id}/legs/{c.customer_leg}/park", {"slot": "703"}
        )
        assert parked["slot"] == "703"
        await old.wait_event("CALL_CLOSED", mark_old)
        in_slot = await listen(1.5)
        mark_new = new.mark()
        await rig.stack.api(
            "POST", "/parking/703/unpark", {"extension_id": rig.stack.extensions["113"]}
        )
        await new.wait_event("CALL_ESTABLISHED", mark_new)
        await rig.stack.wait_bridged(c.call_id, 2)
        unparked = await listen(1.5)
        wire = await capture.stop()
    report(wire, rig, c.customer, in_slot, "parked in 703")
    report(wire, rig, c.customer, unparked, "unparked to 113")
    cust = rig.sipp_ports(c.customer)
    assert_music(wire.flow(rig.engine, cust, *in_slot))
    assert_stopped(wire.flow(rig.engine, rig.agent_ports("112"), *in_slot))
    assert_stopped(wire.flow(rig.engine, rig.agent_ports("113"), *in_slot))
    to_customer = wire.flow(rig.engine, cust, *unparked)
    assert_flowing(to_customer)
    assert_hears(to_customer, "113")
    assert_not_hears(to_customer, "112")
    to_new = wire.flow(rig.engine, rig.agent_ports("113"), *unparked)
    assert_flowing(to_new)
    assert_hears(to_new, "customer")
    assert_stopped(wire.flow(rig.engine, rig.agent_ports("112"), *unparked))


async def test_conference_each_hears_the_other_two_and_kick(clean: Rig) -> None:
    rig = clean
    third = rig.agents["113"]
    async with captured(rig) as capture:
        c = await connect(rig)
        mark = third.mark()
        await rig.stack.api("POST", f"/calls/{c.call_id}/parties", {"target": "113"}, expect=202)
        await third.wait_event("CALL_ESTABLISHED", mark)
        call = await rig.stack.wait_bridged(c.call_id, 3)
        conference = await listen(2.0)
        await rig.stack.api("POST", f"/calls/{c.call_id}/legs/{rig.stack.leg(call, '113')}/kick")
        await third.wait_event("CALL_CLOSED", mark)
        kicked = await listen(1.5)
        wire = await capture.stop()
    report(wire, rig, c.customer, conference, "conference")
    report(wire, rig, c.customer, kicked, "113 kicked")
    parties = {
        "112": rig.agent_ports("112"),
        "113": rig.agent_ports("113"),
        "customer": rig.sipp_ports(c.customer),
    }
    for me, ports in parties.items():
        flow = wire.flow(rig.engine, ports, *conference)
        assert_flowing(flow)
        others = [p for p in parties if p != me]
        assert_hears(flow, *others)
        assert_not_hears(flow, me)
    assert_stopped(wire.flow(rig.engine, parties["113"], *kicked))
    to_agent = wire.flow(rig.engine, parties["112"], *kicked)
    assert_flowing(to_agent)
    assert_hears(to_agent, "customer")
    assert_not_hears(to_agent, "113")
    assert_not_hears(wire.flow(rig.engine, parties["customer"], *kicked), "113")
    assert rig.byes(wire) == [third.sip_port]


async def test_supervision_listen_whisper_barge(clean: Rig) -> None:
    """113 supervises 112's call with a customer: listening it hears both and nobody hears it;
    whispering only the agent hears it; barging everybody does."""
    rig = clean
    supervisor = rig.agents["113"]
    async with captured(rig) as capture:
        c = await connect(rig)
        mark = supervisor.mark()
        body = {"extension_id": rig.stack.extensions["113"], "mode": "listen"}
        body["agent_leg_id"] = c.agent_leg
        await rig.stack.api("POST", f"/calls/{c.call_id}/supervision", body, expect=202)
        await supervisor.wait_event("CALL_ESTABLISHED", mark)
        call = await rig.stack.wait_bridged(c.call_id, 3)
        leg = rig.stack.leg(call, "113")
        windows = {}
        for mode in ("listen", "whisper", "barge"):
            if mode != "listen":
                await rig.stack.api("PUT", f"/calls/{c.call_id}/supervision/{leg}", {"mode": mode})
            windows[mode] = await listen(1.5)
        wire = await capture.stop()
    ports = {
        "112": rig.agent_ports("112"),
        "113": rig.agent_ports("113"),
        "customer": rig.sipp_ports(c.customer),
    }
    for mode, window in windows.items():
        report(wire, rig, c.customer, window, mode)
        heard = {who: wire.flow(rig.engine, p, *window) for who, p in ports.items()}
        for flow in heard.values():
            assert_flowing(flow)
        assert_hears(heard["113"], "112", "customer")  # the supervisor hears both sides
        assert_not_hears(heard["113"], "113")
        assert_hears(heard["112"], "customer")
        assert_hears(heard["customer"], "112")
        if mode == "listen":
            assert_not_hears(heard["112"], "113")
            assert_not_hears(heard["customer"], "113")
        elif mode == "whisper":
            assert_hears(heard["112"], "113")
            assert_not_hears(heard["customer"], "113")
        else:
            assert_hears(heard["112"], "113")
            assert_hears(heard["customer"], "113")


async def test_recording_lacks_the_suppressed_stretch(clean: Rig) -> None:
    """The customer speaks only while the recording is suppressed: the WAV holds the agent's
    tone for the unsuppressed time only, and none of the customer's, though the agent heard the
    customer on the wire meanwhile."""
    rig = clean
    async with captured(rig) as capture:
        c = await connect(rig)
        legs = f"/calls/{c.call_id}/legs/{c.customer_leg}"
        await rig.stack.api("POST", f"{legs}/mute")
        call = await rig.stack.api("POST", f"/calls/{c.call_id}/recording")
        started = time.monotonic()
        await asyncio.sleep(1.5)
        await rig.stack.api("POST", f"/calls/{c.call_id}/recording/suppress")
        suppressed_at = time.monotonic()
        await rig.stack.api("POST", f"{legs}/unmute")
        spoke = await listen(2.0, settle=0.2)
        await rig.stack.api("POST", f"{legs}/mute")
        await rig.stack.api("POST", f"/calls/{c.call_id}/recording/unsuppress")
        suppressed = time.monotonic() - suppressed_at
        await asyncio.sleep(1.5)
        await rig.stack.api("POST", f"/calls/{c.call_id}/recording/stop")
        total = time.monotonic() - started
        wire = await capture.stop()
    report(wire, rig, c.customer, spoke, "suppressed, customer unmuted")
    assert_hears(wire.flow(rig.engine, rig.agent_ports("112"), *spoke), "customer")
    path = rig.stack.container.settings.data_dir / "recordings" / f"{call['recording']['id']}.wav"
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        pcm = wav.readframes(wav.getnframes())
        duration = wav.getnframes() / 8000
    expected = total - suppressed
    print(f"recording {duration:.2f}s; call time {total:.2f}s, suppressed {suppressed:.2f}s")
    assert abs(duration - expected) < 0.4, (duration, total, suppressed)
    agent_share = tone_ratio(pcm, TONES["112"])
    customer_share = tone_ratio(pcm, TONES["customer"])
    print(f"recording tones: 112={agent_share:.3f} customer={customer_share:.3f}")
    assert agent_share > HEARS
    assert customer_share < 0.02


async def test_dtmf_both_ways(clean: Rig) -> None:
    """RFC 4733 from SIPp becomes a ``dtmf.received`` event (and reaches the agent); digits sent
    through the API leave as telephone-event packets towards the customer."""
    rig = clean
    async with captured(rig) as capture:
        c = await connect(rig, dtmf=((1.0, "5"), (1.6, "9")))
        async with asyncio.timeout(10):
            while True:
                events = await rig.stack.timeline(c.call_id)
                got = [e["data"].get("digits") for e in events if e["type"] == "dtmf.received"]
                if len(got) >= 2:
                    break
                await asyncio.sleep(0.1)
        sent_at = time.time()
        await rig.stack.api(
            "POST", f"/calls/{c.call_id}/legs/{c.customer_leg}/dtmf", {"digits": "12#"}
        )
        done = time.time() + 0.3
        await asyncio.sleep(0.3)
        await rig.stack.api("POST", f"/calls/{c.call_id}/kill")
        await c.customer.done()
        wire = await capture.stop()
    assert got == ["5", "9"], events
    cust = rig.sipp_ports(c.customer)
    # from the customer: on the wire as telephone-events; passed on to the agent too
    from_customer = wire.flow(cust, rig.engine, 0, done)
    assert {d for d, _ in from_customer.events()} == {"5", "9"}
    relayed = wire.flow(rig.engine, rig.agent_ports("112"), 0, done).events()
    assert {d for d, end in relayed if end} == {"5", "9"}, relayed
    # to the customer: 1, 2, # each with end packets, in order
    sent = wire.flow(rig.engine, cust, sent_at, done).events()
    ended = [d for d, end in sent if end]
    print(f"telephone-events to the customer: {len(sent)} packets, ends {ended}")
    assert list(dict.fromkeys(ended)) == ["1", "2", "#"], sent


async def test_inbound_trunk_call_to_an_extension(clean: Rig) -> None:
    rig = clean
    agent = rig.agents["112"]
    async with captured(rig) as capture:
        mark = agent.mark()
        trunk = await rig.customer_uac("112")
        await agent.wait_event("CALL_ESTABLISHED", mark)
        [live] = await rig.stack.api("GET", "/calls")
        call = await rig.stack.wait_bridged(live["id"], 2)
        assert call["origin"] == "inbound"
        window = await listen(1.5)
        await rig.stack.api(
            "POST", f"/calls/{call['id']}/legs/{rig.stack.leg(call, '5550123')}/hangup"
        )
        await trunk.done()
        await agent.wait_event("CALL_CLOSED", mark)
        wire = await capture.stop()
    report(wire, rig, trunk, window, "inbound to 112")
    to_customer = wire.flow(rig.engine, rig.sipp_ports(trunk), *window)
    to_agent = wire.flow(rig.engine, rig.agent_ports("112"), *window)
    assert_flowing(to_customer)
    assert_flowing(to_agent)
    assert_hears(to_customer, "112")
    assert_hears(to_agent, "customer")
    assert sorted(rig.byes(wire)) == sorted([agent.sip_port, trunk.port])
    assert (await rig.stack.cdr(call["id"]))["cause"] == "normal"


async def set_presence(rig: Rig, extension: str, name: str) -> None:
    """Set an agent's presence; the same presence again (409) is fine."""
    ext_id = rig.stack.extensions[extension]
    r = await rig.stack.http.put(
        f"/api/v1/tenants/{rig.stack.tenant}/agents/{ext_id}/state",
        json={"name": name},
        headers=rig.stack.auth,
    )
    assert r.status_code in (200, 409), r.text


async def test_inbound_trunk_call_to_a_queue_hears_music_until_an_agent_is_ready(
    clean: Rig,
) -> None:
    """Queue 386 (members 112-114): with every agent away the caller waits hearing music; when
    112 goes Ready the ACD rings its phone, baresip answers, and the two hear each other."""
    rig = clean
    agent = rig.agents["112"]
    for ext in ("112", "113", "114"):
        await set_presence(rig, ext, "Coffee Break")
    try:
        async with captured(rig) as capture:
            trunk = await rig.customer_uac("386")
            calls = await rig.stack.wait_calls("queued")
            waiting = await listen(1.5)
            mark = agent.mark()
            await set_presence(rig, "112", "Ready")
            await agent.wait_event("CALL_ESTABLISHED", mark)
            await rig.stack.wait_bridged(calls[0]["id"], 2)
            talking = await listen(1.5)
            await rig.stack.api("POST", f"/calls/{calls[0]['id']}/kill")
            await trunk.done()
            wire = await capture.stop()
    finally:
        for ext in ("112", "113", "114"):
            await set_presence(rig, ext, "Ready")
    report(wire, rig, trunk, waiting, "queued on 386, nobody ready")
    report(wire, rig, trunk, talking, "112 ready: offered, answered")
    to_trunk = rig.sipp_ports(trunk)
    assert_music(wire.flow(rig.engine, to_trunk, *waiting))
    assert_flowing(wire.flow(to_trunk, rig.engine, *waiting))
    assert_stopped(wire.flow(rig.engine, rig.agent_ports("112"), *waiting))
    assert_hears(wire.flow(rig.engine, to_trunk, *talking), "112")
    assert_hears(wire.flow(rig.engine, rig.agent_ports("112"), *talking), "customer")
    assert sorted(rig.byes(wire)) == sorted([trunk.port, agent.sip_port])


@pytest.mark.parametrize(
    ("status", "reason", "cause"),
    [
        (486, "Busy Here", "busy"),
        (480, "Temporarily Unavailable", "no_answer"),
        (503, "Service Unavailable", "failed"),
    ],
)
async def test_refused_target_gives_the_cdr_cause(
    clean: Rig, status: int, reason: str, cause: str
) -> None:
    rig = clean
    agent = rig.agents["112"]
    async with captured(rig) as capture:
        refusing = await rig.refusing_uas(status, reason)
        mark = agent.mark()
        call_id = await rig.stack.originate("112", CUSTOMER)
        await agent.wait_event("CALL_ESTABLISHED", mark)
        await refusing.done()
        await agent.wait_event("CALL_CLOSED", mark)
        wire = await capture.stop()
    assert sip_responses(wire, rig.stack.sip_port, status)
    assert rig.byes(wire) == [agent.sip_port]
    cdr = await rig.stack.cdr(call_id)
    assert cdr["cause"] == cause, cdr
    assert cdr["answered_at"] is None, cdr


async def test_join_two_calls_of_one_agent_into_a_conference(clean: Rig) -> None:
    """Agent 112 holds customer 1 and calls customer 2; join: 112 and both customers in one
    conference, each hearing the other two; 112's second dialog gets a BYE."""
    rig = clean
    agent = rig.agents["112"]
    async with captured(rig) as capture:
        first = await connect(rig)
        await rig.stack.api("POST", f"/calls/{first.call_id}/legs/{first.customer_leg}/hold")
        second = await rig.customer_uas(tone="customer2")
        mark = agent.mark()
        other = await rig.stack.originate("112", "5550101")
        await agent.wait_event("CALL_ESTABLISHED", mark)
        await rig.stack.wait_bridged(other, 2)
        await rig.stack.api("POST", f"/calls/{first.call_id}/join", {"other_call_id": other})
        await agent.wait_event("CALL_CLOSED", mark)
        await rig.stack.wait_bridged(first.call_id, 3)
        joined = await listen(2.0)
        wire = await capture.stop()
    print("--- joined")
    parties = {
        "112": rig.agent_ports("112"),
        "customer": rig.sipp_ports(first.customer),
        "customer2": rig.sipp_ports(second, "customer2"),
    }
    for ports in parties.values():
        print("   ", wire.flow(rig.engine, ports, *joined).describe(TONES))
    for me, ports in parties.items():
        flow = wire.flow(rig.engine, ports, *joined)
        assert_flowing(flow)
        assert_hears(flow, *[p for p in parties if p != me])
        assert_not_hears(flow, me)
    assert rig.byes(wire) == [agent.sip_port]
    assert (await rig.stack.cdr(other))["cause"] == "joined"


async def test_ring_timeout_cancels_and_gives_no_answer(clean: Rig) -> None:
    """The customer rings and never answers: after the ring timeout (30 s) the switch CANCELs
    the INVITE; the agent gets a BYE; the CDR says no_answer."""
    rig = clean
    agent = rig.agents["112"]
    async with captured(rig) as capture:
        ringing = await rig.ringing_uas()
        mark = agent.mark()
        started = time.monotonic()
        call_id = await rig.stack.originate("112", CUSTOMER)
        await agent.wait_event("CALL_ESTABLISHED", mark)
        await ringing.done(wait_s=45)
        await agent.wait_event("CALL_CLOSED", mark)
        waited = time.monotonic() - started
        wire = await capture.stop()
    assert 29 < waited < 35, waited
    cancels = [p for _, p in sip_requests(wire, rig.stack.sip_port, "CANCEL")]
    assert cancels[:1] == [ringing.port], cancels
    assert sip_responses(wire, rig.stack.sip_port, 487)
    assert rig.byes(wire) == [agent.sip_port]
    cdr = await rig.stack.cdr(call_id)
    assert cdr["cause"] == "no_answer", cdr
