"""Waiting-call actions on the simulated switch: transfer, move, kill, pick, and their events."""

from __future__ import annotations

import pytest
from tests.service.acd_support import agent_leg, arrive, call, ringing, seen, setup_queue, view
from tests.support import World

from callbridge.adapters.simswitch import MUSIC, EndpointScript
from callbridge.domain.errors import Conflict, Invalid, LimitExceeded, NotFound, PermissionDenied


def customer_hears(w: World, call_id: str) -> frozenset[str]:
    legs = [g for g in call(w, call_id).live_legs() if g.role == "customer"]
    return w.sim.hears(legs[0].id)


async def waiting_world(w: World) -> tuple[str, str]:
    """Two callers waiting in queue 300; its only member (101) is away."""
    await setup_queue(w, members=("101",))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    return await arrive(w), await arrive(w, "19735550002")


async def sales(w: World, **kw: object) -> str:
    q = await w.c.directory.create_queue(
        w.admin,
        w.tenant,
        {"name": "Sales", "extension": "400", "members": [{"extension_id": w.ext["102"]}], **kw},
    )
    await w.settle()
    return q.id


async def test_list_waiting_calls_with_position_wait_and_priority(world: World) -> None:
    w = world
    c1, c2 = await waiting_world(w)
    await w.settle(7)
    waiting = w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)
    assert [(x.call_id, x.position, x.wait_seconds, x.priority, x.state) for x in waiting] == [
        (c1, 1, 7.0, 0, "waiting"),
        (c2, 2, 7.0, 0, "waiting"),
    ]
    assert waiting[0].caller == "19735550000"
    with pytest.raises(NotFound):
        w.c.acd.desk.waiting(w.other_admin, w.tenant, w.queue)


async def test_transfer_a_waiting_call_to_an_extension(world: World) -> None:
    w = world
    c1, c2 = await waiting_world(w)
    before = await w.c.core.storage.last_seq(w.tenant)
    w.sim.set_script("103", EndpointScript(answer_after=2))
    await w.c.acd.desk.transfer(w.admin, w.tenant, w.queue, c1, "103")
    await w.settle()
    assert ringing(w) == {"103": c1}
    assert customer_hears(w, c1) == {MUSIC}  # no "music already playing"
    await w.settle(2)
    assert customer_hears(w, c1) == {agent_leg(w, c1, "103")}
    assert [x.call_id for x in w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)] == [c2]
    assert view([e for e in await seen(w, before) if e.call_id == c2], w) == [
        ("queue.position_changed", 1)
    ]
    assert ("queue.left", "transferred") in view(await seen(w, before), w)


async def test_transfer_a_waiting_call_to_a_number(world: World) -> None:
    w = world
    c1, _ = await waiting_world(w)
    await w.c.acd.desk.transfer(w.admin, w.tenant, w.queue, c1, "18005550199")
    await w.settle()
    assert [g.number for g in call(w, c1).live_legs()] == ["19735550000", "18005550199"]


async def test_transfer_to_a_queue_extension_moves_the_call(world: World) -> None:
    w = world
    q2 = await sales(w)
    c1, c2 = await waiting_world(w)
    await w.c.agents.sign_in(w.admin, w.tenant, w.ext["102"])
    w.sim.set_script("102", EndpointScript(answer_after=5))
    before = await w.c.core.storage.last_seq(w.tenant)
    await w.c.acd.desk.transfer(w.admin, w.tenant, w.queue, c2, "400")
    await w.settle()
    assert call(w, c2).queue_id == q2 and ringing(w) == {"102": c2}
    assert customer_hears(w, c2) == {MUSIC}
    assert view([e for e in await seen(w, before) if e.call_id == c2], w)[:3] == [
        ("queue.left", "moved"),
        ("queue.entered", 1),
        ("queue.offered", "102"),
    ]
    assert [x.call_id for x in w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)] == [c1]


async def test_move_keeps_arrival_order_and_refuses_a_full_queue(world: World) -> None:
    w = world
    q2 = await sales(w, max_length=1)
    c1, c2 = await waiting_world(w)
    await w.c.acd.desk.move(w.admin, w.tenant, w.queue, c2, q2)
    await w.settle()
    with pytest.raises(LimitExceeded):
        await w.c.acd.desk.move(w.admin, w.tenant, w.queue, c1, q2)
    assert [x.call_id for x in w.c.acd.desk.waiting(w.admin, w.tenant, q2)] == [c2]
    assert [x.call_id for x in w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)] == [c1]
    assert call(w, c2).queue_id == q2 and customer_hears(w, c2) == {MUSIC}


