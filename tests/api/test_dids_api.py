"""The DID routes of the native API (#3): who may do what, conflicts, idempotency, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.support import World, make_world

from callbridge.api.native.app import create_app
from callbridge.domain.tenancy import Level, Permission


class Clients:
    def __init__(self, w: World, transport: httpx.ASGITransport, tokens: dict[str, str]) -> None:
        self.w = w
        self.by_name = {
            name: httpx.AsyncClient(
                transport=transport,
                base_url="http://cb",
                headers={"Authorization": f"Bearer {token}"},
            )
            for name, token in tokens.items()
        }

    def __getitem__(self, name: str) -> httpx.AsyncClient:
        return self.by_name[name]


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    w = await make_world()
    d = w.c.directory
    telco = await d.create_principal("telco-admin", Level.TELCO, "telco-1", ["role-all"])
    role = await d.create_role("Agent", [Permission.API, Permission.TENANTS_VIEW])
    agent = await d.create_principal(
        "agent-101", Level.TENANT, "telco-1", [role.id], tenant_id=w.tenant, extension_id="ext-101"
    )
    tokens = dict(w.tokens)
    tokens["telco"] = (await d.issue_token(telco.id))[1]
    tokens["agent"] = (await d.issue_token(agent.id))[1]
    cl = Clients(w, httpx.ASGITransport(app=create_app(w.c, manage_lifecycle=False)), tokens)
    try:
        yield cl
    finally:
        for client in cl.by_name.values():
            await client.aclose()
        await w.c.stop()


async def test_telco_assigns_tenant_admin_re_points_agent_cannot(clients: Clients) -> None:
    w = clients.w
    url = f"/api/v1/tenants/{w.tenant}/dids"
    body = {"number": "+1 415-555-0100", "target": "102", "description": "sales"}
    r = await clients["alpha"].post(url, json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "telco_only"
    r = await clients["telco"].post(url, json=body)
    assert r.status_code == 201, r.text
    did = r.json()
    assert (did["number"], did["target"], did["tenant_id"]) == ("+14155550100", "102", w.tenant)
    assert (await clients["alpha"].get(url)).json() == [did]
    assert (await clients["agent"].get(f"{url}/{did['id']}")).json() == did
    r = await clients["agent"].patch(f"{url}/{did['id']}", json={"target": "103"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
    r = await clients["alpha"].patch(f"{url}/{did['id']}", json={"target": "300"})
    assert r.status_code == 200 and r.json()["target"] == "300"
    assert w.c.directory.did_for("+14155550100").target == "300"  # type: ignore[union-attr]
    # (#4) the caller priority: default 0, the tenant's admin sets it, 0..9
    assert did["priority"] == 0
    r = await clients["alpha"].patch(f"{url}/{did['id']}", json={"priority": 7})
    assert r.status_code == 200 and r.json()["priority"] == 7
    assert (await clients["alpha"].get(url)).json()[0]["priority"] == 7
    r = await clients["alpha"].patch(f"{url}/{did['id']}", json={"priority": 10})
    assert r.status_code == 422 and r.json()["error"]["code"] == "request_invalid"
    r = await clients["alpha"].delete(f"{url}/{did['id']}")
    assert r.status_code == 403
    # the other tenant's admin: not found, whatever the verb
    other = f"/api/v1/tenants/{w.other_tenant}/dids/{did['id']}"
    for method in ("GET", "PATCH", "DELETE"):
        r = await clients["beta"].request(method, other, json={"target": "101"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "did_not_found"
    assert (await clients["telco"].delete(f"{url}/{did['id']}")).status_code == 204
    assert (await clients["alpha"].get(url)).json() == []


async def test_conflicts_and_refusals_have_stable_codes(clients: Clients) -> None:
    w, telco = clients.w, clients["telco"]
    url = f"/api/v1/tenants/{w.tenant}/dids"
    assert (await telco.post(url, json={"number": "4155550100", "target": "102"})).is_success
    r = await telco.post(
        f"/api/v1/tenants/{w.other_tenant}/dids", json={"number": "415 555 0100", "target": "101"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "did_exists"
    r = await telco.post(url, json={"number": "4155550101", "target": "19735550000"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "did_target_invalid"
    r = await telco.post(url, json={"number": "4155550102", "target": "102", "priority": 3})
    assert r.status_code == 201 and r.json()["priority"] == 3
    r = await clients["alpha"].delete(f"/api/v1/tenants/{w.tenant}/extensions/{w.ext['102']}")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "did_target_in_use"
    assert r.json()["error"]["details"]["number"] == "102"


async def test_an_idempotent_create_is_not_applied_twice(clients: Clients) -> None:
    w, telco = clients.w, clients["telco"]
    url = f"/api/v1/tenants/{w.tenant}/dids"
    body = {"number": "+14155550100", "target": "300"}
    first = await telco.post(url, json=body, headers={"Idempotency-Key": "did-1"})
    again = await telco.post(url, json=body, headers={"Idempotency-Key": "did-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert len((await telco.get(url)).json()) == 1


async def test_openapi_documents_the_did_routes(clients: Clients) -> None:
    spec = (await clients["alpha"].get("/api/v1/openapi.json")).json()
    assert set(spec["paths"]["/api/v1/tenants/{tenant_id}/dids"]) == {"get", "post"}
    assert set(spec["paths"]["/api/v1/tenants/{tenant_id}/dids/{did_id}"]) == {
        "get",
        "patch",
        "delete",
    }
    assert "Did" in spec["components"]["schemas"]
