"""Wire shapes of CCS 4.1-4.14: request bodies in, configuration objects out.

Bodies are read as JSON objects by :mod:`.request_body` (one reader for the whole dialect), then
field by field here rather than by pydantic models: the spec sends numbers and booleans as
strings (``"max_agents": "100"``, ``"is_agent": "true"``) and one key with a leading space
(``" is_multimedia_enabled"``), and every refusal must name the field in CCS's own error shape.
"""

from __future__ import annotations

import re
from typing import Any

from ...domain.directory import Extension, PresenceOption, Queue
from ...domain.tenancy import NamedRef, Product, Role, Tenant, Usage
from ...service.auth import Actor
from .errors import CcsError
from .wire import ccs_datetime

#: the largest limit or licence count accepted (a typo guard, far above any real tenant)
MAX_COUNT = 100_000

_DIGITS = re.compile(r"[0-9]{1,9}")


def no_unknown_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise CcsError(f"unknown field(s): {', '.join(unknown)}")


def count_field(name: str, value: Any, *, maximum: int = MAX_COUNT) -> int:
    """A whole number sent as a digit string (the spec's examples) or a JSON integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        raise CcsError(f"{name} must be a whole number, as a digit string or an integer")
    if not 0 <= number <= maximum:
        raise CcsError(f"{name} must be between 0 and {maximum}")
    return number


def flag_field(name: str, value: Any) -> bool:
    """A boolean sent as ``"true"``/``"false"`` (the spec's examples) or a JSON boolean."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise CcsError(f'{name} must be "true" or "false"')


def nonempty_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CcsError(f"{name} must be a non-empty string")
    return value


def choice_field(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise CcsError(f"{name} must be one of {', '.join(repr(c) for c in choices)}")
    return value


def telco_level(actor: Actor, what: str) -> None:
    """Refuse a tenant-level user on an operation the spec gives to telco users."""
    if not actor.is_telco:
        raise CcsError(f"Only for telco level users: {what}")


# ---------------------------------------------------------------------- objects out


def ref(value: NamedRef | None) -> dict[str, str] | None:
    return None if value is None else {"uuid": value.uuid, "name": value.name}


def product_item(product: Product) -> dict[str, Any]:
    return {"uuid": product.id, "notes": product.notes, "name": product.name}


def role_item(role: Role) -> dict[str, Any]:
    return {"uuid": role.id, "name": role.name}


def presence_item(option: PresenceOption) -> dict[str, Any]:
    return {"uuid": option.id, "type": option.type.value, "name": option.name}


def extension_item(ext: Extension) -> dict[str, Any]:
    return {
        "uuid": ext.id,
        "lastname": ext.lastname,
        "firstname": ext.firstname,
        "extension": ext.number,
    }


def acd_item(queue: Queue) -> dict[str, Any]:
    return {
        "uuid": queue.id,
        "type": queue.type.value,
        "tenant_id": queue.tenant_id,
        "name": queue.name,
        "extension": queue.extension or "",
        "alternate_extensions": list(queue.alternate_extensions),
    }


def tenant_item(tenant: Tenant, telco_name: str, products: list[Product]) -> dict[str, Any]:
    """A tenant in the listing (4.3)."""
    p = tenant.profile
    return {
        "uuid": tenant.id,
        "telco_id": {"uuid": tenant.telco_id, "name": telco_name},
        "status": tenant.status,
        "silhouette_id": ref(p.silhouette),
        "sil_tenant_url": p.sil_tenant_url,
        "sil_tenant_name": p.sil_tenant_name or tenant.name,
        "sil_tenant_id": p.sil_tenant_id,
        "sil_authentication": p.sil_authentication,
        "product_name": tenant.product_name,
        "product_id": [product_item(x) for x in products],
        "modified_on": ccs_datetime(tenant.modified_at),
        "modified_by": [],
        "cross_reference": [],
        "created_on": ccs_datetime(tenant.created_at),
        "created_by": tenant.created_by,
    }


def tenant_details(
    tenant: Tenant, telco_name: str, products: list[Product], usage: Usage
) -> dict[str, Any]:
    """A tenant's details (4.4), in the spec's key order: limits as strings, counts as numbers."""
    p, lim = tenant.profile, tenant.limits
    return {
        "success": True,
        "sil_tenant_name": p.sil_tenant_name or tenant.name,
        "site_ip_address": p.site_ip_address,
        "nightly_call_details": p.nightly_call_details,
        "rec_down_limit": str(p.rec_down_limit),
        "rec_extn_limit": str(lim.rec_extn_limit),
        "telco_id": {"uuid": tenant.telco_id, "name": telco_name},
        "chat_licenses_count": usage.chat_licenses,
        "multimedia_licenses_count": usage.multimedia_licenses,
        "group_agent_count": usage.group_agents,
        "cdr_retention": str(p.cdr_retention_days),
        "uuid": tenant.id,
        "chat_licenses": str(lim.chat_licenses),
        "multimedia_licenses": str(lim.multimedia_licenses),
        "max_queues_count": usage.queues,
        "monitor_ext_limit": str(lim.monitor_ext_limit),
        "sid": p.sil_tenant_id,
        "max_agents_count": usage.agents,
        "max_agents": str(lim.max_agents),
        "timezone": tenant.timezone,
        "product_id": [product_item(x) for x in products],
        "sil_auth_editable": p.sil_auth_editable,
        "ve_ivr": "true" if p.ve_ivr else "false",
        "modified_on": ccs_datetime(tenant.modified_at),
        "created_on": ccs_datetime(tenant.created_at),
        "sil_tenant_url": p.sil_tenant_url,
        "rec_extn_count": usage.recording_extensions,
        "sil_crplatform_enabled": p.sil_crplatform_enabled,
        "library_limit": str(p.library_limit),
        "status": tenant.status,
        "sil_authentication": p.sil_authentication,
        "default_gateway_id": ref(p.default_gateway),
        "default_signin_method": p.default_signin_method,
        "sftp_export": p.sftp_export,
        "rec_retention": str(p.rec_retention_days),
        "sil_tenant_id": p.sil_tenant_id,
        "monitor_ext_count": usage.monitor_extensions,
        "created_by": tenant.created_by,
        "campaign_size": str(p.campaign_size),
        "group_agent_limit": str(lim.group_agent_limit),
        "default_outgoing_clid": p.default_outgoing_clid,
        "rec_quality": p.rec_quality.value,
        "cleanup_sftp": p.cleanup_sftp,
        "max_queues": str(lim.max_queues),
        "service_extension": p.service_extension,
        "sftp_dir_configured": p.sftp_dir_configured,
        "name": tenant.name,
        "product_name": tenant.product_name,
        "silhouette_id": ref(p.silhouette),
    }


def text_count(tenant: Tenant) -> dict[str, Any]:
    """The SMS/MMS counter (4.9/4.10; project-defined: the spec's body is cut off)."""
    reset = tenant.text_count_reset_at
    return {
        "success": True,
        "uuid": tenant.id,
        "text_count": str(tenant.text_count),
        "reset_on": ccs_datetime(reset) if reset is not None else "",
    }
