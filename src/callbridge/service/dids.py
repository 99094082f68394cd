"""DIDs (#3): which tenant, and which of its numbers, an inbound trunk call is for.

Who may do what: a telco-level principal assigns DIDs to the tenants it manages and takes them
back (create, delete); the tenant's own admin lists them and re-points them to another of its
extensions or queues (update ``target``/``description``; the number itself never changes: moving a
number is delete + create by the telco). Another tenant's DIDs are *not found*.

The DIDs live in :class:`~.directory.Directory` (``dids``) because routing and the checks on
deleting an extension or queue (``did_target_in_use``) read them there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..domain.dids import (
    DID_MAX_PRIORITY,
    DID_MIN_PRIORITY,
    Did,
    check_did_number,
    check_did_target,
)
from ..domain.errors import Conflict, Invalid, NotFound, PermissionDenied
from ..domain.events import DomainEvent, EventCategory
from ..domain.tenancy import Permission
from .auth import Actor
from .core import Core
from .directory import Directory

KIND = "dids"
_MUTABLE = frozenset({"target", "description", "priority"})


def _check_priority(priority: object) -> None:
    """(#4) A DID's priority: an integer 0..9 (``422 did_priority_invalid``)."""
    ok = isinstance(priority, int) and not isinstance(priority, bool)
    if not ok or not DID_MIN_PRIORITY <= priority <= DID_MAX_PRIORITY:  # type: ignore[operator]
        raise Invalid(
            f"priority must be an integer {DID_MIN_PRIORITY}..{DID_MAX_PRIORITY}",
            code="did_priority_invalid",
            priority=priority,
        )


def _event(type_: str, did: Did, **data: Any) -> DomainEvent:
    return DomainEvent(
        type=type_,
        category=EventCategory.CONFIG,
        data={"did_id": did.id, "did": did.model_dump(mode="json"), **data},
    )


class DidService:
    def __init__(self, core: Core, directory: Directory) -> None:
        self.core = core
        self.directory = directory
        # the uniqueness check and the write of a new number happen under one lock: two
        # concurrent creates of the same number cannot both pass the check
        self._assigning = asyncio.Lock()

    def dids_of(self, actor: Actor, tenant_id: str) -> list[Did]:
        actor.require(Permission.TENANTS_VIEW)
        self.directory.tenant(actor, tenant_id)
        found = (d for d in self.directory.dids.values() if d.tenant_id == tenant_id)
        return sorted(found, key=lambda d: d.number)

    def did(self, actor: Actor, tenant_id: str, did_id: str) -> Did:
        actor.require(Permission.TENANTS_VIEW)
        return self._owned(actor, tenant_id, did_id)

    async def create(
        self,
        actor: Actor,
        tenant_id: str,
        number: str,
        target: str,
        description: str = "",
        did_id: str | None = None,
        priority: int = 0,
    ) -> Did:
        actor.require(Permission.TENANT_EDIT)
        self.directory.tenant(actor, tenant_id)
        self._require_telco(actor)
        normal = check_did_number(number)
        _check_priority(priority)
        did = Did(
            id=did_id or self.core.new_id(),
            tenant_id=tenant_id,
            number=normal,
            target=self._checked_target(tenant_id, target),
            description=description,
            priority=priority,
        )
        async with self._assigning:
            taken = self.directory.did_for(normal)
            if taken is not None and taken.number == normal:
                # the owner is not named: it may be another tenant
                raise Conflict(
                    f"DID {normal} is already assigned", code="did_exists", number=normal
                )
            await self._put(did, _event("did.created", did))
        return did

    async def update(
        self, actor: Actor, tenant_id: str, did_id: str, changes: dict[str, Any]
    ) -> Did:
        """Re-point a DID (``target``) or change its ``description``."""
        actor.require(Permission.TENANT_EDIT)
        current = self._owned(actor, tenant_id, did_id)
        unknown = set(changes) - _MUTABLE
        if unknown:
            raise Invalid(
                "only target, description and priority can change, not "
                + ", ".join(sorted(unknown)),
                code="immutable_field",
            )
        if "priority" in changes:
            _check_priority(changes["priority"])
        merged = {**current.model_dump(), **changes}
        merged["target"] = self._checked_target(tenant_id, str(merged["target"]))
        try:
            updated = Did.model_validate(merged)
        except ValueError:
            raise Invalid("description: at most 200 characters", code="invalid_field") from None
        await self._put(updated, _event("did.updated", updated, changes=changes))
        return updated

    async def delete(self, actor: Actor, tenant_id: str, did_id: str) -> None:
        actor.require(Permission.TENANT_EDIT)
        did = self._owned(actor, tenant_id, did_id)
        self._require_telco(actor)
        await self.core.save(
            tenant_id, delete=[(KIND, did.id)], events=[_event("did.deleted", did)]
        )
        self.directory.drop_did(did)

    def _owned(self, actor: Actor, tenant_id: str, did_id: str) -> Did:
        self.directory.tenant(actor, tenant_id)
        did = self.directory.dids.get(did_id)
        if did is None or did.tenant_id != tenant_id:
            raise NotFound("did", did_id)
        return did

    @staticmethod
    def _require_telco(actor: Actor) -> None:
        if not actor.is_telco:
            raise PermissionDenied(
                "only a telco-level user assigns or removes DIDs", code="telco_only"
            )

    def _checked_target(self, tenant_id: str, target: str) -> str:
        check_did_target(target)
        if self.directory.number_owner(tenant_id, target) is None:
            raise Invalid(
                f"{target} is neither an extension nor a queue number of the tenant",
                code="did_target_unknown",
                target=target,
            )
        return target

    async def _put(self, did: Did, event: DomainEvent) -> None:
        await self.core.save(did.tenant_id, put=[(KIND, did.id, did)], events=[event])
        self.directory.keep_did(did)
