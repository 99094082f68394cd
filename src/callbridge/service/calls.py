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

Modules
-------
:class:`CallService` is assembled from one class per feature. :mod:`.call_base` holds the live
calls, drafts and the commit path; :mod:`.call_dial` (dialling, the cascade, queue entry) builds
on it; :mod:`.call_media` (hold, mute, DTMF, recording), :mod:`.call_transfer` (transfer, REFER,
park) and :mod:`.call_conference` (conference, join, supervision) each build on that;
:mod:`.call_pump` (switch events, inbound routing) combines the three, and this module adds the
lifecycle, the reads and the commands that create or end calls. The names other modules import
are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from ..domain.calls import Call, CallOrigin, HangupCause, LegRole
from ..domain.cdr import CallRecord
from ..domain.directory import QueueType
from ..domain.errors import Conflict, Invalid, NotFound
from ..domain.events import StoredEvent
from ..domain.numbers import check_dialable
from ..domain.parking import ParkingLot
from ..domain.tenancy import Permission
from ..ports.storage import CdrQuery
from ..ports.switch import ScriptableSwitch
from .auth import Actor
from .call_base import CallObserver, CallPrecommit, Target, _Draft
from .call_conference import parse_supervision_mode
from .call_pump import PUMP_BATCH, CallPump

__all__ = [
    "PUMP_BATCH",
    "CallObserver",
    "CallPrecommit",
    "CallService",
    "Target",
    "_Draft",
    "parse_supervision_mode",
]

log = logging.getLogger(__name__)

#: the most calls a search returns
SEARCH_LIMIT = 500


class CallService(CallPump):
    """Call control for all tenants: see the module docstring."""

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

    # ------------------------------------------------------------------ reads

    def get(self, actor: Actor, tenant_id: str, call_id: str) -> Call:
        actor.require(Permission.CALLS_VIEW)
        return self._visible(actor, tenant_id, call_id)

    def list_calls(
        self, actor: Actor, tenant_id: str, *, permission: Permission = Permission.CALLS_VIEW
    ) -> list[Call]:
        """The tenant's live calls, oldest first. ``permission``: what the caller's API asks
        for a listing (the CCS dialect's 4.19 asks for ``Calls Listing View``)."""
        actor.require(permission)
        self.directory.tenant(actor, tenant_id)
        return sorted(
            (c for c in self.calls.values() if c.tenant_id == tenant_id), key=lambda c: c.created_at
        )

    async def find(self, actor: Actor, tenant_id: str, call_id: str) -> Call | CallRecord:
        """A live call, else the record of a finished one; another tenant's is not found."""
        actor.require(Permission.CALLS_VIEW)
        self.directory.tenant(actor, tenant_id)
        live = self.calls.get(call_id)
        if live is not None and live.tenant_id == tenant_id:
            return live
        record = await self.core.storage.get_cdr(tenant_id, call_id)
        if record is None:
            raise NotFound("call", call_id)
        return record

    async def search(
        self,
        actor: Actor,
        tenant_id: str,
        *,
        calling_number: str | None = None,
        called_number: str | None = None,
        started_from: datetime | None = None,
        started_to: datetime | None = None,
        limit: int = SEARCH_LIMIT,
    ) -> list[Call | CallRecord]:
        """Live and finished calls of the tenant that match, newest first (at most ``limit``).

        Numbers match exactly (``calling_number`` the caller, ``called_number`` the number
        called); the start time is within ``[started_from, started_to]`` (timezone-aware)."""
        actor.require(Permission.CALLS_VIEW)
        self.directory.tenant(actor, tenant_id)
        for name, value in (("started_from", started_from), ("started_to", started_to)):
            if value is not None and value.tzinfo is None:
                raise Invalid(f"{name} needs a timezone", code="datetime_naive")
        if started_from is not None and started_to is not None and started_from > started_to:
            raise Invalid("the time range ends before it starts", code="time_range_inverted")

        def matches(call: Call) -> bool:
            return (
                call.tenant_id == tenant_id
                and calling_number in (None, call.from_number)
                and called_number in (None, call.to_number)
                and (started_from is None or call.created_at >= started_from)
                and (started_to is None or call.created_at <= started_to)
            )

        live: list[Call | CallRecord] = [c for c in self.calls.values() if matches(c)]
        page = await self.core.storage.search_cdrs(
            CdrQuery(
                tenant_id=tenant_id,
                calling_number=calling_number,
                called_number=called_number,
                started_from=started_from,
                started_to=started_to,
                limit=limit,
            )
        )
        seen = {c.id for c in live if isinstance(c, Call)}
        found = live + [r for r in page.items if r.call_id not in seen]

        def started(item: Call | CallRecord) -> tuple[datetime, str]:
            if isinstance(item, Call):
                return item.created_at, item.id
            return item.started_at, item.call_id

        return sorted(found, key=started, reverse=True)[:limit]

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
            id=self.core.new_call_id(),
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
        call_id = self.core.new_call_id()
        leg_id = switch.inject_incoming(from_number, to_number)
        self._incoming[leg_id] = (tenant_id, call_id, dialled)
        return call_id

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
