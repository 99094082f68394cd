"""A restart loses no configuration, no event and no call record (SQLite, the default)."""

from __future__ import annotations

from pathlib import Path

from tests.support import make_world

from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.clock import FakeClock
from callbridge.adapters.simswitch import SimulatedSwitch
from callbridge.adapters.storage_sqlite import SqliteStorage
from callbridge.bootstrap import build
from callbridge.domain.calls import HangupCause
from callbridge.settings import Settings


async def test_restart_keeps_configuration_events_records_and_ends_orphaned_calls(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "cb.db")
    w = await make_world(SqliteStorage(db))
    finished = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    await w.c.calls.kill(w.admin, w.tenant, finished.id)
    live = await w.c.calls.originate(w.admin, w.tenant, w.ext["103"], "104")
    await w.settle()
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    last_seq = await w.c.core.storage.last_seq(w.tenant)
    await w.c.stop()  # as good as a crash for the live call: the switch's legs are gone

    clock = FakeClock()
    c = build(
        Settings(storage="memory"),
        clock=clock,
        storage=SqliteStorage(db),
        bus=MemoryEventBus(),
        switch=SimulatedSwitch(clock),
    )
    await c.start()
    try:
        d = c.directory
        admin = d.authenticate(w.tokens["alpha"])  # tokens survive
        assert [e.number for e in d.extensions_of(w.tenant)] == ["101", "102", "103", "104"]
        assert c.agents.state(admin, w.tenant, w.ext["101"]).presence_name == "Coffee Break"
        record = await c.core.storage.get_cdr(w.tenant, finished.id)
        assert record is not None and record.cause is HangupCause.KILLED
        lost = await c.core.storage.get_cdr(w.tenant, live.id)
        assert lost is not None and lost.cause is HangupCause.SHUTDOWN  # no half-live call left
        assert live.id not in c.calls.calls
        events = await c.core.storage.events(w.tenant, 0, 10_000)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        after_restart = [e for e in events if e.seq > last_seq]
        assert "call.ended" in [e.type for e in after_restart]
        # the agents of the lost call were talking: reconciled to idle, not left busy
        idled = {
            e.data["number"]
            for e in after_restart
            if e.type == "agent.phone_state_changed" and e.data["state"] == "idle"
        }
        assert idled == {"103", "104"}
        for number in ("103", "104"):
            assert c.agents.state(admin, w.tenant, w.ext[number]).phone == "idle"
        # the log continues without a gap or reuse
        await c.agents.set_state(admin, w.tenant, w.ext["101"], "Ready")
        assert await c.core.storage.last_seq(w.tenant) == events[-1].seq + 1
    finally:
        await c.stop()


async def test_telco_principal_sees_only_its_own_tenants(tmp_path: Path) -> None:
    from callbridge.domain.errors import NotFound
    from callbridge.domain.tenancy import Level
    from callbridge.service.auth import system_actor

    w = await make_world()
    try:
        d = w.c.directory
        await d.create_telco("Other telco", telco_id="telco-2")
        foreign = await d.create_tenant(system_actor(), "gamma", telco_id="telco-2")
        principal = await d.create_principal("telco admin", Level.TELCO, "telco-1", ["role-all"])
        telco = d.actor_for(principal)
        assert {t.name for t in d.visible_tenants(telco)} == {"alpha", "beta"}
        try:
            d.tenant(telco, foreign.id)
            raise AssertionError("a foreign telco's tenant was visible")
        except NotFound as exc:
            assert exc.code == "tenant_not_found"
        created = await d.create_tenant(telco, "delta")
        assert created.telco_id == "telco-1"
    finally:
        await w.c.stop()


async def test_simulated_endpoint_scripts_survive_a_restart(tmp_path: Path) -> None:
    from callbridge.adapters.simswitch import EndpointScript

    db = str(tmp_path / "cb.db")
    w = await make_world(SqliteStorage(db))
    await w.c.simulator.set_script(w.admin, "19735550000", EndpointScript(behaviour="busy"))
    await w.c.simulator.set_script(w.admin, "19735550001", EndpointScript(behaviour="no_answer"))
    await w.c.simulator.clear_script(w.admin, "19735550001")
    await w.c.stop()
    clock = FakeClock()
    sim = SimulatedSwitch(clock)
    c = build(
        Settings(storage="memory"),
        clock=clock,
        storage=SqliteStorage(db),
        bus=MemoryEventBus(),
        switch=sim,
    )
    await c.start()
    try:
        assert dict(sim.scripts()) == {"19735550000": EndpointScript(behaviour="busy")}
    finally:
        await c.stop()
