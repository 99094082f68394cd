"""The composition root: builds adapters from settings and wires the services together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .adapters.bus_memory import MemoryEventBus
from .adapters.clock import SystemClock
from .adapters.simswitch import EndpointScript, SimulatedSwitch
from .adapters.sipswitch import HoldReinvite, SipSwitch
from .adapters.storage_memory import MemoryStorage
from .adapters.storage_postgres import PostgresStorage
from .adapters.storage_sqlite import SqliteStorage
from .media.embedded import EmbeddedMediaEngine
from .ports.bus import EventBus
from .ports.clock import Clock
from .ports.storage import Storage
from .ports.switch import Switch
from .service.acd import AcdService
from .service.agents import AgentService
from .service.calls import CallService
from .service.core import Core, new_call_id, new_id
from .service.dids import DidService
from .service.directory import AccessAdmin, Directory
from .service.simulator import Simulator
from .service.sip_accounts import SipAccounts
from .service.skills import SkillService
from .service.streams import EventStreams
from .settings import Settings
from .sip.client import SipClient
from .sip.credentials import CredentialLookup
from .sip.endpoint import SipEndpoint
from .sip.registrar import Registrar
from .sip.source import Source

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
class SipStack:
    """The pieces under :class:`SipSwitch` that the container starts before it and stops after."""

    endpoint: SipEndpoint
    client: SipClient
    media: EmbeddedMediaEngine
    registrar: Registrar

    async def start(self) -> None:
        await self.endpoint.start()
        try:
            await self.media.start()
            await self.registrar.start()
        except BaseException:
            await self.media.stop()
            await self.endpoint.stop()
            raise
        self.endpoint.register("REGISTER", self.registrar.handle_register)

    async def stop(self) -> None:
        self.endpoint.unregister("REGISTER")
        await self.registrar.stop()
        await self.media.stop()
        await self.endpoint.stop()


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
    agents: AgentService
    skills: SkillService
    dids: DidService
    acd: AcdService
    #: set when ``settings.switch == "sip"``
    sip: SipStack | None = None

    @property
    def switch(self) -> Switch:
        return self.core.switch

    async def start(self) -> None:
        await self.core.storage.open()
        await self.core.bus.start()
        if self.sip is not None:
            await self.sip.start()
        await self.core.switch.start()
        await self.directory.load()
        await self.simulator.load()
        await self.sip_accounts.load()
        await self.skills.load()
        await self.calls.start()
        # after the calls the switch lost have ended: agents are reconciled with the live ones
        await self.agents.start(lambda: list(self.calls.calls.values()))
        await self.acd.start()  # after the agents are reconciled: queued calls re-arrive
        log.info(
            "callbridge started (storage=%s switch=%s)",
            type(self.core.storage).__name__,
            type(self.core.switch).__name__,
        )

    async def stop(self) -> None:
        await self.acd.stop()
        await self.calls.stop()
        await self.agents.stop()
        await self.core.committer.drain()  # the writer task finishes before storage closes
        await self.core.switch.stop()
        if self.sip is not None:
            await self.sip.stop()
        await self.core.bus.stop()
        await self.core.storage.close()


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    storage: Storage | None = None,
    bus: EventBus | None = None,
    switch: Switch | None = None,
    ids: Callable[[], str] | None = None,
    call_ids: Callable[[], str] | None = None,
) -> Container:
    """Wire a container. ``ids``/``call_ids`` replace the id generators (tests want stable ids)."""
    clock = clock or SystemClock()
    if storage is None:
        if settings.storage == "sqlite":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        storage = make_storage(settings.storage_url())
    sip: SipStack | None = None
    sip_accounts: SipAccounts
    # The SIP switch needs the directory and the SIP accounts, which need the core (which needs
    # the switch): the closures below resolve ``sip_accounts`` and ``username_for`` when called.
    if switch is None and settings.switch == "sip":
        sip = make_sip_stack(settings, clock, lambda username: sip_accounts.lookup(username))
        switch = SipSwitch(
            sip.endpoint,
            sip.client,
            sip.media,
            sip.registrar,
            clock,
            trunk=_trunk(settings),
            username_for=lambda tenant_id, number: username_for(tenant_id, number),
            recordings_dir=Path(settings.data_dir) / "recordings",
            hold_reinvite=HoldReinvite(settings.sip_hold_reinvite),
            trunk_username=settings.sip_trunk_username,
            trunk_password=settings.sip_trunk_password,
            public_host=settings.sip_public_host,
        )
    core = Core(
        storage=storage,
        bus=bus or MemoryEventBus(),
        switch=switch or SimulatedSwitch(clock, default_answer_after=settings.sim_answer_after),
        clock=clock,
        ids=ids or new_id,
        call_ids=call_ids or new_call_id,
    )
    directory = Directory(core)
    sip_accounts = SipAccounts(core, directory, settings.sip_realm)

    def username_for(tenant_id: str, number: str) -> str | None:
        ext = directory.extension_by_number(tenant_id, number)
        if ext is None:
            return None
        cred = sip_accounts.of_extension(ext.id)
        return cred.username if cred is not None else None

    calls = CallService(core, directory)
    agents = AgentService(core, directory)
    calls.add_observer(agents.calls_committed)
    skills = SkillService(core, directory)
    acd = AcdService(core, directory, calls, agents, skills)
    calls.add_precommit(acd.calls_committing)
    calls.add_observer(acd.calls_committed)  # after the agents': it reads their legs index
    agents.add_listener(acd.agents_committed)
    return Container(
        settings=settings,
        core=core,
        directory=directory,
        calls=calls,
        agents=agents,
        skills=skills,
        dids=DidService(core, directory),
        acd=acd,
        streams=EventStreams(core, directory, settings.subscriber_queue),
        simulator=Simulator(core, EndpointScript.model_validate),
        access=AccessAdmin(directory),
        sip_accounts=sip_accounts,
        sip=sip,
    )


def _trunk(settings: Settings) -> Source | None:
    address = settings.trunk_address()
    return Source("UDP", address[0], address[1]) if address is not None else None


def make_sip_stack(settings: Settings, clock: Clock, lookup: CredentialLookup) -> SipStack:
    endpoint = SipEndpoint(settings.sip_host, settings.sip_port)
    return SipStack(
        endpoint=endpoint,
        client=SipClient(endpoint, clock, public_host=settings.sip_public_host or None),
        media=EmbeddedMediaEngine(
            settings.sip_host,
            settings.rtp_port_min,
            settings.rtp_port_max,
            clock=clock,
            public_host=settings.sip_public_host or None,
        ),
        registrar=Registrar(
            settings.sip_realm,
            lookup,
            clock,
            allow_md5=settings.sip_allow_md5,
            algorithms=settings.digest_algorithms(),
        ),
    )
