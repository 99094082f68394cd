"""Skills: a tenant's skill names, the agents' skills with a proficiency, and their use by queues.

Skills are configuration (cached in memory, written through like the directory). A skill that a
queue requires cannot be deleted; deleting one that agents have removes it from them in the same
commit.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..domain.directory import AgentSkill, AgentSkills, Skill
from ..domain.errors import Conflict, Invalid, NotFound
from ..domain.events import DomainEvent, EventCategory
from ..domain.tenancy import Permission
from .auth import Actor
from .core import Core
from .directory import Directory


def _config_event(type_: str, **data: Any) -> DomainEvent:
    return DomainEvent(type=type_, category=EventCategory.CONFIG, data=data)


class SkillService:
    def __init__(self, core: Core, directory: Directory) -> None:
        self.core = core
        self.directory = directory
        self.agent_skills: dict[str, AgentSkills] = {}  # by extension id

    async def load(self) -> None:
        loaded = await self.core.load("agent_skills", AgentSkills)
        self.agent_skills = {a.extension_id: a for a in loaded}

    # ------------------------------------------------------------------ tenant skills

    def skills_of(self, actor: Actor, tenant_id: str) -> list[Skill]:
        actor.require(Permission.TENANTS_VIEW)
        self.directory.tenant(actor, tenant_id)
        return self._skills(tenant_id)

    def _skills(self, tenant_id: str) -> list[Skill]:
        found = (s for s in self.directory.skills.values() if s.tenant_id == tenant_id)
        return sorted(found, key=lambda s: s.name)

    def skill(self, actor: Actor, tenant_id: str, skill_id: str) -> Skill:
        actor.require(Permission.TENANTS_VIEW)
        self.directory.tenant(actor, tenant_id)
        return self.directory._owned(self.directory.skills, "skill", tenant_id, skill_id)

    def _check_name(self, tenant_id: str, name: str, skill_id: str | None) -> None:
        if not name.strip():
            raise Invalid("a skill needs a name", code="name_required")
        if any(s.name == name and s.id != skill_id for s in self._skills(tenant_id)):
            raise Conflict(f"skill {name!r} exists", code="skill_exists", name=name)

    async def create_skill(
        self, actor: Actor, tenant_id: str, name: str, skill_id: str | None = None
    ) -> Skill:
        actor.require(Permission.TENANT_EDIT)
        self.directory.tenant(actor, tenant_id)
        self._check_name(tenant_id, name, None)
        skill = Skill(id=skill_id or self.core.new_id(), tenant_id=tenant_id, name=name)
        await self._put_skill(skill, "skill.created")
        return skill

    async def rename_skill(self, actor: Actor, tenant_id: str, skill_id: str, name: str) -> Skill:
        actor.require(Permission.TENANT_EDIT)
        current = self.skill(actor, tenant_id, skill_id)
        self._check_name(tenant_id, name, skill_id)
        skill = current.model_copy(update={"name": name})
        await self._put_skill(skill, "skill.updated")
        return skill

    async def _put_skill(self, skill: Skill, event: str) -> None:
        await self.core.save(
            skill.tenant_id,
            put=[("skills", skill.id, skill)],
            events=[_config_event(event, skill=skill.model_dump(mode="json"))],
        )
        self.directory.skills[skill.id] = skill

    async def delete_skill(self, actor: Actor, tenant_id: str, skill_id: str) -> None:
        actor.require(Permission.TENANT_EDIT)
        skill = self.skill(actor, tenant_id, skill_id)
        users = [
            q.id
            for q in self.directory.queues_of(tenant_id)
            if any(r.skill_id == skill_id for r in q.required_skills)
        ]
        if users:
            raise Conflict(
                "queues require this skill", code="skill_in_use", skill_id=skill_id, queues=users
            )
        changed = [
            _without(a, skill_id)
            for a in self.agent_skills.values()
            if a.tenant_id == tenant_id and any(s.skill_id == skill_id for s in a.skills)
        ]
        put: list[tuple[str, str, BaseModel]] = [
            ("agent_skills", a.extension_id, a) for a in changed
        ]
        await self.core.save(
            tenant_id,
            put=put,
            delete=[("skills", skill.id)],
            events=[_config_event("skill.deleted", skill_id=skill.id)],
        )
        del self.directory.skills[skill.id]
        for a in changed:
            self.agent_skills[a.extension_id] = a

    # ------------------------------------------------------------------ agents' skills

    def of_agent(self, actor: Actor, tenant_id: str, extension_id: str) -> AgentSkills:
        actor.require(Permission.TENANTS_VIEW)
        self.directory.extension(actor, tenant_id, extension_id)
        return self._of(tenant_id, extension_id)

    def _of(self, tenant_id: str, extension_id: str) -> AgentSkills:
        found = self.agent_skills.get(extension_id)
        if found is None or extension_id not in self.directory.extensions:
            return AgentSkills(tenant_id=tenant_id, extension_id=extension_id)
        return found

    async def set_agent_skills(
        self, actor: Actor, tenant_id: str, extension_id: str, skills: list[AgentSkill]
    ) -> AgentSkills:
        """Replace the agent's skills."""
        actor.require(Permission.TENANT_EDIT)
        ext = self.directory.extension(actor, tenant_id, extension_id)
        if not ext.is_agent:
            raise Invalid(f"extension {ext.number} is not an agent", code="extension_not_agent")
        seen: set[str] = set()
        for s in skills:
            self.directory._owned(self.directory.skills, "skill", tenant_id, s.skill_id)
            if s.skill_id in seen:
                raise Invalid("a skill is listed at most once", code="skill_duplicate")
            seen.add(s.skill_id)
        updated = AgentSkills(tenant_id=tenant_id, extension_id=ext.id, skills=list(skills))
        await self.core.save(
            tenant_id,
            put=[("agent_skills", ext.id, updated)],
            events=[
                _config_event(
                    "agent_skills.changed",
                    extension_id=ext.id,
                    skills=[s.model_dump() for s in updated.skills],
                )
            ],
        )
        self.agent_skills[ext.id] = updated
        return updated

    async def set_agent_skill(
        self, actor: Actor, tenant_id: str, extension_id: str, skill_id: str, proficiency: int
    ) -> AgentSkills:
        current = self.of_agent(actor, tenant_id, extension_id)
        skills = [s for s in current.skills if s.skill_id != skill_id]
        skills.append(AgentSkill(skill_id=skill_id, proficiency=proficiency))
        return await self.set_agent_skills(actor, tenant_id, extension_id, skills)

    async def remove_agent_skill(
        self, actor: Actor, tenant_id: str, extension_id: str, skill_id: str
    ) -> AgentSkills:
        current = self.of_agent(actor, tenant_id, extension_id)
        if not any(s.skill_id == skill_id for s in current.skills):
            raise NotFound("agent_skill", skill_id)
        skills = [s for s in current.skills if s.skill_id != skill_id]
        return await self.set_agent_skills(actor, tenant_id, extension_id, skills)


def _without(agent: AgentSkills, skill_id: str) -> AgentSkills:
    return agent.model_copy(
        update={"skills": [s for s in agent.skills if s.skill_id != skill_id]}, deep=True
    )
