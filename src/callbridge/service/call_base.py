"""The live calls, their locks, drafts and the commit path every change of a call takes.

A command or switch event works on a :class:`_Draft` (a deep copy of the call) under the
call's lock; :meth:`CallBase._commit_many` runs the pre-commit hooks, writes drafts, events and
call records in one transaction, installs the calls, publishes and tells the observers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from ..domain.calls import Call, Leg, SupervisionMode
from ..domain.cdr import CallRecord
from ..domain.directory import Extension, Queue
from ..domain.errors import NotFound
from ..domain.events import DomainEvent, StoredEvent
from ..domain.parking import ParkedLeg, ParkingLot
from ..domain.tenancy import Permission
from ..ports.storage import Delete, EncodedDoc, Put
from ..ports.switch import SwitchEvent
from .auth import Actor
from .core import Core, KeyedLocks
from .directory import Directory

log = logging.getLogger(__name__)


#: Told about the calls of every commit, after they are installed and their events published
#: (the agent service follows its agents' legs this way). Runs under the calls' locks: it must not
#: take a call lock itself. Its errors are logged, never passed to the call's command.
CallObserver = Callable[[list[Call]], Awaitable[None]]

#: Told about the calls of every commit just *before* it is written, with the events so far: it may
#: append events the change causes, so they share its commit (the ACD's queue events, #4). Runs
#: under the calls' locks and must not await; its errors are logged, never passed on.
CallPrecommit = Callable[[list[tuple[Call, list[DomainEvent]]]], None]


def _counts(leg: Leg) -> bool:
    """Whether the leg counts as a party keeping its bridge alive (not a silent supervisor)."""
    return leg.supervision is None or leg.supervision.mode is SupervisionMode.BARGE


def _clone(call: Call) -> Call:
    """A deep copy for a draft (see :meth:`Call.clone`)."""
    return call.clone()


@dataclass
class _Draft:
    call: Call
    events: list[DomainEvent] = field(default_factory=list)

    def emit(self, events: list[DomainEvent]) -> None:
        self.events.extend(events)


@dataclass(frozen=True)
class Target:
    number: str
    extension: Extension | None = None
    queue: Queue | None = None

    @property
    def external(self) -> bool:
        return self.extension is None and self.queue is None


class CallBase:
    """The live calls of all tenants, their locks and the one path every change takes."""

    def __init__(self, core: Core, directory: Directory) -> None:
        self.core = core
        self.directory = directory
        self.calls: dict[str, Call] = {}
        self.leg_call: dict[str, str] = {}
        self.parking: dict[str, ParkingLot] = {}
        self._locks = KeyedLocks()
        self._inbox: asyncio.Queue[SwitchEvent] = asyncio.Queue()
        # leg id -> (tenant id, call id, number to resolve in the tenant)
        self._incoming: dict[str, tuple[str, str, str]] = {}
        self._pump: asyncio.Task[None] | None = None
        self._observers: list[CallObserver] = []  # agents (#4)
        self._precommits: list[CallPrecommit] = []  # the ACD (#4)

    def add_observer(self, observer: CallObserver) -> None:
        self._observers.append(observer)

    def add_precommit(self, hook: CallPrecommit) -> None:
        self._precommits.append(hook)

    # ------------------------------------------------------------------ lookups

    def _visible(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        self.directory.tenant(actor, tenant_id)
        call = self.calls.get(call_id)
        if call is None or call.tenant_id != tenant_id:
            raise NotFound("call", call_id)
        return call

    def _lot(self, tenant_id: str) -> ParkingLot:
        lot = self.parking.get(tenant_id)
        if lot is None:  # (not setdefault: that built a lot on every commit of every call)
            lot = self.parking[tenant_id] = ParkingLot(tenant_id=tenant_id)
        return lot

    # ------------------------------------------------------------------ the mutation path

    @contextlib.asynccontextmanager
    async def _mutate(self, call_id: str) -> AsyncIterator[_Draft]:
        async with self._locks(call_id):
            live = self.calls.get(call_id)
            if live is None:
                raise NotFound("call", call_id)
            draft = _Draft(_clone(live))
            try:
                yield draft
                await self._commit(draft)
            except BaseException:
                self._install(live)  # undo parking reservations made for the dropped draft
                raise

    @contextlib.asynccontextmanager
    async def _command(
        self,
        actor: Actor,
        tenant_id: str,
        call_id: str,
        permission: Permission = Permission.CALL_CONTROL,
    ) -> AsyncIterator[_Draft]:
        actor.require(permission)
        self._visible(actor, tenant_id, call_id)
        async with self._mutate(call_id) as draft:
            draft.call.require_active()
            yield draft

    async def _commit(self, draft: _Draft) -> list[StoredEvent]:
        return await self._commit_many([draft])

    async def _commit_many(self, drafts: list[_Draft]) -> list[StoredEvent]:
        """Write drafts in one transaction (documents, events, records); install; publish."""
        for hook in self._precommits:  # (#4)
            try:
                hook([(d.call, d.events) for d in drafts])
            except Exception:
                log.exception(
                    "call precommit hook failed for calls %s", [d.call.id for d in drafts]
                )
        batch = self.core.batch()
        for draft in drafts:
            call = draft.call
            if call.ended:
                batch.deletes.append(Delete("calls", call.id))
                batch.cdrs.append(CallRecord.of(call))
            else:
                # Encoded here, once: the same JSON as ``model_dump(mode="json")`` encoded by the
                # adapter, without building that dict first (tests/service/test_call_document.py).
                doc = EncodedDoc(call.model_dump_json())
                batch.puts.append(Put("calls", call.id, call.tenant_id, doc))
            batch.events.extend((call.tenant_id, e) for e in draft.events)
        stored = await self.core.committer.commit(batch)
        start = 0
        for draft in drafts:
            mine = stored[start : start + len(draft.events)]
            start += len(draft.events)
            if mine:
                draft.call.seq = mine[-1].seq
            self._install(draft.call)
        if stored:
            await self.core.bus.publish(stored)
        await self._notify([d.call for d in drafts])  # observer hook (#4)
        return stored

    async def _notify(self, calls: list[Call]) -> None:
        for observer in self._observers:
            try:
                await observer(calls)
            except Exception:
                log.exception("call observer failed for calls %s", [c.id for c in calls])

    def _install(self, call: Call) -> None:
        lot = self._lot(call.tenant_id)
        if lot.slots:  # mostly empty: spare every commit the copy of the lot's slots
            for slot, parked in list(lot.slots.items()):
                if parked.call_id == call.id:
                    lot.release(slot)
        if call.ended:
            self.calls.pop(call.id, None)
            for leg_id in call.legs:
                self.leg_call.pop(leg_id, None)
            return
        self.calls[call.id] = call
        for leg in call.legs.values():
            self.leg_call[leg.id] = call.id
            if leg.parked_slot is not None and leg.live:
                lot.slots[leg.parked_slot] = ParkedLeg(call_id=call.id, leg_id=leg.id)
