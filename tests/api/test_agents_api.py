"""The native API for agents, skills, queue settings and members."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.support import World, make_world

from callbridge.api.native.app import create_app


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


async def test_agent_state_has_the_ccs_shape_and_durations(
    api: tuple[World, httpx.AsyncClient],
) -> None:
    w, cl = api
    a = f"/api/v1/tenants/{w.tenant}/agents/{w.ext['101']}"
    r = await cl.get(f"{a}/state")
    body = r.json()
    assert r.status_code == 200
    assert body["agent_state"]["state"] == {"type": "sign_out", "name": "Sign Out"}
    assert body["phone_state"]["state"] == "Idle"
    assert body["queue_state"] == {
        "state": "None",
        "queue": "",
        "queue_id": None,
        "since": None,
        "duration": "0",
        "duration_s": 0.0,
    }
    assert body["consecutive_missed"] == 0
    r = await cl.post(f"{a}/sign-in", json={})
    assert r.status_code == 200
    w.clock.advance(3 * 3600 + 62)
    body = (await cl.get(f"{a}/state")).json()
    assert body["agent_state"]["state"] == {"type": "ready", "name": "Ready"}
    assert body["agent_state"]["duration"] == "3:01:02"
    assert body["agent_state"]["duration_s"] == 3 * 3600 + 62
    r = await cl.post(f"{a}/sign-in", json={})
    assert r.status_code == 409 and r.json()["error"]["code"] == "agent_already_signed_in"
    r = await cl.put(f"{a}/state", json={"name": "Coffee Break"})
    assert r.json()["agent_state"]["state"] == {"type": "away", "name": "Coffee Break"}
    assert r.json()["agent_state"]["duration"] == "0:00:00"
    r = await cl.put(f"{a}/state", json={"name": "Coffee Break"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "agent_already_away"
    r = await cl.post(f"{a}/sign-out", json={"name": "Lunch"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "presence_option_unknown"
    r = await cl.post(f"{a}/sign-out", json={})
    assert r.json()["agent_state"]["state"] == {"type": "sign_out", "name": "Sign Out"}
    # the older path shows the same
    old = (await cl.get(f"/api/v1/tenants/{w.tenant}/extensions/{w.ext['101']}/agent-state")).json()
    assert old["agent_state"] == r.json()["agent_state"] and old["state"]["presence"] == "sign_out"
    listed = (await cl.get(f"/api/v1/tenants/{w.tenant}/agents")).json()
    assert [x["number"] for x in listed] == ["101", "102", "103", "104"]


async def test_queue_state_while_talking_on_a_queue_call(
    api: tuple[World, httpx.AsyncClient],
) -> None:
    from tests.service.test_agents import offer

    w, cl = api
    await offer(w, "101")
    w.clock.advance(65)
    body = (await cl.get(f"/api/v1/tenants/{w.tenant}/agents/{w.ext['101']}/state")).json()
    assert body["phone_state"]["state"] == "Talking" and body["phone_state"]["code"] == "talking"
    assert body["queue_state"]["state"] == "Connected"
    assert body["queue_state"]["queue"] == "Support"
    assert body["queue_state"]["duration"] == "0:01:05"


async def test_queue_settings_validation_and_compatible_members(
    api: tuple[World, httpx.AsyncClient],
) -> None:
    w, cl = api
    q = f"/api/v1/tenants/{w.tenant}/queues"
    r = await cl.post(
        q,
        json={
            "name": "Sales",
            "extension": "310",
            "member_extension_ids": [w.ext["101"], w.ext["102"]],
        },
    )
    assert r.status_code == 201
    sales = r.json()
    assert sales["strategy"] == "longest_idle" and sales["ring_timeout_s"] == 20
    assert sales["members"] == [
        {"extension_id": w.ext["101"], "priority": 1},
        {"extension_id": w.ext["102"], "priority": 1},
    ]
    s = f"{q}/{sales['id']}"
    r = await cl.put(f"{s}/members/{w.ext['102']}", json={"priority": 5})
    assert r.json()["members"][1] == {"extension_id": w.ext["102"], "priority": 5}
    # the older field keeps working and keeps known priorities
    r = await cl.patch(s, json={"member_extension_ids": [w.ext["102"], w.ext["103"]]})
    assert r.status_code == 200
    assert r.json()["members"] == [
        {"extension_id": w.ext["102"], "priority": 5},
        {"extension_id": w.ext["103"], "priority": 1},
    ]
    assert r.json()["member_extension_ids"] == [w.ext["102"], w.ext["103"]]
    r = await cl.delete(f"{s}/members/{w.ext['103']}")
    assert r.json()["member_extension_ids"] == [w.ext["102"]]
    r = await cl.delete(f"{s}/members/{w.ext['103']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "member_not_found"
    r = await cl.put(f"{s}/members/{w.ext['104']}", json={"priority": 0})
    assert r.status_code == 422
    members = (await cl.get(f"{s}/members")).json()
    assert members == [{"extension_id": w.ext["102"], "priority": 5}]

    r = await cl.patch(
        s,
        json={
            "strategy": "skills",
            "wrapup_s": 15,
            "max_wait_s": 300,
            "max_length": 10,
            "overflow": {"kind": "queue", "target": w.queue},
            "service_level_s": 30,
            "max_consecutive_misses": 3,
            "missed_presence": "Coffee Break",
            "music": "jazz",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["overflow"] == {"kind": "queue", "target": w.queue}
    for patch, code in [
        ({"overflow": {"kind": "queue", "target": sales["id"]}}, "overflow_to_itself"),
        ({"overflow": {"kind": "queue", "target": "nope"}}, "queue_not_found"),
        ({"overflow": {"kind": "extension", "target": "nope"}}, "extension_not_found"),
        ({"overflow": {"kind": "number", "target": "12x"}}, "number_malformed"),
        ({"missed_presence": "Sign Out"}, "missed_presence_not_away"),
        ({"missed_presence": None}, "missed_presence_required"),
        ({"required_skills": [{"skill_id": "nope"}]}, "skill_not_found"),
        ({"members": [{"extension_id": "beta-101"}]}, "extension_not_found"),
        ({"strategy": "random"}, "request_invalid"),
    ]:
        r = await cl.patch(s, json=patch)
        assert r.status_code in (404, 422), (patch, r.text)
        assert r.json()["error"]["code"] == code, (patch, r.text)
    r = await cl.patch(s, json={"overflow": {"kind": "number", "target": "18005550199"}})
    assert r.status_code == 200
    r = await cl.patch(s, json={"overflow": None, "max_wait_s": None})
    assert r.json()["overflow"] is None and r.json()["max_wait_s"] is None


async def test_skills_and_agent_skills(api: tuple[World, httpx.AsyncClient]) -> None:
    w, cl = api
    t = f"/api/v1/tenants/{w.tenant}"
    french = (await cl.post(f"{t}/skills", json={"name": "French"})).json()
    billing = (await cl.post(f"{t}/skills", json={"name": "Billing"})).json()
    r = await cl.post(f"{t}/skills", json={"name": "French"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "skill_exists"
    assert [s["name"] for s in (await cl.get(f"{t}/skills")).json()] == ["Billing", "French"]
    r = await cl.patch(f"{t}/skills/{billing['id']}", json={"name": "Invoices"})
    assert r.json()["name"] == "Invoices"
    a = f"{t}/agents/{w.ext['101']}/skills"
    r = await cl.put(a, json={"skills": [{"skill_id": french["id"], "proficiency": 80}]})
    assert r.status_code == 200
    r = await cl.put(f"{a}/{billing['id']}", json={"proficiency": 40})
    assert r.json()["skills"] == [
        {"skill_id": french["id"], "proficiency": 80},
        {"skill_id": billing["id"], "proficiency": 40},
    ]
    r = await cl.put(f"{a}/{billing['id']}", json={"proficiency": 101})
    assert r.status_code == 422
    r = await cl.put(f"{a}/nope", json={"proficiency": 10})
    assert r.status_code == 404 and r.json()["error"]["code"] == "skill_not_found"
    dup = {"skills": [{"skill_id": french["id"], "proficiency": 1}] * 2}
    r = await cl.put(a, json=dup)
    assert r.status_code == 422 and r.json()["error"]["code"] == "skill_duplicate"
    # a queue requiring a skill keeps it from being deleted
    r = await cl.patch(
        f"{t}/queues/{w.queue}",
        json={"required_skills": [{"skill_id": french["id"], "min_proficiency": 50}]},
    )
    assert r.status_code == 200
    r = await cl.delete(f"{t}/skills/{french['id']}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "skill_in_use"
    # deleting a skill agents have takes it from them
    assert (await cl.delete(f"{t}/skills/{billing['id']}")).status_code == 204
    r = await cl.get(a)
    assert r.json()["skills"] == [{"skill_id": french["id"], "proficiency": 80}]
    r = await cl.delete(f"{a}/{billing['id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "agent_skill_not_found"


async def test_openapi_documents_the_contact_center_routes(
    api: tuple[World, httpx.AsyncClient],
) -> None:
    _, cl = api
    spec = (await cl.get("/api/v1/openapi.json")).json()
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/tenants/{tenant_id}/agents", "get"),
        ("/api/v1/tenants/{tenant_id}/agents/{extension_id}/state", "put"),
        ("/api/v1/tenants/{tenant_id}/agents/{extension_id}/sign-in", "post"),
        ("/api/v1/tenants/{tenant_id}/agents/{extension_id}/sign-out", "post"),
        ("/api/v1/tenants/{tenant_id}/agents/{extension_id}/skills", "put"),
        ("/api/v1/tenants/{tenant_id}/skills/{skill_id}", "patch"),
        ("/api/v1/tenants/{tenant_id}/queues/{queue_id}/members/{extension_id}", "put"),
    ]:
        assert method in paths[path], path
    queue = spec["components"]["schemas"]["Queue"]["properties"]
    assert {"strategy", "ring_timeout_s", "wrapup_s", "overflow", "members"} <= set(queue)


async def test_what_queues_refer_to_cannot_vanish_under_them(
    api: tuple[World, httpx.AsyncClient],
) -> None:
    w, cl = api
    t = f"/api/v1/tenants/{w.tenant}"
    sales = (
        await cl.post(
            f"{t}/queues",
            json={
                "name": "Sales",
                "extension": "310",
                "members": [{"extension_id": w.ext["101"], "priority": 2}],
                "overflow": {"kind": "queue", "target": w.queue},
                "max_consecutive_misses": 2,
                "missed_presence": "Coffee Break",
            },
        )
    ).json()
    r = await cl.delete(f"{t}/queues/{w.queue}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "queue_in_use"
    coffee = next(
        o for o in (await cl.get(f"{t}/presence-options")).json() if o["name"] == "Coffee Break"
    )
    r = await cl.delete(f"{t}/presence-options/{coffee['id']}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "presence_option_in_use"
    await cl.patch(
        f"{t}/queues/{sales['id']}",
        json={"overflow": {"kind": "extension", "target": w.ext["102"]}},
    )
    r = await cl.delete(f"{t}/extensions/{w.ext['102']}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "extension_in_use"
    # a deleted member leaves the queue
    assert (await cl.delete(f"{t}/extensions/{w.ext['101']}")).status_code == 204
    r = await cl.get(f"{t}/queues/{sales['id']}")
    assert r.json()["members"] == [] and r.json()["member_extension_ids"] == []


async def test_a_client_reads_the_agent_events_of_a_queue_call_in_order(
    api: tuple[World, httpx.AsyncClient],
) -> None:
    from tests.service.test_agents import offer

    w, cl = api
    t = f"/api/v1/tenants/{w.tenant}"
    r = await cl.patch(f"{t}/queues/{w.queue}", json={"wrapup_s": 10})
    assert r.status_code == 200
    after = (await cl.get(f"{t}/events", params={"limit": 1000})).json()["next_after"]
    await cl.post(f"{t}/agents/{w.ext['101']}/sign-in", json={})
    call_id, customer, _ = await offer(w, "101")
    r = await cl.post(f"{t}/calls/{call_id}/legs/{customer}/hangup")
    assert r.status_code == 200, r.text
    await w.settle(10)
    page = (await cl.get(f"{t}/events", params={"after": after, "limit": 1000})).json()
    seqs = [e["seq"] for e in page["items"]]
    assert seqs == sorted(seqs)
    seen = [
        (e["type"], e["data"].get("state") or e["data"].get("queue_id"))
        for e in page["items"]
        if e["category"] == "agent"
    ]
    assert seen == [
        ("agent.presence_changed", None),
        ("agent.signed_in", None),
        ("agent.phone_state_changed", "ringing"),
        ("agent.queue_state_changed", w.queue),
        ("agent.phone_state_changed", "talking"),
        ("agent.phone_state_changed", "wrapup"),
        ("agent.phone_state_changed", "idle"),
        ("agent.queue_state_changed", None),
    ]
    ringing = next(e for e in page["items"] if e["data"].get("state") == "ringing")
    dialled = [e for e in page["items"] if e["type"] == "leg.created" and e["call_id"] == call_id]
    assert ringing["seq"] > dialled[-1]["seq"]  # the agent follows the call (offered when dialled)
    assert ringing["data"]["call_id"] == call_id
