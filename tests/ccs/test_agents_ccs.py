"""CCS 4.15-4.18 and 4.28: agent state (get and update by telco user, self, tenant admin) and
click-to-call, against the demo data on the simulated switch."""

from __future__ import annotations

from typing import Any

from tests.ccs.golden import assert_golden, assert_shape, spec_json
from tests.ccs.world import API, EXT, OTHER, OTHER_TENANT, OWN_TENANT, QUEUE, CcsWorld

from callbridge.service.auth import system_actor

#: 4.15's 200 body as the spec prints it
SPEC_AGENT_STATE = spec_json(
    '{ "success": true, "queue_state": { "state": "None", "queue": "", "duration": "0" }, '
    '"phone_state": { "state": "Idle", "duration": "117:11:18" }, "consecutive_missed": 0, '
    '"agent_state": { "state": { "type": "ready", "name": "Ready" }, "duration": "117:56:46" } }'
)
#: 4.16-4.18's example body as printed (quotes straightened), trailing comma included
SPEC_UPDATE_BODY = '{ "request": "updateAgentState", "name": "Lunch Break", }'

STATE_113 = f"{API}/tenants/{OWN_TENANT}/extensions/{EXT['113']}/agent_state"
EXT_113 = f"{API}/tenants/{OWN_TENANT}/extensions/{EXT['113']}"
EXT_112 = f"{API}/tenants/{OWN_TENANT}/extensions/{EXT['112']}"


def update(name: str) -> dict[str, Any]:
    return {"request": "updateAgentState", "name": name}


def dial(target: str = "19735552106", queue: str | None = QUEUE["Outbound"]) -> dict[str, Any]:
    body: dict[str, Any] = {"request": "dial", "target": target}
    if queue is not None:
        body["outbound_queue_uuid"] = queue
    return body


async def presence(ccs: CcsWorld, number: str) -> tuple[str, str]:
    state = ccs.c.agents.state(system_actor(), OWN_TENANT, EXT[number])
    return state.presence.value, state.presence_name


# ---------------------------------------------------------------- 4.15


async def test_get_agent_state_by_telco_user(ccs: CcsWorld) -> None:
    await ccs.settle(421878)  # 117:11:18, the spec's example duration
    async with ccs.client("telco") as cl:
        r = await cl.get(STATE_113)
    assert_golden("agents_state_get", r)
    assert_shape(r.json(), SPEC_AGENT_STATE)
    assert r.json()["phone_state"] == {"state": "Idle", "duration": "117:11:18"}


async def test_get_agent_state_trailing_slash_and_tenant_level_paths(ccs: CcsWorld) -> None:
    await ccs.settle(65)
    async with ccs.client("tenant_admin") as cl:
        in_tenant = await cl.get(STATE_113 + "/")
        convenience = await cl.get(f"{API}/extensions/{EXT['113']}/agent_state")
    async with ccs.client("agent") as cl:
        own = await cl.get(f"{API}/agent_state")
    assert in_tenant.status_code == convenience.status_code == own.status_code == 200
    assert in_tenant.content == convenience.content == own.content
    assert_golden("agents_state_get_tenant_level", convenience)
    assert_shape(own.json(), SPEC_AGENT_STATE)


async def test_agent_state_during_a_queue_call_names_the_queue(ccs: CcsWorld) -> None:
    system = system_actor()
    for number in ("113", "114"):
        await ccs.c.agents.set_state(system, OWN_TENANT, EXT[number], "Coffee Break")
    await ccs.c.calls.simulate_inbound(system, OWN_TENANT, "19735550123", "386")
    await ccs.settle()
    await ccs.settle(75)
    async with ccs.client("agent") as cl:
        r = await cl.get(f"{API}/agent_state")
    assert_golden("agents_state_in_queue_call", r)
    assert_shape(r.json(), SPEC_AGENT_STATE)
    assert r.json()["queue_state"] == {"state": "Connected", "queue": "Q386", "duration": "0:01:15"}
    assert r.json()["phone_state"]["state"] == "Talking"


