"""Call control: the commands clients send and the switch events that come back.

Theory of operation
-------------------
Live calls are held in memory (and written through to storage on every change). A command or a
switch event for a call runs under that call's lock, on a *draft* (a deep copy of the call):

1. the domain validates and changes the draft, returning events;
2. the switch carries the change out;
3. the draft, its events (and its call record, once ended) are committed in one transaction,
   then the events are published and the draft replaces the live call.

If any step raises, the draft is dropped and the call is exactly as it was.

What happens when a party answers is recorded on its leg: ``then_dial`` (click-to-call: the agent
answered, now ring the target) or ``connect_to`` (bridge with that leg, or join its bridge). When a
leg goes away, :meth:`_cascade` hangs up whatever it leaves orphaned (a lone bridged party, a leg
ringing for a party that is gone) and ends the call when no leg is left.

A party can also act from its own phone (switch events ``HELD``/``RESUMED``/
``TRANSFER_REQUESTED``): :meth:`CallService._party_hold` holds/unholds the other parties of its
bridge through the normal hold path, :meth:`CallService._transfer_requested` blind-transfers its
one peer through the path of :meth:`CallService.transfer` (extensions only) or tells the switch
``refuse_transfer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from ..domain.calls import (
    Bridge,
    BridgeKind,
    Call,
    CallOrigin,
    CallState,
    Direction,
    HangupCause,
    HoldState,
    Leg,
    LegRole,
    LegState,
    PartyKind,
    Supervision,
    SupervisionMode,
)
from ..domain.cdr import CallRecord
from ..domain.directory import Extension, Queue, QueueType
from ..domain.errors import Conflict, DomainError, Invalid, NotFound
from ..domain.events import DomainEvent, StoredEvent, call_event
from ..domain.numbers import check_dialable, is_extension_number
from ..domain.parking import ParkedLeg, ParkingLot
from ..domain.tenancy import Permission
from ..ports.storage import Delete, Put
from ..ports.switch import (
    DialRequest,
    ScriptableSwitch,
    SwitchError,
    SwitchEvent,
    SwitchEventKind,
)
from .auth import Actor
from .core import Core, KeyedLocks
from .directory import Directory

log = logging.getLogger(__name__)

PUMP_BATCH = 256  # switch events handled (and committed) together at most

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


def parse_supervision_mode(mode: str) -> SupervisionMode:
    try:
        return SupervisionMode(mode)
    except ValueError:
        raise Invalid(
            f"supervision mode {mode!r} must be one of listen, whisper, barge",
            code="supervision_mode_invalid",
            mode=mode,
        ) from None


def _clone(call: Call) -> Call:
    """A deep copy (pydantic-core round trip: several times faster than copy.deepcopy)."""
    return Call.model_validate(call.model_dump())


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


class CallService:
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

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load live calls; end those the (restarted) switch no longer has; start the pump."""
        self.core.switch.set_listener(self._inbox.put_nowait)
        for call in await self.core.load("calls", Call):
            await self._end_lost_call(call)
        self._pump = asyncio.create_task(self._run_pump(), name="callbridge-switch-events")

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None

    async def settle(self) -> None:
        """Wait until every switch event received so far has been handled (tests, benchmarks)."""
        await self._inbox.join()

    async def _end_lost_call(self, call: Call) -> None:
        now = self.core.clock.now()
        draft = _Draft(call)
        for leg in call.live_legs():
            draft.emit(call.leg_hungup(leg.id, HangupCause.SHUTDOWN, now))
        draft.emit(call.end(HangupCause.SHUTDOWN, now))
        await self._commit(draft)
        log.warning(
            "call %s tenant %s ended: its legs did not survive a restart", call.id, call.tenant_id
        )

    async def _run_pump(self) -> None:
        """Handle switch events in arrival order, committing each batch in one transaction.

        Under load the inbox holds events of many calls, new ones (``INCOMING``) among them;
        everything that piled up (up to ``PUMP_BATCH`` events) is handled as one batch
        (:meth:`_handle_batch`) and committed together (group commit), which keeps the durable
        path from limiting throughput. A batch that fails to commit is retried call by call.
        """
        while True:
            events = [await self._inbox.get()]
            while len(events) < PUMP_BATCH and not self._inbox.empty():
                events.append(self._inbox.get_nowait())
            try:
                await self._handle_batch(events)
            except Exception:
                log.exception("switch events %s failed", [(e.kind, e.leg_id) for e in events])
            finally:
                for _ in events:
                    self._inbox.task_done()

    async def _handle_batch(self, events: list[SwitchEvent]) -> None:
        """Apply ``events`` in order, one draft per call, under the calls' locks; commit.

        The locks of the calls already known are taken up front, in sorted order (as a command
        that needs two calls takes them); a call created by an ``INCOMING`` event of the batch
        is new, so nobody else can wait for its lock. Its customer leg is mapped to it at once,
        so that a later event of the batch for that leg (a CANCEL) finds the call's draft.
        The events of one call are all or nothing, as if the call's draft had been committed
        just before its first failing event: a draft that failed is put back as it was before
        (a new call as it was created), and the call's later events in the batch are skipped.
        """
        known = {
            call_id
            for event in events
            if event.kind is not SwitchEventKind.INCOMING
            and (call_id := self.leg_call.get(event.leg_id)) is not None
        }
        drafts: dict[str, _Draft] = {}
        created: dict[str, tuple[Call, int] | None] = {}  # new call -> snapshot before events
        failed: set[str] = set()
        async with contextlib.AsyncExitStack() as held:
            locked = set(known)
            for call_id in sorted(known):
                await held.enter_async_context(self._locks(call_id))
            for event in events:
                if event.kind is SwitchEventKind.INCOMING:
                    draft = await self._guarded_incoming(event, held)
                    if draft is not None:
                        drafts[draft.call.id] = draft
                        created[draft.call.id] = None
                        locked.add(draft.call.id)
                    continue
                call_id = self.leg_call.get(event.leg_id)
                if call_id is None:
                    log.debug(
                        "switch event %s for unknown leg %s ignored", event.kind, event.leg_id
                    )
                    continue
                if call_id in failed:
                    continue
                if call_id not in locked:  # not known when the batch started (defensive)
                    await held.enter_async_context(self._locks(call_id))
                    locked.add(call_id)
                draft = drafts.get(call_id)
                if draft is None:
                    live = self.calls.get(call_id)
                    if live is None:
                        continue
                    draft = drafts[call_id] = _Draft(_clone(live))
                elif call_id in created and created[call_id] is None:
                    created[call_id] = (_clone(draft.call), len(draft.events))
                try:
                    await self._apply_switch_event(draft, event)
                except Exception:
                    log.exception("call %s: switch event %s failed", call_id, event.kind)
                    failed.add(call_id)
                    self._drop_draft(call_id, drafts, created)
            await self._commit_batch([d for d in drafts.values() if d.events])

    def _drop_draft(
        self, call_id: str, drafts: dict[str, _Draft], created: dict[str, tuple[Call, int] | None]
    ) -> None:
        """Undo what a failed switch event did to a call's draft (see :meth:`_handle_batch`)."""
        draft = drafts.pop(call_id)
        if call_id not in created:
            live = self.calls.get(call_id)
            if live is not None:
                self._install(live)  # undo parking reservations made for the dropped draft
            return
        snapshot = created[call_id]
        assert snapshot is not None  # a new call's first event takes the snapshot
        call, n_events = snapshot
        lot = self._lot(call.tenant_id)
        for slot, parked in list(lot.slots.items()):
            if parked.call_id == call_id:
                lot.release(slot)
        drafts[call_id] = _Draft(call, draft.events[:n_events])

    async def _commit_batch(self, drafts: list[_Draft]) -> None:
        """Commit drafts together; if that fails, each on its own (a failure is logged)."""
        if not drafts:
            return
        try:
            await self._commit_many(drafts)
            return
        except Exception:
            if len(drafts) == 1:
                log.exception("call %s: commit failed", drafts[0].call.id)
                return
        for draft in drafts:
            try:
                await self._commit_many([draft])
            except Exception:
                log.exception("call %s: commit failed", draft.call.id)

    # ------------------------------------------------------------------ reads

    def _visible(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        self.directory.tenant(actor, tenant_id)
        call = self.calls.get(call_id)
        if call is None or call.tenant_id != tenant_id:
            raise NotFound("call", call_id)
        return call

    def get(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        actor.require(Permission.CALLS_VIEW)
        return self._visible(actor, tenant_id, call_id)

    def list_calls(self, actor: Actor, tenant_id: str) -> list[Call]:
        actor.require(Permission.CALLS_VIEW)
        self.directory.tenant(actor, tenant_id)
        return sorted(
            (c for c in self.calls.values() if c.tenant_id == tenant_id), key=lambda c: c.created_at
        )

    async def timeline(self, actor: Actor, tenant_id: str, call_id: str) -> list[StoredEvent]:
        actor.require(Permission.CALLS_VIEW)
        self.directory.tenant(actor, tenant_id)
        events = await self.core.storage.events(tenant_id, 0, 10_000, call_id=call_id)
        if not events:
            raise NotFound("call", call_id)
        return events

    def parking_lot(self, actor: Actor, tenant_id: str) -> ParkingLot:
        actor.require(Permission.CALLS_VIEW)
        self.directory.tenant(actor, tenant_id)
        return self._lot(tenant_id)

    def _lot(self, tenant_id: str) -> ParkingLot:
        return self.parking.setdefault(tenant_id, ParkingLot(tenant_id=tenant_id))

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
                doc = call.model_dump(mode="json")
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

    # ------------------------------------------------------------------ targets and dialling

    def resolve(self, tenant_id: str, number: str) -> Target:
        check_dialable(number)
        owner = self.directory.number_owner(tenant_id, number)
        if isinstance(owner, Extension):
            return Target(number, extension=owner)
        if isinstance(owner, Queue):
            return Target(number, queue=owner)
        if is_extension_number(number):
            raise NotFound("extension", number)
        return Target(number)

    async def _dial(
        self,
        draft: _Draft,
        target: Target,
        role: LegRole,
        *,
        caller_id: str,
        connect_to: str | None = None,
        then_dial: str | None = None,
    ) -> Leg:
        call = draft.call
        if target.queue is not None:
            raise Invalid(
                f"{target.number} is a queue; only an inbound or transferred call can enter it",
                code="target_is_queue",
            )
        leg = Leg(
            id=self.core.new_id(),
            kind=PartyKind.EXTERNAL if target.external else PartyKind.EXTENSION,
            direction=Direction.OUTBOUND,
            number=target.number,
            extension_id=target.extension.id if target.extension else None,
            created_at=self.core.clock.now(),
            role=role,
            connect_to=connect_to,
            then_dial=then_dial,
        )
        draft.emit(call.add_leg(leg))
        # Known before the switch can answer: its events wait on the call lock until we commit.
        self.leg_call[leg.id] = call.id
        await self.core.switch.dial(
            DialRequest(
                leg_id=leg.id,
                call_id=call.id,
                tenant_id=call.tenant_id,
                number=target.number,
                external=target.external,
                caller_id=caller_id,
            )
        )
        return leg

    async def _hangup_leg(self, draft: _Draft, leg_id: str, cause: HangupCause) -> None:
        try:
            await self.core.switch.hangup(leg_id, cause)
        except SwitchError as exc:  # (#4) it hung up too; its event is behind us in the batch
            if exc.code != "leg_hungup":
                raise
        draft.emit(draft.call.leg_hungup(leg_id, cause, self.core.clock.now()))

    async def _cascade(self, draft: _Draft, cause: HangupCause) -> None:
        """Hang up what the last change orphaned; end the call if nothing is left."""
        call = draft.call
        changed = True
        while changed:
            changed = False
            for leg in call.live_legs():
                if self._orphaned(call, leg):
                    lone_cause = cause if leg.state is not LegState.ANSWERED else HangupCause.NORMAL
                    await self._hangup_leg(draft, leg.id, lone_cause)
                    changed = True
        if not call.live_legs() and not call.ended:
            draft.emit(call.end(cause, self.core.clock.now()))

    @staticmethod
    def _orphaned(call: Call, leg: Leg) -> bool:
        awaited = any(  # a supervisor on its way does not keep its agent's call alive
            o.live and o.connect_to == leg.id and o.supervision is None for o in call.legs.values()
        )
        if leg.connect_to is not None:
            return not call.leg(leg.connect_to).live
        if awaited or leg.parked_slot is not None:
            return False
        if call.state is CallState.QUEUED and leg.bridge_id is None:
            return False  # waiting in the queue
        if leg.bridge_id is not None:
            # a listening or whispering supervisor never keeps a call alive
            return sum(_counts(call.legs[i]) for i in call.bridges[leg.bridge_id].leg_ids) < 2
        return leg.then_dial is None  # alone, and nothing will connect it

    # ------------------------------------------------------------------ originate / inbound

    async def originate(
        self,
        actor: Actor,
        tenant_id: str,
        extension_id: str,
        target: str,
        *,
        outbound_queue_id: str | None = None,
    ) -> Call:
        """Click-to-call: ring the extension; when it answers, dial the target; bridge."""
        actor.require(Permission.CALL_CONTROL)
        ext = self.directory.extension(actor, tenant_id, extension_id)
        resolved = self.resolve(tenant_id, target)
        if resolved.queue is not None:
            raise Invalid(f"{target} is a queue, not a party to call", code="target_is_queue")
        caller_id = ext.number
        queue_id = None
        if outbound_queue_id is not None:
            queue = self.directory.queue(actor, tenant_id, outbound_queue_id)
            if queue.type is not QueueType.VOICE_OUTBOUND:
                raise Invalid("the queue is not an outbound queue", code="queue_not_outbound")
            caller_id, queue_id = queue.caller_id or caller_id, queue.id
        now = self.core.clock.now()
        call = Call(
            id=self.core.new_id(),
            tenant_id=tenant_id,
            origin=CallOrigin.ORIGINATE,
            from_number=ext.number,
            to_number=target,
            caller_id=caller_id,
            queue_id=queue_id,
            created_at=now,
        )
        draft = _Draft(call, [call.created_event()])
        async with self._locks(call.id):
            await self._dial(
                draft,
                Target(ext.number, extension=ext),
                LegRole.ORIGINATOR,
                caller_id=target,
                then_dial=target,
            )
            await self._commit(draft)
        log.info("call %s tenant %s originated %s -> %s", call.id, tenant_id, ext.number, target)
        return call

    async def simulate_inbound(
        self, actor: Actor, tenant_id: str, from_number: str, to_number: str
    ) -> str:
        """Have the simulated switch place a call from ``from_number`` to ``to_number``.

        Returns the id the call will have; it appears once the switch reports the call.
        """
        actor.require(Permission.SIMULATOR_CONTROL)
        self.directory.tenant(actor, tenant_id)
        check_dialable(from_number)
        did = self.directory.did_for(to_number)  # (#3) a caller may dial one of the tenant's DIDs
        dialled = did.target if did is not None and did.tenant_id == tenant_id else to_number
        target = self.resolve(tenant_id, dialled)
        if target.external:
            raise Invalid(
                "an inbound call must be for an extension or a queue", code="target_external"
            )
        switch = self.core.switch
        if not isinstance(switch, ScriptableSwitch):
            raise Invalid("the server does not run the simulated switch", code="not_simulated")
        call_id = self.core.new_id()
        leg_id = switch.inject_incoming(from_number, to_number)
        self._incoming[leg_id] = (tenant_id, call_id, dialled)
        return call_id

    async def _guarded_incoming(
        self, event: SwitchEvent, held: contextlib.AsyncExitStack
    ) -> _Draft | None:
        try:
            return await self._on_incoming(event, held)
        except Exception:
            log.exception("switch event %s for leg %s failed", event.kind, event.leg_id)
            self.leg_call.pop(event.leg_id, None)
            return None

    async def _on_incoming(
        self, event: SwitchEvent, held: contextlib.AsyncExitStack
    ) -> _Draft | None:
        """A new inbound call: its draft (committed by the caller), holding its lock in ``held``."""
        hint = self._incoming.pop(event.leg_id, None)
        from_number, to_number = event.from_number or "", event.to_number or ""
        # (#3) a DID names its tenant and the number (extension or queue) to ring in it
        tenant_id, dialled = (hint[0], hint[2]) if hint else self._route(to_number)
        call_id = hint[1] if hint else self.core.new_id()
        if tenant_id is None:
            log.info("incoming leg %s to %s: no tenant has this number", event.leg_id, to_number)
            await self.core.switch.hangup(event.leg_id, HangupCause.UNALLOCATED)  # (#3) 404
            return None
        now = self.core.clock.now()
        call = Call(
            id=call_id,
            tenant_id=tenant_id,
            origin=CallOrigin.INBOUND,
            from_number=from_number,
            to_number=to_number,
            caller_id=from_number,
            created_at=now,
        )
        customer = Leg(
            id=event.leg_id,
            kind=PartyKind.EXTERNAL,
            direction=Direction.INBOUND,
            number=from_number,
            state=LegState.RINGING,
            created_at=now,
            role=LegRole.CUSTOMER,
        )
        draft = _Draft(call, [call.created_event()])
        await held.enter_async_context(self._locks(call.id))
        draft.emit(call.add_leg(customer))
        # Known before the batch is committed: a later event of the batch for this leg (a
        # CANCEL) applies to this draft.
        self.leg_call[customer.id] = call.id
        await self.core.switch.accept(customer.id, call.id, tenant_id)
        try:
            target = self.resolve(tenant_id, dialled)  # (#3)
            await self._route_to(draft, customer, target)
        except (NotFound, Invalid) as exc:
            log.info("call %s tenant %s rejected: %s", call.id, tenant_id, exc.message)
            await self._hangup_leg(draft, customer.id, HangupCause.REJECTED)
            await self._cascade(draft, HangupCause.REJECTED)
        except SwitchError as exc:
            # The switch could not route it (no free RTP port, ...): refuse the caller rather
            # than leave it ringing. A leg being dialled was refused by the switch: gone too.
            log.warning("call %s tenant %s failed: %s", call.id, tenant_id, exc)
            for leg in draft.call.live_legs():
                if leg.id != customer.id:
                    draft.emit(draft.call.leg_hungup(leg.id, HangupCause.FAILED, now))
            await self._hangup_leg(draft, customer.id, HangupCause.FAILED)
            await self._cascade(draft, HangupCause.FAILED)
        return draft

    def _route(self, to_number: str) -> tuple[str | None, str]:
        """(#3) The tenant of an inbound call and the number to resolve in it: the DID table
        first, else the single tenant owning ``to_number`` as an extension or queue number."""
        did = self.directory.did_for(to_number)
        if did is not None:
            return did.tenant_id, did.target
        owners = {
            t.id
            for t in self.directory.tenants.values()
            if self.directory.number_owner(t.id, to_number) is not None
        }
        return (owners.pop() if len(owners) == 1 else None), to_number

    async def _route_to(self, draft: _Draft, leg: Leg, target: Target) -> None:
        """Send a (customer) leg to a target: ring an extension/number, or enter a queue."""
        if target.queue is not None:
            await self._enter_queue(draft, leg, target.queue)
            return
        await self._dial(
            draft,
            target,
            LegRole.TARGET,
            caller_id=draft.call.caller_id or leg.number,
            connect_to=leg.id,
        )

    async def _enter_queue(self, draft: _Draft, leg: Leg, queue: Queue) -> None:
        call, now = draft.call, self.core.clock.now()
        if leg.state is not LegState.ANSWERED:
            await self.core.switch.answer(leg.id)
            draft.emit(call.leg_answered(leg.id, now))
        if leg.bridge_id is not None:
            bridge_id = leg.bridge_id
            draft.emit(call.leave_bridge(leg.id))
            await self.core.switch.unbridge(bridge_id, leg.id)
        if not self._hears_music(call, leg):  # a queued caller already does (#4)
            await self.core.switch.start_music(leg.id)
        if call.state is CallState.QUEUED:  # moved or overflowed to another queue (#4)
            call.queue_id = queue.id
        else:
            draft.emit(call.mark_queued(queue.id, now))
        draft.emit([call_event("queue.entered", call.id, queue_id=queue.id, leg_id=leg.id)])

    # -- ACD (#4): queued callers keep hearing music across moves, overflows and transfers --

    @staticmethod
    def _hears_music(call: Call, leg: Leg) -> bool:
        """Music is already playing to ``leg``: parked, waiting in a queue, or waiting for the
        target of a blind transfer."""
        if leg.parked_slot is not None:
            return True
        if leg.state is not LegState.ANSWERED or leg.bridge_id is not None:
            return False
        return call.state is CallState.QUEUED or any(
            o.live and o.connect_to == leg.id and o.role is LegRole.TRANSFER_TARGET
            for o in call.legs.values()
        )

    async def enter_queue(self, call_id: str, leg_id: str, queue: Queue) -> Call:
        """Put ``leg_id`` of a live call into ``queue`` (the ACD's moves and overflows)."""
        async with self._mutate(call_id) as d:
            d.call.require_active()
            await self._enter_queue(d, d.call._answered_leg(leg_id), queue)
        return d.call

    # ------------------------------------------------------------------ switch events

    async def _apply_switch_event(self, draft: _Draft, event: SwitchEvent) -> None:
        call, now = draft.call, self.core.clock.now()
        leg = call.leg(event.leg_id)
        if not leg.live:
            return
        if event.kind is SwitchEventKind.RINGING:
            if leg.state is LegState.DIALING:
                draft.emit(call.leg_ringing(leg.id))
        elif event.kind is SwitchEventKind.ANSWERED:
            draft.emit(call.leg_answered(leg.id, now))
            await self._on_answered(draft, leg.id)
        elif event.kind is SwitchEventKind.HUNGUP:
            cause = event.cause or HangupCause.NORMAL
            draft.emit(call.leg_hungup(leg.id, cause, now))
            await self._cascade(draft, cause)
        elif event.kind is SwitchEventKind.DTMF:
            draft.emit([call_event("dtmf.received", call.id, leg_id=leg.id, digits=event.digits)])
        elif event.kind in (SwitchEventKind.HELD, SwitchEventKind.RESUMED):
            await self._party_hold(draft, leg, event.kind is SwitchEventKind.HELD)
        elif event.kind is SwitchEventKind.TRANSFER_REQUESTED:
            await self._transfer_requested(draft, leg, event.to_number or "")

    async def _on_answered(self, draft: _Draft, leg_id: str) -> None:
        call, now = draft.call, self.core.clock.now()
        leg = call.leg(leg_id)
        if leg.then_dial is not None:
            target, leg.then_dial = self.resolve(call.tenant_id, leg.then_dial), None
            await self._dial(
                draft,
                target,
                LegRole.TARGET,
                caller_id=call.caller_id or leg.number,
                connect_to=leg.id,
            )
            return
        if leg.connect_to is None:
            return
        other = call.leg(leg.connect_to)
        leg.connect_to = None
        if leg.supervision is not None:
            await self._supervisor_answered(draft, leg, other)
            return
        if other.state is not LegState.ANSWERED:
            await self.core.switch.answer(other.id)
            draft.emit(call.leg_answered(other.id, now))
        if other.parked_slot is not None:
            await self.core.switch.stop_music(other.id)
            draft.emit(call.unpark(other.id))
        elif (call.state is CallState.QUEUED and other.bridge_id is None) or (
            leg.role is LegRole.TRANSFER_TARGET and other.bridge_id is None
        ):
            await self.core.switch.stop_music(other.id)
        if other.bridge_id is not None:
            bridge = call.bridges[other.bridge_id]
            draft.emit(call.join_bridge(bridge.id, leg.id))
            await self.core.switch.bridge(
                bridge.id,
                list(bridge.leg_ids),
                call.bridges[bridge.id].kind is BridgeKind.CONFERENCE,
            )
        else:
            bridge_id = self.core.new_id()
            draft.emit(call.bridge(bridge_id, [other.id, leg.id], BridgeKind.TWO_PARTY))
            await self.core.switch.bridge(bridge_id, [other.id, leg.id], False)
        draft.emit(call.mark_answered(now))

    async def _supervisor_answered(self, draft: _Draft, leg: Leg, agent: Leg) -> None:
        """The supervisor picked up: join the agent's bridge, heard only as its mode allows."""
        call = draft.call
        assert leg.supervision is not None
        if agent.state is not LegState.ANSWERED or agent.bridge_id is None:
            await self._hangup_leg(draft, leg.id, HangupCause.NORMAL)  # nothing left to supervise
            return
        # audibility first: a listening supervisor must not be heard for a moment on joining
        await self.core.switch.set_audibility(leg.id, leg.supervision.heard_by())
        bridge = call.bridges[agent.bridge_id]
        draft.emit(call.join_bridge(bridge.id, leg.id))
        await self.core.switch.bridge(bridge.id, list(bridge.leg_ids), True)
        draft.emit(call.supervision_started(leg.id))

    # ------------------------------------------------------------------ party commands

    async def hangup(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            leg = d.call.leg(leg_id)
            if not leg.live:
                raise Conflict("the leg has already hung up", code="leg_already_hungup")
            await self._hangup_leg(d, leg_id, HangupCause.NORMAL)
            await self._cascade(d, HangupCause.NORMAL)
        return d.call

    async def kill(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            for leg in d.call.live_legs():
                await self._hangup_leg(d, leg.id, HangupCause.KILLED)
            await self._cascade(d, HangupCause.KILLED)
        return d.call

    async def hold(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.hold(leg_id))
            await self.core.switch.hold(leg_id)
        return d.call

    async def unhold(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.unhold(leg_id))
            await self.core.switch.unhold(leg_id)
        return d.call

    async def mute(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.mute(leg_id))
            await self.core.switch.mute(leg_id)
        return d.call

    async def unmute(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.unmute(leg_id))
            await self.core.switch.unmute(leg_id)
        return d.call

    async def send_dtmf(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str, digits: str
    ) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.dtmf_sent(leg_id, digits))
            await self.core.switch.send_dtmf(leg_id, digits)
        return d.call

    async def transfer(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str, target: str
    ) -> Call:
        """Blind transfer: ``leg_id`` stays; its peer leaves; a new leg to ``target`` replaces it.

        With a queue as target, the party waits in that queue instead.
        """
        resolved = self.resolve(tenant_id, target)
        async with self._command(actor, tenant_id, call_id) as d:
            self._transfer_checks(d.call, leg_id)
            await self._blind_transfer(d, leg_id, resolved, target)
        return d.call

    @staticmethod
    def _transfer_checks(call: Call, leg_id: str) -> list[Leg]:
        """Refuse a transfer of ``leg_id`` before anything changes; its peers otherwise."""
        call._answered_leg(leg_id)
        peers = call.peers_of(leg_id)
        if len(peers) > 1:
            raise Conflict("the party is in a conference; kick instead", code="leg_in_conference")
        return peers

    async def _blind_transfer(
        self,
        d: _Draft,
        leg_id: str,
        resolved: Target,
        target: str,
        *,
        requested_by: str | None = None,
    ) -> None:
        call = d.call
        leg = call.leg(leg_id)
        peers = call.peers_of(leg_id)
        d.emit([call_event("leg.transferring", call.id, leg_id=leg_id, target=target)])
        for peer in peers:
            if peer.id == requested_by:
                # the phone that asked (SIP REFER) may have hung up already: nothing to hang up
                with contextlib.suppress(SwitchError):
                    await self.core.switch.hangup(peer.id, HangupCause.TRANSFERRED)
                d.emit(call.leg_hungup(peer.id, HangupCause.TRANSFERRED, self.core.clock.now()))
            else:
                await self._hangup_leg(d, peer.id, HangupCause.TRANSFERRED)
        if leg.hold.value == "held":
            d.emit(call.unhold(leg_id))
            await self.core.switch.unhold(leg_id)
        if resolved.queue is not None:
            await self._enter_queue(d, leg, resolved.queue)
        else:
            if leg.bridge_id is not None:  # wait outside the bridge, hearing music
                bridge_id = leg.bridge_id
                d.emit(call.leave_bridge(leg_id))
                await self.core.switch.unbridge(bridge_id, leg_id)
            if not self._hears_music(call, leg):  # a queued caller already does (#4)
                await self.core.switch.start_music(leg_id)
            await self._dial(
                d,
                resolved,
                LegRole.TRANSFER_TARGET,
                caller_id=leg.number,
                connect_to=leg_id,
            )
        await self._cascade(d, HangupCause.TRANSFERRED)

    # ------------------------------------------------------------------ a party acts on its phone

    async def _party_hold(self, d: _Draft, leg: Leg, held: bool) -> None:
        """A party put the call on hold from its phone (``HELD``) or resumed (``RESUMED``).

        The other answered parties of its bridge are held (they hear music) or unheld through
        the same steps as the hold command, so the event log shows ``leg.held``/``leg.unheld``
        for them after ``leg.party_held``/``leg.party_resumed``. Kept small on purpose: a peer
        already in the wanted state is left alone, and resuming unholds every held peer, also
        one an agent had held through the API.
        """
        call = d.call
        kind = "leg.party_held" if held else "leg.party_resumed"
        d.emit([call_event(kind, call.id, leg_id=leg.id)])
        if leg.state is not LegState.ANSWERED or call.ended:
            return
        for peer in call.peers_of(leg.id):
            if peer.state is not LegState.ANSWERED:
                continue
            if held and peer.hold is HoldState.ACTIVE:
                d.emit(call.hold(peer.id))
                await self.core.switch.hold(peer.id)
            elif not held and peer.hold is HoldState.HELD:
                d.emit(call.unhold(peer.id))
                await self.core.switch.unhold(peer.id)

    async def _transfer_requested(self, d: _Draft, leg: Leg, number: str) -> None:
        """A party pressed blind transfer on its phone (SIP REFER): its one peer is transferred
        to ``number`` through :meth:`_blind_transfer` (which hangs the party up, cause
        ``transferred``); if that cannot be done the switch is told with ``refuse_transfer``.
        Only extension legs may ask (``transfer_forbidden`` otherwise: a caller from outside
        must not send the agent to a number of its choosing over the trunk)."""
        call = d.call
        try:
            if leg.kind is not PartyKind.EXTENSION:
                # a customer (or any trunk party) must not send the agent to a number of its
                # choosing through our trunk: only the platform's own phones may transfer
                raise Conflict("only an extension's phone may transfer", code="transfer_forbidden")
            peers = call.peers_of(leg.id)
            if len(peers) != 1:
                raise Conflict(
                    "only a party with exactly one peer can transfer it", code="transfer_no_peer"
                )
            resolved = self.resolve(call.tenant_id, number)
            self._transfer_checks(call, peers[0].id)
        except DomainError as exc:
            log.info(
                "call %s: transfer from leg %s to %s refused: %s", call.id, leg.id, number, exc
            )
            d.emit(
                [
                    call_event(
                        "leg.transfer_refused", call.id, leg_id=leg.id, target=number, code=exc.code
                    )
                ]
            )
            with contextlib.suppress(SwitchError):  # the phone may have hung up meanwhile
                await self.core.switch.refuse_transfer(leg.id, exc.code)
            return
        await self._blind_transfer(d, peers[0].id, resolved, number, requested_by=leg.id)

    async def park(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str, slot: str | None = None
    ) -> tuple[Call, str]:
        async with self._command(actor, tenant_id, call_id) as d:
            call = d.call
            lot = self._lot(tenant_id)
            chosen = lot.choose(slot)
            leg = call._answered_leg(leg_id)
            bridge_id = leg.bridge_id
            if leg.hold.value == "held":
                d.emit(call.unhold(leg_id))
                await self.core.switch.unhold(leg_id)
            d.emit(call.park(leg_id, chosen))
            if bridge_id is not None:
                await self.core.switch.unbridge(bridge_id, leg_id)
            await self.core.switch.start_music(leg_id)
            if chosen in lot.slots:  # taken while we awaited the switch
                raise Conflict(f"parking slot {chosen} is occupied", code="slot_occupied")
            lot.occupy(chosen, call.id, leg_id)
            await self._cascade(d, HangupCause.NORMAL)
        return d.call, chosen

    async def unpark(self, actor: Actor, tenant_id: str, slot: str, extension_id: str) -> Call:
        actor.require(Permission.CALL_CONTROL)
        ext = self.directory.extension(actor, tenant_id, extension_id)
        parked = self._lot(tenant_id).occupant(slot)
        async with self._command(actor, tenant_id, parked.call_id) as d:
            call = d.call
            if any(o.live and o.connect_to == parked.leg_id for o in call.legs.values()):
                raise Conflict(f"slot {slot} is already being unparked", code="unpark_in_progress")
            await self._dial(
                d,
                Target(ext.number, extension=ext),
                LegRole.UNPARK_TARGET,
                caller_id=call.leg(parked.leg_id).number,
                connect_to=parked.leg_id,
            )
        return d.call

    # ------------------------------------------------------------------ conference

    async def add_party(self, actor: Actor, tenant_id: str, call_id: str, target: str) -> Call:
        """Dial a third party into the call's bridge (it becomes a conference on answer)."""
        resolved = self.resolve(tenant_id, target)
        async with self._command(actor, tenant_id, call_id) as d:
            bridge = self._main_bridge(d.call)
            await self._dial(
                d,
                resolved,
                LegRole.CONFERENCE_MEMBER,
                caller_id=d.call.caller_id or d.call.from_number,
                connect_to=bridge.leg_ids[0],
            )
        return d.call

    @staticmethod
    def _main_bridge(call: Call) -> Bridge:
        bridges = sorted(call.bridges.values(), key=lambda b: -len(b.leg_ids))
        if not bridges:
            raise Conflict("the call has no connected parties", code="call_not_bridged")
        return bridges[0]

    async def kick(self, actor: Actor, tenant_id: str, call_id: str, leg_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            leg = d.call.leg(leg_id)
            if not leg.live:
                raise Conflict("the leg has already hung up", code="leg_already_hungup")
            await self._hangup_leg(d, leg_id, HangupCause.KICKED)
            await self._cascade(d, HangupCause.NORMAL)
        return d.call

    # ------------------------------------------------------------------ supervision

    async def supervise(
        self,
        actor: Actor,
        tenant_id: str,
        call_id: str,
        supervisor_extension_id: str,
        mode: str,
        agent_leg_id: str,
    ) -> Call:
        """Dial the supervisor's extension; once it answers it joins the agent's bridge in
        ``mode`` (listen, whisper or barge). Needs ``Call Monitor``."""
        actor.require(Permission.CALL_MONITOR)
        wanted = parse_supervision_mode(mode)
        extension = self.directory.extension(actor, tenant_id, supervisor_extension_id)
        async with self._command(actor, tenant_id, call_id, Permission.CALL_MONITOR) as d:
            call = d.call
            agent = call.leg(agent_leg_id)
            if (
                agent.state is not LegState.ANSWERED
                or agent.bridge_id is None
                or agent.kind is not PartyKind.EXTENSION
                or agent.supervision is not None
            ):
                raise Conflict(
                    f"leg {agent_leg_id} is not an agent talking in the call",
                    code="not_supervisable",
                    leg_id=agent_leg_id,
                )
            if any(leg.live and leg.extension_id == extension.id for leg in call.legs.values()):
                raise Conflict(
                    f"extension {extension.number} is already in the call",
                    code="supervisor_in_call",
                    extension_id=extension.id,
                )
            leg = await self._dial(
                d,
                Target(extension.number, extension=extension),
                LegRole.SUPERVISOR,
                caller_id=call.caller_id or call.from_number,
                connect_to=agent_leg_id,
            )
            leg.supervision = Supervision(mode=wanted, agent_leg_id=agent_leg_id)
        return d.call

    async def set_supervision_mode(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str, mode: str
    ) -> Call:
        """Switch a joined supervisor between listen, whisper and barge."""
        actor.require(Permission.CALL_MONITOR)
        wanted = parse_supervision_mode(mode)
        async with self._command(actor, tenant_id, call_id, Permission.CALL_MONITOR) as d:
            events = d.call.change_supervision(leg_id, wanted)
            if events:
                supervision = d.call.leg(leg_id).supervision
                assert supervision is not None
                await self.core.switch.set_audibility(leg_id, supervision.heard_by())
                d.emit(events)
                await self._cascade(d, HangupCause.NORMAL)  # a barger left alone stops counting
        return d.call

    async def end_supervision(
        self, actor: Actor, tenant_id: str, call_id: str, leg_id: str
    ) -> Call:
        """Hang the supervisor leg up (dialling or joined); the call goes on."""
        async with self._command(actor, tenant_id, call_id, Permission.CALL_MONITOR) as d:
            leg = d.call.leg(leg_id)
            if leg.supervision is None:
                raise Conflict(f"leg {leg_id} is not a supervisor", code="not_supervisor")
            if not leg.live:
                raise Conflict("the leg has already hung up", code="leg_already_hungup")
            await self._hangup_leg(d, leg_id, HangupCause.NORMAL)
            await self._cascade(d, HangupCause.NORMAL)
        return d.call

    async def join(self, actor: Actor, tenant_id: str, call_id: str, other_call_id: str) -> Call:
        """Join two calls that share a party (an agent with one active and one held call) into
        one three-party conference. The shared party keeps its leg of ``call_id``; its leg of the
        other call is hung up (cause ``joined``), and the other call ends, merged into this one.
        """
        actor.require(Permission.CALL_CONTROL)
        self._visible(actor, tenant_id, call_id)
        self._visible(actor, tenant_id, other_call_id)
        if call_id == other_call_id:
            raise Invalid("a call cannot be joined with itself", code="join_same_call")
        first, second = sorted([call_id, other_call_id])
        async with self._locks(first), self._locks(second):
            live_a, live_b = self.calls.get(call_id), self.calls.get(other_call_id)
            if live_a is None or live_b is None:  # ended while we waited for the locks
                raise NotFound("call", call_id if live_a is None else other_call_id)
            a = _Draft(_clone(live_a))
            b = _Draft(_clone(live_b))
            a.call.require_active()
            b.call.require_active()
            await self._merge(a, b)
            await self._commit(b)
            await self._commit(a)
        return a.call

    async def _merge(self, a: _Draft, b: _Draft) -> None:
        ca, cb, now = a.call, b.call, self.core.clock.now()
        ext_a = {leg.extension_id: leg for leg in ca.live_legs() if leg.extension_id}
        shared = [leg for leg in cb.live_legs() if leg.extension_id in ext_a]
        if not shared:
            raise Invalid("the two calls share no extension", code="calls_share_no_party")
        bridge_a = self._main_bridge(ca)
        movers = [leg for leg in cb.live_legs() if leg.id != shared[0].id]
        for leg in movers:
            if leg.state is not LegState.ANSWERED:
                raise Conflict(
                    f"leg {leg.id} of the other call is not answered", code="leg_not_answered"
                )
        for leg in [*ca.live_legs(), *movers]:
            if leg.hold.value == "held":
                (a if leg.id in ca.legs else b).emit(
                    (ca if leg.id in ca.legs else cb).unhold(leg.id)
                )
                await self.core.switch.unhold(leg.id)
        for leg in movers:
            if leg.bridge_id is not None:
                old = leg.bridge_id
                b.emit(cb.leave_bridge(leg.id))
                await self.core.switch.unbridge(old, leg.id)
        await self._hangup_leg(b, shared[0].id, HangupCause.JOINED)
        for leg in movers:
            del cb.legs[leg.id]
            b.emit([call_event("leg.moved", cb.id, leg_id=leg.id, to_call_id=ca.id)])
            leg.connect_to = None
            a.emit(ca.add_leg(leg))
            a.emit(ca.join_bridge(bridge_a.id, leg.id))
        await self.core.switch.bridge(bridge_a.id, list(ca.bridges[bridge_a.id].leg_ids), True)
        a.emit([call_event("call.joined", ca.id, other_call_id=cb.id)])
        b.emit(cb.end(HangupCause.JOINED, now))

    # ------------------------------------------------------------------ recording

    async def start_recording(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            rec_id = self.core.new_id()
            d.emit(d.call.start_recording(rec_id, self.core.clock.now()))
            await self.core.switch.record_start(rec_id, call_id)
        return d.call

    async def suppress_recording(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.suppress_recording(self.core.clock.now(), actor.id))
            assert d.call.recording is not None
            await self.core.switch.record_pause(d.call.recording.id)
        return d.call

    async def unsuppress_recording(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.unsuppress_recording(self.core.clock.now(), actor.id))
            assert d.call.recording is not None
            await self.core.switch.record_resume(d.call.recording.id)
        return d.call

    async def stop_recording(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        async with self._command(actor, tenant_id, call_id) as d:
            d.emit(d.call.stop_recording(self.core.clock.now()))
            assert d.call.recording is not None
            await self.core.switch.record_stop(d.call.recording.id)
        return d.call
