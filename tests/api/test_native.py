"""The native API over HTTP (in-process ASGI): auth, errors, tenancy, idempotency, the call flow."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.support import World, make_world

from callbridge.api.native.app import create_app
from callbridge.service.auth import system_actor


@pytest.fixture
async def api() -> AsyncIterator[tuple[World, httpx.AsyncClient, httpx.AsyncClient]]:
    w = await make_world()
    app = create_app(w.c, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    alpha = httpx.AsyncClient(
        transport=transport,
        base_url="http://cb",
        headers={"Authorization": f"Bearer {w.tokens['alpha']}"},
    )
    beta = httpx.AsyncClient(
        transport=transport,
        base_url="http://cb",
        headers={"Authorization": f"Bearer {w.tokens['beta']}"},
    )
    try:
        yield w, alpha, beta
    finally:
        await alpha.aclose()
        await beta.aclose()
        await w.c.stop()


async def test_health_and_openapi(api: tuple[World, httpx.AsyncClient, httpx.AsyncClient]) -> None:
    _, alpha, _ = api
    assert (await alpha.get("/healthz")).json() == {"status": "ok"}
    assert (await alpha.get("/readyz")).json() == {"status": "ready"}
    spec = (await alpha.get("/api/v1/openapi.json")).json()
    assert spec["info"]["title"] == "callbridge"
    for path in (
        "/api/v1/tenants/{tenant_id}/calls",
        "/api/v1/tenants/{tenant_id}/calls/{call_id}/legs/{leg_id}/hold",
        "/api/v1/tenants/{tenant_id}/parking/{slot}/unpark",
        "/api/v1/tenants/{tenant_id}/cdrs",
        "/api/v1/tenants/{tenant_id}/events/stream",
        "/api/v1/sim/endpoints/{number}",
    ):
        assert path in spec["paths"], path
    assert (await alpha.get("/api/v1/docs")).status_code == 200


async def test_requests_without_or_with_bad_token_get_401(
    api: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    w, alpha, _ = api
    anon = httpx.AsyncClient(transport=alpha._transport, base_url="http://cb")
    try:
        r = await anon.get(f"/api/v1/tenants/{w.tenant}/extensions")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthenticated"
        r = await anon.get("/api/v1/me", headers={"Authorization": "Bearer cb_wrong"})
        assert r.status_code == 401
    finally:
        await anon.aclose()


async def test_error_shape_for_validation_and_unknown_route(
    api: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    w, alpha, _ = api
    r = await alpha.post(f"/api/v1/tenants/{w.tenant}/calls", json={"extension_id": w.ext["101"]})
    assert r.status_code == 422
    body = r.json()["error"]
    assert (
        body["code"] == "request_invalid"
        and body["details"]["problems"][0]["field"] == "body.target"
    )
    r = await alpha.post(
        f"/api/v1/tenants/{w.tenant}/calls", json={"extension_id": w.ext["101"], "target": "1x"}
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "number_malformed"
    r = await alpha.get("/api/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "route_not_found"


async def test_another_tenants_objects_are_not_found(
    api: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    """Every tenant-scoped route of the OpenAPI document, called by another tenant's admin."""
    w, alpha, beta = api
    r = await alpha.post(
        f"/api/v1/tenants/{w.tenant}/calls", json={"extension_id": w.ext["101"], "target": "102"}
    )
    call = r.json()
    await w.settle()
    await alpha.post(
        f"/api/v1/tenants/{w.tenant}/calls/{call['id']}/legs/{next(iter(call['legs']))}/park",
        json={},
    )
    leg = next(iter(w.c.calls.calls[call["id"]].legs))
    option = w.c.directory.presence_options_of(w.tenant)[0].id
    skill = await w.c.skills.create_skill(w.admin, w.tenant, "French")
    did = await w.c.dids.create(system_actor(), w.tenant, "+14155550100", "102")
    ids = {
        "did_id": did.id,
        "skill_id": skill.id,
        "extension_id": w.ext["101"],
        "queue_id": w.queue,
        "call_id": call["id"],
        "leg_id": leg,
        "option_id": option,
        "product_id": "p",
        "slot": "701",
    }
    bodies = {
        "target": "103",
        "extension_id": w.ext["101"],
        "name": "Ready",
        "from": "19735550000",
        "to": "101",
        "number": "150",
        "type": "away",
        "digits": "1",
        "other_call_id": call["id"],
        "proficiency": 50,
        "priority": 1,
        "skills": [],
        "queue_id": w.queue,
        "mode": "listen",
        "agent_leg_id": leg,
    }
    spec = (await alpha.get("/api/v1/openapi.json")).json()
    checked = 0
    covered: set[str] = set()
    for path, methods in spec["paths"].items():
        if "{tenant_id}" not in path:
            continue
        for method in methods:
            for tenant in (w.tenant, w.other_tenant):
                url = path.format(tenant_id=tenant, **ids)
                if tenant == w.other_tenant and url == path.format(
                    tenant_id=tenant, **{k: "x" for k in ids}
                ):
                    continue  # no alpha id in this path: beta's own collection
                body = dict(bodies)
                if path.endswith("/queues"):
                    body.update(type="voice_queues", extension="390")
                r = await beta.request(method.upper(), url, json=body)
                assert r.status_code == 404, (method, url, r.status_code, r.text)
                checked += 1
                covered.add(path.removeprefix("/api/v1/tenants/{tenant_id}"))
    assert checked > 40
    assert {  # the contact-center routes are covered too
        "/agents/{extension_id}/state",
        "/agents/{extension_id}/sign-in",
        "/agents/{extension_id}/sign-out",
        "/agents/{extension_id}/skills/{skill_id}",
        "/skills/{skill_id}",
        "/queues/{queue_id}/members/{extension_id}",
        "/dids",
        "/dids/{did_id}",
    } <= covered
    # and nothing of alpha's changed
    r = await alpha.get(f"/api/v1/tenants/{w.tenant}/calls/{call['id']}")
    assert r.status_code == 200 and r.json()["state"] == "answered"
    assert w.c.calls.parking_lot(w.admin, w.tenant).slots["701"].leg_id == leg
    assert (
        await alpha.get(f"/api/v1/tenants/{w.tenant}/extensions/{w.ext['101']}")
    ).status_code == 200
    assert w.c.directory.dids[did.id] == did


