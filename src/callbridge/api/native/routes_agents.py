"""Native routes: agent sessions and state, skills, agents' skills, queue members."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ...domain.agents import PHONE_DISPLAY, AgentState, clock_duration
from ...domain.directory import (
    MAX_PRIORITY,
    MAX_PROFICIENCY,
    MIN_PRIORITY,
    MIN_PROFICIENCY,
    AgentPolicy,
    AgentSkill,
    AgentSkills,
    Extension,
    PresenceType,
    Queue,
    QueueMember,
    Skill,
)
from ...domain.tenancy import Permission
from .deps import ActorDep, ContainerDep

router = APIRouter()


# ---------------------------------------------------------------- agent state


class PresenceName(BaseModel):
    type: PresenceType
    name: str


class AgentPresence(BaseModel):
    state: PresenceName
    since: datetime
    duration: str = Field(description="H:MM:SS, as the CCS agent_state response")
    duration_s: float


class PhoneStateView(BaseModel):
    state: str = Field(description="Idle, Ringing, Talking, Held or Wrap Up")
    code: str = Field(description="idle, ringing, talking, held or wrapup")
    since: datetime
    duration: str
    duration_s: float
    call_id: str | None = None
    wrapup_until: datetime | None = None


class QueueStateView(BaseModel):
    state: str = Field(description="None, Offered, Connected or Wrap Up")
    queue: str = Field(description="The queue's name; empty when none")
    queue_id: str | None = None
    since: datetime | None = None
    duration: str = Field(description="H:MM:SS; '0' when none")
    duration_s: float


class AgentStateView(BaseModel):
    """The CCS ``agent_state`` response (``agent_state``, ``phone_state``, ``queue_state``,
    ``consecutive_missed``) with timestamps, plus the raw state under ``state``."""

    extension_id: str
    number: str
    agent_state: AgentPresence
    phone_state: PhoneStateView
    queue_state: QueueStateView
    consecutive_missed: int
    state: AgentState
    presence_duration_s: float
    phone_duration_s: float


def agent_view(
    ext: Extension, state: AgentState, queues: dict[str, Queue], now: datetime
) -> AgentStateView:
    presence_s = (now - state.presence_since).total_seconds()
    phone_s = (now - state.phone_since).total_seconds()
    queue = queues.get(state.queue_id) if state.queue_id is not None else None
    queue_s = (now - state.queue_since).total_seconds() if state.queue_since else 0.0
    return AgentStateView(
        extension_id=ext.id,
        number=ext.number,
        agent_state=AgentPresence(
            state=PresenceName(type=state.presence, name=state.presence_name),
            since=state.presence_since,
            duration=clock_duration(presence_s),
            duration_s=presence_s,
        ),
        phone_state=PhoneStateView(
            state=PHONE_DISPLAY[state.phone],
            code=state.phone,
            since=state.phone_since,
            duration=clock_duration(phone_s),
            duration_s=phone_s,
            call_id=state.call_id,
            wrapup_until=state.wrapup_until,
        ),
        queue_state=QueueStateView(
            state=state.queue_status,
            queue=queue.name if queue is not None else "",
            queue_id=state.queue_id,
            since=state.queue_since,
            duration=clock_duration(queue_s) if state.queue_id is not None else "0",
            duration_s=queue_s,
        ),
        consecutive_missed=state.consecutive_missed,
        state=state,
        presence_duration_s=presence_s,
        phone_duration_s=phone_s,
    )


class AgentStateSet(BaseModel):
    name: str = Field(description="'Ready' or the name of an away or sign-out presence option")


class SignIn(BaseModel):
    name: str = Field(default="Ready", description="'Ready' or an away option")


class SignOut(BaseModel):
    name: str | None = Field(
        default=None, description="A sign-out option; default: the tenant's first, else 'Sign Out'"
    )


def _one(c: ContainerDep, actor: ActorDep, tenant_id: str, ext_id: str) -> AgentStateView:
    ext = c.directory.extension(actor, tenant_id, ext_id)
    state = c.agents.state(actor, tenant_id, ext_id)
    return agent_view(ext, state, c.directory.queues, c.core.clock.now())


@router.get("/tenants/{tenant_id}/agents", response_model=list[AgentStateView], tags=["agents"])
async def list_agents(tenant_id: str, actor: ActorDep, c: ContainerDep) -> list[AgentStateView]:
    """Every agent extension of the tenant with its state."""
    now = c.core.clock.now()
    return [
        agent_view(e, s, c.directory.queues, now) for e, s in c.agents.states_of(actor, tenant_id)
    ]


@router.get(
    "/tenants/{tenant_id}/agents/{extension_id}/state",
    response_model=AgentStateView,
    tags=["agents"],
)
async def get_agent(
    tenant_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> AgentStateView:
    return _one(c, actor, tenant_id, extension_id)


@router.put(
    "/tenants/{tenant_id}/agents/{extension_id}/state",
    response_model=AgentStateView,
    tags=["agents"],
    summary="Ready, away or sign out by option name ('Ready' during wrap-up ends it)",
)
async def put_agent(
    tenant_id: str, extension_id: str, body: AgentStateSet, actor: ActorDep, c: ContainerDep
) -> AgentStateView:
    await c.agents.set_state(actor, tenant_id, extension_id, body.name)
    return _one(c, actor, tenant_id, extension_id)


@router.post(
    "/tenants/{tenant_id}/agents/{extension_id}/sign-in",
    response_model=AgentStateView,
    tags=["agents"],
)
async def sign_in(
    tenant_id: str, extension_id: str, body: SignIn, actor: ActorDep, c: ContainerDep
) -> AgentStateView:
    await c.agents.sign_in(actor, tenant_id, extension_id, body.name)
    return _one(c, actor, tenant_id, extension_id)


@router.post(
    "/tenants/{tenant_id}/agents/{extension_id}/sign-out",
    response_model=AgentStateView,
    tags=["agents"],
)
async def sign_out(
    tenant_id: str, extension_id: str, body: SignOut, actor: ActorDep, c: ContainerDep
) -> AgentStateView:
    await c.agents.sign_out(actor, tenant_id, extension_id, body.name)
    return _one(c, actor, tenant_id, extension_id)


# The first API's paths, kept working.
@router.get(
    "/tenants/{tenant_id}/extensions/{extension_id}/agent-state",
    response_model=AgentStateView,
    tags=["agents"],
    summary="Same as GET .../agents/{extension_id}/state",
)
async def get_agent_state(
    tenant_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> AgentStateView:
    return _one(c, actor, tenant_id, extension_id)


@router.put(
    "/tenants/{tenant_id}/extensions/{extension_id}/agent-state",
    response_model=AgentStateView,
    tags=["agents"],
    summary="Same as PUT .../agents/{extension_id}/state",
)
async def set_agent_state(
    tenant_id: str, extension_id: str, body: AgentStateSet, actor: ActorDep, c: ContainerDep
) -> AgentStateView:
    await c.agents.set_state(actor, tenant_id, extension_id, body.name)
    return _one(c, actor, tenant_id, extension_id)


class PolicySet(BaseModel):
    max_consecutive_misses: int = Field(default=0, ge=0, le=100, description="0: no miss rule")
    missed_presence: str | None = Field(
        default=None, description="Away option the miss rule moves the agent to"
    )


@router.get("/tenants/{tenant_id}/agent-policy", response_model=AgentPolicy, tags=["agents"])
async def get_policy(tenant_id: str, actor: ActorDep, c: ContainerDep) -> AgentPolicy:
    return c.agents.policy(actor, tenant_id)


@router.put(
    "/tenants/{tenant_id}/agent-policy",
    response_model=AgentPolicy,
    tags=["agents"],
    summary="The tenant's miss rule (a queue's own rule, when on, wins)",
)
async def put_policy(
    tenant_id: str, body: PolicySet, actor: ActorDep, c: ContainerDep
) -> AgentPolicy:
    return await c.agents.set_policy(
        actor, tenant_id, body.max_consecutive_misses, body.missed_presence
    )


# ---------------------------------------------------------------- skills


class SkillName(BaseModel):
    name: str = Field(min_length=1, max_length=100)


@router.get("/tenants/{tenant_id}/skills", response_model=list[Skill], tags=["skills"])
async def list_skills(tenant_id: str, actor: ActorDep, c: ContainerDep) -> list[Skill]:
    return c.skills.skills_of(actor, tenant_id)


@router.post("/tenants/{tenant_id}/skills", response_model=Skill, status_code=201, tags=["skills"])
async def create_skill(tenant_id: str, body: SkillName, actor: ActorDep, c: ContainerDep) -> Skill:
    return await c.skills.create_skill(actor, tenant_id, body.name)


@router.get("/tenants/{tenant_id}/skills/{skill_id}", response_model=Skill, tags=["skills"])
async def get_skill(tenant_id: str, skill_id: str, actor: ActorDep, c: ContainerDep) -> Skill:
    return c.skills.skill(actor, tenant_id, skill_id)


@router.patch("/tenants/{tenant_id}/skills/{skill_id}", response_model=Skill, tags=["skills"])
async def rename_skill(
    tenant_id: str, skill_id: str, body: SkillName, actor: ActorDep, c: ContainerDep
) -> Skill:
    return await c.skills.rename_skill(actor, tenant_id, skill_id, body.name)


@router.delete(
    "/tenants/{tenant_id}/skills/{skill_id}",
    status_code=204,
    tags=["skills"],
    summary="Delete a skill no queue requires (agents lose it)",
)
async def delete_skill(tenant_id: str, skill_id: str, actor: ActorDep, c: ContainerDep) -> Response:
    await c.skills.delete_skill(actor, tenant_id, skill_id)
    return Response(status_code=204)


class AgentSkillsSet(BaseModel):
    skills: list[AgentSkill] = Field(default_factory=list)


class Proficiency(BaseModel):
    proficiency: int = Field(ge=MIN_PROFICIENCY, le=MAX_PROFICIENCY)


@router.get(
    "/tenants/{tenant_id}/agents/{extension_id}/skills",
    response_model=AgentSkills,
    tags=["skills"],
)
async def get_agent_skills(
    tenant_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> AgentSkills:
    return c.skills.of_agent(actor, tenant_id, extension_id)


@router.put(
    "/tenants/{tenant_id}/agents/{extension_id}/skills",
    response_model=AgentSkills,
    tags=["skills"],
    summary="Replace the agent's skills",
)
async def put_agent_skills(
    tenant_id: str, extension_id: str, body: AgentSkillsSet, actor: ActorDep, c: ContainerDep
) -> AgentSkills:
    return await c.skills.set_agent_skills(actor, tenant_id, extension_id, body.skills)


@router.put(
    "/tenants/{tenant_id}/agents/{extension_id}/skills/{skill_id}",
    response_model=AgentSkills,
    tags=["skills"],
    summary="Give the agent a skill, or change its proficiency",
)
async def put_agent_skill(
    tenant_id: str,
    extension_id: str,
    skill_id: str,
    body: Proficiency,
    actor: ActorDep,
    c: ContainerDep,
) -> AgentSkills:
    return await c.skills.set_agent_skill(
        actor, tenant_id, extension_id, skill_id, body.proficiency
    )


@router.delete(
    "/tenants/{tenant_id}/agents/{extension_id}/skills/{skill_id}",
    response_model=AgentSkills,
    tags=["skills"],
)
async def delete_agent_skill(
    tenant_id: str, extension_id: str, skill_id: str, actor: ActorDep, c: ContainerDep
) -> AgentSkills:
    return await c.skills.remove_agent_skill(actor, tenant_id, extension_id, skill_id)


# ---------------------------------------------------------------- queue members


class Priority(BaseModel):
    priority: int = Field(default=MIN_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY)


@router.get(
    "/tenants/{tenant_id}/queues/{queue_id}/members",
    response_model=list[QueueMember],
    tags=["queues"],
)
async def list_members(
    tenant_id: str, queue_id: str, actor: ActorDep, c: ContainerDep
) -> list[QueueMember]:
    actor.require(Permission.TENANTS_VIEW)
    return c.directory.queue(actor, tenant_id, queue_id).members


@router.put(
    "/tenants/{tenant_id}/queues/{queue_id}/members/{extension_id}",
    response_model=Queue,
    tags=["queues"],
    summary="Add an agent to the queue, or change its priority",
)
async def put_member(
    tenant_id: str,
    queue_id: str,
    extension_id: str,
    body: Priority,
    actor: ActorDep,
    c: ContainerDep,
) -> Queue:
    return await c.directory.set_member(actor, tenant_id, queue_id, extension_id, body.priority)


@router.delete(
    "/tenants/{tenant_id}/queues/{queue_id}/members/{extension_id}",
    response_model=Queue,
    tags=["queues"],
)
async def delete_member(
    tenant_id: str, queue_id: str, extension_id: str, actor: ActorDep, c: ContainerDep
) -> Queue:
    return await c.directory.remove_member(actor, tenant_id, queue_id, extension_id)
