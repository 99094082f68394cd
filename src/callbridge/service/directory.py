"""Configuration: telcos, tenants, products, roles, principals, tokens, extensions, presence
options, skills and queues. Agent state lives in :mod:`.agents`, skill management in
:mod:`.skills`.

Everything here is small, so it is cached in memory and written through to storage; reads never
touch the database. Every mutation is checked against the actor's tenant scope and permissions.
Another tenant's objects are reported as *not found*, never as forbidden, so ids do not leak.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..domain.dids import Did, find_did
from ..domain.directory import (
    Extension,
    OverflowKind,
    PresenceOption,
    PresenceType,
    Queue,
    QueueType,
    RecordingType,
    Skill,
    members_for_ids,
)
from ..domain.errors import Conflict, Invalid, NotFound, PermissionDenied, Unauthenticated
from ..domain.events import DomainEvent, EventCategory
from ..domain.numbers import check_dialable, check_extension_number
from ..domain.tenancy import (
    ApiToken,
    Level,
    Limits,
    Permission,
    Principal,
    Product,
    Role,
    Telco,
    Tenant,
    TenantProfile,
    Usage,
    check_limits,
    check_not_below_usage,
    raised_limits,
)
from . import queue_rules
from .auth import Actor, hash_secret, new_secret
from .core import Core

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def _config_event(type_: str, **data: Any) -> DomainEvent:
    return DomainEvent(type=type_, category=EventCategory.CONFIG, data=data)


def _validated(model: type[M], data: dict[str, Any]) -> M:
    """``model`` built from ``data``, or :class:`Invalid` naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise Invalid(f"{field}: {first['msg']}", code="invalid_field", field=field) from None


def _patched(model: M, changes: dict[str, Any]) -> M:
    """A validated copy of ``model`` with ``changes`` applied."""
    return _validated(type(model), {**model.model_dump(), **changes})