async def test_get_agent_state_errors(ccs: CcsWorld) -> None:
    async with ccs.client("telco") as cl:
        unknown = await cl.get(f"{API}/tenants/{OWN_TENANT}/extensions/nope/agent_state")
        telco_self = await cl.get(f"{API}/agent_state")
        other = await cl.get(
            f"{API}/tenants/{OTHER_TENANT}/extensions/{OTHER['ext_112']}/agent_state"
        )
    async with ccs.client("tenant_admin") as cl:
        no_extension = await cl.get(f"{API}/agent_state")
        other_ext = await cl.get(f"{API}/extensions/{OTHER['ext_112']}/agent_state")
    async with ccs.client(None) as cl:
        anonymous = await cl.get(STATE_113)
    assert_golden("agents_state_get_unknown_extension", unknown)
    assert_golden("agents_state_get_telco_on_tenant_path", telco_self)
    assert_golden("agents_state_get_other_tenant", other)
    assert_golden("agents_state_get_no_extension", no_extension)
    assert_golden("agents_state_get_unauthorized", anonymous)
    assert other_ext.json() == {
        "success": False,
        "reason": f"extension {OTHER['ext_112']!r} not found",
    }


# ---------------------------------------------------------------- 4.16-4.18


async def test_update_agent_state_by_telco_user_with_the_spec_example_body(ccs: CcsWorld) -> None:
    async with ccs.client("telco") as cl:
        r = await cl.post(EXT_113, content=SPEC_UPDATE_BODY.encode())
        got = await cl.get(STATE_113)
    assert_golden("agents_update_by_telco", r)
    assert r.content == b'{"success":true}'
    assert await presence(ccs, "113") == ("away", "Lunch Break")
    assert got.json()["agent_state"]["state"] == {"type": "away", "name": "Lunch Break"}


async def test_update_own_state_4_17(ccs: CcsWorld) -> None:
    async with ccs.client("agent") as cl:
        r = await cl.post(f"{API}/agent_state", json=update("Coffee Break"))
        back = await cl.post(f"{API}/agent_state/", json=update("Ready"))
    assert_golden("agents_update_self", r)
    assert back.content == b'{"success":true}'
    assert await presence(ccs, "112") == ("ready", "Ready")


async def test_update_by_tenant_admin_4_18_to_a_sign_out_option(ccs: CcsWorld) -> None:
    async with ccs.client("tenant_admin") as cl:
        r = await cl.post(f"{API}/extensions/{EXT['114']}", json=update("Holiday In Bahamas"))
        again = await cl.post(EXT_113, json=update("Sign Out"))
    assert_golden("agents_update_by_admin", r)
    assert again.content == b'{"success":true}'
    assert await presence(ccs, "114") == ("sign_out", "Holiday In Bahamas")
    assert await presence(ccs, "113") == ("sign_out", "Sign Out")


async def test_update_agent_state_errors(ccs: CcsWorld) -> None:
    async with ccs.client("tenant_admin") as cl:
        unknown_name = await cl.post(EXT_113, json=update("Gone Fishing"))
        no_name = await cl.post(EXT_113, json={"request": "updateAgentState"})
        no_request = await cl.post(EXT_113, json={"name": "Ready"})
        bad_request = await cl.post(EXT_113, json={"request": "setState", "name": "Ready"})
        bad_json = await cl.post(EXT_113, content=b'{"request": "updateAgentState", "name"')
        not_object = await cl.post(EXT_113, content=b'["updateAgentState"]')
        not_agent = await cl.post(f"{API}/extensions/{EXT['120']}", json=update("Coffee Break"))
        no_extension = await cl.post(f"{API}/agent_state", json=update("Ready"))
        other = await cl.post(f"{API}/extensions/{OTHER['ext_112']}", json=update("Coffee Break"))
    async with ccs.client("agent") as cl:
        someone_else = await cl.post(f"{API}/extensions/{EXT['113']}", json=update("Coffee Break"))
    async with ccs.client("telco") as cl:
        telco_self = await cl.post(f"{API}/agent_state", json=update("Ready"))
    assert_golden("agents_update_unknown_name", unknown_name)
    assert_golden("agents_update_missing_name", no_name)
    assert_golden("agents_update_missing_request", no_request)
    assert_golden("agents_update_unknown_request", bad_request)
    assert_golden("agents_update_bad_json", bad_json)
    assert_golden("agents_update_not_an_object", not_object)
    assert_golden("agents_update_not_an_agent", not_agent)
    assert_golden("agents_update_self_without_extension", no_extension)
    assert_golden("agents_update_other_tenant", other)
    assert_golden("agents_update_other_agent", someone_else)
    assert_golden("agents_update_self_by_telco", telco_self)
    assert await presence(ccs, "113") == ("ready", "Ready")


