"""Targets and dialling: resolving a number, dialling and hanging up legs, the cascade that
hangs up what a change orphaned, and putting a leg into a queue (with its music).
"""

from __future__ import annotations

from ..domain.calls import (
    Call,
    CallState,
    Direction,
    HangupCause,
    Leg,
    LegRole,
    LegState,
    PartyKind,
)
from ..domain.directory import Extension, Queue
from ..domain.errors import Invalid, NotFound
from ..domain.events import call_event
from ..domain.numbers import check_dialable, is_extension_number
from ..ports.switch import DialRequest, SwitchError
from .call_base import CallBase, Target, _counts, _Draft


class CallDialling(CallBase):
    """Dial, hang up and queue legs; hang up orphans (see :meth:`_cascade`)."""

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
