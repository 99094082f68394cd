"""CCS 4.1, 4.2, 4.5-4.7: products, roles, a tenant's roles, ACDs and presence options.

Listing orders are project-defined (the spec prints examples, not rules); each was chosen so the
demo data lists in the spec examples' order: roles by name descending, ACDs by name descending,
presence options sign-out before away and by name, products by name.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...bootstrap import Container
from ...domain.directory import PresenceType, QueueType
from ...domain.tenancy import Permission, Tenant
from ...service.auth import Actor
from .deps import ActorDep, ContainerDep, need, own_tenant, tenant_in_path
from .routes_config_wire import acd_item, presence_item, product_item, role_item, telco_level
from .routing import route
from .wire import listing

router = APIRouter()

#: which permission shows which kind of ACD (4.6: "Voice IQs View/Voice OQs View/…")
ACD_PERMISSION: dict[QueueType, Permission] = {
    QueueType.VOICE_INBOUND: Permission.QUEUES_VIEW,
    QueueType.VOICE_OUTBOUND: Permission.OUTBOUND_QUEUES_VIEW,
}


@route(router, "GET", "/products/")
async def list_products(actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    """4.1: the product catalog, for telco-level users (tenants cannot add products)."""
    need(actor, Permission.TENANT_EDIT)
    telco_level(actor, "the product catalog is managed by the telco")
    products = sorted(c.directory.products.values(), key=lambda p: (p.name.lower(), p.id))
    return listing([product_item(p) for p in products])


@route(router, "GET", "/roles/")
async def list_roles(actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    """4.2: the global roles (those any user can be given); tenant roles are in 4.5."""
    need(actor, Permission.TENANT_EDIT)
    roles = sorted(c.directory.roles_of(None), key=lambda r: r.name, reverse=True)
    return listing([role_item(r) for r in roles])


@route(router, "GET", "/tenants/{tenant_id}/roles")
async def list_tenant_roles(tenant_id: str, actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    need(actor, any_of=(Permission.TENANTS_VIEW, Permission.TENANT_EDIT))
    tenant = tenant_in_path(c, actor, tenant_id)
    roles = sorted(c.directory.roles_of(tenant.id), key=lambda r: r.name, reverse=True)
    return listing([role_item(r) for r in roles])


def _acds(c: Container, actor: Actor, tenant: Tenant) -> dict[str, Any]:
    need(actor, any_of=tuple(ACD_PERMISSION.values()))
    queues = [q for q in c.directory.queues_of(tenant.id) if actor.has(ACD_PERMISSION[q.type])]
    queues.sort(key=lambda q: q.name, reverse=True)
    # the spec's quirks: ``total`` is a number and the items are a list nested in a list
    body = listing([acd_item(q) for q in queues], total_as_string=False)
    body["items"] = [body["items"]]
    return body


@route(router, "GET", "/acds")
async def list_own_acds(actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    need(actor, any_of=tuple(ACD_PERMISSION.values()))
    return _acds(c, actor, own_tenant(c, actor))


@route(router, "GET", "/tenants/{tenant_id}/acds")
async def list_tenant_acds(tenant_id: str, actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    need(actor, any_of=tuple(ACD_PERMISSION.values()))
    return _acds(c, actor, tenant_in_path(c, actor, tenant_id))


@route(router, "GET", "/tenants/{tenant_id}/presence_options")
async def list_presence_options(tenant_id: str, actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    need(actor, any_of=(Permission.TENANTS_VIEW, Permission.TENANT_EDIT))
    tenant = tenant_in_path(c, actor, tenant_id)
    options = sorted(
        c.directory.presence_options_of(tenant.id),
        key=lambda o: (o.type is not PresenceType.SIGN_OUT, o.name),
    )
    return listing([presence_item(o) for o in options])
