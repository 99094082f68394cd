"""The ACD on the simulated switch with a fake clock: what a client sees, end to end."""

from __future__ import annotations

import pytest
from tests.service.acd_support import agent_leg, arrive, call, ringing, seen, setup_queue, view
from tests.support import World

from callbridge.adapters.simswitch import MUSIC, EndpointScript
from callbridge.domain.agents import PhoneState
from callbridge.domain.directory import PresenceType

ANSWER_2S = EndpointScript(answer_after=2)


def customer_hears(w: World, call_id: str) -> frozenset[str]:
    legs = [g for g in call(w, call_id).live_legs() if g.role == "customer"]
    return w.sim.hears(legs[0].id)


@pytest.mark.parametrize(
    "strategy",
    ["longest_idle", "round_robin", "ring_all", "fewest_calls", "least_talk_time", "skills"],
)
async def test_each_strategy_end_to_end(world: World, strategy: str) -> None:
    w = world
    for n in ("101", "102"):
        w.sim.set_script(n, ANSWER_2S)
    await setup_queue(w, strategy, wrapup_s=10)
    before = await w.c.core.storage.last_seq(w.tenant)
    c1 = await arrive(w)
    # the agent's phone rings; the customer hears the queue's music meanwhile
    first = {"101": c1, "102": c1} if strategy == "ring_all" else {"101": c1}
    assert ringing(w) == first
    assert customer_hears(w, c1) == {MUSIC}
    await w.settle(2)  # answered (ring all: both at once; 101 wins by order, 102 is withdrawn)
    assert call(w, c1).state == "answered" and ringing(w) == {}
    assert customer_hears(w, c1) == {agent_leg(w, c1, "101")}
    await w.settle(30)
    await w.c.calls.hangup(w.admin, w.tenant, c1, agent_leg(w, c1, "101"))
    await w.settle()
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).phone is PhoneState.WRAPUP
    c2 = await arrive(w, "19735550002")  # 101 wraps up: 102 takes it
    assert ringing(w) == {"102": c2}
    await w.settle(2)
    await w.settle(8)  # 101's wrap-up is over
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).phone is PhoneState.IDLE
    c3 = await arrive(w, "19735550003")
    assert ringing(w) == {"101": c3}
    events = await seen(w, before)
    # the engine's events share the commit of the call change that caused them
    entered = [e for e in events if e.call_id == c1 and e.type == "queue.entered"]
    assert [e.category for e in entered] == ["call", "queue"]
    assert entered[1].seq == entered[0].seq + 1
    first_call = view([e for e in events if e.call_id == c1], w)
    offered = [("queue.offered", "101")] + (
        [("queue.offered", "102")] if strategy == "ring_all" else []
    )
    rung = [("ringing", "101")] + ([("ringing", "102")] if strategy == "ring_all" else [])
    assert first_call == [
        ("queue.entered", 1),
        *offered,
        *rung,
        ("bridged", None),
        ("queue.answered", "101"),
        ("call.ended", "normal"),
    ]
    agent = [v for v in view(events, w) if v[0] == "agent 101"]
    assert agent == [
        ("agent 101", "ringing"),
        ("agent 101", "talking"),
        ("agent 101", "wrapup"),
        ("agent 101", "idle"),
        ("agent 101", "ringing"),
    ]
    stats = w.c.acd.desk.queue_stats(w.admin, w.tenant, w.queue)
    assert (stats.entered, stats.answered, stats.waiting) == (3, 2, 1)
    assert stats.average_handle_seconds == 30 and stats.service_level == 1.0


async def test_ring_timeout_offers_the_next_agent_and_counts_one_miss(world: World) -> None:
    w = world
    w.sim.set_script("101", EndpointScript(behaviour="no_answer"))
    w.sim.set_script("102", EndpointScript(answer_after=1))
    await setup_queue(w, ring_timeout_s=10, priorities={"101": 1, "102": 2})
    before = await w.c.core.storage.last_seq(w.tenant)
    c1 = await arrive(w)
    assert ringing(w) == {"101": c1}
    await w.settle(9.5)
    assert ringing(w) == {"101": c1}
    await w.settle(0.5)  # the ring timeout: 101's leg ends with no_answer, 102 rings
    assert ringing(w) == {"102": c1}
    ended = [g for g in call(w, c1).legs.values() if g.number == "101"]
    assert [g.cause for g in ended] == ["no_answer"]
    await w.settle(1)
    assert call(w, c1).state == "answered"
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.consecutive_missed, state.phone) == (1, PhoneState.IDLE)
    missed = [v for v in view(await seen(w, before), w) if v[0] == "agent 101 missed"]
    assert missed == [("agent 101 missed", 1)]  # counted once, by the agent service
    assert w.c.acd.desk.agent_stats(w.admin, w.tenant, w.ext["102"]).consecutive_missed == 0


