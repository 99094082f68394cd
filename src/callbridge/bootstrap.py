"""The composition root: builds adapters from settings and wires the services together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .adapters.bus_memory import MemoryEventBus
from .adapters.clock import SystemClock
from .adapters.simswitch import EndpointScript, SimulatedSwitch
from .adapters.storage_memory import MemoryStorage
from .adapters.storage_postgres import PostgresStorage
from .adapters.storage_sqlite import SqliteStorage
from .ports.bus import EventBus
from .ports.clock import Clock
from .ports.storage import Storage
from .ports.switch import Switch
from .service.calls import CallService
from .service.core import Core
from .service.directory import AccessAdmin, Directory
from .service.simulator import Simulator
from .service.sip_accounts import SipAccounts
from .service.streams import EventStreams
from .settings import Settings

log = logging.getLogger(__name__)


def make_storage(url: str) -> Storage:
    if url == "memory":
        return MemoryStorage()
    if url.startswith("sqlite:///"):
        return SqliteStorage(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStorage(url)
    raise ValueError(f"unknown storage {url!r}: use memory, sqlite:///FILE or postgresql://...")


@dataclass
class Container:
    settings: Settings
    core: Core
    directory: Directory
    calls: CallService
    streams: EventStreams
    simulator: Simulator
    access: AccessAdmin
    sip_accounts: SipAccounts

    @property
    def switch(self) -> Switch:
        return self.core.switch

    async def start(self) -> None:
        await self.core.storage.open()
        await self.core.bus.start()
        await self.core.switch.start()
        await self.directory.load()
        await self.simulator.load()
        await self.sip_accounts.load()
        await self.calls.start()
        log.info(
            "callbridge started (storage=%s switch=%s)",
            type(self.core.storage).__name__,
            type(self.core.switch).__name__,
        )

    async def stop(self) -> None:
        await self.calls.stop()
        await self.core.committer.drain()  # the writer task finishes before storage closes
        await self.core.switch.stop()
        await self.core.bus.stop()
        await self.core.storage.close()


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    storage: Storage | None = None,
    bus: EventBus | None = None,
    switch: Switch | None = None,
) -> Container:
    clock = clock or SystemClock()
    if storage is None:
        if settings.storage == "sqlite":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        storage = make_storage(settings.storage_url())
    core = Core(
        storage=storage,
        bus=bus or MemoryEventBus(),
        switch=switch or SimulatedSwitch(clock, default_answer_after=settings.sim_answer_after),
        clock=clock,
    )
    directory = Directory(core)
    return Container(
        settings=settings,
        core=core,
        directory=directory,
        calls=CallService(core, directory),
        streams=EventStreams(core, directory, settings.subscriber_queue),
        simulator=Simulator(core, EndpointScript.model_validate),
        access=AccessAdmin(directory),
        sip_accounts=SipAccounts(core, directory, settings.sip_realm),
    )
