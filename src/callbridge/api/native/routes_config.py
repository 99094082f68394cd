"""Native routes: tenants, products, roles, extensions, presence options, queues.

Agents, skills and queue members: :mod:`.routes_agents`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ...domain.directory import (
    Extension,
    Overflow,
    PresenceOption,
    PresenceType,
    Queue,
    QueueMember,
    QueueStrategy,
    QueueType,
    RecordingType,
    SkillRequirement,
)
from ...domain.tenancy import AgentBilling, Limits, Permission, Product, Role, Tenant, Usage
from ...service.sip_accounts import IssuedSipAccount, SipAccount
from .deps import ActorDep, ContainerDep

router = APIRouter()


class Me(BaseModel):
    id: str
    name: str
    level: str
    telco_id: str
    tenant_id: str | None
    extension_id: str | None
    permissions: list[str]


@router.get("/me", response_model=Me, tags=["auth"], summary="Who the token belongs to")
async def me(actor: ActorDep) -> Me:
    p = actor.principal
    return Me(
        id=p.id,
        name=p.name,
        level=p.level,
        telco_id=p.telco_id,
        tenant_id=p.tenant_id,
        extension_id=p.extension_id,
        permissions=sorted(actor.permissions),
    )


class TenantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    timezone: str = "UTC"
    limits: Limits = Field(default_factory=Limits)


class LimitsPatch(BaseModel):
    product_name: str | None = None
    timezone: str | None = None
    max_agents: int | None = Field(default=None, ge=0)
    max_queues: int | None = Field(default=None, ge=0)
    rec_extn_limit: int | None = Field(default=None, ge=0)
    monitor_ext_limit: int | None = Field(default=None, ge=0)
    group_agent_limit: int | None = Field(default=None, ge=0)
    chat_licenses: int | None = Field(default=None, ge=0)
    multimedia_licenses: int | None = Field(default=None, ge=0)
    agent_billing: AgentBilling | None = None


class TenantView(BaseModel):
    tenant: Tenant
    usage: Usage


@router.get("/tenants", response_model=list[Tenant], tags=["tenants"])
async def list_tenants(actor: ActorDep, c: ContainerDep) -> list[Tenant]:
    actor.require(Permission.TENANTS_VIEW)
    return c.directory.visible_tenants(actor)


@router.post("/tenants", response_model=Tenant, status_code=201, tags=["tenants"])
async def create_tenant(body: TenantCreate, actor: ActorDep, c: ContainerDep) -> Tenant:
    return await c.directory.create_tenant(
        actor, body.name, limits=body.limits, timezone=body.timezone
    )


@router.get("/tenants/{tenant_id}", response_model=TenantView, tags=["tenants"])
async def get_tenant(tenant_id: str, actor: ActorDep, c: ContainerDep) -> TenantView:
    actor.require(Permission.TENANTS_VIEW)
    return TenantView(
        tenant=c.directory.tenant(actor, tenant_id), usage=c.directory.usage(tenant_id)
    )


@router.patch(
    "/tenants/{tenant_id}",
    response_model=Tenant,
    tags=["tenants"],
    summary="Update limits and licences",
)
async def patch_tenant(
    tenant_id: str, body: LimitsPatch, actor: ActorDep, c: ContainerDep
) -> Tenant:
    return await c.directory.update_tenant(actor, tenant_id, body.model_dump(exclude_none=True))


@router.put("/tenants/{tenant_id}/products/{product_id}", response_model=Tenant, tags=["tenants"])
async def add_product(tenant_id: str, product_id: str, actor: ActorDep, c: ContainerDep) -> Tenant:
    return await c.directory.add_product(actor, tenant_id, product_id)


@router.delete(
    "/tenants/{tenant_id}/products/{product_id}", response_model=Tenant, tags=["tenants"]
)
async def delete_product(
    tenant_id: str, product_id: str, actor: ActorDep, c: ContainerDep
) -> Tenant:
    return await c.directory.delete_product(actor, tenant_id, product_id)


@router.get("/products", response_model=list[Product], tags=["tenants"])
async def list_products(actor: ActorDep, c: ContainerDep) -> list[Product]:
    actor.require(Permission.TENANT_EDIT)
    return sorted(c.directory.products.values(), key=lambda p: p.name)


@router.get("/roles", response_model=list[Role], tags=["auth"], summary="Global roles")
async def list_roles(actor: ActorDep, c: ContainerDep) -> list[Role]:
    actor.require(Permission.TENANT_EDIT)
    return c.directory.roles_of(None)


@router.get("/tenants/{tenant_id}/roles", response_model=list[Role], tags=["auth"])
async def tenant_roles(tenant_id: str, actor: ActorDep, c: ContainerDep) -> list[Role]:
    actor.require(Permission.TENANTS_VIEW)
    c.directory.tenant(actor, tenant_id)
    return c.directory.roles_of(tenant_id)


# ---------------------------------------------------------------- extensions


class ExtensionCreate(BaseModel):
    number: str
    firstname: str = ""
    lastname: str = ""
    is_agent: bool = False
    recording_type: RecordingType = RecordingType.NONE
    monitor: bool = False
    max_chats: int = Field(default=0, ge=0, le=6)
    is_multimedia_enabled: bool = False


class ExtensionPatch(BaseModel):
    number: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    is_agent: bool | None = None
    recording_type: RecordingType | None = None
    monitor: bool | None = None
    max_chats: int | None = Field(default=None, ge=0, le=6)
    is_multimedia_enabled: bool | None = None


@router.get("/tenants/{tenant_id}/extensions", response_model=list[Extension], tags=["extensions"])
async def list_extensions(tenant_id: str, actor: ActorDep, c: ContainerDep) -> list[Extension]:
    actor.require(Permission.TENANTS_VIEW)
    c.directory.tenant(actor, tenant_id)
    return c.directory.extensions_of(tenant_id)


@router.post(
    "/tenants/{tenant_id}/extensions",
    response_model=Extension,
    status_code=201,
    tags=["extensions"],
)
async def create_extension(
    tenant_id: str, body: ExtensionCreate, actor: ActorDep, c: ContainerDep
) -> Extension:
    return await c.directory.create_extension(actor, tenant_id, body.model_dump())


@router.get(
    "/tenants/{tenant_id}/extensions/{extension_id}", response_model=Extension, tags=["extensions"]
)
async def get_extension(
    tenant_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> Extension:
    actor.require(Permission.TENANTS_VIEW)
    return c.directory.extension(actor, tenant_id, extension_id)


@router.patch(
    "/tenants/{tenant_id}/extensions/{extension_id}", response_model=Extension, tags=["extensions"]
)
async def patch_extension(
    tenant_id: str, extension_id: str, body: ExtensionPatch, actor: ActorDep, c: ContainerDep
) -> Extension:
    return await c.directory.update_extension(
        actor, tenant_id, extension_id, body.model_dump(exclude_none=True)
    )


@router.delete(
    "/tenants/{tenant_id}/extensions/{extension_id}", status_code=204, tags=["extensions"]
)
async def delete_extension(
    tenant_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> Response:
    await c.directory.delete_extension(actor, tenant_id, extension_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- presence and agent state


class PresenceCreate(BaseModel):
    type: PresenceType
    name: str = Field(min_length=1, max_length=100)


@router.get(
    "/tenants/{tenant_id}/presence-options", response_model=list[PresenceOption], tags=["agents"]
)
async def list_presence(tenant_id: str, actor: ActorDep, c: ContainerDep) -> list[PresenceOption]:
    actor.require(Permission.TENANTS_VIEW)
    c.directory.tenant(actor, tenant_id)
    return c.directory.presence_options_of(tenant_id)


@router.post(
    "/tenants/{tenant_id}/presence-options",
    response_model=PresenceOption,
    status_code=201,
    tags=["agents"],
)
async def create_presence(
    tenant_id: str, body: PresenceCreate, actor: ActorDep, c: ContainerDep
) -> PresenceOption:
    return await c.directory.create_presence_option(actor, tenant_id, body.type, body.name)


@router.delete(
    "/tenants/{tenant_id}/presence-options/{option_id}", status_code=204, tags=["agents"]
)
async def delete_presence(
    tenant_id: str, option_id: str, actor: ActorDep, c: ContainerDep
) -> Response:
    await c.directory.delete_presence_option(actor, tenant_id, option_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- queues


class QueueSettings(BaseModel):
    """The ACD settings of a queue (all optional on update)."""

    strategy: QueueStrategy | None = None
    ring_timeout_s: int | None = Field(default=None, ge=5, le=600)
    wrapup_s: int | None = Field(default=None, ge=0, le=3600)
    max_wait_s: int | None = Field(default=None, ge=1, description="null: no limit")
    max_length: int | None = Field(default=None, ge=0, description="null: no limit")
    overflow: Overflow | None = None
    service_level_s: int | None = Field(default=None, ge=1, le=3600)
    max_consecutive_misses: int | None = Field(default=None, ge=0, le=100)
    missed_presence: str | None = Field(
        default=None, description="Away option the miss rule moves the agent to"
    )
    music: str | None = Field(default=None, min_length=1, max_length=100)
    required_skills: list[SkillRequirement] | None = None
    members: list[QueueMember] | None = Field(
        default=None, description="Agents with priority (1 first); replaces member_extension_ids"
    )


class QueueCreate(QueueSettings):
    name: str = Field(min_length=1, max_length=100)
    type: QueueType = QueueType.VOICE_INBOUND
    extension: str | None = None
    alternate_extensions: list[str] = Field(default_factory=list)
    caller_id: str | None = None
    member_extension_ids: list[str] = Field(default_factory=list)


class QueuePatch(QueueSettings):
    name: str | None = None
    extension: str | None = None
    alternate_extensions: list[str] | None = None
    caller_id: str | None = None
    member_extension_ids: list[str] | None = None


@router.get("/tenants/{tenant_id}/queues", response_model=list[Queue], tags=["queues"])
async def list_queues(tenant_id: str, actor: ActorDep, c: ContainerDep) -> list[Queue]:
    actor.require(Permission.TENANTS_VIEW)
    c.directory.tenant(actor, tenant_id)
    return c.directory.queues_of(tenant_id)


@router.post("/tenants/{tenant_id}/queues", response_model=Queue, status_code=201, tags=["queues"])
async def create_queue(
    tenant_id: str, body: QueueCreate, actor: ActorDep, c: ContainerDep
) -> Queue:
    return await c.directory.create_queue(actor, tenant_id, body.model_dump(exclude_none=True))


@router.get("/tenants/{tenant_id}/queues/{queue_id}", response_model=Queue, tags=["queues"])
async def get_queue(tenant_id: str, queue_id: str, actor: ActorDep, c: ContainerDep) -> Queue:
    actor.require(Permission.TENANTS_VIEW)
    return c.directory.queue(actor, tenant_id, queue_id)


@router.patch("/tenants/{tenant_id}/queues/{queue_id}", response_model=Queue, tags=["queues"])
async def patch_queue(
    tenant_id: str, queue_id: str, body: QueuePatch, actor: ActorDep, c: ContainerDep
) -> Queue:
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    return await c.directory.update_queue(actor, tenant_id, queue_id, changes)


@router.delete("/tenants/{tenant_id}/queues/{queue_id}", status_code=204, tags=["queues"])
async def delete_queue(tenant_id: str, queue_id: str, actor: ActorDep, c: ContainerDep) -> Response:
    await c.directory.delete_queue(actor, tenant_id, queue_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- SIP accounts


class SipAccountSet(BaseModel):
    username: str | None = Field(default=None, description="Default: the extension number")
    password: str | None = Field(
        default=None, min_length=12, description="Default: a generated one, returned once"
    )


@router.get(
    "/tenants/{tenant_id}/extensions/{extension_id}/sip-account",
    response_model=SipAccount,
    tags=["extensions"],
    summary="The SIP username the extension's phone registers with",
)
async def get_sip_account(
    tenant_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> SipAccount:
    return c.sip_accounts.get(actor, tenant_id, extension_id)


@router.put(
    "/tenants/{tenant_id}/extensions/{extension_id}/sip-account",
    response_model=IssuedSipAccount,
    tags=["extensions"],
    summary="Set (or generate) the phone's SIP credentials; the password is shown this once",
)
async def set_sip_account(
    tenant_id: str, extension_id: str, body: SipAccountSet, actor: ActorDep, c: ContainerDep
) -> IssuedSipAccount:
    return await c.sip_accounts.set(
        actor, tenant_id, extension_id, username=body.username, password=body.password
    )


@router.delete(
    "/tenants/{tenant_id}/extensions/{extension_id}/sip-account",
    status_code=204,
    tags=["extensions"],
)
async def delete_sip_account(
    tenant_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> Response:
    await c.sip_accounts.delete(actor, tenant_id, extension_id)
    return Response(status_code=204)
