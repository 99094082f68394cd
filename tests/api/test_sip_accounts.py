"""SIP accounts of extensions: set or generate, shown once, stored as digest hashes only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.support import World, make_world

from callbridge.api.native.app import create_app
from callbridge.sip.credentials import ha1


@pytest.fixture
async def api() -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    w = await make_world()
    transport = httpx.ASGITransport(app=create_app(w.c, manage_lifecycle=False))
    client = httpx.AsyncClient(
        transport=transport,
        base_url="http://cb",
        headers={"Authorization": f"Bearer {w.tokens['alpha']}"},
    )
    try:
        yield w, client
    finally:
        await client.aclose()
        await w.c.stop()


async def test_generate_set_get_delete(api: tuple[World, httpx.AsyncClient]) -> None:
    w, cl = api
    url = f"/api/v1/tenants/{w.tenant}/extensions/{w.ext['101']}/sip-account"
    assert (await cl.get(url)).status_code == 404
    generated = (await cl.put(url, json={})).json()
    assert generated["username"] == "101" and generated["realm"] == "callbridge"
    assert len(generated["password"]) >= 20
    assert (await cl.get(url)).json() == {
        "extension_id": w.ext["101"],
        "username": "101",
        "realm": "callbridge",
    }
    r = await cl.put(url, json={"username": "agent.101", "password": "correct horse battery"})
    assert r.status_code == 200 and r.json()["password"] == "correct horse battery"
    cred = w.c.sip_accounts.lookup("agent.101")
    assert cred is not None and w.c.sip_accounts.lookup("101") is None
    assert cred.ha1_sha256 == ha1("SHA-256", "agent.101", "callbridge", "correct horse battery")
    stored = await w.c.core.storage.get("sip_credentials", "agent.101")
    assert stored is not None and "correct horse battery" not in str(stored)
    assert (await cl.delete(url)).status_code == 204
    assert w.c.sip_accounts.lookup("agent.101") is None


async def test_refusals(api: tuple[World, httpx.AsyncClient]) -> None:
    w, cl = api
    base = f"/api/v1/tenants/{w.tenant}/extensions"
    await cl.put(f"{base}/{w.ext['101']}/sip-account", json={})
    r = await cl.put(f"{base}/{w.ext['102']}/sip-account", json={"username": "101"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "sip_username_taken"
    r = await cl.put(f"{base}/{w.ext['102']}/sip-account", json={"username": "bad name"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "sip_username_invalid"
    r = await cl.put(f"{base}/{w.ext['102']}/sip-account", json={"password": "short"})
    assert r.status_code == 422
    beta = {"Authorization": f"Bearer {w.tokens['beta']}"}
    r = await cl.get(
        f"/api/v1/tenants/{w.other_tenant}/extensions/{w.ext['101']}/sip-account", headers=beta
    )
    assert r.status_code == 404
