"""The switch-event pump: switch events handled in batches (group commit), new inbound calls
routed to their tenant (DIDs) and target, and what a leg's answer, hangup, DTMF, hold or
transfer request does to its call.
"""

from __future__ import annotations

import contextlib
import logging

from ..domain.calls import (
    BridgeKind,
    Call,
    CallOrigin,
    CallState,
    Direction,
    HangupCause,
    Leg,
    LegRole,
    LegState,
    PartyKind,
)
from ..domain.errors import Invalid, NotFound
from ..domain.events import call_event
from ..ports.switch import SwitchError, SwitchEvent, SwitchEventKind
from .call_base import Target, _clone, _Draft
from .call_conference import CallConference
from .call_media import CallMedia
from .call_transfer import CallTransfers

log = logging.getLogger(__name__)


PUMP_BATCH = 256  # switch events handled (and committed) together at most


class CallPump(CallMedia, CallTransfers, CallConference):
    """Apply switch events to calls; create and route inbound calls."""

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

    # ------------------------------------------------------------------ inbound calls

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
        call_id = hint[1] if hint else self.core.new_call_id()
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
        await self._record_if_mandatory(draft)
