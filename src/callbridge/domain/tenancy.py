"""Telcos, tenants, products, roles, permissions and principals.

A telco owns tenants. A principal (an API user) is either telco-level (it reaches every tenant of
its telco) or tenant-level (it reaches its own tenant only). Roles grant permissions; the names are
those of the CCS spec plus what the native API needs.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from .errors import Invalid, LimitExceeded


class Permission(StrEnum):
    API = "API"
    AGENT_CONTROL = "Agent Control"
    CALL_CONTROL = "Call Control"
    AGENT_EVENTS = "Agent Events"
    CALL_EVENTS = "Call Events"
    INBOUND_QUEUE_EVENTS = "Inbound Queue Events"
    TENANT_EDIT = "Tenant Edit"
    TENANTS_VIEW = "Tenants View"
    CALLS_VIEW = "Calls View"
    CALLS_LISTING_VIEW = "Calls Listing View"
    QUEUES_VIEW = "Voice IQs View"
    # native-only
    CONFIG_EVENTS = "Config Events"
    SIMULATOR_CONTROL = "Simulator Control"
    TOKEN_ADMIN = "Token Admin"
    CALL_MONITOR = "Call Monitor"  # listen to, whisper to and barge into agents' calls


class Level(StrEnum):
    TELCO = "telco"
    TENANT = "tenant"


class AgentBilling(StrEnum):
    NAMED = "Named"
    CONCURRENT = "Concurrent"


class Telco(BaseModel):
    id: str
    name: str


class Product(BaseModel):
    id: str
    name: str
    notes: str = ""


class Limits(BaseModel):
    """A tenant's limits and licences (CCS 4.4 / 4.13)."""

    max_agents: int = Field(default=100, ge=0)
    max_queues: int = Field(default=45, ge=0)
    rec_extn_limit: int = Field(default=10, ge=0)
    monitor_ext_limit: int = Field(default=3, ge=0)
    group_agent_limit: int = Field(default=1, ge=0)
    chat_licenses: int = Field(default=6, ge=0)
    multimedia_licenses: int = Field(default=6, ge=0)
    agent_billing: AgentBilling = AgentBilling.NAMED


class Tenant(BaseModel):
    id: str
    telco_id: str
    name: str
    product_name: str = "Call Center Services"
    product_ids: list[str] = Field(default_factory=list)
    status: str = "enable"
    timezone: str = "UTC"
    limits: Limits = Field(default_factory=Limits)
    text_count: int = 0
    created_at: datetime
    modified_at: datetime
    created_by: str = "root"


class Usage(BaseModel):
    """How much of each limit a tenant uses (computed from its extensions and queues)."""

    agents: int = 0
    queues: int = 0
    recording_extensions: int = 0
    monitor_extensions: int = 0
    chat_licenses: int = 0
    multimedia_licenses: int = 0


def check_limits(limits: Limits, usage: Usage) -> None:
    """Raise :class:`LimitExceeded` naming the first limit that ``usage`` exceeds."""
    pairs = [
        ("max_agents", usage.agents, limits.max_agents),
        ("max_queues", usage.queues, limits.max_queues),
        ("rec_extn_limit", usage.recording_extensions, limits.rec_extn_limit),
        ("monitor_ext_limit", usage.monitor_extensions, limits.monitor_ext_limit),
        ("chat_licenses", usage.chat_licenses, limits.chat_licenses),
        ("multimedia_licenses", usage.multimedia_licenses, limits.multimedia_licenses),
    ]
    for name, used, limit in pairs:
        if used > limit:
            raise LimitExceeded(
                f"{name} exceeded: {used} would be in use, the tenant allows {limit}",
                code=f"{name}_exceeded",
                limit=name,
                allowed=limit,
                requested=used,
            )


class Role(BaseModel):
    id: str
    name: str
    tenant_id: str | None = None  # None: a global role
    permissions: list[Permission] = Field(default_factory=list)


class Principal(BaseModel):
    id: str
    name: str
    level: Level
    telco_id: str
    tenant_id: str | None = None
    extension_id: str | None = None  # set for an agent acting as itself
    role_ids: list[str] = Field(default_factory=list)

    def model_post_init(self, __context: object) -> None:
        if self.level is Level.TENANT and self.tenant_id is None:
            raise Invalid("a tenant-level principal needs a tenant", code="principal_invalid")


class ApiToken(BaseModel):
    """A bearer token. Only the SHA-256 of the secret is stored."""

    id: str
    principal_id: str
    secret_hash: str
    name: str = ""
    created_at: datetime
    revoked: bool = False
