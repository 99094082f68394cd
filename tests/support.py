"""Test support: a core on memory adapters, the simulated switch and a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.clock import FakeClock
from callbridge.adapters.simswitch import SimulatedSwitch
from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.bootstrap import Container, build
from callbridge.domain.directory import PresenceType, QueueType
from callbridge.domain.tenancy import Level, Permission
from callbridge.ports.storage import Storage
from callbridge.service.auth import Actor, system_actor
from callbridge.settings import Settings


@dataclass
class World:
    """A running core with two tenants, ready for tests."""

    c: Container
    clock: FakeClock
    sim: SimulatedSwitch
    admin: Actor  # tenant admin of tenant A
    other_admin: Actor  # tenant admin of tenant B
    tenant: str
    other_tenant: str
    ext: dict[str, str] = field(default_factory=dict)  # number -> extension id (tenant A)
    queue: str = ""
    outbound_queue: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    async def settle(self, seconds: float = 0.0) -> None:
        """Advance the fake clock and let every resulting switch event be handled."""
        await settle(self.c, self.clock, seconds)


async def seed(c: Container) -> dict[str, object]:
    d = c.directory
    system = system_actor()
    await d.create_telco("Telco", telco_id="telco-1")
    everything = await d.create_role("Everything", list(Permission), role_id="role-all")
    tenants = {}
    for name in ("alpha", "beta"):
        t = await d.create_tenant(system, name, telco_id="telco-1", tenant_id=f"tenant-{name}")
        tenants[name] = t.id
        p = await d.create_principal(
            f"{name}-admin",
            Level.TENANT,
            "telco-1",
            [everything.id],
            tenant_id=t.id,
            principal_id=f"{name}-admin",
        )
        _, secret = await d.issue_token(p.id)
        tenants[f"{name}-token"] = secret
    exts = {}
    for number in ("101", "102", "103", "104"):
        e = await d.create_extension(
            system,
            tenants["alpha"],
            {"number": number, "firstname": f"Agent{number}", "is_agent": True},
            extension_id=f"ext-{number}",
        )
        exts[number] = e.id
    await d.create_extension(system, tenants["beta"], {"number": "101"}, extension_id="beta-101")
    q = await d.create_queue(
        system, tenants["alpha"], {"name": "Support", "extension": "300"}, queue_id="q-300"
    )
    oq = await d.create_queue(
        system,
        tenants["alpha"],
        {"name": "Outbound", "type": QueueType.VOICE_OUTBOUND, "caller_id": "18005550100"},
        queue_id="q-out",
    )
    await d.create_presence_option(system, tenants["alpha"], PresenceType.AWAY, "Coffee Break")
    await d.create_presence_option(system, tenants["alpha"], PresenceType.SIGN_OUT, "Sign Out")
    return {"tenants": tenants, "exts": exts, "queue": q.id, "outbound": oq.id}


async def make_world(storage: Storage | None = None) -> World:
    clock = FakeClock()
    sim = SimulatedSwitch(clock, default_answer_after=0.0)
    c = build(
        Settings(storage="memory"),
        clock=clock,
        storage=storage or MemoryStorage(),
        bus=MemoryEventBus(),
        switch=sim,
    )
    await c.start()
    data = await seed(c)
    tenants = data["tenants"]
    assert isinstance(tenants, dict)
    d = c.directory
    w = World(
        c=c,
        clock=clock,
        sim=sim,
        admin=d.actor_for(d.principals["alpha-admin"]),
        other_admin=d.actor_for(d.principals["beta-admin"]),
        tenant=tenants["alpha"],
        other_tenant=tenants["beta"],
        ext=dict(data["exts"]),  # type: ignore[call-overload]
        queue=str(data["queue"]),
        outbound_queue=str(data["outbound"]),
        tokens={"alpha": tenants["alpha-token"], "beta": tenants["beta-token"]},
    )
    return w


async def settle(c: Container, clock: FakeClock, seconds: float = 0.0) -> None:
    """Advance the fake clock and let every resulting switch event be handled."""
    clock.advance(seconds)
    for _ in range(100):
        await c.calls.settle()
        await c.agents.settle()
        await c.acd.settle()
        await asyncio.sleep(0)
        if clock.advance(0) == 0 and c.calls._inbox.empty() and c.acd.idle:
            return
    raise AssertionError("the system did not settle")


@contextlib.asynccontextmanager
async def served_app(app: Any) -> AsyncIterator[str]:
    """``app`` served by uvicorn in this event loop on a free loopback port: yields host:port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, lifespan="off", ws="websockets-sansio")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        sock.close()
