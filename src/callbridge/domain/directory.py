"""A tenant's directory: extensions, presence options, skills and queues (ACDs)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator


class RecordingType(StrEnum):
    NONE = "None"
    MANDATORY = "Mandatory"
    ON_DEMAND = "On Demand"


class Extension(BaseModel):
    id: str
    tenant_id: str
    number: str
    firstname: str = ""
    lastname: str = ""
    is_agent: bool = False
    recording_type: RecordingType = RecordingType.NONE
    monitor: bool = False
    max_chats: int = Field(default=0, ge=0, le=6)
    is_multimedia_enabled: bool = False


class PresenceType(StrEnum):
    READY = "ready"
    AWAY = "away"
    SIGN_OUT = "sign_out"


class PresenceOption(BaseModel):
    id: str
    tenant_id: str
    type: PresenceType
    name: str


class QueueType(StrEnum):
    VOICE_INBOUND = "voice_queues"
    VOICE_OUTBOUND = "voice_outbound_queues"


class QueueStrategy(StrEnum):
    """How a waiting customer's agent is chosen (the distribution engine implements them)."""

    LONGEST_IDLE = "longest_idle"
    ROUND_ROBIN = "round_robin"
    RING_ALL = "ring_all"
    FEWEST_CALLS = "fewest_calls"
    LEAST_TALK_TIME = "least_talk_time"
    SKILLS = "skills"


class OverflowKind(StrEnum):
    QUEUE = "queue"  # target: a queue id of the tenant
    EXTENSION = "extension"  # target: an extension id of the tenant
    NUMBER = "number"  # target: a dialable number


class Overflow(BaseModel):
    """Where a caller goes when the queue is full or they waited ``max_wait_s``."""

    kind: OverflowKind
    target: str = Field(min_length=1)


MIN_PRIORITY, MAX_PRIORITY = 1, 100
MIN_PROFICIENCY, MAX_PROFICIENCY = 1, 100


class QueueMember(BaseModel):
    """An agent of a queue. Priority 1 is offered calls first; higher numbers after."""

    extension_id: str
    priority: int = Field(default=MIN_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY)


class SkillRequirement(BaseModel):
    skill_id: str
    min_proficiency: int = Field(default=MIN_PROFICIENCY, ge=MIN_PROFICIENCY, le=MAX_PROFICIENCY)


class Skill(BaseModel):
    id: str
    tenant_id: str
    name: str = Field(min_length=1, max_length=100)


class AgentSkill(BaseModel):
    skill_id: str
    proficiency: int = Field(ge=MIN_PROFICIENCY, le=MAX_PROFICIENCY)


class AgentSkills(BaseModel):
    """An agent's (extension's) skills, one document per agent."""

    tenant_id: str
    extension_id: str
    skills: list[AgentSkill] = Field(default_factory=list)


class AgentPolicy(BaseModel):
    """A tenant's rules for all its agents; a queue's own miss rule (when on) wins."""

    tenant_id: str
    max_consecutive_misses: int = Field(default=0, ge=0, le=100)  # 0: no miss rule
    missed_presence: str | None = None  # the away option the miss rule moves the agent to


class Queue(BaseModel):
    id: str
    tenant_id: str
    name: str
    type: QueueType = QueueType.VOICE_INBOUND
    extension: str | None = None
    alternate_extensions: list[str] = Field(default_factory=list)
    caller_id: str | None = None  # outbound queues: the number presented to the callee
    strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE
    ring_timeout_s: int = Field(default=20, ge=5, le=600)
    wrapup_s: int = Field(default=0, ge=0, le=3600)
    max_wait_s: int | None = Field(default=None, ge=1)
    max_length: int | None = Field(default=None, ge=0)
    overflow: Overflow | None = None
    service_level_s: int = Field(default=20, ge=1, le=3600)
    max_consecutive_misses: int = Field(default=0, ge=0, le=100)  # 0: no miss rule
    missed_presence: str | None = None  # away option the miss rule moves the agent to
    music: str = Field(default="default", min_length=1, max_length=100)
    required_skills: list[SkillRequirement] = Field(default_factory=list)
    members: list[QueueMember] = Field(default_factory=list)
    #: the members' ids in order, kept in step with ``members`` (the older API's field)
    member_extension_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _members_from_ids(cls, data: Any) -> Any:
        """Documents and requests without ``members`` get priority-1 members from
        ``member_extension_ids``; when both are given, ``members`` wins."""
        if isinstance(data, dict) and "members" not in data and data.get("member_extension_ids"):
            ids = data["member_extension_ids"]
            return {**data, "members": [{"extension_id": i} for i in ids]}
        return data

    @model_validator(mode="after")
    def _ids_from_members(self) -> Queue:
        self.member_extension_ids = [m.extension_id for m in self.members]
        return self

    def member(self, extension_id: str) -> QueueMember | None:
        return next((m for m in self.members if m.extension_id == extension_id), None)


def members_for_ids(queue: Queue, extension_ids: list[str]) -> list[dict[str, Any]]:
    """``members`` for a new id list, keeping the priority of those already members."""
    return [
        {"extension_id": i, "priority": m.priority if (m := queue.member(i)) else MIN_PRIORITY}
        for i in extension_ids
    ]
