"""CCS 4.8 and 4.14: list a tenant's extensions, update one extension's licensed features.

The limits (agents, recording, monitor, chat and multimedia licences) are enforced by the
directory service; a refusal names the limit.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ...bootstrap import Container
from ...domain.directory import RecordingType
from ...domain.tenancy import Permission, Tenant
from .deps import ActorDep, ContainerDep, need, own_tenant, tenant_in_path
from .errors import CcsError
from .request_body import read_object
from .routes_config_wire import (
    choice_field,
    count_field,
    extension_item,
    flag_field,
    no_unknown_fields,
)
from .routing import route
from .wire import listing, ok

router = APIRouter()

#: the spec's 4.14 body prints this key with a leading space; both spellings are accepted
MULTIMEDIA_KEYS = ("is_multimedia_enabled", " is_multimedia_enabled")
EXTENSION_FIELDS = {"is_agent", "recording_type", "monitor", "max_chats", *MULTIMEDIA_KEYS}
MAX_CHATS = 6


def _extensions(c: Container, tenant: Tenant) -> dict[str, Any]:
    # highest number first: the order of the spec's example (114, 113, 112)
    exts = sorted(
        c.directory.extensions_of(tenant.id), key=lambda e: (len(e.number), e.number), reverse=True
    )
    return listing([extension_item(e) for e in exts])


@route(router, "GET", "/tenants/{tenant_id}/extensions")
async def list_tenant_extensions(
    tenant_id: str, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    need(actor, any_of=(Permission.TENANTS_VIEW, Permission.TENANT_EDIT))
    return _extensions(c, tenant_in_path(c, actor, tenant_id))


@route(router, "GET", "/extensions")
async def list_own_extensions(actor: ActorDep, c: ContainerDep) -> dict[str, Any]:
    need(actor, any_of=(Permission.TENANTS_VIEW, Permission.TENANT_EDIT))
    return _extensions(c, own_tenant(c, actor))


def extension_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The 4.14 body as changes to an :class:`~callbridge.domain.directory.Extension`."""
    no_unknown_fields(body, EXTENSION_FIELDS)
    given = [k for k in MULTIMEDIA_KEYS if k in body]
    if len(given) == 2:
        raise CcsError("is_multimedia_enabled is given twice (with and without a leading space)")
    changes: dict[str, Any] = {}
    for key in ("is_agent", "monitor"):
        if key in body:
            changes[key] = flag_field(key, body[key])
    if given:
        changes["is_multimedia_enabled"] = flag_field("is_multimedia_enabled", body[given[0]])
    if "recording_type" in body:
        kinds = tuple(r.value for r in RecordingType)
        changes["recording_type"] = choice_field("recording_type", body["recording_type"], kinds)
    if "max_chats" in body:
        changes["max_chats"] = count_field("max_chats", body["max_chats"], maximum=MAX_CHATS)
    if not changes:
        fields = ", ".join(sorted(EXTENSION_FIELDS - {MULTIMEDIA_KEYS[1]}))
        raise CcsError(f"nothing to update: give any of {fields}")
    return changes


@route(router, "PUT", "/tenants/{tenant_id}/extensions/{extension_id}/")
async def update_extension(
    tenant_id: str, extension_id: str, request: Request, actor: ActorDep, c: ContainerDep
) -> dict[str, Any]:
    need(actor, Permission.TENANT_EDIT)
    tenant = tenant_in_path(c, actor, tenant_id)
    c.directory.extension(actor, tenant.id, extension_id)  # not found before a body complaint
    changes = extension_changes(await read_object(request))
    await c.directory.update_extension(actor, tenant.id, extension_id, changes)
    return ok()
