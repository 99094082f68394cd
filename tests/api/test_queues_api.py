"""The native API for waiting calls and live statistics (over in-process ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.service.acd_support import arrive, setup_queue
from tests.support import World, make_world

from callbridge.adapters.simswitch import EndpointScript
from callbridge.api.native.app import create_app
from callbridge.domain.tenancy import Level, Permission


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


async def test_waiting_calls_actions_and_stats_over_http(
    api: tuple[World, httpx.AsyncClient],
) -> None:
    w, cl = api
    await setup_queue(w, members=("101",))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    c1, c2 = await arrive(w), await arrive(w, "19735550002")
    w.clock.advance(12)
    q = f"/api/v1/tenants/{w.tenant}/queues/{w.queue}"
    r = await cl.get(f"{q}/waiting")
    assert r.status_code == 200
    assert [(x["call_id"], x["position"], x["wait_seconds"]) for x in r.json()] == [
        (c1, 1, 12.0),
        (c2, 2, 12.0),
    ]
    r = await cl.get(f"{q}/stats")
    stats = r.json()
    assert (stats["waiting"], stats["longest_wait_seconds"], stats["agents_away"]) == (2, 12.0, 1)
    assert stats["service_level"] is None
    # re-prioritise (#4): the later caller goes first; out of range is refused
    r = await cl.post(f"{q}/waiting/{c2}/priority", json={"priority": 10})
    assert r.status_code == 422 and r.json()["error"]["code"] == "request_invalid"
    r = await cl.post(f"{q}/waiting/{c2}/priority", json={"priority": 3})
    assert r.status_code == 204
    r = await cl.get(f"{q}/waiting")
    assert [(x["call_id"], x["position"], x["priority"]) for x in r.json()] == [
        (c2, 1, 3),
        (c1, 2, 0),
    ]
    r = await cl.post(f"{q}/waiting/nope/priority", json={"priority": 3})
    assert r.status_code == 404 and r.json()["error"]["code"] == "queue_call_not_found"
    # a transfer with an idempotency key is carried out once; the replay answers the same
    w.sim.set_script("103", EndpointScript(behaviour="no_answer"))
    url = f"{q}/waiting/{c1}/transfer"
    first = await cl.post(url, json={"target": "103"}, headers={"Idempotency-Key": "t1"})
    assert first.status_code == 204
    again = await cl.post(url, json={"target": "103"}, headers={"Idempotency-Key": "t1"})
    assert again.status_code == 204 and again.headers.get("idempotent-replayed") == "true"
    await w.settle()
    assert [g.number for g in w.c.calls.calls[c1].live_legs()] == ["19735550000", "103"]
    r = await cl.post(f"{q}/waiting/{c1}/kill")
    assert r.status_code == 404 and r.json()["error"]["code"] == "queue_call_not_found"
    r = await cl.post(f"{q}/waiting/{c2}/callback", json={"number": "19735550002"})
    assert r.status_code == 204
    r = await cl.get(f"{q}/waiting")
    assert [(x["call_id"], x["callback_number"]) for x in r.json()] == [(c2, "19735550002")]
    r = await cl.post(f"{q}/waiting/{c2}/kill")
    assert r.status_code == 204
    assert (await cl.get(f"{q}/waiting")).json() == []
    r = await cl.get(f"/api/v1/tenants/{w.tenant}/agents/{w.ext['101']}/stats")
    assert r.status_code == 200 and r.json()["presence"] == "Coffee Break"
    spec = (await cl.get("/api/v1/openapi.json")).json()
    for action in ("transfer", "move", "kill", "pick", "callback", "priority"):
        assert (
            f"/api/v1/tenants/{{tenant_id}}/queues/{{queue_id}}/waiting/{{call_id}}/{action}"
            in (spec["paths"])
        )


async def test_waiting_calls_need_permissions(api: tuple[World, httpx.AsyncClient]) -> None:
    w, cl = api
    d = w.c.directory
    role = await d.create_role("Viewer", [Permission.API, Permission.QUEUES_VIEW])
    p = await d.create_principal("viewer", Level.TENANT, "telco-1", [role.id], tenant_id=w.tenant)
    _, secret = await d.issue_token(p.id)
    await setup_queue(w, members=("101",))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    c1 = await arrive(w)
    viewer = {"Authorization": f"Bearer {secret}"}
    q = f"/api/v1/tenants/{w.tenant}/queues/{w.queue}"
    assert (await cl.get(f"{q}/waiting", headers=viewer)).status_code == 200
    r = await cl.post(f"{q}/waiting/{c1}/kill", headers=viewer)
    assert r.status_code == 403
    r = await cl.post(f"{q}/waiting/{c1}/priority", json={"priority": 5}, headers=viewer)
    assert r.status_code == 403  # Call Control, as the other waiting-call actions (#4)