class Directory:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.telcos: dict[str, Telco] = {}
        self.tenants: dict[str, Tenant] = {}
        self.products: dict[str, Product] = {}
        self.roles: dict[str, Role] = {}
        self.principals: dict[str, Principal] = {}
        self.tokens: dict[str, ApiToken] = {}  # by secret hash
        self.extensions: dict[str, Extension] = {}
        self.presence: dict[str, PresenceOption] = {}
        self.queues: dict[str, Queue] = {}
        self.skills: dict[str, Skill] = {}
        self.dids: dict[str, Did] = {}  # by id; managed by :mod:`.dids` (#3)
        self._did_numbers: dict[str, Did] = {}  # by number, for routing

    async def load(self) -> None:
        c = self.core
        self.telcos = {t.id: t for t in await c.load("telcos", Telco)}
        self.tenants = {t.id: t for t in await c.load("tenants", Tenant)}
        self.products = {p.id: p for p in await c.load("products", Product)}
        self.roles = {r.id: r for r in await c.load("roles", Role)}
        self.principals = {p.id: p for p in await c.load("principals", Principal)}
        self.tokens = {t.secret_hash: t for t in await c.load("tokens", ApiToken)}
        self.extensions = {e.id: e for e in await c.load("extensions", Extension)}
        self.presence = {p.id: p for p in await c.load("presence_options", PresenceOption)}
        self.queues = {q.id: q for q in await c.load("queues", Queue)}
        self.skills = {s.id: s for s in await c.load("skills", Skill)}
        self.dids = {}
        self._did_numbers = {}
        for did in await c.load("dids", Did):
            self.keep_did(did)

    # ------------------------------------------------------------------ authentication

    def authenticate(self, secret: str | None) -> Actor:
        if not secret:
            raise Unauthenticated("a bearer token is required", code="unauthenticated")
        token = self.tokens.get(hash_secret(secret))
        if token is None or token.revoked:
            raise Unauthenticated("the token is not valid", code="unauthenticated")
        principal = self.principals.get(token.principal_id)
        if principal is None:
            raise Unauthenticated("the token's user no longer exists", code="unauthenticated")
        return self.actor_for(principal)

    def actor_for(self, principal: Principal) -> Actor:
        perms: set[Permission] = set()
        for rid in principal.role_ids:
            role = self.roles.get(rid)
            if role is not None:
                perms.update(role.permissions)
        return Actor(principal, frozenset(perms))

    async def issue_token(self, principal_id: str, name: str = "") -> tuple[ApiToken, str]:
        if principal_id not in self.principals:
            raise NotFound("principal", principal_id)
        secret = new_secret()
        token = ApiToken(
            id=self.core.new_id(),
            principal_id=principal_id,
            secret_hash=hash_secret(secret),
            name=name,
            created_at=self.core.clock.now(),
        )
        await self.core.save(None, put=[("tokens", token.secret_hash, token)])
        self.tokens[token.secret_hash] = token
        return token, secret

    async def revoke_token(self, token_id: str) -> ApiToken:
        for token in self.tokens.values():
            if token.id == token_id:
                revoked = token.model_copy(update={"revoked": True})
                await self.core.save(None, put=[("tokens", token.secret_hash, revoked)])
                self.tokens[token.secret_hash] = revoked
                return revoked
        raise NotFound("token", token_id)

    # ------------------------------------------------------------------ tenant scope

    def can_see_tenant(self, actor: Actor, tenant: Tenant) -> bool:
        p = actor.principal
        if p.level is Level.TELCO:
            return p.telco_id in ("system", tenant.telco_id)
        return p.tenant_id == tenant.id

    def tenant(self, actor: Actor, tenant_id: str) -> Tenant:
        """The tenant if the actor may see it; otherwise *not found*."""
        tenant = self.tenants.get(tenant_id)
        if tenant is None or not self.can_see_tenant(actor, tenant):
            raise NotFound("tenant", tenant_id)
        return tenant

    def visible_tenants(self, actor: Actor) -> list[Tenant]:
        return sorted(
            (t for t in self.tenants.values() if self.can_see_tenant(actor, t)),
            key=lambda t: t.name,
        )

    def _owned(self, table: dict[str, M], kind: str, tenant_id: str, ident: str) -> M:
        obj = table.get(ident)
        if obj is None or getattr(obj, "tenant_id", None) != tenant_id:
            raise NotFound(kind, ident)
        return obj

    # ------------------------------------------------------------------ telcos, products, roles

    async def create_telco(self, name: str, telco_id: str | None = None) -> Telco:
        telco = Telco(id=telco_id or self.core.new_id(), name=name)
        await self.core.save(None, put=[("telcos", telco.id, telco)])
        self.telcos[telco.id] = telco
        return telco

    async def create_product(
        self, name: str, notes: str = "", product_id: str | None = None
    ) -> Product:
        product = Product(id=product_id or self.core.new_id(), name=name, notes=notes)
        await self.core.save(None, put=[("products", product.id, product)])
        self.products[product.id] = product
        return product

    async def create_role(
        self,
        name: str,
        permissions: list[Permission],
        tenant_id: str | None = None,
        role_id: str | None = None,
    ) -> Role:
        role = Role(
            id=role_id or self.core.new_id(),
            name=name,
            tenant_id=tenant_id,
            permissions=permissions,
        )
        await self.core.save(tenant_id, put=[("roles", role.id, role)])
        self.roles[role.id] = role
        return role

    def roles_of(self, tenant_id: str | None) -> list[Role]:
        return sorted(
            (r for r in self.roles.values() if r.tenant_id == tenant_id), key=lambda r: r.name
        )

    async def create_principal(
        self,
        name: str,
        level: Level,
        telco_id: str,
        role_ids: list[str],
        tenant_id: str | None = None,
        extension_id: str | None = None,
        principal_id: str | None = None,
    ) -> Principal:
        for rid in role_ids:
            if rid not in self.roles:
                raise NotFound("role", rid)
        principal = Principal(
            id=principal_id or self.core.new_id(),
            name=name,
            level=level,
            telco_id=telco_id,
            tenant_id=tenant_id,
            extension_id=extension_id,
            role_ids=role_ids,
        )
        await self.core.save(None, put=[("principals", principal.id, principal)])
        self.principals[principal.id] = principal
        return principal

    # ------------------------------------------------------------------ tenants

    async def create_tenant(
        self,
        actor: Actor,
        name: str,
        *,
        telco_id: str | None = None,
        limits: Limits | None = None,
        timezone: str = "UTC",
        profile: TenantProfile | None = None,
        tenant_id: str | None = None,
    ) -> Tenant:
        actor.require(Permission.TENANT_EDIT)
        if not actor.is_telco:
            raise PermissionDenied("only a telco-level user can create tenants")
        telco = telco_id or actor.principal.telco_id
        if telco not in self.telcos:
            raise NotFound("telco", telco)
        if not actor.is_telco or actor.principal.telco_id not in ("system", telco):
            raise NotFound("telco", telco)
        if not name.strip():
            raise Invalid("a tenant needs a name", code="name_required")
        if any(t.name == name and t.telco_id == telco for t in self.tenants.values()):
            raise Conflict(f"tenant {name!r} exists", code="tenant_exists")
        now = self.core.clock.now()
        tenant = Tenant(
            id=tenant_id or self.core.new_id(),
            telco_id=telco,
            name=name,
            limits=limits or Limits(),
            profile=profile or TenantProfile(),
            timezone=timezone,
            created_at=now,
            modified_at=now,
            created_by=actor.principal.name,
        )
        await self.core.save(
            tenant.id,
            put=[("tenants", tenant.id, tenant)],
            events=[_config_event("tenant.created", tenant_id=tenant.id, name=name)],
        )
        self.tenants[tenant.id] = tenant
        return tenant

    def usage(self, tenant_id: str, extensions: list[Extension] | None = None) -> Usage:
        exts = extensions if extensions is not None else self.extensions_of(tenant_id)
        return Usage(
            agents=sum(1 for e in exts if e.is_agent),
            queues=len(self.queues_of(tenant_id)),
            recording_extensions=sum(1 for e in exts if e.recording_type is not RecordingType.NONE),
            monitor_extensions=sum(1 for e in exts if e.monitor),
            chat_licenses=sum(1 for e in exts if e.max_chats > 0),
            multimedia_licenses=sum(1 for e in exts if e.is_multimedia_enabled),
            group_agents=len(
                {m for q in self.queues_of(tenant_id) for m in q.member_extension_ids}
                & {e.id for e in exts if e.is_agent}
            ),
        )

    @staticmethod
    def _require_telco(actor: Actor, what: str) -> None:
        """What a telco sells a tenant (products, limits, licences) only the telco changes."""
        if not actor.is_telco:
            raise PermissionDenied(
                f"only a telco-level user can {what}", code="telco_level_required"
            )

    async def update_tenant(self, actor: Actor, tenant_id: str, changes: dict[str, Any]) -> Tenant:
        """Change a tenant's product name and/or limits (keys of :class:`Limits`).

        A tenant-level user may lower its own tenant's limits, never raise them, change its
        billing, product name or status: those are what the telco sells it.
        """
        actor.require(Permission.TENANT_EDIT)
        tenant = self.tenant(actor, tenant_id)
        unknown = set(changes) - set(Limits.model_fields) - {"product_name", "timezone", "status"}
        if unknown:
            raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="unknown_field")
        limit_changes = {k: v for k, v in changes.items() if k in Limits.model_fields}
        limits = _patched(tenant.limits, limit_changes)
        if not actor.is_telco:
            sold = sorted({"product_name", "status"} & set(changes))
            sold += raised_limits(tenant.limits, limits)
            if sold:
                self._require_telco(actor, "change " + ", ".join(sold))
        usage = self.usage(tenant_id)
        check_not_below_usage(tenant.limits, limits, usage)
        check_limits(limits, usage)
        other = {k: v for k, v in changes.items() if k not in Limits.model_fields}
        updated = _patched(tenant, {**other, "limits": limits.model_dump()})
        updated.modified_at = self.core.clock.now()
        await self._put_tenant(updated, "tenant.updated", changes)
        return updated

    async def set_profile(self, actor: Actor, tenant_id: str, profile: TenantProfile) -> Tenant:
        """Replace a tenant's provisioning record (telco-level: it describes what was sold)."""
        actor.require(Permission.TENANT_EDIT)
        tenant = self.tenant(actor, tenant_id)
        self._require_telco(actor, "change a tenant's profile")
        updated = tenant.model_copy(
            update={"profile": profile.model_copy(), "modified_at": self.core.clock.now()}
        )
        await self._put_tenant(updated, "tenant.profile_set", {})
        return updated

    async def _put_tenant(self, tenant: Tenant, event: str, data: dict[str, Any]) -> None:
        await self.core.save(
            tenant.id,
            put=[("tenants", tenant.id, tenant)],
            events=[_config_event(event, tenant_id=tenant.id, **data)],
        )
        self.tenants[tenant.id] = tenant

    async def add_product(self, actor: Actor, tenant_id: str, product_id: str) -> Tenant:
        actor.require(Permission.TENANT_EDIT)
        tenant = self.tenant(actor, tenant_id)
        if product_id not in self.products:
            raise NotFound("product", product_id)
        self._require_telco(actor, "add products to a tenant")
        if product_id in tenant.product_ids:
            raise Conflict("the tenant already has this product", code="product_already_added")
        updated = tenant.model_copy(
            update={
                "product_ids": [*tenant.product_ids, product_id],
                "modified_at": self.core.clock.now(),
            }
        )
        await self._put_tenant(updated, "tenant.product_added", {"product_id": product_id})
        return updated

    async def delete_product(self, actor: Actor, tenant_id: str, product_id: str) -> Tenant:
        actor.require(Permission.TENANT_EDIT)
        tenant = self.tenant(actor, tenant_id)
        if product_id not in tenant.product_ids:
            raise NotFound("product", product_id)
        self._require_telco(actor, "delete products of a tenant")
        updated = tenant.model_copy(
            update={
                "product_ids": [p for p in tenant.product_ids if p != product_id],
                "modified_at": self.core.clock.now(),
            }
        )
        await self._put_tenant(updated, "tenant.product_deleted", {"product_id": product_id})
        return updated

    async def reset_text_count(self, actor: Actor, tenant_id: str) -> Tenant:
        """Set the tenant's SMS/MMS counter to 0 (callbridge sends no SMS/MMS, so nothing
        increments it; the counter exists for the CCS API, 4.9/4.10)."""
        actor.require(Permission.TENANT_EDIT)
        tenant = self.tenant(actor, tenant_id)
        self._require_telco(actor, "reset a tenant's text count")
        now = self.core.clock.now()
        updated = tenant.model_copy(
            update={"text_count": 0, "text_count_reset_at": now, "modified_at": now}
        )
        await self._put_tenant(updated, "tenant.text_count_reset", {})
        return updated

    # ------------------------------------------------------------------ dial plan

    def number_owner(self, tenant_id: str, number: str) -> Extension | Queue | None:
        for ext in self.extensions.values():
            if ext.tenant_id == tenant_id and ext.number == number:
                return ext
        for q in self.queues.values():
            if q.tenant_id == tenant_id and (
                q.extension == number or number in q.alternate_extensions
            ):
                return q
        return None

    # ------------------------------------------------------------------ DIDs (#3)

    def did_for(self, dialled: str) -> Did | None:
        """The DID an inbound call to ``dialled`` (the To user part) is for."""
        return find_did(self._did_numbers, dialled)

    def keep_did(self, did: Did) -> None:
        old = self.dids.get(did.id)
        if old is not None:
            self._did_numbers.pop(old.number, None)
        self.dids[did.id] = did
        self._did_numbers[did.number] = did

    def drop_did(self, did: Did) -> None:
        self.dids.pop(did.id, None)
        self._did_numbers.pop(did.number, None)

    def _check_not_did_target(self, tenant_id: str, numbers: list[str]) -> None:
        """A number a DID points to cannot go away: re-point or delete the DID first."""
        for did in self.dids.values():
            if did.tenant_id == tenant_id and did.target in numbers:
                raise Conflict(
                    f"DID {did.number} points to {did.target}: re-point or delete it first",
                    code="did_target_in_use",
                    did_id=did.id,
                    number=did.target,
                )

    def _check_number_free(self, tenant_id: str, number: str, owner_id: str | None) -> None:
        owner = self.number_owner(tenant_id, number)
        if owner is not None and owner.id != owner_id:
            raise Conflict(
                f"number {number} is already used by {type(owner).__name__.lower()} {owner.id}",
                code="number_in_use",
                number=number,
            )

    # ------------------------------------------------------------------ extensions

    def extensions_of(self, tenant_id: str) -> list[Extension]:
        return sorted(
            (e for e in self.extensions.values() if e.tenant_id == tenant_id),
            key=lambda e: e.number,
        )

    def extension(self, actor: Actor, tenant_id: str, extension_id: str) -> Extension:
        self.tenant(actor, tenant_id)
        return self._owned(self.extensions, "extension", tenant_id, extension_id)

    def extension_by_number(self, tenant_id: str, number: str) -> Extension | None:
        owner = self.number_owner(tenant_id, number)
        return owner if isinstance(owner, Extension) else None

    async def create_extension(
        self, actor: Actor, tenant_id: str, fields: dict[str, Any], extension_id: str | None = None
    ) -> Extension:
        actor.require(Permission.TENANT_EDIT)
        tenant = self.tenant(actor, tenant_id)
        ext = _validated(
            Extension, {**fields, "id": extension_id or self.core.new_id(), "tenant_id": tenant_id}
        )
        check_extension_number(ext.number)
        self._check_number_free(tenant_id, ext.number, None)
        check_limits(tenant.limits, self.usage(tenant_id, [*self.extensions_of(tenant_id), ext]))
        await self._put_extension(ext, "extension.created")
        return ext

    async def update_extension(
        self, actor: Actor, tenant_id: str, extension_id: str, changes: dict[str, Any]
    ) -> Extension:
        actor.require(Permission.TENANT_EDIT)
        tenant = self.tenant(actor, tenant_id)
        current = self._owned(self.extensions, "extension", tenant_id, extension_id)
        if {"id", "tenant_id"} & set(changes):
            raise Invalid("id and tenant_id cannot be changed", code="immutable_field")
        updated = _patched(current, changes)
        if updated.number != current.number:
            check_extension_number(updated.number)
            self._check_number_free(tenant_id, updated.number, extension_id)
            self._check_not_did_target(tenant_id, [current.number])
        others = [e for e in self.extensions_of(tenant_id) if e.id != extension_id]
        check_limits(tenant.limits, self.usage(tenant_id, [*others, updated]))
        await self._put_extension(updated, "extension.updated")
        return updated

    async def delete_extension(self, actor: Actor, tenant_id: str, extension_id: str) -> None:
        actor.require(Permission.TENANT_EDIT)
        self.tenant(actor, tenant_id)
        ext = self._owned(self.extensions, "extension", tenant_id, extension_id)
        queue_rules.check_not_overflow_target(self, tenant_id, OverflowKind.EXTENSION, ext.id)
        self._check_not_did_target(tenant_id, [ext.number])
        # it leaves the queues it was a member of, in the same commit
        queues = queue_rules.without_member(self.queues_of(tenant_id), ext.id)
        await self.core.save(
            tenant_id,
            put=[("queues", q.id, q) for q in queues],
            delete=[("extensions", ext.id), ("agent_states", ext.id), ("agent_skills", ext.id)],
            events=[_config_event("extension.deleted", extension_id=ext.id, number=ext.number)],
        )
        del self.extensions[ext.id]
        for q in queues:
            self.queues[q.id] = q

    async def _put_extension(self, ext: Extension, event: str) -> None:
        await self.core.save(
            ext.tenant_id,
            put=[("extensions", ext.id, ext)],
            events=[
                _config_event(event, extension_id=ext.id, extension=ext.model_dump(mode="json"))
            ],
        )
        self.extensions[ext.id] = ext

    # ------------------------------------------------------------------ presence options

    def presence_options_of(self, tenant_id: str) -> list[PresenceOption]:
        return sorted(
            (p for p in self.presence.values() if p.tenant_id == tenant_id),
            key=lambda p: (p.type, p.name),
        )

    async def create_presence_option(
        self,
        actor: Actor,
        tenant_id: str,
        kind: PresenceType,
        name: str,
        option_id: str | None = None,
    ) -> PresenceOption:
        actor.require(Permission.TENANT_EDIT)
        self.tenant(actor, tenant_id)
        if kind is PresenceType.READY:
            raise Invalid(
                "'Ready' is built in; options are away or sign_out", code="presence_type_invalid"
            )
        if not name.strip() or name == "Ready":
            raise Invalid(
                f"presence option name {name!r} is not allowed", code="presence_name_invalid"
            )
        if any(p.name == name for p in self.presence_options_of(tenant_id)):
            raise Conflict(f"presence option {name!r} exists", code="presence_option_exists")
        option = PresenceOption(
            id=option_id or self.core.new_id(), tenant_id=tenant_id, type=kind, name=name
        )
        await self.core.save(
            tenant_id,
            put=[("presence_options", option.id, option)],
            events=[
                _config_event("presence_option.created", option=option.model_dump(mode="json"))
            ],
        )
        self.presence[option.id] = option
        return option

    async def delete_presence_option(self, actor: Actor, tenant_id: str, option_id: str) -> None:
        actor.require(Permission.TENANT_EDIT)
        self.tenant(actor, tenant_id)
        option = self._owned(self.presence, "presence_option", tenant_id, option_id)
        queue_rules.check_not_missed_presence(self, tenant_id, option.name)
        await self.core.save(
            tenant_id,
            delete=[("presence_options", option.id)],
            events=[_config_event("presence_option.deleted", option_id=option.id)],
        )
        del self.presence[option.id]

    def resolve_presence(self, tenant_id: str, name: str) -> tuple[PresenceType, str]:
        if name == "Ready":
            return PresenceType.READY, "Ready"
        for option in self.presence_options_of(tenant_id):
            if option.name == name:
                return option.type, option.name
        raise Invalid(
            f"{name!r} is neither 'Ready' nor an away or sign-out presence option of the tenant",
            code="presence_option_unknown",
            name=name,
        )

    # ------------------------------------------------------------------ queues

    def queues_of(self, tenant_id: str) -> list[Queue]:
        return sorted(
            (q for q in self.queues.values() if q.tenant_id == tenant_id), key=lambda q: q.name
        )

    def queue(self, actor: Actor, tenant_id: str, queue_id: str) -> Queue:
        self.tenant(actor, tenant_id)
        return self._owned(self.queues, "queue", tenant_id, queue_id)

    async def create_queue(
        self, actor: Actor, tenant_id: str, fields: dict[str, Any], queue_id: str | None = None
    ) -> Queue:
        actor.require(Permission.TENANT_EDIT)
        tenant = self.tenant(actor, tenant_id)
        queue = _validated(
            Queue, {**fields, "id": queue_id or self.core.new_id(), "tenant_id": tenant_id}
        )
        self._check_queue(queue)
        usage = self.usage(tenant_id)
        usage.queues += 1
        check_limits(tenant.limits, usage)
        await self._put_queue(queue, "queue.created")
        return queue

    def _check_queue(self, queue: Queue) -> None:
        numbers = _queue_numbers(queue)
        if queue.type is QueueType.VOICE_INBOUND and not queue.extension:
            raise Invalid(
                "an inbound queue needs an extension number", code="queue_extension_required"
            )
        for number in numbers:
            check_extension_number(number)
            self._check_number_free(queue.tenant_id, number, queue.id)
        if queue.caller_id is not None:
            check_dialable(queue.caller_id)
        queue_rules.check_acd_settings(self, queue)

    async def update_queue(
        self, actor: Actor, tenant_id: str, queue_id: str, changes: dict[str, Any]
    ) -> Queue:
        actor.require(Permission.TENANT_EDIT)
        current = self.queue(actor, tenant_id, queue_id)
        if {"id", "tenant_id"} & set(changes):
            raise Invalid("id and tenant_id cannot be changed", code="immutable_field")
        changes = dict(changes)
        if changes.get("members") is not None:
            members = [dict(m) for m in changes["members"]]
            changes["member_extension_ids"] = [m["extension_id"] for m in members]
        elif changes.get("member_extension_ids") is not None:
            changes["members"] = members_for_ids(current, list(changes["member_extension_ids"]))
        updated = _patched(current, changes)
        self._check_queue(updated)
        self._check_not_did_target(
            tenant_id, sorted(set(_queue_numbers(current)) - set(_queue_numbers(updated)))
        )
        await self._put_queue(updated, "queue.updated")
        return updated

    async def set_member(
        self, actor: Actor, tenant_id: str, queue_id: str, extension_id: str, priority: int
    ) -> Queue:
        """Add an agent to a queue, or change its priority."""
        current = self.queue(actor, tenant_id, queue_id)
        members = [m.model_dump() for m in current.members if m.extension_id != extension_id]
        position = next(
            (i for i, m in enumerate(current.members) if m.extension_id == extension_id),
            len(members),
        )
        members.insert(position, {"extension_id": extension_id, "priority": priority})
        return await self.update_queue(actor, tenant_id, queue_id, {"members": members})

    async def remove_member(
        self, actor: Actor, tenant_id: str, queue_id: str, extension_id: str
    ) -> Queue:
        current = self.queue(actor, tenant_id, queue_id)
        if current.member(extension_id) is None:
            raise NotFound("member", extension_id)
        members = [m.model_dump() for m in current.members if m.extension_id != extension_id]
        return await self.update_queue(actor, tenant_id, queue_id, {"members": members})

    async def delete_queue(self, actor: Actor, tenant_id: str, queue_id: str) -> None:
        actor.require(Permission.TENANT_EDIT)
        queue = self.queue(actor, tenant_id, queue_id)
        queue_rules.check_not_overflow_target(self, tenant_id, OverflowKind.QUEUE, queue.id)
        self._check_not_did_target(tenant_id, _queue_numbers(queue))
        await self.core.save(
            tenant_id,
            delete=[("queues", queue.id)],
            events=[_config_event("queue.deleted", queue_id=queue.id)],
        )
        del self.queues[queue.id]

    async def _put_queue(self, queue: Queue, event: str) -> None:
        await self.core.save(
            queue.tenant_id,
            put=[("queues", queue.id, queue)],
            events=[_config_event(event, queue_id=queue.id, queue=queue.model_dump(mode="json"))],
        )
        self.queues[queue.id] = queue