async def test_a_declined_offer_moves_on_at_once(world: World) -> None:
    w = world
    w.sim.set_script("101", EndpointScript(behaviour="reject", answer_after=1))
    w.sim.set_script("102", EndpointScript(answer_after=1))
    await setup_queue(w, priorities={"101": 1, "102": 2})
    c1 = await arrive(w)
    await w.settle(1)
    assert ringing(w) == {"102": c1}
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).consecutive_missed == 1


async def test_miss_rule_moves_the_agent_away_and_the_caller_waits(world: World) -> None:
    w = world
    w.sim.set_script("101", EndpointScript(behaviour="no_answer"))
    await setup_queue(
        w,
        members=("101",),
        ring_timeout_s=10,
        max_consecutive_misses=2,
        missed_presence="Coffee Break",
    )
    c1 = await arrive(w)
    await w.settle(10)
    assert ringing(w) == {"101": c1}  # a new round: the only agent again
    await w.settle(10)
    state = w.c.agents.state(w.admin, w.tenant, w.ext["101"])
    assert (state.presence, state.presence_name) == (PresenceType.AWAY, "Coffee Break")
    assert ringing(w) == {}
    waiting = w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)
    assert [(x.call_id, x.position, x.state) for x in waiting] == [(c1, 1, "waiting")]
    assert customer_hears(w, c1) == {MUSIC}
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Ready")
    await w.settle()
    assert ringing(w) == {"101": c1}


async def second_queue(w: World, members: tuple[str, ...] = ("102",)) -> str:
    q = await w.c.directory.create_queue(
        w.admin,
        w.tenant,
        {
            "name": "Sales",
            "extension": "400",
            "members": [{"extension_id": w.ext[n]} for n in members],
        },
    )
    await w.settle()
    return q.id


async def test_max_wait_overflows_to_another_queue(world: World) -> None:
    w = world
    q2 = await second_queue(w)
    await setup_queue(w, members=("101",), max_wait_s=30, overflow={"kind": "queue", "target": q2})
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    await w.c.agents.sign_in(w.admin, w.tenant, w.ext["102"])
    w.sim.set_script("102", EndpointScript(behaviour="no_answer"))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["102"], "Coffee Break")
    before = await w.c.core.storage.last_seq(w.tenant)
    c1 = await arrive(w)
    await w.settle(29)
    assert call(w, c1).queue_id == w.queue
    await w.settle(1)
    assert call(w, c1).queue_id == q2 and customer_hears(w, c1) == {MUSIC}
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["102"], "Ready")
    await w.settle()
    assert ringing(w) == {"102": c1}
    assert view([e for e in await seen(w, before) if e.call_id == c1], w)[:5] == [
        ("queue.entered", 1),
        ("queue.overflowed", "max_wait"),
        ("queue.entered", 1),
        ("queue.offered", "102"),
        ("ringing", "102"),
    ]


async def test_max_length_overflows_to_an_extension(world: World) -> None:
    w = world
    await setup_queue(
        w, members=("101",), max_length=1, overflow={"kind": "extension", "target": w.ext["103"]}
    )
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    w.sim.set_script("103", EndpointScript(answer_after=3))
    c1 = await arrive(w)
    c2 = await arrive(w, "19735550002")
    assert ringing(w) == {"103": c2}
    assert customer_hears(w, c2) == {MUSIC}
    await w.settle(3)
    assert call(w, c2).state == "answered"
    assert customer_hears(w, c2) == {agent_leg(w, c2, "103")}
    assert [x.call_id for x in w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)] == [c1]
    assert w.c.acd.desk.queue_stats(w.admin, w.tenant, w.queue).overflowed == 1


