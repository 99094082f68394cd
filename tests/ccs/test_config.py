"""CCS 4.1-4.9 (reading the configuration): exact bytes (golden files), the spec examples'
shapes, the demo's values against the spec's, tenant scope and level rules."""

from __future__ import annotations

from typing import Any

from tests.ccs.golden import assert_golden, assert_shape
from tests.ccs.world import API, OTHER, OTHER_TENANT, OWN_TENANT, CcsWorld

from callbridge import demo
from callbridge.domain.tenancy import Permission, Principal

#: spec 4.1
SPEC_PRODUCTS: Any = {
    "total": "62",
    "success": True,
    "items": [
        {"uuid": "az123456-d7ef-4638-9cff-ef6aaba3e77f", "notes": "R7.3 Feature", "name": "+AG"},
        {
            "uuid": "az123456-e76e-440c-8d9a-970015b8b533",
            "notes": "",
            "name": "AllPermissions-Product",
        },
        {"uuid": "az123456-c58d-48c1-90b9-4b3c65c22875", "notes": "", "name": "Jerin_product"},
        {
            "uuid": "az123456-b08e-467d-87e0-8763bce63892",
            "notes": "R6.3 Version",
            "name": "CCA,EM ph",
        },
    ],
}
#: spec 4.2
SPEC_ROLES: Any = {
    "total": "3",
    "success": True,
    "items": [
        {"uuid": "az123456-a5f9-488c-9bb6-e947f3f33d2b", "name": "Tenant Admin"},
        {"uuid": "az123456-9817-4964-86ff-d2c4f11b67d0", "name": "Telco Admin"},
        {"uuid": "az123456-ef95-44b7-afc8-54ce4cdb67f1", "name": "API"},
    ],
}
#: spec 4.3
SPEC_TENANTS: Any = {
    "total": "1",
    "success": True,
    "items": [
        {
            "uuid": "az123456-53d6-48e2-85cd-f8d6bde10fd9",
            "telco_id": {"uuid": "az123456-eee4-46f5-baf9-a9d661bfa92a", "name": "Broadview"},
            "status": "enable",
            "silhouette_id": {"uuid": "az123456-bd5e-480c-aeca-fb726cde928f", "name": "nvlab180-1"},
            "sil_tenant_url": "/ccsl06",
            "sil_tenant_name": "CCSLab15",
            "sil_tenant_id": "500900355",
            "sil_authentication": True,
            "product_name": "Call Center Services",
            "product_id": [
                {"uuid": "az123456-7a90-4e41-a91d-19c8e35e81ef", "notes": "", "name": "Campaign"},
                {"uuid": "az123456-8cd5-4f06-9b23-af8c1283c4c6", "notes": "", "name": "ECR,ACP"},
            ],
            "modified_on": "2021-03-12 07:23:02 AM",
            "modified_by": [],
            "cross_reference": [],
            "created_on": "2020-04-17 01:48:02 AM",
            "created_by": "root",
        }
    ],
}
#: spec 4.4
SPEC_TENANT: Any = {
    "success": True,
    "sil_tenant_name": "CCSLab15",
    "site_ip_address": "58.00.231.32",
    "nightly_call_details": True,
    "rec_down_limit": "100",
    "rec_extn_limit": "10",
    "telco_id": {"uuid": "az123456-eee4-46f5-baf9-a9d661bfa92a", "name": "Broadview"},
    "chat_licenses_count": 5,
    "multimedia_licenses_count": 5,
    "group_agent_count": 5,
    "cdr_retention": "365",
    "uuid": "az123456-53d6-48e2-85cd-f8d6bde10fd9",
    "chat_licenses": "6",
    "multimedia_licenses": "6",
    "max_queues_count": 29,
    "monitor_ext_limit": "3",
    "sid": "500900355",
    "max_agents_count": 8,
    "max_agents": "100",
    "timezone": "US/Eastern",
    "product_id": [
        {"uuid": "az123456-7a90-4e41-a91d-19c8e35e81ef", "notes": "", "name": "Campaign"},
        {"uuid": "az123456-8cd5-4f06-9b23-af8c1283c4c6", "notes": "", "name": "ECR,ACP"},
    ],
    "sil_auth_editable": True,
    "ve_ivr": "true",
    "modified_on": "2021-03-12 07:23:02 AM",
    "created_on": "2020-04-17 01:48:02 AM",
    "sil_tenant_url": "/ccsl06",
    "rec_extn_count": 7,
    "sil_crplatform_enabled": True,
    "library_limit": "600",
    "status": "enable",
    "sil_authentication": True,
    "default_gateway_id": {"uuid": "az123456-ca8a-42e3-a432-ecc0c4479daa", "name": "Metaswitch"},
    "default_signin_method": "Phone",
    "sftp_export": False,
    "rec_retention": "30",
    "sil_tenant_id": "500900355",
    "monitor_ext_count": 2,
    "created_by": "root",
    "campaign_size": "99",
    "group_agent_limit": "1",
    "default_outgoing_clid": "2677318044",
    "rec_quality": "mono",
    "cleanup_sftp": False,
    "max_queues": "45",
    "service_extension": "536",
    "sftp_dir_configured": True,
    "name": "CCSLab15",
    "product_name": "Call Center Services",
    "silhouette_id": {"uuid": "az123456-bd5e-480c-aeca-fb726cde928f", "name": "nvlab180-1"},
}
#: spec 4.5
SPEC_TENANT_ROLES: Any = {
    "total": "2",
    "success": True,
    "items": [
        {"uuid": "az123456-ac4e-4caf-922b-52ef715da6c7", "name": "US1398 (Voice Help)"},
        {"uuid": "az123456-c173-43ae-b0f8-139e8eccab5f", "name": "US1398 (Chat Help)"},
    ],
}
#: spec 4.6
SPEC_ACDS: Any = {
    "total": 2,
    "success": True,
    "items": [
        [
            {
                "uuid": "az123456-0817-40a5-86aa-0f43becbd6f6",
                "type": "voice_queues",
                "tenant_id": "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9",
                "name": "Q3878",
                "extension": "387",
                "alternate_extensions": [],
            },
            {
                "uuid": "az123456-d988-4239-ab9c-c393eeb2d217",
                "type": "voice_queues",
                "tenant_id": "81bf95ea-53d6-48e2-85cd-f8d6bde10fd9",
                "name": "Q386",
                "extension": "386",
                "alternate_extensions": [],
            },
        ]
    ],
}
#: spec 4.7
SPEC_PRESENCE: Any = {
    "total": "3",
    "success": True,
    "items": [
        {
            "uuid": "az123456-a751-4bcd-a8d8-8c1c9d48186e",
            "type": "sign_out",
            "name": "Holiday In Bahamas",
        },
        {"uuid": "az123456-2aa9-4aa3-aa9d-cc8513e95a6d", "type": "sign_out", "name": "Sign Out"},
        {"uuid": "az123456-6227-4ddc-9204-bd3cb9496e23", "type": "away", "name": "Coffee Break"},
    ],
}
#: spec 4.8
SPEC_EXTENSIONS: Any = {
    "total": "3",
    "success": True,
    "items": [
        {
            "uuid": "az123456-7c49-49a8-80fc-ae173a422a36",
            "lastname": "Nath",
            "firstname": "Reese",
            "extension": "114",
        },
        {
            "uuid": "az123456-57be-4919-aa73-b2e6341fe461",
            "lastname": "Patel",
            "firstname": "Sonny",
            "extension": "113",
        },
        {
            "uuid": "az123456-7bee-4351-bcd6-ecc2d8620b83",
            "lastname": "Masters",
            "firstname": "Rob",
            "extension": "112",
        },
    ],
}
#: spec 4.11
SPEC_PRODUCT_CHANGED: Any = {"success": True, "uuid": "az123456-1434-42ca-98ab-b5803b9b608d"}
#: spec 4.13
SPEC_TENANT_UPDATED: Any = {"success": True, "uuid": "az123456-1434-42ca-98ab-b5803b9b608d"}
#: spec 4.14
SPEC_EXTENSION_UPDATED: Any = {"success": True}

