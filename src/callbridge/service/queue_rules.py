"""Checks on a queue's ACD settings (members, skills, overflow, miss rule) against the tenant's
directory, and the references that keep a queue's targets from being deleted under it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain.directory import OverflowKind, PresenceType, Queue
from ..domain.errors import Conflict, Invalid
from ..domain.numbers import check_dialable

if TYPE_CHECKING:
    from .directory import Directory


def check_acd_settings(d: Directory, queue: Queue) -> None:
    tenant_id = queue.tenant_id
    if len(set(queue.member_extension_ids)) != len(queue.member_extension_ids):
        raise Invalid("an extension is a member at most once", code="member_duplicate")
    for ext_id in queue.member_extension_ids:
        d._owned(d.extensions, "extension", tenant_id, ext_id)
    for req in queue.required_skills:
        d._owned(d.skills, "skill", tenant_id, req.skill_id)
    if len({r.skill_id for r in queue.required_skills}) != len(queue.required_skills):
        raise Invalid("a skill is required at most once", code="skill_duplicate")
    _check_overflow(d, queue)
    check_miss_rule(d, tenant_id, queue.max_consecutive_misses, queue.missed_presence)


def check_miss_rule(
    d: Directory, tenant_id: str, max_consecutive_misses: int, missed_presence: str | None
) -> None:
    """A miss rule that is on names an away option of the tenant."""
    if max_consecutive_misses > 0 and missed_presence is None:
        raise Invalid(
            "the miss rule needs missed_presence (an away option)",
            code="missed_presence_required",
        )
    if missed_presence is not None:
        kind, _ = d.resolve_presence(tenant_id, missed_presence)
        if kind is not PresenceType.AWAY:
            raise Invalid(
                "missed_presence must name an away option", code="missed_presence_not_away"
            )


def _check_overflow(d: Directory, queue: Queue) -> None:
    overflow = queue.overflow
    if overflow is None:
        return
    if overflow.kind is OverflowKind.QUEUE:
        if overflow.target == queue.id:
            raise Invalid("a queue cannot overflow to itself", code="overflow_to_itself")
        d._owned(d.queues, "queue", queue.tenant_id, overflow.target)
    elif overflow.kind is OverflowKind.EXTENSION:
        d._owned(d.extensions, "extension", queue.tenant_id, overflow.target)
    else:
        check_dialable(overflow.target)


def check_not_overflow_target(d: Directory, tenant_id: str, kind: OverflowKind, ident: str) -> None:
    """Refuse to delete a queue or extension that queues overflow to (``<kind>_in_use``)."""
    users = [
        q.id
        for q in d.queues_of(tenant_id)
        if q.overflow is not None and q.overflow.kind is kind and q.overflow.target == ident
    ]
    if users:
        raise Conflict(f"queues overflow to this {kind}", code=f"{kind}_in_use", queues=users)


def check_not_missed_presence(d: Directory, tenant_id: str, name: str) -> None:
    """Refuse to delete an away option that a queue's miss rule moves agents to."""
    users = [q.id for q in d.queues_of(tenant_id) if q.missed_presence == name]
    if users:
        raise Conflict(
            "queues move agents who miss offers to this option",
            code="presence_option_in_use",
            queues=users,
        )


def without_member(queues: list[Queue], extension_id: str) -> list[Queue]:
    """The queues ``extension_id`` is a member of, without it."""
    return [
        Queue.model_validate(
            {
                **q.model_dump(),
                "members": [m.model_dump() for m in q.members if m.extension_id != extension_id],
            }
        )
        for q in queues
        if q.member(extension_id) is not None
    ]
