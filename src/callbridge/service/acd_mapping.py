"""From the directory to the ACD engine's own records: queues and agent profiles.

The engine knows skills as plain names with a proficiency. A queue requirement has a minimum
proficiency, so a requirement becomes the token ``"<skill id>>=<minimum>"`` and an agent holds a
token (with its proficiency) for every minimum the tenant's queues ask for that it meets.

Wrap-up and the miss rule are *not* given to the engine (``wrapup_seconds=0``,
``max_consecutive_misses=0``): the agent service owns both (see ``docs/acd.md``, "Who decides").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..domain.acd import AgentProfile, Destination, DestinationKind, QueueConfig, Strategy
from ..domain.directory import AgentSkills, OverflowKind, Queue, QueueType


def is_acd_queue(queue: Queue) -> bool:
    return queue.type is QueueType.VOICE_INBOUND


def skill_token(skill_id: str, minimum: int) -> str:
    return f"{skill_id}>={minimum}"


def queue_config(queue: Queue) -> QueueConfig:
    overflow = None
    if queue.overflow is not None:
        kind = {
            OverflowKind.QUEUE: DestinationKind.QUEUE,
            OverflowKind.EXTENSION: DestinationKind.EXTENSION,
            OverflowKind.NUMBER: DestinationKind.NUMBER,
        }[queue.overflow.kind]
        overflow = Destination(kind, queue.overflow.target)
    return QueueConfig(
        queue_id=queue.id,
        strategy=Strategy(queue.strategy.value),
        required_skills=frozenset(
            skill_token(r.skill_id, r.min_proficiency) for r in queue.required_skills
        ),
        ring_timeout=float(queue.ring_timeout_s),
        wrapup_seconds=0.0,  # the agent service keeps wrap-up
        max_wait=None if queue.max_wait_s is None else float(queue.max_wait_s),
        max_length=queue.max_length,
        overflow=overflow,
        service_level_seconds=float(queue.service_level_s),
        max_consecutive_misses=0,  # the agent service applies the miss rule
    )


def thresholds(queues: Iterable[Queue]) -> dict[str, set[int]]:
    """Skill id -> the minimum proficiencies the queues require."""
    out: dict[str, set[int]] = {}
    for q in queues:
        for r in q.required_skills:
            out.setdefault(r.skill_id, set()).add(r.min_proficiency)
    return out


def memberships(queues: Iterable[Queue]) -> dict[str, dict[str, int]]:
    """Agent -> {ACD queue -> member priority}, from one pass over the tenant's queues."""
    out: dict[str, dict[str, int]] = {}
    for q in queues:
        if is_acd_queue(q):
            for m in q.members:
                out.setdefault(m.extension_id, {})[q.id] = m.priority
    return out


def agent_profile(
    extension_id: str,
    queues: Mapping[str, int],
    skills: AgentSkills | None,
    minimums: Mapping[str, set[int]],
) -> AgentProfile:
    tokens: dict[str, int] = {}
    for s in skills.skills if skills is not None else ():
        for minimum in minimums.get(s.skill_id, ()):
            if s.proficiency >= minimum:
                tokens[skill_token(s.skill_id, minimum)] = s.proficiency
    return AgentProfile(extension_id, dict(queues), tokens)