async def test_asking_for_the_state_the_agent_is_in_succeeds_and_changes_nothing(
    ccs: CcsWorld,
) -> None:
    admin = ccs.c.directory.authenticate(ccs.tokens["tenant_admin"])
    before, cursor = await ccs.c.streams.page(admin, OWN_TENANT, 0, 1000)
    since = ccs.c.agents.state(admin, OWN_TENANT, EXT["113"]).presence_since
    ccs.clock.advance(5)
    async with ccs.client("tenant_admin") as cl:
        again = await cl.post(EXT_113, json=update("Ready"))  # the demo's agents start Ready
    assert_golden("agents_update_already_in_state", again)
    after, _ = await ccs.c.streams.page(admin, OWN_TENANT, cursor, 1000)
    assert after == [], "no change, no event"
    assert ccs.c.agents.state(admin, OWN_TENANT, EXT["113"]).presence_since == since
    async with ccs.client("agent") as cl:  # still only for those who may change that agent
        someone_else = await cl.post(f"{API}/extensions/{EXT['113']}", json=update("Ready"))
    assert someone_else.status_code == 400
    assert someone_else.json()["success"] is False
    assert before


async def test_other_tenant_extension_is_not_found_like_a_missing_one(ccs: CcsWorld) -> None:
    async with ccs.client("telco") as cl:
        other = await cl.post(
            f"{API}/tenants/{OWN_TENANT}/extensions/{OTHER['ext_112']}", json=update("Ready")
        )
        missing = await cl.post(
            f"{API}/tenants/{OWN_TENANT}/extensions/{OTHER['ext_112'][:-1]}9", json=update("Ready")
        )
    assert other.status_code == missing.status_code == 400
    assert other.json()["reason"] == f"extension {OTHER['ext_112']!r} not found"
    assert missing.json()["reason"] == f"extension {OTHER['ext_112'][:-1] + '9'!r} not found"


# ---------------------------------------------------------------- 4.28 click-to-call


async def test_click_to_call_rings_the_extension_then_the_target(ccs: CcsWorld) -> None:
    async with ccs.client("agent") as cl:
        r = await cl.post(EXT_112, json=dial())
        await ccs.settle()
        await ccs.settle(30)
        listed = await cl.get(f"{API}/calls")
    assert_golden("agents_dial", r)
    call_id = r.json()["call_id"]
    (item,) = listed.json()["items"]
    assert (item["call_id"], item["state"], item["direction"]) == (call_id, "answered", "outbound")
    assert item["caller_id"] == "2677318044"  # the outbound queue's caller id
    assert [p["number"] for p in item["connected_parties"]] == ["112", "19735552106"]
    assert item["talk_duration"] == "0:00:30"


async def test_click_to_call_with_the_spec_example_target_and_no_outbound_queue(
    ccs: CcsWorld,
) -> None:
    async with ccs.client("tenant_admin") as cl:
        spec = await cl.post(
            EXT_112 + "/",
            json=spec_json(
                '{ "request":"dial", "target":"819735552106", '
                '"outbound_queue_uuid":"az123456-c0ed-42b7-8e8c-d50c4991828c" }'
            ),
        )
        plain = await cl.post(EXT_113, json=dial("114", queue=None))
        await ccs.settle()
    assert spec.status_code == plain.status_code == 200
    call = ccs.c.calls.calls[plain.json()["call_id"]]
    assert (call.caller_id, call.state) == ("113", "answered")


async def test_click_to_call_errors(ccs: CcsWorld) -> None:
    async with ccs.client("agent") as cl:
        no_target = await cl.post(EXT_112, json={"request": "dial"})
        malformed = await cl.post(EXT_112, json=dial("call-me"))
        inbound_queue = await cl.post(EXT_112, json=dial(queue=QUEUE["Q386"]))
        other_queue = await cl.post(EXT_112, json=dial(queue=OTHER["outbound"]))
        other_tenant = await cl.post(
            f"{API}/tenants/{OTHER_TENANT}/extensions/{OTHER['ext_112']}", json=dial()
        )
        to_queue = await cl.post(EXT_112, json=dial("386"))
    async with ccs.client("telco") as cl:
        telco = await cl.post(EXT_112, json=dial())
    assert_golden("agents_dial_missing_target", no_target)
    assert_golden("agents_dial_malformed_target", malformed)
    assert_golden("agents_dial_not_outbound_queue", inbound_queue)
    assert_golden("agents_dial_other_tenant_queue", other_queue)
    assert_golden("agents_dial_other_tenant", other_tenant)
    assert_golden("agents_dial_queue_target", to_queue)
    assert_golden("agents_dial_telco_user", telco)
    assert ccs.c.calls.calls == {}