async def test_kill_ends_a_waiting_call_and_withdraws_its_offer(world: World) -> None:
    w = world
    w.sim.set_script("101", EndpointScript(behaviour="no_answer"))
    await setup_queue(w, members=("101",))
    c1 = await arrive(w)
    assert ringing(w) == {"101": c1}
    await w.c.acd.desk.kill(w.admin, w.tenant, w.queue, c1)
    await w.settle()
    assert c1 not in w.c.calls.calls and ringing(w) == {}
    record = await w.c.core.storage.get_cdr(w.tenant, c1)
    assert record is not None and record.cause == "killed"
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.phone, state.consecutive_missed) == ("idle", 0)  # a withdrawal is no miss
    with pytest.raises(NotFound):
        await w.c.acd.desk.kill(w.admin, w.tenant, w.queue, c1)


async def test_pick_takes_a_call_out_of_turn(world: World) -> None:
    """A waiting call the agent cannot be offered (a skill it lacks) is picked by the agent."""
    w = world
    french = await w.c.skills.create_skill(w.admin, w.tenant, "French")
    await setup_queue(
        w, members=("101",), required_skills=[{"skill_id": french.id, "min_proficiency": 50}]
    )
    c1, c2 = await arrive(w), await arrive(w, "19735550002")
    assert ringing(w) == {}  # 101 lacks the skill: both wait, 101 stays idle
    w.sim.set_script("101", EndpointScript(answer_after=2))
    before = await w.c.core.storage.last_seq(w.tenant)
    await w.c.acd.desk.pick(w.admin, w.tenant, w.queue, c2, w.ext["101"])
    await w.settle()
    assert ringing(w) == {"101": c2}
    with pytest.raises(Conflict):  # one offer per agent
        await w.c.acd.desk.pick(w.admin, w.tenant, w.queue, c1, w.ext["101"])
    await w.settle(2)
    assert call(w, c2).state == "answered" and customer_hears(w, c2) == {agent_leg(w, c2, "101")}
    assert view([e for e in await seen(w, before) if e.call_id == c2], w) == [
        ("queue.offered", "101"),
        ("ringing", "101"),
        ("bridged", None),
        ("queue.answered", "101"),
    ]
    assert [x.call_id for x in w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)] == [c1]
    # a skilled agent joining takes the remaining caller by itself
    await w.c.skills.set_agent_skill(w.admin, w.tenant, w.ext["102"], french.id, 60)
    await w.c.directory.set_member(w.admin, w.tenant, w.queue, w.ext["102"], 1)
    await w.c.agents.sign_in(w.admin, w.tenant, w.ext["102"])
    w.sim.set_script("102", EndpointScript(behaviour="no_answer"))
    await w.settle()
    assert ringing(w) == {"102": c1}


async def test_pick_is_refused_for_an_agent_not_ready_or_someone_else(world: World) -> None:
    w = world
    c1, c2 = await waiting_world(w)  # 101 away; both wait
    with pytest.raises(Conflict):
        await w.c.acd.desk.pick(w.admin, w.tenant, w.queue, c2, w.ext["101"])
    d = w.c.directory
    from callbridge.domain.tenancy import Level, Permission

    role = await d.create_role("Agent", [Permission.AGENT_CONTROL, Permission.CALL_CONTROL])
    p = await d.create_principal(
        "agent-102", Level.TENANT, "telco-1", [role.id], tenant_id=w.tenant,
        extension_id=w.ext["102"],
    )  # fmt: skip
    with pytest.raises(PermissionDenied):
        await w.c.acd.desk.pick(d.actor_for(p), w.tenant, w.queue, c2, w.ext["101"])
    assert c1


async def test_reprioritise_puts_the_later_caller_first_and_it_is_offered_first(
    world: World,
) -> None:
    w = world
    c1, c2 = await waiting_world(w)
    desk = w.c.acd.desk
    with pytest.raises(Invalid) as e:
        await desk.reprioritise(w.admin, w.tenant, w.queue, c2, 10)
    assert e.value.code == "priority_out_of_range"
    with pytest.raises(NotFound):
        await desk.reprioritise(w.other_admin, w.tenant, w.queue, c2, 5)
    await desk.reprioritise(w.admin, w.tenant, w.queue, c2, 5)
    await w.settle()
    waiting = desk.waiting(w.admin, w.tenant, w.queue)
    assert [(x.call_id, x.position, x.priority) for x in waiting] == [(c2, 1, 5), (c1, 2, 0)]
    events = [(e.type, e.call_id) for e in await seen(w)]
    assert ("queue.priority_changed", c2) in events
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Ready")
    await w.settle()
    eng = w.c.acd.engines[w.tenant]
    assert eng.agents[w.ext["101"]].call_id == c2  # offered (and answered) first
    assert eng.line(w.queue) == [c1]
