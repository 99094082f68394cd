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
    OUTBOUND_QUEUES_VIEW = "Voice OQs View"
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


class NamedRef(BaseModel):
    """A reference to an object the core does not model beyond its id and name (a Silhouette
    platform, a gateway)."""

    uuid: str
    name: str


class RecordingQuality(StrEnum):
    MONO = "mono"
    STEREO = "stereo"


class TenantProfile(BaseModel):
    """A tenant's provisioning record: the settings CCS reports (4.3/4.4) that callbridge keeps
    and shows but does not act on (platform links, retention periods, SFTP export, defaults).

    Every field has a default, so tenants stored before the profile existed still load.
    """

    site_ip_address: str = ""
    silhouette: NamedRef | None = None
    sil_tenant_url: str = ""
    sil_tenant_name: str | None = None  # None: the tenant's name
    sil_tenant_id: str = ""
    sil_authentication: bool = False
    sil_auth_editable: bool = False
    sil_crplatform_enabled: bool = False
    nightly_call_details: bool = False
    cdr_retention_days: int = Field(default=365, ge=0)
    rec_retention_days: int = Field(default=30, ge=0)
    rec_quality: RecordingQuality = RecordingQuality.MONO
    rec_down_limit: int = Field(default=100, ge=0)
    library_limit: int = Field(default=600, ge=0)
    campaign_size: int = Field(default=99, ge=0)
    default_gateway: NamedRef | None = None
    default_signin_method: str = "Phone"
    default_outgoing_clid: str = ""
    service_extension: str = ""
    ve_ivr: bool = False
    sftp_export: bool = False
    cleanup_sftp: bool = False
    sftp_dir_configured: bool = False


class Tenant(BaseModel):
    id: str
    telco_id: str
    name: str
    product_name: str = "Call Center Services"
    product_ids: list[str] = Field(default_factory=list)
    status: str = "enable"
    timezone: str = "UTC"
    limits: Limits = Field(default_factory=Limits)
    profile: TenantProfile = Field(default_factory=TenantProfile)
    #: SMS/MMS sent since the last reset; callbridge has no SMS/MMS, so nothing increments it
    text_count: int = 0
    text_count_reset_at: datetime | None = None
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
    #: agents that are members of at least one queue (reported, not limited)
    group_agents: int = 0


#: limit -> the :class:`Usage` field it caps
LIMIT_USAGE: dict[str, str] = {
    "max_agents": "agents",
    "max_queues": "queues",
    "rec_extn_limit": "recording_extensions",
    "monitor_ext_limit": "monitor_extensions",
    "chat_licenses": "chat_licenses",
    "multimedia_licenses": "multimedia_licenses",
}


def check_not_below_usage(old: Limits, new: Limits, usage: Usage) -> None:
    """Raise :class:`LimitExceeded` naming the first limit lowered below what is in use."""
    for name, field in LIMIT_USAGE.items():
        used, limit = getattr(usage, field), getattr(new, name)
        if limit < getattr(old, name) and used > limit:
            raise LimitExceeded(
                f"{name} cannot be lowered to {limit}: the tenant uses {used}",
                code=f"{name}_below_usage",
                limit=name,
                allowed=limit,
                in_use=used,
            )


def raised_limits(old: Limits, new: Limits) -> list[str]:
    """The limits and licences ``new`` grants more of than ``old`` (and a billing change)."""
    raised = [n for n in LIMIT_USAGE if getattr(new, n) > getattr(old, n)]
    if new.group_agent_limit > old.group_agent_limit:
        raised.append("group_agent_limit")
    if new.agent_billing is not old.agent_billing:
        raised.append("agent_billing")
    return raised


def check_limits(limits: Limits, usage: Usage) -> None:
    """Raise :class:`LimitExceeded` naming the first limit that ``usage`` exceeds."""
    for name, field in LIMIT_USAGE.items():
        used, limit = getattr(usage, field), getattr(limits, name)
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
