"""Supervision over the native API: the flow, the error codes, idempotency, the permission."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests.support import World, make_world

from callbridge.adapters.simswitch import EndpointScript
from callbridge.api.native.app import create_app
from callbridge.domain.tenancy import Level, Permission

Api = tuple[World, httpx.AsyncClient, httpx.AsyncClient]


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    """The world, its tenant admin's client and an agent's client (no ``Call Monitor``)."""
    w = await make_world()
    d = w.c.directory
    role = await d.create_role(
        "Agent",
        [Permission.API, Permission.CALL_CONTROL, Permission.CALLS_VIEW],
        tenant_id=w.tenant,
    )
    agent = await d.create_principal(
        "agent", Level.TENANT, "telco-1", [role.id], tenant_id=w.tenant
    )
    _, secret = await d.issue_token(agent.id)
    transport = httpx.ASGITransport(app=create_app(w.c, manage_lifecycle=False))
    admin = httpx.AsyncClient(
        transport=transport,
        base_url="http://cb",
        headers={"Authorization": f"Bearer {w.tokens['alpha']}"},
    )
    agent_client = httpx.AsyncClient(
        transport=transport, base_url="http://cb", headers={"Authorization": f"Bearer {secret}"}
    )
    try:
        yield w, admin, agent_client
    finally:
        await admin.aclose()
        await agent_client.aclose()
        await w.c.stop()


async def connected(w: World, admin: httpx.AsyncClient) -> tuple[str, str, str]:
    r = await admin.post(
        f"/api/v1/tenants/{w.tenant}/calls", json={"extension_id": w.ext["101"], "target": "102"}
    )
    call_id = r.json()["id"]
    await w.settle()
    legs = (await admin.get(f"/api/v1/tenants/{w.tenant}/calls/{call_id}")).json()["legs"]
    by_number = {leg["number"]: lid for lid, leg in legs.items()}
    return call_id, by_number["101"], by_number["102"]


def error(r: httpx.Response) -> tuple[int, Any]:
    return r.status_code, r.json()["error"]["code"]


async def test_supervise_switch_and_end_over_http(api: Api) -> None:
    w, admin, _ = api
    call_id, agent, customer = await connected(w, admin)
    url = f"/api/v1/tenants/{w.tenant}/calls/{call_id}/supervision"
    body = {"extension_id": w.ext["103"], "mode": "listen", "agent_leg_id": agent}
    r1 = await admin.post(url, json=body, headers={"Idempotency-Key": "sup-1"})
    r2 = await admin.post(url, json=body, headers={"Idempotency-Key": "sup-1"})
    assert r1.status_code == r2.status_code == 202
    assert r2.headers["idempotent-replayed"] == "true"
    await w.settle()
    call = (await admin.get(f"/api/v1/tenants/{w.tenant}/calls/{call_id}")).json()
    supervisors = [lid for lid, leg in call["legs"].items() if leg["role"] == "supervisor"]
    assert len(supervisors) == 1  # the replay did not dial a second time
    sup = supervisors[0]
    assert call["legs"][sup]["supervision"] == {
        "mode": "listen",
        "agent_leg_id": agent,
        "active": True,
    }
    assert w.sim.hears(customer) == {agent} and w.sim.hears(sup) == {agent, customer}
    r = await admin.put(f"{url}/{sup}", json={"mode": "whisper"})
    assert r.status_code == 200 and r.json()["legs"][sup]["supervision"]["mode"] == "whisper"
    assert w.sim.hears(agent) == {customer, sup} and w.sim.hears(customer) == {agent}
    assert error(await admin.put(f"{url}/{sup}", json={"mode": "shout"})) == (
        422,
        "supervision_mode_invalid",
    )
    assert error(await admin.put(f"{url}/{agent}", json={"mode": "barge"})) == (
        409,
        "not_supervisor",
    )
    r = await admin.delete(f"{url}/{sup}")
    assert r.status_code == 200 and r.json()["legs"][sup]["state"] == "hungup"
    timeline = (await admin.get(f"/api/v1/tenants/{w.tenant}/calls/{call_id}/timeline")).json()
    assert [e["type"] for e in timeline if e["type"].startswith("supervision.")] == [
        "supervision.started",
        "supervision.mode_changed",
        "supervision.ended",
    ]


async def test_not_supervisable_and_invalid_mode(api: Api) -> None:
    w, admin, _ = api
    call_id, agent, _ = await connected(w, admin)
    url = f"/api/v1/tenants/{w.tenant}/calls/{call_id}/supervision"
    body = {"extension_id": w.ext["103"], "mode": "spy", "agent_leg_id": agent}
    assert error(await admin.post(url, json=body)) == (422, "supervision_mode_invalid")
    # a call whose target still rings has no answered agent leg to supervise
    w.sim.set_script("104", EndpointScript(answer_after=30))
    r = await admin.post(
        f"/api/v1/tenants/{w.tenant}/calls", json={"extension_id": w.ext["101"], "target": "104"}
    )
    ringing_call = r.json()["id"]
    await w.settle()
    ringing = next(
        leg.id for leg in w.c.calls.calls[ringing_call].legs.values() if leg.number == "104"
    )
    url = f"/api/v1/tenants/{w.tenant}/calls/{ringing_call}/supervision"
    body = {"extension_id": w.ext["103"], "mode": "listen", "agent_leg_id": ringing}
    assert error(await admin.post(url, json=body)) == (409, "not_supervisable")


async def test_an_agent_without_call_monitor_is_refused(api: Api) -> None:
    w, admin, agent_client = api
    call_id, agent, _ = await connected(w, admin)
    url = f"/api/v1/tenants/{w.tenant}/calls/{call_id}/supervision"
    body = {"extension_id": w.ext["103"], "mode": "listen", "agent_leg_id": agent}
    assert error(await agent_client.post(url, json=body)) == (403, "permission_denied")
    assert error(await agent_client.put(f"{url}/{agent}", json={"mode": "barge"})) == (
        403,
        "permission_denied",
    )
    assert all(leg.number != "103" for leg in w.c.calls.calls[call_id].legs.values())
    r = await admin.post(url, json=body)
    assert r.status_code == 202
