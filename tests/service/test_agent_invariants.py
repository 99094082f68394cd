"""Random interleavings of calls, offers, holds, hang-ups, presence changes and time: after every
step each agent's phone state is what its live legs show, and no agent is left ringing, talking
or held without a live leg, nor in an expired wrap-up."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.service.test_agents import CUSTOMER, offer
from tests.support import World, make_world

from callbridge.adapters.simswitch import EndpointScript
from callbridge.domain.agents import PhoneState
from callbridge.domain.calls import Call, HoldState, LegState
from callbridge.domain.errors import DomainError

AGENTS = ("101", "102", "103", "104")
agent = st.sampled_from(AGENTS)
index = st.integers(min_value=0, max_value=7)
step = st.one_of(
    st.tuples(st.just("script"), agent, st.sampled_from(["now", "late", "never", "reject"])),
    st.tuples(st.just("call"), agent, st.sampled_from([*AGENTS, CUSTOMER])),
    st.tuples(st.just("offer"), agent, st.sampled_from(["now", "late", "never", "reject"])),
    st.tuples(st.just("hold"), index, index),
    st.tuples(st.just("unhold"), index, index),
    st.tuples(st.just("hangup"), index, index),
    st.tuples(st.just("presence"), agent, st.sampled_from(["Ready", "Coffee Break", "Sign Out"])),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 3, 9, 20])),
)

SCRIPTS = {
    "now": EndpointScript(),
    "late": EndpointScript(answer_after=4),
    "never": EndpointScript(behaviour="no_answer"),
    "reject": EndpointScript(behaviour="reject", answer_after=2),
}


def expected_phone(calls: list[Call], ext_id: str) -> PhoneState | None:
    shown: list[PhoneState] = []
    for call in calls:
        for leg in call.live_legs():
            if leg.extension_id != ext_id:
                continue
            if leg.state is not LegState.ANSWERED:
                shown.append(PhoneState.RINGING)
            elif any(o.hold is HoldState.HELD for o in call.live_legs()):
                shown.append(PhoneState.HELD)
            else:
                shown.append(PhoneState.TALKING)
    for state in (PhoneState.TALKING, PhoneState.HELD, PhoneState.RINGING):
        if state in shown:
            return state
    return None


def check(w: World) -> None:
    calls = list(w.c.calls.calls.values())
    now = w.clock.now()
    live_legs = {leg.id for call in calls for leg in call.live_legs()}
    assert set(w.c.agents._ring_timers) <= live_legs
    for number in AGENTS:
        ext_id = w.ext[number]
        state = w.c.agents.state(w.admin, w.tenant, ext_id)
        shown = expected_phone(calls, ext_id)
        if shown is not None:
            assert state.phone is shown, (number, state.phone, shown)
            assert state.call_id in {c.id for c in calls}
        else:
            assert state.phone in (PhoneState.IDLE, PhoneState.WRAPUP), (number, state.phone)
            if state.phone is PhoneState.WRAPUP:
                assert state.wrapup_until is not None and state.wrapup_until > now
                assert ext_id in w.c.agents._wrapup_timers
            else:
                assert state.call_id is None and state.queue_id is None
        assert state.consecutive_missed >= 0


async def run(steps: list[tuple[object, ...]]) -> None:
    w = await make_world()
    try:
        await w.c.directory.update_queue(
            w.admin,
            w.tenant,
            w.queue,
            {
                "wrapup_s": 10,
                "ring_timeout_s": 8,
                "max_consecutive_misses": 2,
                "missed_presence": "Coffee Break",
            },
        )
        for s in steps:
            # a refused command changes nothing; the invariants must hold all the same
            with contextlib.suppress(DomainError):
                await apply(w, s)
            await w.settle()
            check(w)
    finally:
        await w.c.stop()


async def apply(w: World, s: tuple[object, ...]) -> None:
    kind = s[0]
    calls = sorted(w.c.calls.calls.values(), key=lambda c: c.created_at)
    if kind == "script":
        w.sim.set_script(str(s[1]), SCRIPTS[str(s[2])])
    elif kind == "call":
        await w.c.calls.originate(w.admin, w.tenant, w.ext[str(s[1])], str(s[2]))
    elif kind == "offer":
        w.sim.set_script(str(s[1]), SCRIPTS[str(s[2])])
        await offer(w, str(s[1]))
    elif kind in ("hold", "unhold", "hangup") and calls:
        call = calls[int(str(s[1])) % len(calls)]
        legs = call.live_legs()
        if not legs:
            return
        leg = legs[int(str(s[2])) % len(legs)]
        command = {
            "hold": w.c.calls.hold,
            "unhold": w.c.calls.unhold,
            "hangup": w.c.calls.hangup,
        }[str(kind)]
        await command(w.admin, w.tenant, call.id, leg.id)
    elif kind == "presence":
        await w.c.agents.set_state(w.admin, w.tenant, w.ext[str(s[1])], str(s[2]))
    elif kind == "wait":
        await w.settle(float(str(s[1])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=5, max_size=40))
def test_agent_phone_state_always_matches_the_live_legs(steps: list[tuple[object, ...]]) -> None:
    asyncio.run(run(steps))
