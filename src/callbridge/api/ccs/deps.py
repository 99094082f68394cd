"""Authentication, permissions and tenant scope for CCS requests.

* The token travels as ``Authorization: Bearer <token>`` (the spec leaves the transport open;
  ``Authorization: <token>`` without a scheme is accepted too). No or a bad token: 401.
* Every REST endpoint needs the ``API`` permission plus the endpoint's own ("Tenants View/Tenant
  Edit" means either). Missing: 400 with a reason naming what is missing.
* Telco-level users reach a tenant of their telco through ``/tenants/<uuid>/…``; tenant-level
  users reach their own tenant through ``/extensions``, ``/acds``, ``/calls``, ``/agent_state`` and
  also through ``/tenants/<their uuid>/…``. Any other tenant is "not found".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ...bootstrap import Container
from ...domain.errors import DomainError
from ...domain.tenancy import Permission, Tenant
from ...service.auth import Actor
from .errors import CcsError


async def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


def token_of(header: str | None) -> str | None:
    """The token in an ``Authorization`` header value (``Bearer <t>`` or a bare ``<t>``)."""
    if not header:
        return None
    parts = header.strip().split(None, 1)
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1].strip() or None
    if len(parts) == 1:
        return parts[0]
    return None


async def actor(request: Request) -> Actor:
    c: Container = request.app.state.container
    try:
        return c.directory.authenticate(token_of(request.headers.get("authorization")))
    except DomainError:
        raise CcsError("Unauthorized", status=401) from None


ContainerDep = Annotated[Container, Depends(container)]
ActorDep = Annotated[Actor, Depends(actor)]


def need(actor: Actor, *all_of: Permission, any_of: tuple[Permission, ...] = ()) -> None:
    """Require ``API``, every permission of ``all_of`` and at least one of ``any_of``."""
    missing = [p.value for p in (Permission.API, *all_of) if not actor.has(p)]
    if any_of and not any(actor.has(p) for p in any_of):
        missing.append("/".join(p.value for p in any_of))
    if missing:
        raise CcsError(f"Insufficient permissions: {', '.join(missing)} required")


def tenant_in_path(c: Container, actor: Actor, tenant_id: str) -> Tenant:
    """The tenant named in ``/tenants/<uuid>/…`` if the user may reach it (else not found)."""
    return c.directory.tenant(actor, tenant_id)


def own_tenant(c: Container, actor: Actor) -> Tenant:
    """The tenant of a tenant-level user (for ``/extensions``, ``/acds``, ``/calls`` …)."""
    tenant_id = actor.principal.tenant_id
    if actor.is_telco or tenant_id is None:
        raise CcsError("Only for tenant level users: use /tenants/<tenant_uuid>/…")
    return c.directory.tenant(actor, tenant_id)
