"""Random service-level interleavings of the ACD on the simulated switch: callers arriving and
hanging up, agents answering late or never or declining, presence changes, wrap-ups, hang-ups,
the supervisor's actions and time. After every step:

* no agent is reserved or busy in the engine without a live leg for that call on its phone;
* an agent has at most one offer (one queue leg ringing) at a time;
* every caller is accounted for: ended, in the engine (waiting, offered, connected, or a
  callback), or on its way to an overflow or transfer target; a queued caller hears music;
* the engine's own invariants hold, and its view of every agent is the agent service's;
* (at the end) no missed offer is counted twice: an agent's misses in a call never outnumber
  its unanswered legs there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from tests.support import World, make_world

from callbridge.adapters.simswitch import MUSIC, EndpointScript
from callbridge.domain.acd import AgentState
from callbridge.domain.acd import CallState as QueueCallState
from callbridge.domain.acd.invariants import violations
from callbridge.domain.calls import CallState, LegState
from callbridge.domain.errors import DomainError
from callbridge.domain.events import StoredEvent

AGENTS = ("101", "102", "103", "104")
agent = st.sampled_from(AGENTS)
index = st.integers(min_value=0, max_value=7)
step = st.one_of(
    st.tuples(st.just("arrive"), st.sampled_from(["300", "400"])),
    st.tuples(st.just("arrive"), st.sampled_from(["300", "400"])),
    st.tuples(st.just("script"), agent, st.sampled_from(["now", "late", "never", "reject"])),
    st.tuples(st.just("presence"), agent, st.sampled_from(["Ready", "Coffee Break", "Sign Out"])),
    st.tuples(st.just("customer_hangup"), index),
    st.tuples(st.just("agent_hangup"), index),
    st.tuples(st.just("desk"), st.sampled_from(["kill", "callback", "transfer", "move"]), index),
    st.tuples(st.just("desk"), st.just("callback"), index),
    st.tuples(st.just("presence"), agent, st.just("Coffee Break")),
    st.tuples(st.just("pick"), agent, index),
    st.tuples(st.just("member"), agent, st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 2, 5, 11, 30])),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 2, 5, 11, 30])),
)

SCRIPTS = {
    "now": EndpointScript(answer_after=1),
    "late": EndpointScript(answer_after=6),
    "never": EndpointScript(behaviour="no_answer"),
    "reject": EndpointScript(behaviour="reject", answer_after=2),
}


def check(w: World, customers: list[str], q2: str) -> None:
    svc = w.c.acd
    engine = svc.engines[w.tenant]
    assert violations(engine) == []
    calls = w.c.calls.calls
    agent_legs: dict[str, list[tuple[str, LegState]]] = {}
    for c in calls.values():
        for g in c.live_legs():
            if g.extension_id is not None:
                agent_legs.setdefault(g.extension_id, []).append((c.id, g.state))
    for ext_id, slot in engine.agents.items():
        legs = agent_legs.get(ext_id, [])
        if slot.state is AgentState.RESERVED:
            # reserved: its phone rings for that call (in the call, or the callback's call)
            mine = [cid for cid, st_ in legs if st_ is not LegState.ANSWERED]
            real = {cid for cid in mine if svc._aliases.get(cid, cid) == slot.call_id}
            assert real, (ext_id, slot.call_id, legs)
        elif slot.state is AgentState.BUSY:
            mine = [cid for cid, st_ in legs if st_ is LegState.ANSWERED]
            assert any(svc._aliases.get(cid, cid) == slot.call_id for cid in mine), (ext_id, legs)
    # one offer per agent: never two queue legs ringing on one phone
    for ext_id, legs in agent_legs.items():
        ringing = [cid for cid, st_ in legs if st_ is not LegState.ANSWERED]
        assert len(ringing) <= 1, (ext_id, legs)
    # the engine's view of each agent is the agent service's: free means available, and back
    for number in AGENTS:
        ext_id = w.ext[number]
        state = w.c.agents.states.get(ext_id)
        slot = engine.agents.get(ext_id)
        member = any(q.member(ext_id) for q in w.c.directory.queues.values())
        ready = state is not None and state.presence == "ready"
        if ready and member and state.phone == "idle" and not agent_legs.get(ext_id):
            assert slot is not None and slot.ready and slot.state is AgentState.IDLE, number
        if not ready:
            assert slot is None or not slot.ready, number
    for call_id in customers:
        c = calls.get(call_id)
        qc = engine.calls.get(call_id)
        if c is None:
            assert qc is None or qc.callback is not None, (call_id, qc)
            continue
        if qc is not None:
            assert qc.state in (QueueCallState.WAITING, QueueCallState.OFFERED) or (
                qc.state is QueueCallState.CONNECTED and c.state is CallState.ANSWERED
            )
            if qc.state is not QueueCallState.CONNECTED:
                assert c.state is CallState.QUEUED and c.queue_id == qc.queue_id
            continue
        # not in the engine: handed to an overflow or transfer target, or talking to one
        others = [g for g in c.live_legs() if g.role != "customer" and g.id not in svc.legs]
        assert others, (call_id, c.state, [(g.number, g.state) for g in c.live_legs()])
    for c in calls.values():
        if c.state is CallState.QUEUED:
            customer = [g for g in c.live_legs() if g.role == "customer"]
            if customer and customer[0].bridge_id is None:
                assert w.sim.hears(customer[0].id) == {MUSIC}


def check_misses_counted_once(log: list[StoredEvent]) -> None:
    """An agent's misses in a call never outnumber its legs there that were not taken (never
    answered, or answered just as the ring timeout moved the offer on: refused, ``cancelled``)."""
    legs: dict[str, tuple[str, str]] = {}  # leg id -> (call id, extension id)
    answered: set[str] = set()
    for e in log:
        if e.type == "leg.created" and e.data.get("extension_id") and e.call_id:
            legs[e.data["leg_id"]] = (e.call_id, e.data["extension_id"])
        elif e.type == "leg.answered":
            answered.add(e.data["leg_id"])
        elif e.type == "leg.hungup" and e.data.get("cause") == "cancelled":
            answered.discard(e.data["leg_id"])
    unanswered = Counter(key for leg, key in legs.items() if leg not in answered)
    misses = Counter(
        (e.data["call_id"], e.data["extension_id"]) for e in log if e.type == "agent.offer_missed"
    )
    for key, n in misses.items():
        assert n <= unanswered[key], (key, n, unanswered[key])


async def run(steps: list[tuple[object, ...]]) -> int:
    w = await make_world()
    customers: list[str] = []
    try:
        d = w.c.directory
        sales = await d.create_queue(
            w.admin,
            w.tenant,
            {
                "name": "Sales",
                "extension": "400",
                "strategy": "ring_all",
                "ring_timeout_s": 8,
                "members": [{"extension_id": w.ext["103"]}, {"extension_id": w.ext["104"]}],
            },
        )
        await d.update_queue(
            w.admin,
            w.tenant,
            w.queue,
            {
                "wrapup_s": 4,
                "ring_timeout_s": 5,
                "max_wait_s": 40,
                "max_length": 4,
                "overflow": {"kind": "queue", "target": sales.id},
                "max_consecutive_misses": 3,
                "missed_presence": "Coffee Break",
                "members": [
                    {"extension_id": w.ext["101"]},
                    {"extension_id": w.ext["102"]},
                    {"extension_id": w.ext["103"], "priority": 2},
                ],
            },
        )
        for n in AGENTS:
            await w.c.agents.sign_in(w.admin, w.tenant, w.ext[n])
        await w.settle()
        for i, s in enumerate(steps):
            with contextlib.suppress(DomainError):
                await apply(w, s, i, customers, sales.id)
            await w.settle()
            check(w, customers, sales.id)
        engine = w.c.acd.engines[w.tenant]
        for q in (w.queue, sales.id):
            st_ = engine.stats(q)
            for name in ("entered", "answered", "abandoned", "overflowed", "removed"):
                SEEN[name] = SEEN.get(name, 0) + getattr(st_, name)
        log = await w.c.core.storage.events(w.tenant, 0, 100_000)
        for e in log:
            if e.type in ("queue.callback_requested", "queue.offered", "agent.offer_missed"):
                SEEN[e.type] = SEEN.get(e.type, 0) + 1
        check_misses_counted_once(log)
        return len(steps)
    finally:
        await w.c.stop()


async def apply(w: World, s: tuple[object, ...], i: int, customers: list[str], q2: str) -> None:
    kind = s[0]
    engine = w.c.acd.engines[w.tenant]
    desk = w.c.acd.desk
    waiting = [c for q in (w.queue, q2) for c in engine.line(q)]
    if kind == "arrive":
        customers.append(
            await w.c.calls.simulate_inbound(w.admin, w.tenant, f"1973555{i:04d}", str(s[1]))
        )
    elif kind == "script":
        w.sim.set_script(str(s[1]), SCRIPTS[str(s[2])])
    elif kind == "presence":
        await w.c.agents.set_state(w.admin, w.tenant, w.ext[str(s[1])], str(s[2]))
    elif kind == "customer_hangup":
        live = [w.c.calls.calls[c] for c in customers if c in w.c.calls.calls]
        if live:
            c = live[int(str(s[1])) % len(live)]
            leg = [g for g in c.live_legs() if g.role == "customer"]
            if leg:
                await w.c.calls.hangup(w.admin, w.tenant, c.id, leg[0].id)
    elif kind == "agent_hangup":
        legs = [
            (c.id, g.id)
            for c in sorted(w.c.calls.calls.values(), key=lambda c: c.created_at)
            for g in c.live_legs()
            if g.extension_id is not None and g.state is LegState.ANSWERED
        ]
        if legs:
            call_id, leg_id = legs[int(str(s[1])) % len(legs)]
            await w.c.calls.hangup(w.admin, w.tenant, call_id, leg_id)
    elif kind == "desk" and waiting:
        call_id = waiting[int(str(s[2])) % len(waiting)]
        queue = engine.calls[call_id].queue_id
        action = str(s[1])
        if action == "kill":
            await desk.kill(w.admin, w.tenant, queue, call_id)
        elif action == "callback":
            await desk.callback(w.admin, w.tenant, queue, call_id, "19735559999")
        elif action == "transfer":
            await desk.transfer(w.admin, w.tenant, queue, call_id, "18005550199")
        else:
            other = q2 if queue == w.queue else w.queue
            await desk.move(w.admin, w.tenant, queue, call_id, other)
    elif kind == "pick" and waiting:
        call_id = waiting[int(str(s[2])) % len(waiting)]
        queue = engine.calls[call_id].queue_id
        await w.c.acd.desk.pick(w.admin, w.tenant, queue, call_id, w.ext[str(s[1])])
    elif kind == "member":  # join queue 300 (priority 3) or leave it
        ext_id = w.ext[str(s[1])]
        if s[2]:
            await w.c.directory.set_member(w.admin, w.tenant, w.queue, ext_id, 3)
        else:
            queue = w.c.directory.queues[w.queue]
            members = [m.model_dump() for m in queue.members if m.extension_id != ext_id]
            await w.c.directory.update_queue(w.admin, w.tenant, w.queue, {"members": members})
    elif kind == "wait":
        await w.settle(float(str(s[1])))


STEPS: list[int] = []
SEEN: dict[str, int] = {}  # what the examples exercised, summed


@seed(6)  # a fixed run (every run the same), chosen for what it exercises (see SEEN)
@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(step, min_size=10, max_size=40))
def test_acd_interleavings_keep_agents_and_callers_accounted_for(
    steps: list[tuple[object, ...]],
) -> None:
    STEPS.append(asyncio.run(run(steps)))


def test_the_interleavings_ran_a_few_hundred_steps() -> None:
    """Runs after the property test (file order): it must have exercised enough steps."""
    print(f"ACD interleavings: {len(STEPS)} examples, {sum(STEPS)} steps, {SEEN}")
    assert sum(STEPS) >= 300
    for name in ("answered", "abandoned", "overflowed", "removed", "agent.offer_missed"):
        assert SEEN.get(name, 0) > 0, name
