"""Supervision (listen, whisper, barge) through the service layer, on the simulated switch."""

from __future__ import annotations

import pytest
from tests.support import World

from callbridge.adapters.simswitch import EndpointScript
from callbridge.domain.calls import Call, CallState, HangupCause, LegRole, LegState
from callbridge.domain.errors import DomainError, PermissionDenied
from callbridge.domain.tenancy import Level, Permission


async def connected(w: World) -> tuple[Call, str, str]:
    """101 (the agent) calls 102 (the customer)."""
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call.id)
    assert call.state is CallState.ANSWERED
    by_number = {leg.number: leg.id for leg in call.legs.values()}
    return call, by_number["101"], by_number["102"]


async def supervised(w: World, mode: str) -> tuple[Call, str, str, str]:
    call, agent, customer = await connected(w)
    await w.c.calls.supervise(w.admin, w.tenant, call.id, w.ext["103"], mode, agent)
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call.id)
    sup = next(leg for leg in call.legs.values() if leg.number == "103")
    assert sup.role is LegRole.SUPERVISOR and sup.state is LegState.ANSWERED
    return call, agent, customer, sup.id


async def supervision_events(w: World, call_id: str) -> list[tuple[str, dict[str, object]]]:
    return [
        (e.type, dict(e.data))
        for e in await w.c.calls.timeline(w.admin, w.tenant, call_id)
        if e.type.startswith("supervision.")
    ]


def assert_hearing(w: World, agent: str, customer: str, sup: str, mode: str) -> None:
    # the supervisor always hears both sides
    assert w.sim.hears(sup) == {agent, customer}
    agent_hears = {customer} if mode == "listen" else {customer, sup}
    customer_hears = {agent, sup} if mode == "barge" else {agent}
    assert w.sim.hears(agent) == agent_hears, mode
    assert w.sim.hears(customer) == customer_hears, mode


@pytest.mark.parametrize("mode", ["listen", "whisper", "barge"])
async def test_supervisor_joins_in_each_mode(world: World, mode: str) -> None:
    w = world
    call, agent, customer, sup = await supervised(w, mode)
    assert_hearing(w, agent, customer, sup, mode)
    assert await supervision_events(w, call.id) == [
        (
            "supervision.started",
            {
                "leg_id": sup,
                "mode": mode,
                "supervisor_extension_id": w.ext["103"],
                "agent_leg_id": agent,
            },
        )
    ]
    timeline = [e.type for e in await w.c.calls.timeline(w.admin, w.tenant, call.id)]
    assert timeline.index("bridge.joined") < timeline.index("supervision.started")


async def test_switching_modes_during_the_call(world: World) -> None:
    w = world
    call, agent, customer, sup = await supervised(w, "listen")
    for mode in ("whisper", "barge", "listen"):
        await w.c.calls.set_supervision_mode(w.admin, w.tenant, call.id, sup, mode)
        assert_hearing(w, agent, customer, sup, mode)
    # the same mode again changes nothing and logs nothing
    await w.c.calls.set_supervision_mode(w.admin, w.tenant, call.id, sup, "listen")
    changes = [
        (d["previous"], d["mode"])
        for t, d in await supervision_events(w, call.id)
        if t == "supervision.mode_changed"
    ]
    assert changes == [("listen", "whisper"), ("whisper", "barge"), ("barge", "listen")]


async def test_supervisor_hangs_up_and_the_call_goes_on(world: World) -> None:
    w = world
    call, agent, customer, sup = await supervised(w, "whisper")
    w.sim.remote_hangup(sup)
    await w.settle()
    assert w.sim.hears(agent) == {customer}
    assert w.sim.hears(customer) == {agent}
    assert w.c.calls.get(w.admin, w.tenant, call.id).state is CallState.ANSWERED
    events = await supervision_events(w, call.id)
    assert [t for t, _ in events] == ["supervision.started", "supervision.ended"]
    assert events[-1][1] == {"leg_id": sup, "cause": HangupCause.NORMAL}


async def test_end_supervision_hangs_the_supervisor_up(world: World) -> None:
    w = world
    call, agent, customer, sup = await supervised(w, "barge")
    await w.c.calls.end_supervision(w.admin, w.tenant, call.id, sup)
    assert w.sim.leg_state(sup).state == "hungup"
    assert w.sim.hears(customer) == {agent}
    with pytest.raises(DomainError) as exc:
        await w.c.calls.end_supervision(w.admin, w.tenant, call.id, agent)
    assert exc.value.code == "not_supervisor"


