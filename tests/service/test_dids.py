"""DIDs through the service layer (#3): assignment, permissions and routing of trunk calls."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.support import World, make_world

from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.clock import FakeClock
from callbridge.adapters.simswitch import EndpointScript, SimulatedSwitch
from callbridge.adapters.storage_sqlite import SqliteStorage
from callbridge.bootstrap import build
from callbridge.domain.calls import Call, CallState, HangupCause
from callbridge.domain.dids import Did
from callbridge.domain.errors import Conflict, DomainError, Invalid, NotFound, PermissionDenied
from callbridge.domain.tenancy import Level, Permission
from callbridge.service.auth import Actor, system_actor
from callbridge.settings import Settings

CALLER = "+19735550123"


async def telco(w: World) -> Actor:
    d = w.c.directory
    p = await d.create_principal("telco-admin", Level.TELCO, "telco-1", ["role-all"])
    return d.actor_for(p)


async def both_have_112(w: World) -> None:
    system = system_actor()
    await w.c.directory.create_extension(system, w.tenant, {"number": "112"}, "alpha-112")
    await w.c.directory.create_extension(system, w.other_tenant, {"number": "112"}, "beta-112")


def call_of(w: World, leg_id: str) -> Call:
    return next(c for c in w.c.calls.calls.values() if leg_id in c.legs)


def target_numbers(call: Call) -> set[str]:
    return {leg.number for leg in call.legs.values()} - {CALLER}


async def test_a_did_routes_to_the_right_tenants_112(world: World) -> None:
    w = world
    await both_have_112(w)
    t = await telco(w)
    await w.c.dids.create(t, w.tenant, "+1 415 555 0100", "112")
    await w.c.dids.create(t, w.other_tenant, "+1 415 555 0200", "112")
    for number, tenant in (("+14155550100", w.tenant), ("+14155550200", w.other_tenant)):
        leg = w.sim.inject_incoming(CALLER, number)
        await w.settle()
        call = call_of(w, leg)
        assert call.tenant_id == tenant and call.to_number == number
        assert call.state is CallState.ANSWERED and target_numbers(call) == {"112"}
    # the same tenant's 112 reached, not the other's: the switch legs carry the tenant
    tenants = {s.tenant_id for s in w.sim.legs().values() if s.number == "112"}
    assert tenants == {w.tenant, w.other_tenant}


async def test_a_did_to_a_queue_enters_the_queue(world: World) -> None:
    w = world
    await w.c.dids.create(system_actor(), w.tenant, "4155550300", "300", "support line")
    leg = w.sim.inject_incoming(CALLER, "415-555-0300")  # matched after normalisation
    await w.settle()
    call = call_of(w, leg)
    assert call.state is CallState.QUEUED and call.tenant_id == w.tenant
    assert w.sim.hears(leg) == {"music"}


async def test_the_simulator_places_calls_to_a_did(world: World) -> None:
    w = world
    await w.c.dids.create(system_actor(), w.tenant, "+14155550300", "300")
    call_id = await w.c.calls.simulate_inbound(w.admin, w.tenant, CALLER, "+1 415 555 0300")
    await w.settle()
    call = w.c.calls.calls[call_id]
    assert call.state is CallState.QUEUED and call.tenant_id == w.tenant
    assert call.to_number == "+1 415 555 0300"  # as dialled; the DID's target was resolved
    with pytest.raises(Invalid):  # another tenant's DID is just an outside number here
        await w.c.calls.simulate_inbound(system_actor(), w.other_tenant, CALLER, "+14155550300")


async def test_unknown_and_ambiguous_numbers_are_refused(world: World) -> None:
    w = world
    await both_have_112(w)
    for number in ("+14155559999", "112"):  # no DID; 112 belongs to two tenants
        leg = w.sim.inject_incoming(CALLER, number)
        await w.settle()
        assert w.sim.leg_state(leg).state == "hungup"
        assert w.sim.leg_state(leg).cause is HangupCause.UNALLOCATED  # SIP 404
        assert not any(leg in c.legs for c in w.c.calls.calls.values())
    # an extension number dialled directly still routes by the unique-owner rule
    leg = w.sim.inject_incoming(CALLER, "102")
    await w.settle()
    assert call_of(w, leg).state is CallState.ANSWERED


async def test_re_pointing_takes_effect_at_once(world: World) -> None:
    w = world
    did = await w.c.dids.create(system_actor(), w.tenant, "+14155550100", "102")
    updated = await w.c.dids.update(w.admin, w.tenant, did.id, {"target": "300"})
    assert updated.target == "300" and updated.number == "+14155550100"
    leg = w.sim.inject_incoming(CALLER, "+14155550100")
    await w.settle()
    assert call_of(w, leg).state is CallState.QUEUED
    events = [e.type for e in await w.c.core.storage.events(w.tenant)]
    assert "did.created" in events and "did.updated" in events


async def test_permissions_and_tenant_scope(world: World) -> None:
    w = world
    t = await telco(w)
    with pytest.raises(PermissionDenied) as denied:
        await w.c.dids.create(w.admin, w.tenant, "+14155550100", "102")
    assert denied.value.code == "telco_only"
    did = await w.c.dids.create(t, w.tenant, "+14155550100", "102")
    # the tenant admin lists and re-points, but cannot take it back
    assert [d.id for d in w.c.dids.dids_of(w.admin, w.tenant)] == [did.id]
    await w.c.dids.update(w.admin, w.tenant, did.id, {"target": "103"})
    with pytest.raises(PermissionDenied):
        await w.c.dids.delete(w.admin, w.tenant, did.id)
    # another tenant sees nothing
    assert w.c.dids.dids_of(w.other_admin, w.other_tenant) == []
    with pytest.raises(NotFound):
        w.c.dids.did(w.other_admin, w.other_tenant, did.id)
    with pytest.raises(NotFound):
        await w.c.dids.update(w.other_admin, w.other_tenant, did.id, {"target": "101"})
    # an agent (no Tenant Edit) cannot re-point
    d = w.c.directory
    role = await d.create_role("Agent", [Permission.API, Permission.TENANTS_VIEW])
    agent = d.actor_for(
        await d.create_principal(
            "agent", Level.TENANT, "telco-1", [role.id], tenant_id=w.tenant, extension_id="ext-101"
        )
    )
    with pytest.raises(PermissionDenied):
        await w.c.dids.update(agent, w.tenant, did.id, {"target": "104"})
    await w.c.dids.delete(t, w.tenant, did.id)
    assert w.c.dids.dids_of(w.admin, w.tenant) == []
    assert w.c.directory.did_for("+14155550100") is None


async def test_numbers_are_unique_on_the_platform_and_targets_checked(world: World) -> None:
    w = world
    t = system_actor()
    await w.c.dids.create(t, w.tenant, "+14155550100", "102")
    with pytest.raises(Conflict) as taken:
        await w.c.dids.create(t, w.other_tenant, "+1 (415) 555-0100", "101")
    assert taken.value.code == "did_exists"
    refusals: list[tuple[str, str, str]] = [
        ("+14155550101", "19735550000", "did_target_invalid"),  # external: not allowed
        ("+14155550101", "199", "did_target_unknown"),  # no such number in the tenant
        ("+14155550101", "701", "did_target_invalid"),  # a parking slot
        ("call me", "102", "did_number_malformed"),
    ]
    for number, target, code in refusals:
        with pytest.raises(Invalid) as exc:
            await w.c.dids.create(t, w.tenant, number, target)
        assert exc.value.code == code
    with pytest.raises(Invalid) as immutable:
        did = w.c.dids.dids_of(w.admin, w.tenant)[0]
        await w.c.dids.update(w.admin, w.tenant, did.id, {"number": "+14155550999"})
    assert immutable.value.code == "immutable_field"


async def test_a_did_target_cannot_be_deleted_or_renumbered(world: World) -> None:
    w = world
    system = system_actor()
    d = w.c.directory
    did = await w.c.dids.create(system, w.tenant, "+14155550100", "102")
    queued = await w.c.dids.create(system, w.tenant, "+14155550300", "300")
    attempts = [
        d.delete_extension(w.admin, w.tenant, w.ext["102"]),
        d.update_extension(w.admin, w.tenant, w.ext["102"], {"number": "122"}),
        d.delete_queue(w.admin, w.tenant, w.queue),
        d.update_queue(w.admin, w.tenant, w.queue, {"extension": "301"}),
    ]
    for attempt in attempts:
        with pytest.raises(DomainError) as exc:
            await attempt
        assert exc.value.code == "did_target_in_use"
    # renaming the extension keeps its number: fine; after re-pointing, deletion is allowed
    await d.update_extension(w.admin, w.tenant, w.ext["102"], {"firstname": "Bo"})
    await w.c.dids.update(w.admin, w.tenant, did.id, {"target": "103"})
    await d.delete_extension(w.admin, w.tenant, w.ext["102"])
    await w.c.dids.delete(system, w.tenant, queued.id)
    await d.delete_queue(w.admin, w.tenant, w.queue)


async def test_dids_survive_a_restart_on_sqlite(tmp_path: Path) -> None:
    db = str(tmp_path / "cb.db")
    w = await make_world(SqliteStorage(db))
    did = await w.c.dids.create(system_actor(), w.tenant, "+14155550100", "300")
    await w.c.dids.update(w.admin, w.tenant, did.id, {"target": "102"})
    await w.c.stop()
    clock = FakeClock()
    sim = SimulatedSwitch(clock, default_answer_after=0.0)
    sim.set_script("102", EndpointScript(behaviour="answer"))
    c = build(
        Settings(storage="memory"),
        clock=clock,
        storage=SqliteStorage(db),
        bus=MemoryEventBus(),
        switch=sim,
    )
    await c.start()
    try:
        admin = c.directory.authenticate(w.tokens["alpha"])
        [kept] = c.dids.dids_of(admin, w.tenant)
        assert (kept.id, kept.number, kept.target) == (did.id, "+14155550100", "102")
        leg = sim.inject_incoming(CALLER, "+14155550100")
        for _ in range(20):
            await c.calls.settle()
            clock.advance(0)
        call = next(x for x in c.calls.calls.values() if leg in x.legs)
        assert call.tenant_id == w.tenant and target_numbers(call) == {"102"}
    finally:
        await c.stop()


async def test_concurrent_assignments_of_one_number_let_exactly_one_through(world: World) -> None:
    w = world
    system = system_actor()
    results = await asyncio.gather(
        w.c.dids.create(system, w.tenant, "+14155550100", "102"),
        w.c.dids.create(system, w.other_tenant, "+1 415 555 0100", "101"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Did"]
    assert len(w.c.directory.dids) == 1


async def test_a_priority_did_puts_its_callers_first_in_the_queue(world: World) -> None:
    """(#4) Two callers waiting: the later one, through a priority DID, is offered first."""
    from tests.service.acd_support import arrive, setup_queue

    w = world
    await setup_queue(w, members=("101",))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    t = await telco(w)
    with pytest.raises(Invalid) as e:
        await w.c.dids.create(t, w.tenant, "4155550301", "300", priority=10)
    assert e.value.code == "did_priority_invalid"
    did = await w.c.dids.create(t, w.tenant, "4155550300", "300", priority=5)
    assert did.priority == 5
    first = await arrive(w)  # dialled the queue directly: priority 0
    leg = w.sim.inject_incoming(CALLER, "4155550300")
    await w.settle()
    second = call_of(w, leg).id
    waiting = w.c.acd.desk.waiting(w.admin, w.tenant, w.queue)
    assert [(x.call_id, x.priority) for x in waiting] == [(second, 5), (first, 0)]
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Ready")
    await w.settle()
    engine = w.c.acd.engines[w.tenant]
    assert engine.agents[w.ext["101"]].call_id == second
    assert engine.line(w.queue) == [first]
    # the tenant's admin changes it; a bad value is refused; old documents load as 0
    updated = await w.c.dids.update(w.admin, w.tenant, did.id, {"priority": 0})
    assert updated.priority == 0
    with pytest.raises(Invalid):
        await w.c.dids.update(w.admin, w.tenant, did.id, {"priority": -1})
    old = did.model_dump()
    del old["priority"]
    assert Did.model_validate(old).priority == 0