T = f"{API}/tenants/{OWN_TENANT}"


async def get(ccs: CcsWorld, user: str | None, path: str) -> Any:
    async with ccs.client(user) as cl:
        return await cl.get(f"{API}{path}")


# ---------------------------------------------------------------------- 4.1 products


async def test_products_list_the_catalog_for_a_telco_user(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", "/products/")
    assert r.status_code == 200
    assert_golden("config_products", r)
    body = r.json()
    assert_shape(body, SPEC_PRODUCTS)
    assert body["total"] == str(len(demo.PRODUCTS))
    spec_items = {i["uuid"]: i for i in SPEC_PRODUCTS["items"]}
    for item in body["items"]:  # the spec's products carry the spec's names and notes
        assert spec_items.get(item["uuid"], item) == item
    assert (await get(ccs, "telco", "/products")).content == r.content


async def test_products_are_telco_level(ccs: CcsWorld) -> None:
    r = await get(ccs, "tenant_admin", "/products/")
    assert_golden("config_products_tenant_level", r)
    assert r.json() == {
        "success": False,
        "reason": "Only for telco level users: the product catalog is managed by the telco",
    }


async def test_products_without_tenant_edit_name_the_permission(ccs: CcsWorld) -> None:
    r = await get(ccs, "agent", "/products/")
    assert_golden("config_products_no_permission", r)
    assert "Tenant Edit" in r.json()["reason"]


async def test_products_without_a_token(ccs: CcsWorld) -> None:
    r = await get(ccs, None, "/products/")
    assert_golden("config_products_unauthorized", r)
    assert r.content == b'{"status":401,"reason":"Unauthorized"}'


# ---------------------------------------------------------------------- 4.2 / 4.5 roles


async def test_roles_list_the_global_roles_as_the_spec_shows_them(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", "/roles/")
    assert_golden("config_roles", r)
    assert r.json() == SPEC_ROLES  # same ids, names, order and total
    assert (await get(ccs, "tenant_admin", "/roles")).json() == SPEC_ROLES


async def test_roles_need_tenant_edit(ccs: CcsWorld) -> None:
    r = await get(ccs, "agent", "/roles/")
    assert_golden("config_roles_no_permission", r)
    assert r.status_code == 400


async def test_tenant_roles_as_the_spec_shows_them(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", f"/tenants/{OWN_TENANT}/roles")
    assert_golden("config_tenant_roles", r)
    assert r.json() == SPEC_TENANT_ROLES
    other = (await get(ccs, "other_admin", f"/tenants/{OTHER_TENANT}/roles")).json()
    assert [i["uuid"] for i in other["items"]] == [OTHER["role"]]


async def test_tenant_roles_of_another_tenant_are_not_found(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", f"/tenants/{OTHER_TENANT}/roles")
    assert_golden("config_tenant_roles_not_found", r)
    assert r.json() == {"success": False, "reason": f"tenant '{OTHER_TENANT}' not found"}


# ---------------------------------------------------------------------- 4.3 / 4.4 tenants


async def test_tenant_listing_has_the_spec_shape_and_values(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", "/tenants")
    assert_golden("config_tenants", r)
    body = r.json()
    assert_shape(body, SPEC_TENANTS)
    item, spec = body["items"][0], SPEC_TENANTS["items"][0]
    times = {"modified_on", "created_on", "created_by"}  # provenance, not configuration
    assert {k: v for k, v in item.items() if k not in times} == {
        k: v for k, v in spec.items() if k not in times
    }


async def test_each_user_lists_only_the_tenants_it_reaches(ccs: CcsWorld) -> None:
    async def uuids(user: str) -> list[str]:
        return [t["uuid"] for t in (await get(ccs, user, "/tenants/")).json()["items"]]

    assert await uuids("telco") == [OWN_TENANT]
    assert await uuids("tenant_admin") == [OWN_TENANT]
    assert await uuids("other_telco") == [OTHER_TENANT]
    assert await uuids("other_admin") == [OTHER_TENANT]


async def test_tenant_details_are_the_spec_example(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", f"/tenants/{OWN_TENANT}")
    assert_golden("config_tenant_details", r)
    body = r.json()
    assert_shape(body, SPEC_TENANT)
    counts = {k for k in SPEC_TENANT if k.endswith("_count")}
    times = {"modified_on", "created_on", "created_by"}  # provenance, not configuration
    assert {k: v for k, v in body.items() if k not in counts | times} == {
        k: v for k, v in SPEC_TENANT.items() if k not in counts | times
    }
    # counts are the demo tenant's real usage: agents 112-114, queues Q386/Q3878/Outbound
    assert {k: body[k] for k in sorted(counts)} == {
        "chat_licenses_count": 0,
        "group_agent_count": 3,
        "max_agents_count": 3,
        "max_queues_count": 3,
        "monitor_ext_count": 0,
        "multimedia_licenses_count": 0,
        "rec_extn_count": 0,
    }
    assert body["created_on"] == body["modified_on"] and body["created_by"] == "system"


async def test_tenant_details_dates_are_utc_in_the_spec_format(ccs: CcsWorld) -> None:
    tenant = ccs.c.directory.tenants[OWN_TENANT]
    when = tenant.created_at.astimezone().replace(hour=19, minute=5, second=9)
    ccs.c.directory.tenants[OWN_TENANT] = tenant.model_copy(update={"modified_at": when})
    body = (await get(ccs, "telco", f"/tenants/{OWN_TENANT}")).json()
    utc = when.astimezone(__import__("datetime").UTC)
    hour = utc.hour % 12 or 12
    assert body["modified_on"] == (
        f"{utc:%Y-%m-%d} {hour:02d}:{utc:%M:%S} {'AM' if utc.hour < 12 else 'PM'}"
    )


async def test_tenant_details_of_a_tenant_without_a_profile_use_defaults(ccs: CcsWorld) -> None:
    body = (await get(ccs, "other_telco", f"/tenants/{OTHER_TENANT}")).json()
    assert body["name"] == body["sil_tenant_name"] == "OtherLab"
    assert body["silhouette_id"] is None and body["default_gateway_id"] is None
    assert body["max_agents"] == "100" and body["max_agents_count"] == 1
    assert body["telco_id"] == {
        "uuid": "bb000000-0000-4000-8000-000000000001",
        "name": "Other Telco",
    }


async def test_tenant_details_of_another_tenant_are_not_found(ccs: CcsWorld) -> None:
    r = await get(ccs, "tenant_admin", f"/tenants/{OTHER_TENANT}")
    assert_golden("config_tenant_details_not_found", r)
    r2 = await get(ccs, "tenant_admin", "/tenants/no-such-tenant")
    assert r2.json()["reason"] == "tenant 'no-such-tenant' not found"


async def test_tenant_details_need_tenants_view_or_tenant_edit(ccs: CcsWorld) -> None:
    r = await get(ccs, "agent", f"/tenants/{OWN_TENANT}")
    assert_golden("config_tenant_details_no_permission", r)
    assert r.json()["reason"] == ("Insufficient permissions: Tenants View/Tenant Edit required")


async def test_tenants_view_alone_is_enough_to_read(ccs: CcsWorld) -> None:
    d = ccs.c.directory
    role = await d.create_role("Viewer", [Permission.API, Permission.TENANTS_VIEW])
    agent: Principal = d.principals[demo.PRINCIPALS["agent"][0]]
    d.principals[agent.id] = agent.model_copy(update={"role_ids": [role.id]})
    r = await get(ccs, "agent", f"/tenants/{OWN_TENANT}")
    assert r.status_code == 200 and r.json()["uuid"] == OWN_TENANT


# ---------------------------------------------------------------------- 4.6 ACDs


async def test_acds_of_the_own_tenant_have_the_spec_quirks(ccs: CcsWorld) -> None:
    r = await get(ccs, "tenant_admin", "/acds")
    assert_golden("config_acds", r)
    body = r.json()
    assert_shape(body, SPEC_ACDS)
    assert body["total"] == 3 and len(body["items"]) == 1  # a number; a list in a list
    names = [(q["name"], q["type"], q["extension"]) for q in body["items"][0]]
    assert names == [
        ("Q3878", "voice_queues", "387"),
        ("Q386", "voice_queues", "386"),
        ("Outbound", "voice_outbound_queues", ""),
    ]
    spec = {q["uuid"]: q for q in SPEC_ACDS["items"][0]}
    for q in body["items"][0][:2]:  # the spec's queues, but with our tenant's id
        assert {**spec[q["uuid"]], "tenant_id": OWN_TENANT} == q
    assert (await get(ccs, "telco", f"/tenants/{OWN_TENANT}/acds")).content == r.content


async def test_acds_show_the_kinds_the_user_may_view(ccs: CcsWorld) -> None:
    d = ccs.c.directory
    role = await d.create_role("IQ viewer", [Permission.API, Permission.QUEUES_VIEW])
    agent: Principal = d.principals[demo.PRINCIPALS["agent"][0]]
    d.principals[agent.id] = agent.model_copy(update={"role_ids": [role.id]})
    body = (await get(ccs, "agent", "/acds/")).json()
    assert body["total"] == 2
    assert {q["type"] for q in body["items"][0]} == {"voice_queues"}


async def test_acds_at_tenant_level_refuse_a_telco_user(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", "/acds")
    assert_golden("config_acds_telco_level", r)
    assert r.json()["reason"].startswith("Only for tenant level users")


async def test_acds_need_a_queue_view_permission(ccs: CcsWorld) -> None:
    r = await get(ccs, "agent", "/acds")
    assert_golden("config_acds_no_permission", r)
    assert "Voice IQs View/Voice OQs View" in r.json()["reason"]


async def test_acds_of_another_tenant_are_not_found(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", f"/tenants/{OTHER_TENANT}/acds")
    assert_golden("config_acds_not_found", r)


# ---------------------------------------------------------------------- 4.7 presence options


async def test_presence_options_as_the_spec_shows_them(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", f"/tenants/{OWN_TENANT}/presence_options")
    assert_golden("config_presence_options", r)
    body = r.json()
    assert_shape(body, SPEC_PRESENCE)
    # the spec's three options in its order; the demo adds the "Lunch Break" of 4.16's example
    assert body["items"][:2] == SPEC_PRESENCE["items"][:2]
    assert body["items"][2:] == [
        SPEC_PRESENCE["items"][2],
        {"uuid": demo.PRESENCE_OPTIONS[3][0], "type": "away", "name": "Lunch Break"},
    ]
    assert body["total"] == "4"


async def test_presence_options_of_another_tenant_are_not_found(ccs: CcsWorld) -> None:
    r = await get(ccs, "other_admin", f"/tenants/{OWN_TENANT}/presence_options")
    assert_golden("config_presence_options_not_found", r)


# ---------------------------------------------------------------------- 4.8 extensions


async def test_extensions_of_a_tenant_as_the_spec_shows_them(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", f"/tenants/{OWN_TENANT}/extensions")
    assert_golden("config_extensions", r)
    body = r.json()
    assert_shape(body, SPEC_EXTENSIONS)
    # the demo adds extension 120 (a front desk) before the spec's 114, 113, 112
    assert body["items"][1:] == SPEC_EXTENSIONS["items"]
    assert body["items"][0]["extension"] == "120" and body["total"] == "4"


async def test_extensions_at_tenant_level(ccs: CcsWorld) -> None:
    r = await get(ccs, "tenant_admin", "/extensions")
    assert_golden("config_extensions_own", r)
    assert r.json() == (await get(ccs, "telco", f"/tenants/{OWN_TENANT}/extensions")).json()
    other = (await get(ccs, "other_admin", "/extensions/")).json()
    assert [e["uuid"] for e in other["items"]] == [OTHER["ext_112"]]


async def test_extensions_at_tenant_level_refuse_a_telco_user(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", "/extensions")
    assert_golden("config_extensions_telco_level", r)


async def test_extensions_of_another_tenant_are_not_found(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", f"/tenants/{OTHER_TENANT}/extensions")
    assert_golden("config_extensions_not_found", r)


# ---------------------------------------------------------------------- 4.9 text count


async def test_text_count_for_a_telco_user(ccs: CcsWorld) -> None:
    r = await get(ccs, "telco", f"/tenants/{OWN_TENANT}/text_count")
    assert_golden("config_text_count", r)
    assert r.json() == {"success": True, "uuid": OWN_TENANT, "text_count": "0", "reset_on": ""}


async def test_text_count_is_telco_level(ccs: CcsWorld) -> None:
    r = await get(ccs, "tenant_admin", f"/tenants/{OWN_TENANT}/text_count")
    assert_golden("config_text_count_tenant_level", r)
    assert r.json()["reason"].startswith("Only for telco level users")
