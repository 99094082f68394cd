"""The CCS test world: the demo data (the spec's examples) plus a second telco with its own
tenant, on memory adapters, the simulated switch, a fake clock and stable ids.

Users (keys of :attr:`CcsWorld.tokens`):

* ``telco``        Broadview's telco admin (reaches CCSLab15)
* ``tenant_admin`` CCSLab15's tenant admin
* ``agent``        Rob Masters (112) of CCSLab15: roles API + "US1398 (Voice Help)"
* ``other_telco``  the other telco's admin (reaches OtherLab only)
* ``other_admin``  OtherLab's tenant admin
* ``other_agent``  OtherLab's agent 112

"Own tenant" is CCSLab15 (:data:`callbridge.demo.TENANT_ID`), "other tenant" is OtherLab
(:data:`OTHER_TENANT`): its extension, queue and presence ids are in :data:`OTHER`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.routing import Mount
from tests.support import settle

from callbridge import demo
from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.clock import FakeClock
from callbridge.adapters.simswitch import SimulatedSwitch
from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.api.native.app import create_app
from callbridge.bootstrap import Container, build
from callbridge.domain.directory import PresenceType, QueueType
from callbridge.domain.tenancy import Level
from callbridge.service.auth import system_actor
from callbridge.settings import Settings

API = "/6/v2/api"
OWN_TENANT = demo.TENANT_ID
OTHER_TELCO = "bb000000-0000-4000-8000-000000000001"
OTHER_TENANT = "bb000000-0000-4000-8000-000000000002"
OTHER: dict[str, str] = {
    "ext_112": "bb000000-0000-4000-8000-000000000112",
    "queue": "bb000000-0000-4000-8000-000000000386",
    "outbound": "bb000000-0000-4000-8000-000000000388",
    "away": "bb000000-0000-4000-8000-00000000a001",
    "role": "bb000000-0000-4000-8000-00000000e001",
}
EXT = {number: spec[0] for number, spec in demo.EXTENSIONS.items()}
QUEUE = {name: spec[0] for name, spec in demo.QUEUES.items()}


def stable_ids() -> tuple[Any, Any]:
    """Id generators that give the same ids in every run (golden files quote them)."""
    n = itertools.count(1)
    m = itertools.count(1)
    return (
        lambda: f"00000000-0000-4000-8000-{next(n):012d}",
        lambda: f"CALL{next(m):09d}",  # 13 upper-case alphanumerics, like 0BS9DD02LEMUI
    )


@dataclass
class CcsWorld:
    c: Container
    clock: FakeClock
    sim: SimulatedSwitch
    app: Any
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, user: str | None) -> httpx.AsyncClient:
        """A client for ``user`` (a key of :attr:`tokens`), or without a token for ``None``."""
        headers = {"Content-Type": "application/json"}
        if user is not None:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://ccs", headers=headers
        )

    async def settle(self, seconds: float = 0.0) -> None:
        """Advance the fake clock and let every resulting switch event be handled."""
        await settle(self.c, self.clock, seconds)


async def make_ccs_world(tmp_path: Path) -> CcsWorld:
    clock = FakeClock()
    sim = SimulatedSwitch(clock, default_answer_after=0.0)
    ids, call_ids = stable_ids()
    c = build(
        Settings(storage="memory"),
        clock=clock,
        storage=MemoryStorage(),
        bus=MemoryEventBus(),
        switch=sim,
        ids=ids,
        call_ids=call_ids,
    )
    await c.start()
    data = await demo.seed_demo(c, "http://ccs", tmp_path / "demo-credentials.json")
    tokens = {
        "telco": data["tokens"]["telco_admin"],
        "tenant_admin": data["tokens"]["tenant_admin"],
        "agent": data["tokens"]["agent"],
    }
    tokens.update(await _seed_other(c))
    w = CcsWorld(c=c, clock=clock, sim=sim, app=_app_for(c))
    w.tokens = tokens
    return w


_shared_app: FastAPI | None = None


def _app_for(c: Container) -> FastAPI:
    """The ASGI app serving ``c``. Building FastAPI's route tables takes about half a second,
    most of a test's set-up, so one app is built per process and pointed at each test's container:
    every route reads the container from ``app.state`` of the (sub-)application per request."""
    global _shared_app
    if _shared_app is None:
        _shared_app = create_app(c, manage_lifecycle=False)
    _shared_app.state.container = c
    for route in _shared_app.routes:
        if isinstance(route, Mount) and isinstance(route.app, FastAPI):
            route.app.state.container = c
    return _shared_app


async def _seed_other(c: Container) -> dict[str, str]:
    """A second telco with one tenant, mirroring the demo's shape on a smaller scale."""
    d = c.directory
    system = system_actor()
    await d.create_telco("Other Telco", telco_id=OTHER_TELCO)
    await d.create_tenant(system, "OtherLab", telco_id=OTHER_TELCO, tenant_id=OTHER_TENANT)
    await d.create_extension(
        system,
        OTHER_TENANT,
        {"number": "112", "firstname": "Otto", "lastname": "Other", "is_agent": True},
        extension_id=OTHER["ext_112"],
    )
    await d.create_queue(
        system,
        OTHER_TENANT,
        {"name": "OQ386", "extension": "386", "member_extension_ids": [OTHER["ext_112"]]},
        queue_id=OTHER["queue"],
    )
    await d.create_queue(
        system,
        OTHER_TENANT,
        {"name": "OOut", "type": QueueType.VOICE_OUTBOUND, "caller_id": "2125550100"},
        queue_id=OTHER["outbound"],
    )
    await d.create_presence_option(
        system, OTHER_TENANT, PresenceType.AWAY, "Coffee Break", option_id=OTHER["away"]
    )
    await d.create_role("Other Voice", demo.AGENT_PERMISSIONS, OTHER_TENANT, role_id=OTHER["role"])
    roles = {key: spec[0] for key, spec in demo.ROLES.items()}
    users = {
        "other_telco": ("Other Telco Admin", Level.TELCO, [roles["telco_admin"]], None),
        "other_admin": ("OtherLab Admin", Level.TENANT, [roles["tenant_admin"]], None),
        "other_agent": ("Otto Other", Level.TENANT, [roles["api"], OTHER["role"]], "ext_112"),
    }
    tokens: dict[str, str] = {}
    for key, (name, level, role_ids, ext) in users.items():
        p = await d.create_principal(
            name,
            level,
            OTHER_TELCO,
            role_ids,
            tenant_id=OTHER_TENANT if level is Level.TENANT else None,
            extension_id=OTHER[ext] if ext else None,
        )
        _, tokens[key] = await d.issue_token(p.id)
    return tokens
