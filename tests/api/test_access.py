"""Principals and tokens over the API: scoped, no privilege escalation, revocation is immediate."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.support import World, make_world

from callbridge.api.native.app import create_app
from callbridge.domain.tenancy import Permission


@pytest.fixture
async def api() -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    w = await make_world()
    transport = httpx.ASGITransport(app=create_app(w.c, manage_lifecycle=False))
    client = httpx.AsyncClient(transport=transport, base_url="http://cb")
    try:
        yield w, client
    finally:
        await client.aclose()
        await w.c.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_create_agent_issue_token_and_revoke(api: tuple[World, httpx.AsyncClient]) -> None:
    w, cl = api
    admin = bearer(w.tokens["alpha"])
    role = await w.c.directory.create_role(
        "Agent", [Permission.API, Permission.CALLS_VIEW], tenant_id=w.tenant
    )
    r = await cl.post(
        "/api/v1/principals",
        headers=admin,
        json={
            "name": "agent 101",
            "tenant_id": w.tenant,
            "extension_id": w.ext["101"],
            "role_ids": [role.id],
        },
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    issued = await cl.post(f"/api/v1/principals/{pid}/tokens", headers=admin, json={"name": "desk"})
    assert issued.status_code == 201
    secret = issued.json()["token"]
    me = await cl.get("/api/v1/me", headers=bearer(secret))
    assert me.json()["extension_id"] == w.ext["101"]
    listed = (await cl.get(f"/api/v1/principals/{pid}/tokens", headers=admin)).json()
    assert [t["name"] for t in listed] == ["desk"] and "token" not in listed[0]
    r = await cl.post(f"/api/v1/tokens/{issued.json()['id']}/revoke", headers=admin)
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert (await cl.get("/api/v1/me", headers=bearer(secret))).status_code == 401


async def test_no_escalation_and_no_cross_tenant(api: tuple[World, httpx.AsyncClient]) -> None:
    w, cl = api
    d = w.c.directory
    small = await d.create_role(
        "small", [Permission.API, Permission.TOKEN_ADMIN], tenant_id=w.tenant
    )
    p = await d.create_principal(
        "helpdesk", w.admin.principal.level, "telco-1", [small.id], tenant_id=w.tenant
    )
    _, secret = await d.issue_token(p.id)
    r = await cl.post(
        "/api/v1/principals",
        headers=bearer(secret),
        json={"name": "boss", "tenant_id": w.tenant, "role_ids": ["role-all"]},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_escalation"
    beta = bearer(w.tokens["beta"])
    r = await cl.post("/api/v1/principals", headers=beta, json={"name": "x", "tenant_id": w.tenant})
    assert r.status_code == 404
    r = await cl.post("/api/v1/principals/alpha-admin/tokens", headers=beta, json={})
    assert r.status_code == 404
    r = await cl.post("/api/v1/principals", headers=beta, json={"name": "t", "level": "telco"})
    assert r.status_code == 403
    names = {x["name"] for x in (await cl.get("/api/v1/principals", headers=beta)).json()}
    assert names == {"beta-admin"}
