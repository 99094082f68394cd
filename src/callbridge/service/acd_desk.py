"""The supervisor's desk: waiting calls of a queue, the actions on them, and live statistics.

Every action goes through the engine first (which refuses a stale one with a typed error and
changes nothing), then its outputs are carried out by the ACD worker in order, and only then is
the call itself changed through the call service's ordinary paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from ..domain.acd import CallState as QueueCallState
from ..domain.acd import Destination, DestinationKind
from ..domain.agents import PhoneState
from ..domain.calls import HangupCause
from ..domain.directory import PresenceType, Queue
from ..domain.errors import Conflict, Invalid, LimitExceeded, NotFound
from ..domain.numbers import check_dialable
from ..domain.tenancy import Permission
from .acd_commands import end_call, waiting_leg
from .acd_mapping import is_acd_queue
from .auth import Actor

if TYPE_CHECKING:
    from ..domain.acd import AcdEngine
    from .acd import AcdService


class WaitingCall(BaseModel):
    call_id: str
    queue_id: str
    position: int
    wait_seconds: float
    priority: int
    state: str  # waiting or offered
    offered_to: list[str]  # agent extension ids ringing for it
    caller: str | None = None
    callback_number: str | None = None


class QueueLiveStats(BaseModel):
    queue_id: str
    waiting: int
    longest_wait_seconds: float
    agents_ready: int
    agents_busy: int
    agents_away: int
    entered: int
    answered: int
    abandoned: int
    overflowed: int
    removed: int
    service_level: float | None
    average_wait_seconds: float | None
    average_handle_seconds: float | None


class AgentLiveStats(BaseModel):
    extension_id: str
    presence: str
    phone: str
    queues: list[str]
    answered: int
    talk_seconds: float
    average_handle_seconds: float | None
    consecutive_missed: int


class QueueDesk:
    def __init__(self, svc: AcdService) -> None:
        self.svc = svc

    # ------------------------------------------------------------------ reads

    def _queue(self, actor: Actor, tenant_id: str, queue_id: str) -> tuple[Queue, AcdEngine]:
        queue = self.svc.directory.queue(actor, tenant_id, queue_id)
        engine = self.svc.engines.get(tenant_id)
        if not is_acd_queue(queue) or engine is None or queue_id not in engine.queues:
            raise Invalid("the queue is not an inbound ACD queue", code="queue_not_inbound")
        return queue, engine

    def waiting(self, actor: Actor, tenant_id: str, queue_id: str) -> list[WaitingCall]:
        actor.require(Permission.QUEUES_VIEW)
        _, engine = self._queue(actor, tenant_id, queue_id)
        now = self.svc.now()
        out = []
        for i, call_id in enumerate(engine.line(queue_id), start=1):
            qc = engine.calls[call_id]
            live = self.svc.calls.calls.get(call_id)
            out.append(
                WaitingCall(
                    call_id=call_id,
                    queue_id=queue_id,
                    position=i,
                    wait_seconds=round(now - qc.arrived_at, 3),
                    priority=qc.priority,
                    state=qc.state.value,
                    offered_to=sorted(qc.offers),
                    caller=live.caller_id if live is not None else None,
                    callback_number=qc.callback,
                )
            )
        return out

    def queue_stats(self, actor: Actor, tenant_id: str, queue_id: str) -> QueueLiveStats:
        actor.require(Permission.QUEUES_VIEW)
        queue, engine = self._queue(actor, tenant_id, queue_id)
        now = self.svc.now()
        line = [engine.calls[c] for c in engine.line(queue_id)]
        ready = busy = away = 0
        for m in queue.members:
            state = self.svc.agents.states.get(m.extension_id)
            if state is None or not state.signed_in:
                continue
            if state.phone is not PhoneState.IDLE:
                busy += 1
            elif state.presence is PresenceType.AWAY:
                away += 1
            else:
                ready += 1
        s = engine.stats(queue_id)
        handled, talk = self.svc.handled.get(queue_id, (0, 0.0))
        return QueueLiveStats(
            queue_id=queue_id,
            waiting=len(line),
            longest_wait_seconds=round(max((now - c.arrived_at for c in line), default=0.0), 3),
            agents_ready=ready,
            agents_busy=busy,
            agents_away=away,
            entered=s.entered,
            answered=s.answered,
            abandoned=s.abandoned,
            overflowed=s.overflowed,
            removed=s.removed,
            service_level=s.service_level,
            average_wait_seconds=s.total_answer_wait / s.answered if s.answered else None,
            average_handle_seconds=talk / handled if handled else None,
        )

    def agent_stats(self, actor: Actor, tenant_id: str, extension_id: str) -> AgentLiveStats:
        actor.require(Permission.QUEUES_VIEW)
        ext = self.svc.directory.extension(actor, tenant_id, extension_id)
        state = self.svc.agents._state(ext)
        answered, talk = self.svc.agent_totals.get(ext.id, (0, 0.0))
        queues = [q.id for q in self.svc.directory.queues_of(tenant_id) if q.member(ext.id)]
        return AgentLiveStats(
            extension_id=ext.id,
            presence=state.presence_name,
            phone=state.phone.value,
            queues=queues,
            answered=answered,
            talk_seconds=round(talk, 3),
            average_handle_seconds=talk / answered if answered else None,
            consecutive_missed=state.consecutive_missed,
        )

    def queue_of(self, actor: Actor, tenant_id: str, call_id: str) -> str:
        """The queue a live call of the tenant is waiting in (for actions that name only the
        call). Another tenant's call is not found; a call not waiting is a conflict."""
        actor.require(Permission.CALL_CONTROL)
        self.svc.directory.tenant(actor, tenant_id)
        live = self.svc.calls.calls.get(call_id)
        if live is None or live.tenant_id != tenant_id:
            raise NotFound("call", call_id)
        engine = self.svc.engines.get(tenant_id)
        qc = None if engine is None else engine.calls.get(call_id)
        if qc is None or qc.state not in _WAITING:
            raise Conflict("the call is not waiting in a queue", code="call_not_waiting")
        return qc.queue_id

    # ------------------------------------------------------------------ actions

    def _waiting_call(
        self, actor: Actor, tenant_id: str, queue_id: str, call_id: str
    ) -> tuple[AcdEngine, str | None]:
        """The engine and the waiting leg of a live call (``None`` for a callback)."""
        actor.require(Permission.CALL_CONTROL)
        _, engine = self._queue(actor, tenant_id, queue_id)
        qc = engine.calls.get(call_id)
        if qc is None or qc.queue_id != queue_id or qc.state not in _WAITING:
            raise NotFound("queue_call", call_id)
        if qc.callback is not None:
            return engine, None
        live = self.svc.calls.calls.get(call_id)
        leg = None if live is None else waiting_leg(live)
        if leg is None:
            raise NotFound("queue_call", call_id)
        return engine, leg.id

    async def transfer(
        self, actor: Actor, tenant_id: str, queue_id: str, call_id: str, target: str
    ) -> None:
        """To an extension, a queue's extension (a move) or an outside number."""
        engine, leg_id = self._waiting_call(actor, tenant_id, queue_id, call_id)
        resolved = self.svc.calls.resolve(tenant_id, target)
        if resolved.queue is not None:
            await self.move(actor, tenant_id, queue_id, call_id, resolved.queue.id)
            return
        if leg_id is None:
            raise Conflict("a callback has no caller to transfer", code="queue_call_is_callback")
        kind = DestinationKind.NUMBER if resolved.external else DestinationKind.EXTENSION
        outputs = engine.remove(
            call_id, self.svc.now(), reason="transferred", destination=Destination(kind, target)
        )
        await self.svc.run(tenant_id, outputs)
        await self.svc.calls.transfer(actor, tenant_id, call_id, leg_id, target)

    async def move(
        self, actor: Actor, tenant_id: str, queue_id: str, call_id: str, to_queue_id: str
    ) -> None:
        engine, leg_id = self._waiting_call(actor, tenant_id, queue_id, call_id)
        target, _ = self._queue(actor, tenant_id, to_queue_id)
        if to_queue_id == queue_id:
            raise Invalid("the call is already in this queue", code="queue_call_same_queue")
        cfg = engine.queues[to_queue_id].config
        if cfg.max_length is not None and len(engine.line(to_queue_id)) >= cfg.max_length:
            raise LimitExceeded("the queue is full", code="queue_full", queue_id=to_queue_id)
        if leg_id is None:  # a callback: only the engine knows it
            await self.svc.run(tenant_id, engine.move(call_id, to_queue_id, self.svc.now()))
            return
        await self.svc.calls.enter_queue(call_id, leg_id, target)  # the observer moves it
        await self.svc.settle()

    async def kill(self, actor: Actor, tenant_id: str, queue_id: str, call_id: str) -> None:
        engine, leg_id = self._waiting_call(actor, tenant_id, queue_id, call_id)
        await self.svc.run(tenant_id, engine.remove(call_id, self.svc.now(), reason="killed"))
        if leg_id is not None:
            await end_call(self.svc, call_id, HangupCause.KILLED)

    async def pick(
        self, actor: Actor, tenant_id: str, queue_id: str, call_id: str, extension_id: str
    ) -> None:
        """The agent (itself, or a supervisor for it) takes this waiting call now."""
        ext = self.svc.agents._agent_ext(actor, tenant_id, extension_id)
        engine, _ = self._waiting_call(actor, tenant_id, queue_id, call_id)
        if ext.id not in engine.agents or not engine.agents[ext.id].available:
            raise Conflict("the agent is not ready and idle", code="agent_not_available")
        await self.svc.run(tenant_id, engine.pick(ext.id, call_id, self.svc.now()))

    async def reprioritise(
        self, actor: Actor, tenant_id: str, queue_id: str, call_id: str, priority: int
    ) -> None:
        """Give the waiting call another priority (#4): higher first, arrival order within."""
        if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise Invalid(
                f"the priority must be {MIN_PRIORITY}..{MAX_PRIORITY}",
                code="priority_out_of_range", priority=priority,
            )  # fmt: skip
        engine, _ = self._waiting_call(actor, tenant_id, queue_id, call_id)
        await self.svc.run(tenant_id, engine.reprioritise(call_id, priority, self.svc.now()))

    async def callback(
        self, actor: Actor, tenant_id: str, queue_id: str, call_id: str, number: str
    ) -> None:
        """The caller keeps their place and hangs up; the agent who takes it calls them back."""
        check_dialable(number)
        engine, leg_id = self._waiting_call(actor, tenant_id, queue_id, call_id)
        outputs = engine.request_callback(call_id, number, self.svc.now())
        await self.svc.run(tenant_id, outputs)
        if leg_id is not None:
            await end_call(self.svc, call_id, HangupCause.NORMAL)


MIN_PRIORITY, MAX_PRIORITY = 0, 9  # a caller's priority (#4): higher first
_WAITING = (QueueCallState.WAITING, QueueCallState.OFFERED)