async def test_tenant_list_shows_only_own_tenant(
    api: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    w, alpha, _ = api
    r = await alpha.get("/api/v1/tenants")
    assert [t["id"] for t in r.json()] == [w.tenant]


async def test_idempotency_replay_and_conflict(
    api: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    w, alpha, beta = api
    body = {"number": "150", "firstname": "New"}
    url = f"/api/v1/tenants/{w.tenant}/extensions"
    first = await alpha.post(url, json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = await alpha.post(url, json=body, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert [e["number"] for e in (await alpha.get(url)).json()].count("150") == 1
    other = await alpha.post(url, json={"number": "151"}, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    # keys are per principal: beta may use the same key for its own request
    r = await beta.post(
        f"/api/v1/tenants/{w.other_tenant}/extensions", json=body, headers={"Idempotency-Key": "k1"}
    )
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers


async def test_idempotent_hold_is_not_applied_twice(
    api: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    w, alpha, _ = api
    call = (
        await alpha.post(
            f"/api/v1/tenants/{w.tenant}/calls",
            json={"extension_id": w.ext["101"], "target": "102"},
        )
    ).json()
    await w.settle()
    leg = next(
        lid
        for lid, leg in (await alpha.get(f"/api/v1/tenants/{w.tenant}/calls/{call['id']}"))
        .json()["legs"]
        .items()
        if leg["number"] == "102"
    )
    url = f"/api/v1/tenants/{w.tenant}/calls/{call['id']}/legs/{leg}/hold"
    r1 = await alpha.post(url, headers={"Idempotency-Key": "hold-1"})
    r2 = await alpha.post(url, headers={"Idempotency-Key": "hold-1"})
    assert r1.status_code == r2.status_code == 200
    r3 = await alpha.post(url, headers={"Idempotency-Key": "hold-2"})
    assert r3.status_code == 409 and r3.json()["error"]["code"] == "leg_already_held"


async def test_newcomer_flow_over_http(
    api: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    """Originate, hold, unhold, mute, transfer, park, unpark, conference, kick, suppress, kill."""
    w, cl, _ = api
    t = f"/api/v1/tenants/{w.tenant}"
    call = (
        await cl.post(f"{t}/calls", json={"extension_id": w.ext["101"], "target": "102"})
    ).json()
    await w.settle()
    cid = call["id"]

    async def legs() -> dict[str, str]:
        data = (await cl.get(f"{t}/calls/{cid}")).json()
        return {leg["number"]: lid for lid, leg in data["legs"].items() if leg["state"] != "hungup"}

    async def ok(method: str, url: str, json: object = None) -> dict[str, object]:
        r = await cl.request(method, url, json=json)
        assert r.status_code < 300, r.text
        result: dict[str, object] = r.json()
        return result

    lg = await legs()
    await ok("POST", f"{t}/calls/{cid}/recording")
    await ok("POST", f"{t}/calls/{cid}/legs/{lg['102']}/hold")
    await ok("POST", f"{t}/calls/{cid}/legs/{lg['102']}/unhold")
    await ok("POST", f"{t}/calls/{cid}/legs/{lg['101']}/mute")
    await ok("POST", f"{t}/calls/{cid}/legs/{lg['101']}/unmute")
    await ok("POST", f"{t}/calls/{cid}/recording/suppress")
    await ok("POST", f"{t}/calls/{cid}/recording/unsuppress")
    await ok("POST", f"{t}/calls/{cid}/legs/{lg['102']}/transfer", {"target": "103"})
    await w.settle()
    lg = await legs()
    assert set(lg) == {"102", "103"}
    parked = await ok("POST", f"{t}/calls/{cid}/legs/{lg['102']}/park", {})
    assert parked["slot"] == "701"
    assert (await cl.get(f"{t}/parking")).json()["slots"]["701"]["leg_id"] == lg["102"]
    await ok("POST", f"{t}/parking/701/unpark", {"extension_id": w.ext["104"]})
    await w.settle()
    await ok("POST", f"{t}/calls/{cid}/parties", {"target": "101"})
    await w.settle()
    lg = await legs()
    assert set(lg) == {"102", "104", "101"}
    assert w.sim.hears(lg["102"]) == {lg["104"], lg["101"]}
    await ok("POST", f"{t}/calls/{cid}/legs/{lg['101']}/kick")
    await ok("POST", f"{t}/calls/{cid}/kill")
    r = await cl.get(f"{t}/calls/{cid}")
    assert r.status_code == 404
    cdr = (await cl.get(f"{t}/cdrs/{cid}")).json()
    assert cdr["cause"] == "killed" and len(cdr["suppressions"]) == 1
    timeline = [e["type"] for e in (await cl.get(f"{t}/calls/{cid}/timeline")).json()]
    for expected in (
        "leg.held",
        "leg.unheld",
        "leg.muted",
        "leg.unmuted",
        "recording.suppressed",
        "recording.unsuppressed",
        "leg.transferring",
        "leg.parked",
        "leg.unparked",
        "bridge.became_conference",
        "recording.stopped",
        "call.ended",
    ):
        assert expected in timeline, expected
    page = (
        await cl.get(f"/api/v1/tenants/{w.tenant}/events", params={"after": 0, "limit": 1000})
    ).json()
    seqs = [e["seq"] for e in page["items"]]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))


async def test_cdr_search(api: tuple[World, httpx.AsyncClient, httpx.AsyncClient]) -> None:
    w, cl, _ = api
    t = f"/api/v1/tenants/{w.tenant}"
    for target in ("102", "103", "103"):
        call = (
            await cl.post(f"{t}/calls", json={"extension_id": w.ext["101"], "target": target})
        ).json()
        await w.settle(60)
        await cl.post(f"{t}/calls/{call['id']}/kill")
    r = (await cl.get(f"{t}/cdrs", params={"called_number": "103"})).json()
    assert r["total"] == 2 and [x["to_number"] for x in r["items"]] == ["103", "103"]
    r = (
        await cl.get(f"{t}/cdrs", params={"calling_number": "101", "limit": 1, "offset": 1})
    ).json()
    assert r["total"] == 3 and len(r["items"]) == 1
    r = (await cl.get(f"{t}/cdrs", params={"extension_id": w.ext["102"]})).json()
    assert r["total"] == 1
    r = (await cl.get(f"{t}/cdrs", params={"started_from": "2026-01-01T09:01:00Z"})).json()
    assert r["total"] == 2
    r = await cl.get(f"{t}/cdrs", params={"started_from": "2026-01-01T09:01:00"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "datetime_naive"


async def test_sim_endpoints_and_inbound(
    api: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    w, cl, _ = api
    r = await cl.put("/api/v1/sim/endpoints/19735550000", json={"behaviour": "busy"})
    assert r.status_code == 200
    assert (await cl.get("/api/v1/sim/endpoints")).json()["19735550000"]["behaviour"] == "busy"
    r = await cl.put("/api/v1/sim/endpoints/19735550000", json={"behaviour": "dance"})
    assert r.status_code == 422
    r = await cl.post(
        f"/api/v1/tenants/{w.tenant}/sim/calls", json={"from": "19735550000", "to": "101"}
    )
    assert r.status_code == 202
    await w.settle()
    call = (await cl.get(f"/api/v1/tenants/{w.tenant}/calls/{r.json()['call_id']}")).json()
    assert call["state"] == "answered" and call["origin"] == "inbound"
    assert (await cl.delete("/api/v1/sim/endpoints/19735550000")).status_code == 204


async def test_agent_state_and_extension_limits(
    api: tuple[World, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    w, cl, _ = api
    t = f"/api/v1/tenants/{w.tenant}"
    r = await cl.put(f"{t}/extensions/{w.ext['101']}/agent-state", json={"name": "Coffee Break"})
    assert r.status_code == 200 and r.json()["state"]["presence"] == "away"
    r = await cl.put(f"{t}/extensions/{w.ext['101']}/agent-state", json={"name": "Beach"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "presence_option_unknown"
    r = await cl.patch(f"/api/v1/tenants/{w.tenant}", json={"max_agents": 4})
    assert r.status_code == 200
    r = await cl.post(f"{t}/extensions", json={"number": "160", "is_agent": True})
    assert r.status_code == 422 and r.json()["error"]["code"] == "max_agents_exceeded"
    r = await cl.post(f"{t}/extensions", json={"number": "101"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "number_in_use"
