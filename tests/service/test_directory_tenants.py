"""The directory's tenant rules: what a tenant-level user may change of its own tenant, limits
never lowered below usage, every licence enforced, the tenant profile persisted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.support import World, make_world

from callbridge.domain.errors import LimitExceeded, PermissionDenied
from callbridge.domain.tenancy import (
    Limits,
    NamedRef,
    Tenant,
    TenantProfile,
    Usage,
    check_not_below_usage,
    raised_limits,
)
from callbridge.service.auth import system_actor


@pytest.fixture
async def w() -> AsyncIterator[World]:
    world = await make_world()
    try:
        yield world
    finally:
        await world.c.stop()


def test_raised_limits_names_each_increase_and_a_billing_change() -> None:
    old = Limits()
    assert raised_limits(old, old.model_copy(update={"max_agents": 99})) == []
    new = old.model_copy(update={"max_agents": 101, "group_agent_limit": 2})
    assert raised_limits(old, new) == ["max_agents", "group_agent_limit"]
    assert raised_limits(old, old.model_copy(update={"agent_billing": "Concurrent"})) == [
        "agent_billing"
    ]


def test_a_limit_cannot_be_lowered_below_usage_but_may_stay_above_it() -> None:
    old, usage = Limits(), Usage(agents=3, monitor_extensions=2)
    check_not_below_usage(old, old.model_copy(update={"max_agents": 3}), usage)
    with pytest.raises(LimitExceeded) as exc:
        check_not_below_usage(old, old.model_copy(update={"monitor_ext_limit": 1}), usage)
    assert exc.value.code == "monitor_ext_limit_below_usage"
    assert exc.value.message == "monitor_ext_limit cannot be lowered to 1: the tenant uses 2"


async def test_a_tenant_admin_may_lower_but_not_raise_its_limits(w: World) -> None:
    d = w.c.directory
    await d.update_tenant(w.admin, w.tenant, {"max_agents": 10})
    with pytest.raises(PermissionDenied) as exc:
        await d.update_tenant(w.admin, w.tenant, {"max_agents": 11})
    assert exc.value.message == "only a telco-level user can change max_agents"
    for changes in ({"product_name": "Gold"}, {"agent_billing": "Concurrent"}, {"status": "x"}):
        with pytest.raises(PermissionDenied):
            await d.update_tenant(w.admin, w.tenant, changes)
    assert d.tenants[w.tenant].limits.max_agents == 10
    assert d.tenants[w.tenant].product_name == "Call Center Services"
    await d.update_tenant(system_actor(), w.tenant, {"max_agents": 50, "product_name": "Gold"})
    assert (d.tenants[w.tenant].limits.max_agents, d.tenants[w.tenant].product_name) == (50, "Gold")


async def test_products_and_the_text_count_are_the_telcos(w: World) -> None:
    d = w.c.directory
    product = await d.create_product("Campaign")
    with pytest.raises(PermissionDenied):
        await d.add_product(w.admin, w.tenant, product.id)
    await d.add_product(system_actor(), w.tenant, product.id)
    with pytest.raises(PermissionDenied):
        await d.delete_product(w.admin, w.tenant, product.id)
    with pytest.raises(PermissionDenied):
        await d.reset_text_count(w.admin, w.tenant)
    assert d.tenants[w.tenant].product_ids == [product.id]
    reset = await d.reset_text_count(system_actor(), w.tenant)
    assert reset.text_count == 0 and reset.text_count_reset_at == w.clock.now()


async def test_lowering_below_usage_is_refused_naming_the_limit(w: World) -> None:
    d = w.c.directory
    with pytest.raises(LimitExceeded) as exc:
        await d.update_tenant(system_actor(), w.tenant, {"max_agents": 3})
    assert exc.value.code == "max_agents_below_usage"
    assert d.tenants[w.tenant].limits.max_agents == 100
    await d.update_tenant(system_actor(), w.tenant, {"max_agents": 4})


async def test_monitor_extensions_are_limited(w: World) -> None:
    d = w.c.directory
    await d.update_tenant(system_actor(), w.tenant, {"monitor_ext_limit": 1})
    await d.update_extension(w.admin, w.tenant, w.ext["101"], {"monitor": True})
    with pytest.raises(LimitExceeded) as exc:
        await d.update_extension(w.admin, w.tenant, w.ext["102"], {"monitor": True})
    assert exc.value.code == "monitor_ext_limit_exceeded"
    with pytest.raises(LimitExceeded):
        await d.create_extension(w.admin, w.tenant, {"number": "150", "monitor": True})
    assert not d.extensions[w.ext["102"]].monitor


async def test_group_agents_are_agents_in_at_least_one_queue(w: World) -> None:
    d = w.c.directory
    assert d.usage(w.tenant).group_agents == 0
    await d.update_queue(
        w.admin, w.tenant, w.queue, {"member_extension_ids": [w.ext["101"], w.ext["102"]]}
    )
    assert d.usage(w.tenant).group_agents == 2
    await d.update_extension(w.admin, w.tenant, w.ext["102"], {"is_agent": False})
    assert d.usage(w.tenant).group_agents == 1


async def test_the_profile_is_stored_and_old_tenants_load_without_one(w: World) -> None:
    d = w.c.directory
    profile = TenantProfile(
        site_ip_address="10.0.0.1", silhouette=NamedRef(uuid="s-1", name="sil"), ve_ivr=True
    )
    t = await d.create_tenant(system_actor(), "gamma", telco_id="telco-1", profile=profile)
    await d.load()
    assert d.tenants[t.id].profile == profile
    old = d.tenants[w.tenant].model_dump(mode="json")
    del old["profile"], old["text_count_reset_at"]
    loaded = Tenant.model_validate(old)
    assert loaded.profile == TenantProfile() and loaded.text_count_reset_at is None


async def test_the_profile_is_set_by_a_telco_user_only(w: World) -> None:
    d = w.c.directory
    profile = TenantProfile(service_extension="536", default_gateway=NamedRef(uuid="g", name="M"))
    with pytest.raises(PermissionDenied):
        await d.set_profile(w.admin, w.tenant, profile)
    assert d.tenants[w.tenant].profile == TenantProfile()
    await d.set_profile(system_actor(), w.tenant, profile)
    await d.load()
    assert d.tenants[w.tenant].profile == profile
