"""Agents on the simulated switch: phone state follows the legs; wrap-up; the miss rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.support import World

from callbridge.adapters.simswitch import EndpointScript
from callbridge.domain.agents import PhoneState
from callbridge.domain.calls import LegRole
from callbridge.domain.directory import PresenceType
from callbridge.domain.errors import Conflict, IllegalTransition, Invalid, PermissionDenied
from callbridge.domain.events import StoredEvent
from callbridge.domain.tenancy import Level, Permission

CUSTOMER = "19735550000"


async def agent_events(w: World, number: str, after: int = 0) -> list[StoredEvent]:
    events = await w.c.core.storage.events(w.tenant, after, 10_000)
    return [e for e in events if e.category == "agent" and e.data.get("number") == number]


def summary(events: list[StoredEvent]) -> list[tuple[str, Any]]:
    """What a client sees, in order: (type, the changed value)."""
    out: list[tuple[str, Any]] = []
    for e in events:
        value = {
            "agent.phone_state_changed": lambda d: d["state"],
            "agent.queue_state_changed": lambda d: d["queue_id"],
            "agent.presence_changed": lambda d: d["presence"]["name"],
            "agent.offer_missed": lambda d: d["consecutive_missed"],
            "agent.signed_in": lambda d: d["presence"]["name"],
            "agent.signed_out": lambda d: d["name"],
        }[e.type](e.data)
        out.append((e.type.removeprefix("agent."), value))
    return out


async def queue_call(w: World) -> tuple[str, str]:
    """A customer waiting in queue 300: (call id, customer leg id)."""
    call_id = await w.c.calls.simulate_inbound(w.admin, w.tenant, CUSTOMER, "300")
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call_id)
    assert call.state == "queued"
    return call_id, next(iter(call.legs))


async def offer(w: World, number: str) -> tuple[str, str, str]:
    """Offer a new queue call to ``number``: (call id, customer leg id, agent leg id)."""
    call_id, customer = await queue_call(w)
    # What the distribution engine does with an offer: ring the agent, bridge on answer.
    calls = w.c.calls
    async with calls._mutate(call_id) as draft:
        leg = await calls._dial(
            draft,
            calls.resolve(w.tenant, number),
            LegRole.TARGET,
            caller_id=CUSTOMER,
            connect_to=customer,
        )
    await w.settle()
    return call_id, customer, leg.id


async def configure(w: World, **settings: Any) -> None:
    await w.c.directory.update_queue(w.admin, w.tenant, w.queue, settings)


async def test_phone_state_follows_ringing_answer_hold_and_hangup(world: World) -> None:
    w = world
    w.sim.set_script("102", EndpointScript(answer_after=4))
    before = await w.c.core.storage.last_seq(w.tenant)
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    state = w.c.agents.state(w.admin, w.tenant, w.ext["102"])
    assert (state.phone, state.call_id) == (PhoneState.RINGING, call.id)
    await w.settle(4)
    assert w.c.agents.state(w.admin, w.tenant, w.ext["102"]).phone is PhoneState.TALKING
    legs = {leg.number: leg.id for leg in w.c.calls.get(w.admin, w.tenant, call.id).legs.values()}
    await w.c.calls.hold(w.admin, w.tenant, call.id, legs["102"])
    await w.settle()  # the agents follow the committed call right after
    for number in ("101", "102"):
        assert w.c.agents.state(w.admin, w.tenant, w.ext[number]).phone is PhoneState.HELD
    await w.c.calls.unhold(w.admin, w.tenant, call.id, legs["102"])
    w.clock.advance(60)
    await w.c.calls.hangup(w.admin, w.tenant, call.id, legs["101"])
    await w.settle()
    s101 = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (s101.phone, s101.call_id, s101.queue_id) == (PhoneState.IDLE, None, None)
    assert s101.phone_since == w.clock.now()
    assert summary(await agent_events(w, "102", before)) == [
        ("phone_state_changed", "ringing"),
        ("phone_state_changed", "talking"),
        ("phone_state_changed", "held"),
        ("phone_state_changed", "talking"),
        ("phone_state_changed", "idle"),  # not a queue call: no wrap-up
    ]
    # a direct call is no queue offer: no queue state, nothing missed
    assert s101.consecutive_missed == 0
    events = await agent_events(w, "101", before)
    assert all(e.type == "agent.phone_state_changed" for e in events)
    assert {e.data.get("call_id") for e in events} == {call.id}


async def test_queue_call_offer_talk_and_wrapup_that_expires(world: World) -> None:
    w = world
    await configure(w, wrapup_s=30, ring_timeout_s=10)
    await w.c.agents.sign_in(w.admin, w.tenant, w.ext["101"])
    w.sim.set_script("101", EndpointScript(answer_after=3))
    before = await w.c.core.storage.last_seq(w.tenant)
    call_id, customer, agent_leg = await offer(w, "101")
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.phone, state.queue_id, state.queue_status) == ("ringing", w.queue, "Offered")
    await w.settle(3)
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.phone, state.queue_status) == (PhoneState.TALKING, "Connected")
    await w.settle(15)  # past the ring timeout: an answered offer is not missed
    await w.c.calls.hangup(w.admin, w.tenant, call_id, customer)
    await w.settle()
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.phone, state.queue_status) == (PhoneState.WRAPUP, "Wrap Up")
    assert state.wrapup_until == w.clock.now() + timedelta(seconds=30)
    await w.settle(29.5)
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).phone is PhoneState.WRAPUP
    await w.settle(0.5)
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.phone, state.queue_id, state.wrapup_until) == (PhoneState.IDLE, None, None)
    assert state.presence is PresenceType.READY and state.consecutive_missed == 0
    assert summary(await agent_events(w, "101", before)) == [
        ("phone_state_changed", "ringing"),
        ("queue_state_changed", w.queue),
        ("phone_state_changed", "talking"),
        ("phone_state_changed", "wrapup"),
        ("phone_state_changed", "idle"),
        ("queue_state_changed", None),
    ]
    assert agent_leg not in w.c.agents._ring_timers and not w.c.agents._wrapup_timers


async def test_ready_ends_wrapup_and_cancels_its_timer(world: World) -> None:
    w = world
    await configure(w, wrapup_s=120)
    await w.c.agents.sign_in(w.admin, w.tenant, w.ext["101"])
    call_id, customer, _ = await offer(w, "101")
    await w.c.calls.hangup(w.admin, w.tenant, call_id, customer)
    await w.settle()
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).phone is PhoneState.WRAPUP
    assert w.ext["101"] in w.c.agents._wrapup_timers
    state = await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Ready")
    assert (state.phone, state.presence, state.queue_id) == ("idle", "ready", None)
    assert not w.c.agents._wrapup_timers
    with pytest.raises(IllegalTransition) as exc:  # no wrap-up left: plain ready again
        await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Ready")
    assert exc.value.code == "agent_already_ready"
    await w.settle(200)  # the cancelled timer never fires
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).phone is PhoneState.IDLE


async def test_a_new_call_during_wrapup_ends_it(world: World) -> None:
    w = world
    await configure(w, wrapup_s=120)
    call_id, customer, _ = await offer(w, "101")
    await w.c.calls.hangup(w.admin, w.tenant, call_id, customer)
    await w.settle()
    before = await w.c.core.storage.last_seq(w.tenant)
    await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "19735550001")
    await w.settle()
    assert summary(await agent_events(w, "101", before))[:3] == [
        ("phone_state_changed", "idle"),
        ("queue_state_changed", None),
        ("phone_state_changed", "ringing"),
    ]
    assert not w.c.agents._wrapup_timers


async def test_missed_offers_move_the_agent_away(world: World) -> None:
    w = world
    await configure(w, ring_timeout_s=10, max_consecutive_misses=2, missed_presence="Coffee Break")
    await w.c.agents.sign_in(w.admin, w.tenant, w.ext["101"])
    w.sim.set_script("101", EndpointScript(behaviour="no_answer"))
    before = await w.c.core.storage.last_seq(w.tenant)
    call_id, _, agent_leg = await offer(w, "101")
    await w.settle(9)
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).consecutive_missed == 0
    await w.settle(1)
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.consecutive_missed, state.phone) == (1, PhoneState.RINGING)  # still ringing
    await w.c.calls.hangup(w.admin, w.tenant, call_id, agent_leg)  # the engine moves on
    await w.settle()
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).consecutive_missed == 1  # once
    await offer(w, "101")
    await w.settle(10)
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.presence, state.presence_name) == (PresenceType.AWAY, "Coffee Break")
    assert state.consecutive_missed == 2
    seen = summary(await agent_events(w, "101", before))
    assert seen == [
        ("phone_state_changed", "ringing"),
        ("queue_state_changed", w.queue),
        ("offer_missed", 1),
        ("phone_state_changed", "idle"),
        ("queue_state_changed", None),
        ("phone_state_changed", "ringing"),
        ("queue_state_changed", w.queue),
        ("offer_missed", 2),
        ("presence_changed", "Coffee Break"),
    ]
    moved = (await agent_events(w, "101", before))[-1]
    assert moved.data["reason"] == "missed_offers"
    # ready again: the count starts over
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Ready")
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).consecutive_missed == 0


async def test_a_declined_offer_is_missed_at_once_and_an_answer_resets(world: World) -> None:
    w = world
    await configure(w, ring_timeout_s=30)
    w.sim.set_script("101", EndpointScript(behaviour="reject", answer_after=2))
    await offer(w, "101")
    await w.settle(2)
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.consecutive_missed, state.phone) == (1, PhoneState.IDLE)
    await w.settle(60)  # its ring timer was cancelled: not counted twice
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).consecutive_missed == 1
    w.sim.clear_script("101")
    own = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "19735550001")
    await w.settle()
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).phone is PhoneState.TALKING
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).consecutive_missed == 1  # not an offer
    await w.c.calls.kill(w.admin, w.tenant, own.id)
    await offer(w, "101")
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).consecutive_missed == 0


async def test_caller_hanging_up_during_the_offer_is_not_a_miss(world: World) -> None:
    w = world
    w.sim.set_script("101", EndpointScript(behaviour="no_answer"))
    call_id, customer, _ = await offer(w, "101")
    await w.c.calls.hangup(w.admin, w.tenant, call_id, customer)
    await w.settle(60)
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.consecutive_missed, state.phone) == (0, PhoneState.IDLE)
    assert not w.c.agents._ring_timers


async def test_sign_in_and_sign_out_with_named_options(world: World) -> None:
    w = world
    agents, t, e = w.c.agents, w.tenant, w.ext["102"]
    before = await w.c.core.storage.last_seq(t)
    with pytest.raises(Invalid) as bad:
        await agents.sign_in(w.admin, t, e, "Sign Out")
    assert bad.value.code == "presence_not_sign_in"
    state = await agents.sign_in(w.admin, t, e, "Coffee Break")
    assert (state.presence, state.presence_name) == (PresenceType.AWAY, "Coffee Break")
    with pytest.raises(Conflict) as again:
        await agents.sign_in(w.admin, t, e)
    assert again.value.code == "agent_already_signed_in"
    with pytest.raises(Invalid) as not_out:
        await agents.sign_out(w.admin, t, e, "Coffee Break")
    assert not_out.value.code == "presence_not_sign_out"
    with pytest.raises(Invalid) as unknown:
        await agents.set_state(w.admin, t, e, "Beach")
    assert unknown.value.code == "presence_option_unknown"
    state = await agents.sign_out(w.admin, t, e)
    assert (state.presence, state.presence_name) == (PresenceType.SIGN_OUT, "Sign Out")
    with pytest.raises(IllegalTransition) as twice:
        await agents.sign_out(w.admin, t, e)
    assert twice.value.code == "agent_already_signed_out"
    assert summary(await agent_events(w, "102", before)) == [
        ("presence_changed", "Coffee Break"),
        ("signed_in", "Coffee Break"),
        ("presence_changed", "Sign Out"),
        ("signed_out", "Sign Out"),
    ]
    assert agents.state(w.admin, t, e).presence_name == "Sign Out"


async def test_an_agent_may_change_only_its_own_state(world: World) -> None:
    w = world
    d = w.c.directory
    role = await d.create_role("agent", [Permission.AGENT_CONTROL], tenant_id=w.tenant)
    p = await d.create_principal(
        "agent 103", Level.TENANT, "telco-1", [role.id], w.tenant, extension_id=w.ext["103"]
    )
    me = d.actor_for(p)
    assert (await w.c.agents.sign_in(me, w.tenant, w.ext["103"])).presence is PresenceType.READY
    with pytest.raises(PermissionDenied):
        await w.c.agents.sign_in(me, w.tenant, w.ext["104"])
    desk = await d.create_extension(w.admin, w.tenant, {"number": "150"})
    with pytest.raises(Invalid) as exc:
        await w.c.agents.set_state(w.admin, w.tenant, desk.id, "Ready")
    assert exc.value.code == "extension_not_agent"


async def test_the_tenant_policy_applies_unless_the_queue_has_its_own_rule(world: World) -> None:
    w = world
    agents = w.c.agents
    with pytest.raises(Invalid) as exc:
        await agents.set_policy(w.admin, w.tenant, 1, None)
    assert exc.value.code == "missed_presence_required"
    with pytest.raises(Invalid) as exc:
        await agents.set_policy(w.admin, w.tenant, 1, "Sign Out")
    assert exc.value.code == "missed_presence_not_away"
    await agents.set_policy(w.admin, w.tenant, 1, "Coffee Break")
    assert agents.policy(w.admin, w.tenant).max_consecutive_misses == 1
    await configure(w, ring_timeout_s=10, max_consecutive_misses=2, missed_presence="Coffee Break")
    for number in ("101", "102"):
        await agents.sign_in(w.admin, w.tenant, w.ext[number])
        w.sim.set_script(number, EndpointScript(behaviour="no_answer"))
    await offer(w, "101")
    await w.settle(10)
    assert agents.state(w.admin, w.tenant, w.ext["101"]).presence is PresenceType.READY  # 1 of 2
    await configure(w, max_consecutive_misses=0, missed_presence=None)
    await offer(w, "102")
    await w.settle(10)
    state = agents.state(w.admin, w.tenant, w.ext["102"])
    assert (state.presence_name, state.consecutive_missed) == ("Coffee Break", 1)
