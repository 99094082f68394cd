"""The demo tenant's DIDs (#3): seeded once, written to demo-credentials.json, and routable."""

from __future__ import annotations

import json
from pathlib import Path

from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.clock import FakeClock
from callbridge.adapters.simswitch import SimulatedSwitch
from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.bootstrap import build
from callbridge.demo import TENANT_ID, seed_demo
from callbridge.domain.calls import CallState
from callbridge.settings import Settings


async def test_demo_dids_are_seeded_once_written_and_route(tmp_path: Path) -> None:
    clock = FakeClock()
    sim = SimulatedSwitch(clock, default_answer_after=0.0)
    c = build(
        Settings(storage="memory"),
        clock=clock,
        storage=MemoryStorage(),
        bus=MemoryEventBus(),
        switch=sim,
    )
    await c.start()
    try:
        path = tmp_path / "demo-credentials.json"
        data = await seed_demo(c, "http://demo", path)
        expected = {"+12677318112": "112", "+12677318386": "386"}
        assert {d["number"]: d["target"] for d in data["dids"]} == expected
        assert json.loads(path.read_text())["dids"] == data["dids"]
        again = await seed_demo(c, "http://demo", path)
        assert again["dids"] == data["dids"] and len(c.directory.dids) == 2
        leg = sim.inject_incoming("+19735550123", "+12677318386")
        for _ in range(20):
            await c.calls.settle()
            clock.advance(0)
        call = next(x for x in c.calls.calls.values() if leg in x.legs)
        assert call.tenant_id == TENANT_ID
        assert call.state in (CallState.QUEUED, CallState.ANSWERED)  # an agent may be Ready
    finally:
        await c.stop()
