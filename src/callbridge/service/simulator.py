"""Scripts for the simulated switch's endpoints, persisted like any other configuration.

An integrator rehearses failure paths by scripting how a number behaves (busy, no answer, ...).
Scripts are written through to storage and re-applied at start-up, so a restart keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from ..domain.errors import Invalid
from ..domain.numbers import check_dialable
from ..domain.tenancy import Permission
from ..ports.storage import Delete, Put
from ..ports.switch import ScriptableSwitch
from .auth import Actor
from .core import Core

KIND = "sim_endpoints"


class Simulator:
    def __init__(self, core: Core, parse: Callable[[dict[str, Any]], BaseModel]) -> None:
        self.core = core
        self.parse = parse

    @property
    def switch(self) -> ScriptableSwitch:
        switch = self.core.switch
        if not isinstance(switch, ScriptableSwitch):
            raise Invalid("the server does not run the simulated switch", code="not_simulated")
        return switch

    async def load(self) -> None:
        if not isinstance(self.core.switch, ScriptableSwitch):
            return
        for doc in await self.core.storage.list(KIND):
            self.core.switch.set_script(doc["number"], self.parse(doc["script"]))

    def scripts(self, actor: Actor) -> Mapping[str, Any]:
        actor.require(Permission.SIMULATOR_CONTROL)
        return self.switch.scripts()

    async def set_script(self, actor: Actor, number: str, script: BaseModel) -> None:
        actor.require(Permission.SIMULATOR_CONTROL)
        check_dialable(number)
        switch = self.switch
        batch = self.core.batch()
        doc = {"number": number, "script": script.model_dump(mode="json")}
        batch.puts.append(Put(KIND, number, None, doc))
        await self.core.storage.commit(batch)
        switch.set_script(number, script)

    async def clear_script(self, actor: Actor, number: str) -> None:
        actor.require(Permission.SIMULATOR_CONTROL)
        switch = self.switch
        batch = self.core.batch()
        batch.deletes.append(Delete(KIND, number))
        await self.core.storage.commit(batch)
        switch.clear_script(number)
