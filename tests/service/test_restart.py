"""A restart loses no configuration, no event and no call record (SQLite, the default)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests.support import make_world

from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.clock import FakeClock
from callbridge.adapters.simswitch import SimulatedSwitch
from callbridge.adapters.storage_sqlite import SqliteStorage
from callbridge.bootstrap import Container, build
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


async def _restart(db: str, at: datetime) -> tuple[Container, FakeClock]:
    clock = FakeClock(at)
    c = build(
        Settings(storage="memory"),
        clock=clock,
        storage=SqliteStorage(db),
        bus=MemoryEventBus(),
        switch=SimulatedSwitch(clock),
    )
    await c.start()
    return c, clock


async def test_agents_after_a_crash_keep_presence_and_wrapup_but_no_phantom_call(
    tmp_path: Path,
) -> None:
    """kill -9 style: the process stops without a word; storage is all that is left."""
    from tests.service.test_agents import offer

    db = str(tmp_path / "cb.db")
    w = await make_world(SqliteStorage(db))
    t = w.tenant
    await w.c.directory.update_queue(w.admin, t, w.queue, {"wrapup_s": 60})
    await w.c.agents.set_policy(w.admin, t, 3, "Coffee Break")
    await w.c.agents.sign_in(w.admin, t, w.ext["101"])
    await w.c.agents.sign_in(w.admin, t, w.ext["102"], "Coffee Break")
    await w.c.agents.sign_in(w.admin, t, w.ext["103"])
    call_id, customer, _ = await offer(w, "101")
    await w.c.calls.hangup(w.admin, t, call_id, customer)  # 101: wrap-up until +60 s
    await w.settle()
    await offer(w, "103")  # 103: talking on a queue call when the process dies
    assert w.c.agents.state(w.admin, t, w.ext["103"]).phone == "talking"
    wrapup_until = w.c.agents.state(w.admin, t, w.ext["101"]).wrapup_until
    assert wrapup_until is not None
    crashed_at = w.clock.now()
    await w.c.core.committer.drain()
    await w.c.core.storage.close()  # no orderly stop of the services: as good as kill -9

    # back 20 s later: the wrap-up has 40 s left and is re-armed
    c, clock = await _restart(db, crashed_at + timedelta(seconds=20))
    try:
        admin = c.directory.authenticate(w.tokens["alpha"])
        s101, s102, s103 = (c.agents.state(admin, t, w.ext[n]) for n in ("101", "102", "103"))
        assert (s101.phone, s101.wrapup_until, s101.queue_id) == ("wrapup", wrapup_until, w.queue)
        assert (s102.presence, s102.presence_name) == ("away", "Coffee Break")
        assert (s103.phone, s103.call_id, s103.queue_id) == ("idle", None, None)
        assert s103.presence == "ready"
        assert c.agents.policy(admin, t).max_consecutive_misses == 3
        clock.advance(39)
        await c.agents.settle()
        assert c.agents.state(admin, t, w.ext["101"]).phone == "wrapup"
        clock.advance(1)
        await c.agents.settle()
        assert c.agents.state(admin, t, w.ext["101"]).phone == "idle"
    finally:
        await c.stop()
        # the crashed process's tasks, which a real kill would have taken with it
        await w.c.calls.stop()
        await w.c.agents.stop()
        await w.c.core.switch.stop()
        await w.c.core.bus.stop()


async def test_an_expired_wrapup_ends_at_once_on_restart(tmp_path: Path) -> None:
    from tests.service.test_agents import offer

    db = str(tmp_path / "cb.db")
    w = await make_world(SqliteStorage(db))
    await w.c.directory.update_queue(w.admin, w.tenant, w.queue, {"wrapup_s": 60})
    call_id, customer, _ = await offer(w, "101")
    await w.c.calls.hangup(w.admin, w.tenant, call_id, customer)
    await w.settle()
    stopped_at = w.clock.now()
    await w.c.stop()
    c, _ = await _restart(db, stopped_at + timedelta(minutes=5))
    try:
        admin = c.directory.authenticate(w.tokens["alpha"])
        state = c.agents.state(admin, w.tenant, w.ext["101"])
        assert (state.phone, state.queue_id) == ("idle", None)
        assert state.phone_since == stopped_at + timedelta(minutes=5)
        events = await c.core.storage.events(w.tenant, 0, 10_000)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert events[-1].type == "agent.queue_state_changed"
    finally:
        await c.stop()
