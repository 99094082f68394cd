"""CCS 4.1-4.14: products, roles, tenants, ACDs, presence options, extensions, text count,
tenant products, limits and licences, extension update.

This module serves the tenant itself (4.3, 4.4, 4.9-4.13) and gathers the other configuration
routers (:mod:`.routes_catalog`, :mod:`.routes_extensions`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ...bootstrap import Container
from ...domain.tenancy import AgentBilling, Limits, Permission, Product, Tenant
from . import routes_catalog, routes_extensions
from .deps import ActorDep, ContainerDep, need, tenant_in_path
from .errors import CcsError
from .request_body import action_of, read_object
from .routes_config_wire import (
    choice_field,
    count_field,
    no_unknown_fields,
    nonempty_text,
    telco_level,
    tenant_details,
    tenant_item,
    text_count,
)
from .routing import route
from .wire import listing, ok

router = APIRouter()
router.include_router(routes_catalog.router)
router.include_router(routes_extensions.router)

#: the limits and licences of 4.13 (all of :class:`Limits` but the billing model)
LIMIT_FIELDS = tuple(name for name in Limits.model_fields if name != "agent_billing")
TENANT_FIELDS = {"product_name", "agent_billing", *LIMIT_FIELDS}


def _telco_name(c: Container, tenant: Tenant) -> str:
    telco = c.directory.telcos.get(tenant.telco_id)
    return telco.name if telco is not None else ""


def _products(c: Container, tenant: Tenant) -> list[Product]:
    found = (c.directory.products.get(pid) for pid in tenant.product_ids)
    return [p for p in found if p is not None]


@route(router, "GET", "/tenants")
async def list_tenants(actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    """4.3: a telco user's tenants; a tenant-level user's own tenant."""
    need(actor, any_of=(Permission.TENANTS_VIEW, Permission.TENANT_EDIT))
    tenants = c.directory.visible_tenants(actor)
    return listing([tenant_item(t, _telco_name(c, t), _products(c, t)) for t in tenants])


@route(router, "GET", "/tenants/{tenant_id}")
async def get_tenant(tenant_id: str, actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    need(actor, any_of=(Permission.TENANTS_VIEW, Permission.TENANT_EDIT))
    tenant = tenant_in_path(c, actor, tenant_id)
    usage = c.directory.usage(tenant.id)
    return tenant_details(tenant, _telco_name(c, tenant), _products(c, tenant), usage)


@route(router, "GET", "/tenants/{tenant_id}/text_count")
async def get_text_count(tenant_id: str, actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    need(actor, any_of=(Permission.TENANTS_VIEW, Permission.TENANT_EDIT))
    telco_level(actor, "the text count is read by the telco")
    return text_count(tenant_in_path(c, actor, tenant_id))


@route(router, "POST", "/tenants/{tenant_id}/text_count")
async def reset_text_count(
    tenant_id: str, request: Request, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    # the spec asks "Tenants View/Tenant Edit" here too; a reset is a change, so callbridge's
    # service asks for Tenant Edit (a Tenants View-only user gets the service's refusal)
    need(actor, any_of=(Permission.TENANTS_VIEW, Permission.TENANT_EDIT))
    telco_level(actor, "the text count is reset by the telco")
    tenant = tenant_in_path(c, actor, tenant_id)
    body = await read_object(request)
    action_of(body, ("reset_counter",))
    no_unknown_fields(body, {"request"})
    return text_count(await c.directory.reset_text_count(actor, tenant.id))


@route(router, "POST", "/tenants/{tenant_id}")
async def tenant_product(
    tenant_id: str, request: Request, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    """4.11/4.12: ``add_product`` / ``delete_product``."""
    need(actor, Permission.TENANT_EDIT)
    telco_level(actor, "a tenant's products are changed by the telco")
    tenant = tenant_in_path(c, actor, tenant_id)
    body = await read_object(request)
    kind = action_of(body, ("add_product", "delete_product"))
    no_unknown_fields(body, {"request", "product"})
    product_id = nonempty_text("product", body.get("product"))
    if kind == "add_product":
        await c.directory.add_product(actor, tenant.id, product_id)
    else:
        await c.directory.delete_product(actor, tenant.id, product_id)
    return ok(uuid=product_id)


def tenant_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The 4.13 body as changes for the directory's ``update_tenant``."""
    no_unknown_fields(body, TENANT_FIELDS)
    changes: dict[str, Any] = {}
    if "product_name" in body:
        changes["product_name"] = nonempty_text("product_name", body["product_name"])
    for name in LIMIT_FIELDS:
        if name in body:
            changes[name] = count_field(name, body[name])
    if "agent_billing" in body:
        billing = tuple(b.value for b in AgentBilling)
        changes["agent_billing"] = choice_field("agent_billing", body["agent_billing"], billing)
    if not changes:
        fields = ", ".join(sorted(TENANT_FIELDS))
        raise CcsError(f"nothing to update: give any of {fields}")
    return changes


@route(router, "PUT", "/tenants/{tenant_id}")
async def update_tenant(
    tenant_id: str, request: Request, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    """4.13: product name, limits and licences, agent billing."""
    need(actor, Permission.TENANT_EDIT)
    telco_level(actor, "a tenant's limits and licences are set by the telco")
    tenant = tenant_in_path(c, actor, tenant_id)
    changes = tenant_changes(await read_object(request))
    await c.directory.update_tenant(actor, tenant.id, changes)
    return ok(uuid=tenant.id)
