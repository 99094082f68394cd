"""The ACD after a restart: no agent left reserved or busy without a call; callers re-arrive."""

from __future__ import annotations

from pathlib import Path

from tests.service.acd_support import arrive, ringing, setup_queue
from tests.support import World, make_world

from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.clock import FakeClock
from callbridge.adapters.simswitch import EndpointScript, SimulatedSwitch
from callbridge.adapters.storage_sqlite import SqliteStorage
from callbridge.bootstrap import build
from callbridge.domain.acd import AgentState
from callbridge.domain.acd.invariants import violations
from callbridge.service.acd import AcdService
from callbridge.service.auth import system_actor
from callbridge.settings import Settings


async def test_a_crash_leaves_no_agent_reserved_or_busy_on_sqlite(tmp_path: Path) -> None:
    db = str(tmp_path / "cb.db")
    w = await make_world(SqliteStorage(db))
    w.sim.set_script("102", EndpointScript(behaviour="no_answer"))
    await setup_queue(w, members=("101", "102"), priorities={"101": 1, "102": 2})
    c1 = await arrive(w)  # 101 answers at once
    c2 = await arrive(w, "19735550002")  # 102 rings
    c3 = await arrive(w, "19735550003")  # waits
    engine = w.c.acd.engines[w.tenant]
    assert engine.agents[w.ext["101"]].state is AgentState.BUSY
    assert engine.agents[w.ext["102"]].state is AgentState.RESERVED
    assert ringing(w) == {"102": c2} and engine.line(w.queue) == [c2, c3]
    await w.c.stop()  # as good as kill -9 for the switch: every leg is gone with it

    clock = FakeClock()
    sim = SimulatedSwitch(clock, default_answer_after=0.0)
    c = build(
        Settings(storage="memory"),
        clock=clock,
        storage=SqliteStorage(db),
        bus=MemoryEventBus(),
        switch=sim,
    )
    await c.start()
    try:
        for call_id in (c1, c2, c3):
            assert call_id not in c.calls.calls
        engine = c.acd.engines[w.tenant]
        assert violations(engine) == []
        for number in ("101", "102"):
            slot = engine.agents[w.ext[number]]
            assert (slot.state, slot.ready, slot.call_id) == (AgentState.IDLE, True, None)
        assert engine.calls == {}
        # distribution works at once: the next caller rings the first agent
        admin = c.directory.authenticate(w.tokens["alpha"])
        w2 = World(
            c=c, clock=clock, sim=sim, admin=admin, other_admin=system_actor(),
            tenant=w.tenant, other_tenant=w.other_tenant, ext=w.ext, queue=w.queue,
        )  # fmt: skip
        sim.set_script("101", EndpointScript(behaviour="no_answer"))
        c4 = await arrive(w2, "19735550004")
        assert ringing(w2) == {"101": c4}
    finally:
        await c.stop()


async def test_queued_callers_alive_after_a_restart_re_arrive_in_arrival_order(
    world: World,
) -> None:
    """The process restarts but the switch kept the callers (an outside switch): a new ACD
    service re-arrives them in arrival order, stops stale offers and frees their agents."""
    w = world
    w.sim.set_script("101", EndpointScript(behaviour="no_answer"))
    await setup_queue(w, members=("101",))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    c1 = await arrive(w)
    w.clock.advance(5)
    c2 = await arrive(w, "19735550002")
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Ready")
    await w.settle()
    assert ringing(w) == {"101": c1}
    old = w.c.acd
    await old.stop()
    w.c.calls._observers.remove(old.calls_committed)
    w.c.calls._precommits.remove(old.calls_committing)
    w.c.agents._listeners.remove(old.agents_committed)
    new = AcdService(w.c.core, w.c.directory, w.c.calls, w.c.agents, w.c.skills)
    w.c.calls.add_precommit(new.calls_committing)
    w.c.calls.add_observer(new.calls_committed)
    w.c.agents.add_listener(new.agents_committed)
    w.c.acd = new
    w.clock.advance(3)
    await new.start()
    await w.settle()
    engine = new.engines[w.tenant]
    assert engine.line(w.queue) == [c1, c2]
    assert engine.calls[c1].arrived_at == engine.calls[c2].arrived_at - 5
    # the stale offer was stopped (no miss) and the agent rung anew for the first caller
    assert ringing(w) == {"101": c1}
    assert len([g for g in w.c.calls.calls[c1].legs.values() if g.number == "101"]) == 2
    assert w.c.agents.state(w.admin, w.tenant, w.ext["101"]).consecutive_missed == 0
    assert violations(engine) == []
    waiting = new.desk.waiting(w.admin, w.tenant, w.queue)
    assert [x.wait_seconds for x in waiting] == [8.0, 3.0]
