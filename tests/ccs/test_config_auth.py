"""CCS 4.1-4.14: the documented 401 and the missing-permission 400 of every endpoint, and the
documented 500, as exact bytes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.ccs.golden import assert_golden
from tests.ccs.world import API, EXT, OWN_TENANT, CcsWorld

from callbridge import demo

T = f"/tenants/{OWN_TENANT}"
#: endpoint -> (method, path, body, the permissions the agent is told it lacks)
ENDPOINTS: dict[str, tuple[str, str, Any, str]] = {
    "products": ("GET", "/products/", None, "Tenant Edit"),
    "roles": ("GET", "/roles/", None, "Tenant Edit"),
    "tenants": ("GET", "/tenants", None, "Tenants View/Tenant Edit"),
    "tenant_details": ("GET", T, None, "Tenants View/Tenant Edit"),
    "tenant_roles": ("GET", f"{T}/roles", None, "Tenants View/Tenant Edit"),
    "acds_own": ("GET", "/acds", None, "Voice IQs View/Voice OQs View"),
    "acds": ("GET", f"{T}/acds", None, "Voice IQs View/Voice OQs View"),
    "presence_options": ("GET", f"{T}/presence_options", None, "Tenants View/Tenant Edit"),
    "extensions": ("GET", f"{T}/extensions", None, "Tenants View/Tenant Edit"),
    "extensions_own": ("GET", "/extensions", None, "Tenants View/Tenant Edit"),
    "text_count": ("GET", f"{T}/text_count", None, "Tenants View/Tenant Edit"),
    "text_count_reset": (
        "POST",
        f"{T}/text_count",
        {"request": "reset_counter"},
        "Tenants View/Tenant Edit",
    ),
    "add_product": (
        "POST",
        T,
        {"request": "add_product", "product": demo.PRODUCTS[0][0]},
        "Tenant Edit",
    ),
    "delete_product": (
        "POST",
        T,
        {"request": "delete_product", "product": demo.TENANT_PRODUCTS[0]},
        "Tenant Edit",
    ),
    "update_tenant": ("PUT", T, {"max_agents": "50"}, "Tenant Edit"),
    "update_extension": (
        "PUT",
        f"{T}/extensions/{EXT['112']}/",
        {"monitor": "true"},
        "Tenant Edit",
    ),
}


@pytest.mark.parametrize("name", list(ENDPOINTS))
async def test_without_a_token(ccs: CcsWorld, name: str) -> None:
    method, path, body, _ = ENDPOINTS[name]
    async with ccs.client(None) as cl:
        r = await cl.request(method, f"{API}{path}", json=body)
    assert_golden(f"config_{name}_unauthorized", r)
    assert r.content == b'{"status":401,"reason":"Unauthorized"}'


@pytest.mark.parametrize("name", list(ENDPOINTS))
async def test_with_a_bad_token(ccs: CcsWorld, name: str) -> None:
    method, path, body, _ = ENDPOINTS[name]
    async with ccs.client(None) as cl:
        headers = {"Authorization": "Bearer cb_not-a-token"}
        r = await cl.request(method, f"{API}{path}", json=body, headers=headers)
    assert (r.status_code, r.content) == (401, b'{"status":401,"reason":"Unauthorized"}')


@pytest.mark.parametrize("name", list(ENDPOINTS))
async def test_without_the_permission(ccs: CcsWorld, name: str) -> None:
    method, path, body, missing = ENDPOINTS[name]
    before = ccs.c.directory.tenants[OWN_TENANT]
    async with ccs.client("agent") as cl:
        r = await cl.request(method, f"{API}{path}", json=body)
    assert_golden(f"config_{name}_no_permission", r)
    assert r.json() == {
        "success": False,
        "reason": f"Insufficient permissions: {missing} required",
    }
    assert ccs.c.directory.tenants[OWN_TENANT] == before


async def test_an_unexpected_failure_is_the_spec_500(
    ccs: CcsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(tenant_id: str, extensions: Any = None) -> Any:
        raise RuntimeError("storage exploded")

    monkeypatch.setattr(ccs.c.directory, "usage", broken)
    transport = httpx.ASGITransport(app=ccs.app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {ccs.tokens['telco']}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://ccs") as cl:
        r = await cl.get(f"{API}{T}", headers=headers)
    assert_golden("config_tenant_details_internal_error", r)
    assert r.content == b'{"success": true,"reason":"Internal Server Error"}'
