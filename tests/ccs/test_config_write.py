"""CCS 4.10-4.14 (changing the configuration): text count reset, tenant products, limits and
licences, extension update. Exact bytes, each documented error, read-back and limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.ccs.golden import assert_golden, assert_shape
from tests.ccs.world import API, EXT, OTHER, OTHER_TENANT, OWN_TENANT, CcsWorld

from callbridge import demo
from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.simswitch import SimulatedSwitch
from callbridge.api.native.app import create_app
from callbridge.bootstrap import build
from callbridge.domain.directory import RecordingType
from callbridge.domain.tenancy import Permission, TenantProfile
from callbridge.settings import Settings

T = f"/tenants/{OWN_TENANT}"
#: the spec's 200 bodies of 4.11-4.14
SPEC_UUID: Any = {"success": True, "uuid": "az123456-1434-42ca-98ab-b5803b9b608d"}
SPEC_OK: Any = {"success": True}
PLUS_AG = demo.PRODUCTS[0][0]
CAMPAIGN = demo.TENANT_PRODUCTS[0]
ROB = EXT["112"]
DESK = EXT["120"]


async def call(
    ccs: CcsWorld, user: str | None, method: str, path: str, body: Any = None, raw: bytes = b""
) -> Any:
    async with ccs.client(user) as cl:
        if raw:
            return await cl.request(method, f"{API}{path}", content=raw)
        return await cl.request(method, f"{API}{path}", json=body)


async def details(ccs: CcsWorld) -> Any:
    return (await call(ccs, "telco", "GET", T)).json()


# ---------------------------------------------------------------------- 4.10 text count reset


async def test_reset_text_count(ccs: CcsWorld) -> None:
    d = ccs.c.directory
    d.tenants[OWN_TENANT] = d.tenants[OWN_TENANT].model_copy(update={"text_count": 41})
    assert (await call(ccs, "telco", "GET", f"{T}/text_count")).json()["text_count"] == "41"
    r = await call(ccs, "telco", "POST", f"{T}/text_count", {"request": "reset_counter"})
    assert_golden("config_text_count_reset", r)
    assert r.json() == {
        "success": True,
        "uuid": OWN_TENANT,
        "text_count": "0",
        "reset_on": "2026-01-01 09:00:00 AM",
    }
    assert (await call(ccs, "telco", "GET", f"{T}/text_count")).json() == r.json()
    stored = await ccs.c.core.load("tenants", type(d.tenants[OWN_TENANT]))
    assert next(t for t in stored if t.id == OWN_TENANT).text_count == 0


async def test_reset_text_count_refuses_an_unknown_request(ccs: CcsWorld) -> None:
    r = await call(ccs, "telco", "POST", f"{T}/text_count", {"request": "reset"})
    assert_golden("config_text_count_unknown_request", r)
    assert r.json() == {
        "success": False,
        "reason": 'unknown request "reset": expected one of "reset_counter"',
    }


async def test_reset_text_count_needs_tenant_edit_not_only_tenants_view(ccs: CcsWorld) -> None:
    d = ccs.c.directory
    viewer = await d.create_role("Viewer", [Permission.API, Permission.TENANTS_VIEW])
    telco = d.principals[demo.PRINCIPALS["telco_admin"][0]]
    d.principals[telco.id] = telco.model_copy(update={"role_ids": [viewer.id]})
    assert (await call(ccs, "telco", "GET", f"{T}/text_count")).status_code == 200
    r = await call(ccs, "telco", "POST", f"{T}/text_count", {"request": "reset_counter"})
    assert_golden("config_text_count_reset_view_only", r)
    assert r.json() == {"success": False, "reason": "permission required: Tenant Edit"}


async def test_reset_text_count_refuses_unknown_fields(ccs: CcsWorld) -> None:
    body = {"request": "reset_counter", "sms": "0"}
    r = await call(ccs, "telco", "POST", f"{T}/text_count", body)
    assert r.json() == {"success": False, "reason": "unknown field(s): sms"}


async def test_reset_text_count_is_telco_level(ccs: CcsWorld) -> None:
    r = await call(ccs, "tenant_admin", "POST", f"{T}/text_count", {"request": "reset_counter"})
    assert_golden("config_text_count_reset_tenant_level", r)


async def test_reset_text_count_of_another_tenant_is_not_found(ccs: CcsWorld) -> None:
    r = await call(
        ccs, "telco", "POST", f"/tenants/{OTHER_TENANT}/text_count", {"request": "reset_counter"}
    )
    assert_golden("config_text_count_reset_not_found", r)


# ---------------------------------------------------------------------- 4.11 / 4.12 products


async def test_add_then_delete_a_product(ccs: CcsWorld) -> None:
    r = await call(ccs, "telco", "POST", T, {"request": "add_product", "product": PLUS_AG})
    assert_golden("config_product_added", r)
    assert_shape(r.json(), SPEC_UUID)
    assert r.json()["uuid"] == PLUS_AG
    assert PLUS_AG in [p["uuid"] for p in (await details(ccs))["product_id"]]
    r = await call(ccs, "telco", "POST", T, {"request": "delete_product", "product": PLUS_AG})
    assert_golden("config_product_deleted", r)
    assert r.json() == {"success": True, "uuid": PLUS_AG}
    assert PLUS_AG not in [p["uuid"] for p in (await details(ccs))["product_id"]]


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        (
            "config_product_unknown",
            {"request": "add_product", "product": "no-such-product"},
            "product 'no-such-product' not found",
        ),
        (
            "config_product_already_added",
            {"request": "add_product", "product": CAMPAIGN},
            "the tenant already has this product",
        ),
        (
            "config_product_not_on_tenant",
            {"request": "delete_product", "product": PLUS_AG},
            f"product '{PLUS_AG}' not found",
        ),
        (
            "config_product_missing",
            {"request": "add_product"},
            "product must be a non-empty string",
        ),
        (
            "config_tenant_unknown_request",
            {"request": "rename", "product": PLUS_AG},
            'unknown request "rename": expected one of "add_product", "delete_product"',
        ),
        (
            "config_tenant_no_request",
            {"product": PLUS_AG},
            '"request" is required: one of "add_product", "delete_product"',
        ),
    ],
)
async def test_product_errors(ccs: CcsWorld, name: str, body: Any, reason: str) -> None:
    r = await call(ccs, "telco", "POST", T, body)
    assert_golden(name, r)
    assert r.json() == {"success": False, "reason": reason}


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        (
            "config_body_not_json",
            b"{request: add_product",
            "the request body is not valid JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
        ),
        ("config_body_not_object", b'["add_product"]', "the request body must be a JSON object"),
        ("config_body_empty", b"", "a JSON request body is required"),
    ],
)
async def test_bad_bodies(ccs: CcsWorld, name: str, raw: bytes, reason: str) -> None:
    r = await call(ccs, "telco", "POST", T, raw=raw or b" ")
    assert_golden(name, r)
    assert r.json() == {"success": False, "reason": reason}


async def test_a_tenant_admin_cannot_add_products_to_its_tenant(ccs: CcsWorld) -> None:
    body = {"request": "add_product", "product": PLUS_AG}
    r = await call(ccs, "tenant_admin", "POST", T, body)
    assert_golden("config_product_tenant_level", r)
    assert PLUS_AG not in ccs.c.directory.tenants[OWN_TENANT].product_ids


async def test_products_of_another_tenant_are_not_found(ccs: CcsWorld) -> None:
    body = {"request": "add_product", "product": PLUS_AG}
    r = await call(ccs, "telco", "POST", f"/tenants/{OTHER_TENANT}", body)
    assert_golden("config_product_other_tenant", r)
    assert PLUS_AG not in ccs.c.directory.tenants[OTHER_TENANT].product_ids


# ---------------------------------------------------------------------- 4.13 limits and licences

#: the spec's 4.13 example, repaired: it prints no comma after "max_agents" and a misplaced quote
#: in "multimedia_licenses:"
SPEC_LIMITS = {
    "product_name": "New Product",
    "rec_extn_limit": "10",
    "monitor_ext_limit": "3",
    "max_queues": "100",
    "max_agents": "100",
    "group_agent_limit": "0",
    "chat_licenses": "6",
    "multimedia_licenses": "6",
    "agent_billing": "Concurrent",
}


async def test_update_limits_with_the_spec_example_and_read_back(ccs: CcsWorld) -> None:
    r = await call(ccs, "telco", "PUT", T, SPEC_LIMITS)
    assert_golden("config_tenant_updated", r)
    assert_shape(r.json(), SPEC_UUID)
    assert r.json() == {"success": True, "uuid": OWN_TENANT}
    body = await details(ccs)
    assert body["product_name"] == "New Product"
    assert (body["max_queues"], body["group_agent_limit"]) == ("100", "0")
    assert ccs.c.directory.tenants[OWN_TENANT].limits.agent_billing == "Concurrent"


async def test_update_limits_accepts_integers(ccs: CcsWorld) -> None:
    r = await call(ccs, "telco", "PUT", T, {"max_agents": 7, "chat_licenses": "0"})
    assert r.json() == {"success": True, "uuid": OWN_TENANT}
    body = await details(ccs)
    assert (body["max_agents"], body["chat_licenses"]) == ("7", "0")


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        (
            "config_limits_not_a_number",
            {"max_agents": "ten"},
            "max_agents must be a whole number, as a digit string or an integer",
        ),
        (
            "config_limits_negative",
            {"rec_extn_limit": -1},
            "rec_extn_limit must be between 0 and 100000",
        ),
        (
            "config_limits_boolean",
            {"chat_licenses": True},
            "chat_licenses must be a whole number, as a digit string or an integer",
        ),
        (
            "config_limits_fraction",
            {"max_queues": "4.5"},
            "max_queues must be a whole number, as a digit string or an integer",
        ),
        (
            "config_limits_billing",
            {"agent_billing": "Monthly"},
            "agent_billing must be one of 'Named', 'Concurrent'",
        ),
        (
            "config_limits_product_name",
            {"product_name": " "},
            "product_name must be a non-empty string",
        ),
        ("config_limits_unknown_field", {"max_agentz": "3"}, "unknown field(s): max_agentz"),
        (
            "config_limits_empty",
            {},
            "nothing to update: give any of agent_billing, chat_licenses, group_agent_limit, "
            "max_agents, max_queues, monitor_ext_limit, multimedia_licenses, product_name, "
            "rec_extn_limit",
        ),
        (
            "config_limits_below_usage",
            {"max_agents": "2"},
            "max_agents cannot be lowered to 2: the tenant uses 3",
        ),
        (
            "config_limits_queues_below_usage",
            {"max_queues": 1},
            "max_queues cannot be lowered to 1: the tenant uses 3",
        ),
    ],
)
async def test_update_limits_errors(ccs: CcsWorld, name: str, body: Any, reason: str) -> None:
    before = ccs.c.directory.tenants[OWN_TENANT]
    r = await call(ccs, "telco", "PUT", T, body)
    assert_golden(name, r)
    assert r.json() == {"success": False, "reason": reason}
    assert ccs.c.directory.tenants[OWN_TENANT] == before


async def test_a_tenant_admin_cannot_change_its_limits(ccs: CcsWorld) -> None:
    r = await call(ccs, "tenant_admin", "PUT", T, {"max_agents": "1000"})
    assert_golden("config_limits_tenant_level", r)
    assert ccs.c.directory.tenants[OWN_TENANT].limits.max_agents == 100


async def test_limits_of_another_tenant_are_not_found(ccs: CcsWorld) -> None:
    r = await call(ccs, "telco", "PUT", f"/tenants/{OTHER_TENANT}", {"max_agents": "1"})
    assert_golden("config_limits_other_tenant", r)


async def test_changes_survive_a_restart(ccs: CcsWorld) -> None:
    await call(ccs, "telco", "PUT", T, {"monitor_ext_limit": "5", "product_name": "Gold"})
    await call(ccs, "telco", "POST", T, {"request": "add_product", "product": PLUS_AG})
    await call(ccs, "telco", "PUT", EXT_PATH.format(ext=ROB), {"monitor": "true"})
    await call(ccs, "telco", "POST", f"{T}/text_count", {"request": "reset_counter"})
    before = (await call(ccs, "telco", "GET", T)).content
    text_count = (await call(ccs, "telco", "GET", f"{T}/text_count")).content
    # stop the server and start another on the same storage (the fixture stops the new one)
    storage = ccs.c.core.storage
    await ccs.c.stop()
    ccs.c = build(
        Settings(storage="memory"),
        clock=ccs.clock,
        storage=storage,
        bus=MemoryEventBus(),
        switch=SimulatedSwitch(ccs.clock),
    )
    await ccs.c.start()
    ccs.app = create_app(ccs.c, manage_lifecycle=False)
    after = await call(ccs, "telco", "GET", T)
    assert after.content == before
    body = after.json()
    assert (body["monitor_ext_limit"], body["product_name"], body["monitor_ext_count"]) == (
        "5",
        "Gold",
        1,
    )
    assert PLUS_AG in [p["uuid"] for p in body["product_id"]]
    assert (await call(ccs, "telco", "GET", f"{T}/text_count")).content == text_count
    assert ccs.c.directory.tenants[OWN_TENANT].profile == demo.TENANT_PROFILE


# ---------------------------------------------------------------------- 4.14 extension update

EXT_PATH = f"{T}/extensions/{{ext}}/"


async def test_update_an_extension_with_the_spec_example(ccs: CcsWorld) -> None:
    body = {
        "is_agent": "true",
        "recording_type": "None",
        "monitor": "false",
        "max_chats": "3",
        "is_multimedia_enabled": "true",
    }
    r = await call(ccs, "telco", "PUT", EXT_PATH.format(ext=DESK), body)
    assert_golden("config_extension_updated", r)
    assert_shape(r.json(), SPEC_OK)
    ext = ccs.c.directory.extensions[DESK]
    assert (ext.is_agent, ext.max_chats, ext.is_multimedia_enabled) == (True, 3, True)
    counts = await details(ccs)
    assert (counts["max_agents_count"], counts["chat_licenses_count"]) == (4, 1)
    assert counts["multimedia_licenses_count"] == 1


async def test_the_spec_key_with_a_leading_space_and_the_path_without_slash(
    ccs: CcsWorld,
) -> None:
    body = {" is_multimedia_enabled": "true", "recording_type": "On Demand", "monitor": True}
    r = await call(ccs, "tenant_admin", "PUT", f"{T}/extensions/{ROB}", body)
    assert r.json() == {"success": True}
    ext = ccs.c.directory.extensions[ROB]
    assert ext.is_multimedia_enabled and ext.monitor
    assert ext.recording_type is RecordingType.ON_DEMAND
    counts = await details(ccs)
    assert (counts["rec_extn_count"], counts["monitor_ext_count"]) == (1, 1)


async def _fill(ccs: CcsWorld, field: str, limit: str, value: Any, numbers: list[str]) -> None:
    """Set ``field`` of the tenant's ``limit`` to how many of ``numbers`` there are, then
    give it to each of ``numbers``."""
    r = await call(ccs, "telco", "PUT", T, {limit: str(len(numbers))})
    assert r.status_code == 200, r.text
    for n in numbers:
        r = await call(ccs, "telco", "PUT", EXT_PATH.format(ext=EXT[n]), {field: value})
        assert r.json() == {"success": True}, r.text


@pytest.mark.parametrize(
    ("limit", "field", "value", "reason"),
    [
        (
            "max_agents",
            "is_agent",
            "true",
            "max_agents exceeded: 4 would be in use, the tenant allows 3",
        ),
        (
            "rec_extn_limit",
            "recording_type",
            "Mandatory",
            "rec_extn_limit exceeded: 2 would be in use, the tenant allows 1",
        ),
        (
            "monitor_ext_limit",
            "monitor",
            "true",
            "monitor_ext_limit exceeded: 2 would be in use, the tenant allows 1",
        ),
        (
            "chat_licenses",
            "max_chats",
            "6",
            "chat_licenses exceeded: 2 would be in use, the tenant allows 1",
        ),
        (
            "multimedia_licenses",
            "is_multimedia_enabled",
            "true",
            "multimedia_licenses exceeded: 2 would be in use, the tenant allows 1",
        ),
    ],
)
async def test_extension_update_enforces_each_limit(
    ccs: CcsWorld, limit: str, field: str, value: str, reason: str
) -> None:
    if limit == "max_agents":
        await call(ccs, "telco", "PUT", T, {"max_agents": "3"})
    else:
        await _fill(ccs, field, limit, value, ["112"])
    before = ccs.c.directory.extensions[DESK]
    r = await call(ccs, "telco", "PUT", EXT_PATH.format(ext=DESK), {field: value})
    assert_golden(f"config_extension_{limit}_exceeded", r)
    assert r.json() == {"success": False, "reason": reason}
    assert ccs.c.directory.extensions[DESK] == before
    # freeing one makes room again
    free = {"is_agent": "false", "recording_type": "None", "monitor": "false", "max_chats": "0"}
    free["is_multimedia_enabled"] = "false"
    other = "113" if limit == "max_agents" else "112"
    await call(ccs, "telco", "PUT", EXT_PATH.format(ext=EXT[other]), {field: free[field]})
    r = await call(ccs, "telco", "PUT", EXT_PATH.format(ext=DESK), {field: value})
    assert r.json() == {"success": True}


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("config_extension_bad_flag", {"is_agent": "yes"}, 'is_agent must be "true" or "false"'),
        (
            "config_extension_bad_recording",
            {"recording_type": "Always"},
            "recording_type must be one of 'None', 'Mandatory', 'On Demand'",
        ),
        ("config_extension_max_chats", {"max_chats": "7"}, "max_chats must be between 0 and 6"),
        ("config_extension_unknown_field", {"number": "999"}, "unknown field(s): number"),
        (
            "config_extension_twice",
            {"is_multimedia_enabled": "true", " is_multimedia_enabled": "false"},
            "is_multimedia_enabled is given twice (with and without a leading space)",
        ),
        (
            "config_extension_empty",
            {},
            "nothing to update: give any of is_agent, is_multimedia_enabled, max_chats, "
            "monitor, recording_type",
        ),
    ],
)
async def test_extension_update_errors(ccs: CcsWorld, name: str, body: Any, reason: str) -> None:
    before = ccs.c.directory.extensions[ROB]
    r = await call(ccs, "telco", "PUT", EXT_PATH.format(ext=ROB), body)
    assert_golden(name, r)
    assert r.json() == {"success": False, "reason": reason}
    assert ccs.c.directory.extensions[ROB] == before


async def test_extension_of_another_tenant_is_not_found(ccs: CcsWorld) -> None:
    path = f"{T}/extensions/{OTHER['ext_112']}/"
    r = await call(ccs, "telco", "PUT", path, {"is_agent": "false"})
    assert_golden("config_extension_not_found", r)
    assert r.json()["reason"] == f"extension '{OTHER['ext_112']}' not found"
    r = await call(ccs, "other_admin", "PUT", EXT_PATH.format(ext=ROB), {"is_agent": "false"})
    assert r.json()["reason"] == f"tenant '{OWN_TENANT}' not found"
    assert ccs.c.directory.extensions[ROB].is_agent


async def test_extension_update_needs_tenant_edit(ccs: CcsWorld) -> None:
    r = await call(ccs, "agent", "PUT", EXT_PATH.format(ext=ROB), {"is_agent": "false"})
    assert_golden("config_extension_no_permission", r)
    assert ccs.c.directory.extensions[ROB].is_agent


async def test_the_demo_gives_an_older_demo_tenant_the_spec_profile(
    ccs: CcsWorld, tmp_path: Path
) -> None:
    d = ccs.c.directory
    old = d.tenants[OWN_TENANT].model_copy(update={"profile": TenantProfile()})
    d.tenants[OWN_TENANT] = old  # as stored before tenants had a profile
    await demo.seed_demo(ccs.c, "http://ccs", tmp_path / "demo-credentials.json")
    assert d.tenants[OWN_TENANT].profile == demo.TENANT_PROFILE
    again = d.tenants[OWN_TENANT]
    await demo.seed_demo(ccs.c, "http://ccs", tmp_path / "demo-credentials.json")
    assert d.tenants[OWN_TENANT] is again  # a profile that is set is left alone


async def test_a_trailing_comma_is_accepted_as_on_every_ccs_body(ccs: CcsWorld) -> None:
    """One body reader for the whole dialect: 4.16's example ends in a comma, clients copy it."""
    async with ccs.client("telco") as cl:
        r = await cl.post(
            f"{API}/tenants/{OWN_TENANT}/text_count", content=b'{"request": "reset_counter",}'
        )
    assert r.status_code == 200 and r.json()["success"] is True