async def test_max_length_overflows_to_a_number_or_ends_the_call(world: World) -> None:
    w = world
    await setup_queue(
        w, members=("101",), max_length=0, overflow={"kind": "number", "target": "18005550199"}
    )
    c1 = await arrive(w)
    assert [g.number for g in call(w, c1).live_legs()] == ["19735550000", "18005550199"]
    await w.c.directory.update_queue(w.admin, w.tenant, w.queue, {"overflow": None})
    c2 = await arrive(w, "19735550002")
    assert c2 not in w.c.calls.calls
    record = await w.c.core.storage.get_cdr(w.tenant, c2)
    assert record is not None and record.cause == "rejected"


async def test_callback_keeps_the_place_and_rings_the_agent_then_the_customer(
    world: World,
) -> None:
    w = world
    await setup_queue(w, members=("101",))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    c1 = await arrive(w)
    c2 = await arrive(w, "19735550002")
    await w.c.acd.desk.callback(w.admin, w.tenant, w.queue, c1, "19735550000")
    await w.settle()
    assert c1 not in w.c.calls.calls  # the customer hung up ...
    waiting = w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)
    assert [(x.call_id, x.callback_number) for x in waiting] == [  # ... but kept the place
        (c1, "19735550000"),
        (c2, None),
    ]
    w.sim.set_script("101", EndpointScript(answer_after=2))
    w.sim.set_script("19735550000", EndpointScript(answer_after=4))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Ready")
    await w.settle()
    (back,) = [c for c in w.c.calls.calls.values() if c.id not in (c2,)]
    assert [g.number for g in back.live_legs()] == ["101"]  # the agent first
    await w.settle(2)
    assert [g.number for g in call(w, back.id).live_legs()] == ["101", "19735550000"]
    await w.settle(4)
    assert call(w, back.id).state == "answered"
    assert [x.call_id for x in w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)] == [c2]
    await w.c.calls.hangup(w.admin, w.tenant, back.id, agent_leg(w, back.id, "101"))
    await w.settle()
    assert ringing(w) == {"101": c2}  # the next customer


async def test_an_answer_that_crosses_the_ring_timeout_sends_the_caller_back_to_wait(
    world: World,
) -> None:
    """The agent picks up just as the ring timeout moves the offer on: the engine refuses the
    late answer, that leg is hung up (no miss) and the caller, whom the call core had already
    bridged with it, hears the music again until the next agent answers."""
    w = world
    w.sim.set_script("101", EndpointScript(answer_after=5))
    w.sim.set_script("102", EndpointScript(answer_after=2))
    await setup_queue(w, ring_timeout_s=5, priorities={"101": 1, "102": 2})
    c1 = await arrive(w)
    await w.settle(5)  # the ring timeout fires first, then the switch reports the answer
    late = [g for g in call(w, c1).legs.values() if g.number == "101"]
    assert [(g.live, g.cause) for g in late] == [(False, "cancelled")]
    assert ringing(w) == {"102": c1} and customer_hears(w, c1) == {MUSIC}
    assert call(w, c1).state == "queued"
    await w.settle(2)
    assert customer_hears(w, c1) == {agent_leg(w, c1, "102")}
    engine = w.c.acd.engines[w.tenant]
    assert engine.calls[c1].agent_id == w.ext["102"]


async def test_configuration_changes_reach_the_engine_at_once(world: World) -> None:
    """A ready agent added to a queue is offered its waiting caller; a skill requirement added
    to a queue keeps unskilled agents from its callers, and dropping it lets them through."""
    w = world
    w.sim.set_script("102", EndpointScript(behaviour="no_answer"))
    await setup_queue(w, members=("101",))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    await w.c.agents.sign_in(w.admin, w.tenant, w.ext["102"])  # ready, member of nothing
    c1 = await arrive(w)
    assert ringing(w) == {}
    await w.c.directory.set_member(w.admin, w.tenant, w.queue, w.ext["102"], 1)
    await w.settle()
    assert ringing(w) == {"102": c1}
    french = await w.c.skills.create_skill(w.admin, w.tenant, "French")
    await w.c.acd.desk.kill(w.admin, w.tenant, w.queue, c1)
    await w.c.directory.update_queue(
        w.admin, w.tenant, w.queue, {"required_skills": [{"skill_id": french.id}]}
    )
    c2 = await arrive(w, "19735550002")
    assert ringing(w) == {}
    await w.c.skills.set_agent_skill(w.admin, w.tenant, w.ext["102"], french.id, 10)
    await w.settle()
    assert ringing(w) == {"102": c2}