def _queue_numbers(queue: Queue) -> list[str]:
    return ([queue.extension] if queue.extension else []) + queue.alternate_extensions


class AccessAdmin:
    """Principals and tokens managed over the API (permission ``Token Admin``).

    A tenant-level admin manages its own tenant's principals; a telco-level admin those of its
    telco. Nobody can hand out a role carrying a permission they do not hold themselves.
    """

    def __init__(self, directory: Directory) -> None:
        self.d = directory

    def _manages(self, actor: Actor, principal: Principal) -> bool:
        me = actor.principal
        if me.level is Level.TELCO:
            return me.telco_id in ("system", principal.telco_id)
        return principal.level is Level.TENANT and principal.tenant_id == me.tenant_id

    def principal(self, actor: Actor, principal_id: str) -> Principal:
        actor.require(Permission.TOKEN_ADMIN)
        principal = self.d.principals.get(principal_id)
        if principal is None or not self._manages(actor, principal):
            raise NotFound("principal", principal_id)
        return principal

    def principals(self, actor: Actor) -> list[Principal]:
        actor.require(Permission.TOKEN_ADMIN)
        found = [p for p in self.d.principals.values() if self._manages(actor, p)]
        return sorted(found, key=lambda p: p.name)

    async def create_principal(
        self,
        actor: Actor,
        name: str,
        level: Level,
        role_ids: list[str],
        tenant_id: str | None,
        extension_id: str | None,
    ) -> Principal:
        actor.require(Permission.TOKEN_ADMIN)
        if level is Level.TELCO and not actor.is_telco:
            raise PermissionDenied("only a telco-level user can create telco-level users")
        if level is Level.TENANT:
            if tenant_id is None:
                raise Invalid("a tenant-level user needs tenant_id", code="tenant_required")
            self.d.tenant(actor, tenant_id)
            if extension_id is not None:
                self.d._owned(self.d.extensions, "extension", tenant_id, extension_id)
        granted: set[Permission] = set()
        for rid in role_ids:
            role = self.d.roles.get(rid)
            if role is None or role.tenant_id not in (None, tenant_id):
                raise NotFound("role", rid)
            granted.update(role.permissions)
        beyond = sorted(p.value for p in granted - actor.permissions)
        if beyond:
            raise PermissionDenied(
                "cannot grant permissions you do not hold: " + ", ".join(beyond),
                code="permission_escalation",
                permissions=beyond,
            )
        return await self.d.create_principal(
            name,
            level,
            actor.principal.telco_id if actor.principal.telco_id != "system" else "system",
            role_ids,
            tenant_id=tenant_id if level is Level.TENANT else None,
            extension_id=extension_id,
        )

    async def issue_token(self, actor: Actor, principal_id: str, name: str) -> tuple[ApiToken, str]:
        self.principal(actor, principal_id)
        return await self.d.issue_token(principal_id, name)

    def tokens(self, actor: Actor, principal_id: str) -> list[ApiToken]:
        self.principal(actor, principal_id)
        found = [t for t in self.d.tokens.values() if t.principal_id == principal_id]
        return sorted(found, key=lambda t: t.created_at)

    async def revoke_token(self, actor: Actor, token_id: str) -> ApiToken:
        actor.require(Permission.TOKEN_ADMIN)
        for token in self.d.tokens.values():
            if token.id == token_id:
                principal = self.d.principals.get(token.principal_id)
                if principal is not None and self._manages(actor, principal):
                    return await self.d.revoke_token(token_id)
        raise NotFound("token", token_id)