@pytest.mark.parametrize("mode", ["listen", "whisper"])
async def test_a_silent_supervisor_never_keeps_the_call_alive(world: World, mode: str) -> None:
    w = world
    call, agent, customer, sup = await supervised(w, mode)
    w.sim.remote_hangup(agent)
    await w.settle()
    assert w.sim.leg_state(customer).state == "hungup"
    assert w.sim.leg_state(sup).state == "hungup"
    assert call.id not in w.c.calls.calls
    timeline = [e.type for e in await w.c.calls.timeline(w.admin, w.tenant, call.id)]
    assert "supervision.ended" in timeline and timeline[-1] == "call.ended"


async def test_a_barging_supervisor_talks_on_until_they_switch_to_listen(world: World) -> None:
    w = world
    call, agent, customer, sup = await supervised(w, "barge")
    w.sim.remote_hangup(agent)
    await w.settle()
    assert w.sim.hears(customer) == {sup}  # a barging supervisor is a normal party
    with pytest.raises(DomainError) as exc:
        await w.c.calls.set_supervision_mode(w.admin, w.tenant, call.id, sup, "whisper")
    assert exc.value.code == "not_supervisable"
    await w.c.calls.set_supervision_mode(w.admin, w.tenant, call.id, sup, "listen")
    assert call.id not in w.c.calls.calls  # nobody talking is left: the call ends


async def test_the_call_ends_while_the_supervisor_still_rings(world: World) -> None:
    w = world
    w.sim.set_script("103", EndpointScript(answer_after=30))
    call, agent, customer = await connected(w)
    await w.c.calls.supervise(w.admin, w.tenant, call.id, w.ext["103"], "listen", agent)
    await w.settle()
    sup = next(leg.id for leg in w.c.calls.calls[call.id].legs.values() if leg.number == "103")
    w.sim.remote_hangup(customer)
    await w.settle()
    assert w.sim.leg_state(sup).state == "hungup"
    assert call.id not in w.c.calls.calls
    assert await supervision_events(w, call.id) == []  # it never started


async def test_supervision_refusals(world: World) -> None:
    w = world
    call, agent, customer, sup = await supervised(w, "listen")
    calls = w.c.calls
    with pytest.raises(DomainError) as e1:
        await calls.supervise(w.admin, w.tenant, call.id, w.ext["104"], "spy", agent)
    assert e1.value.code == "supervision_mode_invalid"
    with pytest.raises(DomainError) as e2:
        await calls.supervise(w.admin, w.tenant, call.id, w.ext["104"], "listen", sup)
    assert e2.value.code == "not_supervisable"
    with pytest.raises(DomainError) as e3:
        await calls.supervise(w.admin, w.tenant, call.id, w.ext["103"], "listen", agent)
    assert e3.value.code == "supervisor_in_call"
    with pytest.raises(DomainError) as e4:
        await calls.set_supervision_mode(w.admin, w.tenant, call.id, agent, "barge")
    assert e4.value.code == "not_supervisor"
    with pytest.raises(DomainError) as e5:
        await calls.set_supervision_mode(w.admin, w.tenant, call.id, sup, "loud")
    assert e5.value.code == "supervision_mode_invalid"
    assert_hearing(w, agent, customer, sup, "listen")  # nothing changed


async def test_a_call_without_an_answered_agent_is_not_supervisable(world: World) -> None:
    w = world
    w.sim.set_script("102", EndpointScript(answer_after=30))
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    target = next(leg.id for leg in w.c.calls.calls[call.id].legs.values() if leg.number == "102")
    with pytest.raises(DomainError) as exc:
        await w.c.calls.supervise(w.admin, w.tenant, call.id, w.ext["103"], "listen", target)
    assert exc.value.code == "not_supervisable"


async def test_supervision_needs_call_monitor(world: World) -> None:
    w = world
    d = w.c.directory
    agent_perms = [Permission.CALL_CONTROL, Permission.CALLS_VIEW]
    role = await d.create_role("agent", agent_perms, tenant_id=w.tenant)
    p = await d.create_principal("agent", Level.TENANT, "telco-1", [role.id], tenant_id=w.tenant)
    actor = d.actor_for(p)
    call, agent, customer, sup = await supervised(w, "listen")
    with pytest.raises(PermissionDenied):
        await w.c.calls.supervise(actor, w.tenant, call.id, w.ext["104"], "listen", agent)
    with pytest.raises(PermissionDenied):
        await w.c.calls.set_supervision_mode(actor, w.tenant, call.id, sup, "barge")
    with pytest.raises(PermissionDenied):
        await w.c.calls.end_supervision(actor, w.tenant, call.id, sup)
    assert_hearing(w, agent, customer, sup, "listen")
