"""The sans-I/O ACD engine: inputs are method calls with an explicit ``now``, outputs are lists.

Every input method validates first (raising a :class:`~callbridge.domain.errors.DomainError`
with a stable code and changing nothing), then changes state and returns the ordered outputs:
:mod:`commands <callbridge.domain.acd.model>` for the service to carry out, interleaved with the
domain events for the log. After every input the engine is *work-conserving*: no call is left
waiting while an idle, ready agent could take it (calls with an offer in flight are not waiting).

Deadlines (ring timeouts, maximum wait, wrap-up) are the engine's to keep: the service asks
:meth:`AcdEngine.next_deadline` when to wake up and then calls :meth:`AcdEngine.tick`. It may also
report a timeout or a rejection itself with :meth:`AcdEngine.missed`.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping

from ..errors import Conflict, Invalid, LimitExceeded, NotFound
from ..events import DomainEvent, EventCategory
from .model import (
    AgentProfile,
    AgentToAway,
    CallbackDue,
    CancelOffer,
    CancelReason,
    Destination,
    Offer,
    Output,
    Overflow,
    OverflowReason,
    QueueConfig,
)
from .records import AgentSlot, QueueCall, QueueSlot, QueueStats, choose_agents
from .tables import QUEUE_CALL, RESERVATION, AgentInput, AgentState, CallInput, CallState

_OFFER, _MAX_WAIT, _WRAPUP = 0, 1, 2
_Deadline = tuple[float, int, int, str, int]  # when, tie-break, kind, key, token


def _dest(d: Destination | None) -> dict[str, str] | None:
    return None if d is None else {"kind": str(d.kind), "target": d.target}


class AcdEngine:
    def __init__(self) -> None:
        self._queues: dict[str, QueueSlot] = {}
        self._calls: dict[str, QueueCall] = {}
        self._agents: dict[str, AgentSlot] = {}
        self._members: defaultdict[str, set[str]] = defaultdict(set)
        self._idle: defaultdict[str, set[str]] = defaultdict(set)  # ready and idle members
        self._deadlines: list[_Deadline] = []
        self._seq = 0  # arrival order
        self._serial = 0  # offers and wrap-ups, to tell a live deadline from a stale one

    # ------------------------------------------------------------------------ read access

    @property
    def calls(self) -> Mapping[str, QueueCall]:
        return self._calls

    @property
    def agents(self) -> Mapping[str, AgentSlot]:
        return self._agents

    @property
    def queues(self) -> Mapping[str, QueueSlot]:
        return self._queues

    def line(self, queue_id: str) -> list[str]:
        """Ids of the calls in the queue (waiting or offered), first in line first."""
        return [k[2] for k in self._queue(queue_id).line]

    def idle_agents(self, queue_id: str) -> frozenset[str]:
        return frozenset(self._idle.get(queue_id, ()))

    def stats(self, queue_id: str) -> QueueStats:
        return self._queue(queue_id).stats

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # ---------------------------------------------------------------------- configuration

    def configure_queue(self, config: QueueConfig, now: float) -> list[Output]:
        """Add a queue or change its settings. A lower maximum length applies to new arrivals."""
        qid = config.queue_id
        out: list[Output] = []
        slot = self._queues.get(qid)
        if slot is None:
            self._queues[qid] = QueueSlot(config)
            self._dispatch((), sorted(self._idle.get(qid, ())), now, out)
            return out
        slot.config = config
        waiting = []
        for key in slot.line:
            call = self._calls[key[2]]
            call.need = config.required_skills | call.skills
            self._arm_max_wait(call)
            waiting.append(call)
        self._dispatch(waiting, sorted(self._idle.get(qid, ())), now, out)
        return out

    def agent_available(self, profile: AgentProfile, now: float) -> list[Output]:
        """The agent is signed in and ready (or its skills or memberships changed)."""
        out: list[Output] = []
        agent = self._agents.get(profile.agent_id)
        if agent is None:
            agent = AgentSlot(
                profile.agent_id,
                dict(profile.queues),
                dict(profile.skills),
                idle_since=now,
                calls_answered=profile.calls_answered,
                talk_seconds=profile.talk_seconds,
            )
            self._agents[agent.agent_id] = agent
        else:
            self._unindex(agent)
            if agent.state is AgentState.IDLE and not agent.ready:
                agent.idle_since = now
            agent.queues, agent.skills = dict(profile.queues), dict(profile.skills)
            agent.ready, agent.signing_out = True, False
        self._index(agent)
        self._dispatch((), (agent.agent_id,), now, out)
        return out

    def agent_unavailable(
        self, agent_id: str, now: float, *, sign_out: bool = False
    ) -> list[Output]:
        """The agent went away or signed out: no new offers; an offer ringing is withdrawn.

        A busy agent finishes the call (and wrap-up); a signed-out one is then forgotten.
        """
        agent = self._agent(agent_id)
        out: list[Output] = []
        agent.ready = False
        self._unidle(agent)
        released: list[QueueCall] = []
        if agent.state is AgentState.RESERVED and agent.call_id is not None:
            call = self._calls[agent.call_id]
            self._end_offer(call, agent, out, CancelReason.AGENT_UNAVAILABLE, released)
        if sign_out:
            agent.signing_out = True
            if agent.state is AgentState.IDLE:
                self._forget(agent)
        self._dispatch(released, (), now, out)
        return out

    # ------------------------------------------------------------------------------ calls

    def arrive(
        self,
        call_id: str,
        queue_id: str,
        now: float,
        *,
        priority: int = 0,
        skills: frozenset[str] = frozenset(),
    ) -> list[Output]:
        """A customer entered the queue (or overflowed at once if it is full)."""
        queue = self._queue(queue_id)
        if call_id in self._calls:
            raise Conflict(f"call {call_id!r} is already queued", code="queue_call_exists")
        cfg = queue.config
        out: list[Output] = []
        if cfg.max_length is not None and len(queue.line) >= cfg.max_length:
            queue.stats.overflowed += 1
            self._overflowed(call_id, cfg, OverflowReason.MAX_LENGTH, out)
            return out
        self._seq += 1
        call = QueueCall(
            call_id, queue_id, priority, skills, cfg.required_skills | skills,
            self._seq, now, now,
        )  # fmt: skip
        self._calls[call_id] = call
        queue.stats.entered += 1
        self._enter(call, queue, out)
        self._arm_max_wait(call)
        self._dispatch((call,), (), now, out)
        return out

    def answered(self, call_id: str, agent_id: str, now: float) -> list[Output]:
        """The reserved agent answered: connect; any other offer of the call is withdrawn."""
        call, agent = self._call(call_id), self._agent(agent_id)
        new = QUEUE_CALL.next(call.state, CallInput.ANSWER)
        self._require_offer(call, agent_id)
        busy = RESERVATION.next(agent.state, AgentInput.ANSWER)
        queue = self._queues[call.queue_id]
        out: list[Output] = []
        wait = now - call.arrived_at
        within = wait <= queue.config.service_level_seconds
        stats = queue.stats
        stats.answered += 1
        stats.answered_within_service_level += within
        stats.total_answer_wait += wait
        out.append(
            self._queue_event(
                "queue.answered", call, agent_id=agent_id, wait_seconds=wait,
                within_service_level=within,
            )
        )  # fmt: skip
        del call.offers[agent_id]
        released: list[AgentSlot] = []
        for other_id in sorted(call.offers):
            other = self._agents[other_id]
            out.append(CancelOffer(call_id, other_id, CancelReason.ANSWERED_ELSEWHERE))
            self._release_agent(other)
            released.append(other)
        call.offers.clear()
        call.state, call.agent_id, call.answered_at = new, agent_id, now
        agent.state, agent.consecutive_missed = busy, 0
        agent.calls_answered += 1
        self._leave(call, queue, out)
        self._dispatch((), [a.agent_id for a in released], now, out)
        return out

    def missed(
        self, call_id: str, agent_id: str, now: float, *, rejected: bool = False
    ) -> list[Output]:
        """The agent did not answer in time, or rejected the offer (reported by the service)."""
        call, agent = self._call(call_id), self._agent(agent_id)
        QUEUE_CALL.next(call.state, CallInput.RELEASE)
        self._require_offer(call, agent_id)
        out: list[Output] = []
        self._miss(call, agent, now, out, "rejected" if rejected else "timeout", cancel=False)
        return out

    def abandoned(self, call_id: str, now: float) -> list[Output]:
        """The waiting customer hung up."""
        call = self._call(call_id)
        QUEUE_CALL.next(call.state, CallInput.ABANDON)
        queue = self._queues[call.queue_id]
        queue.stats.abandoned += 1
        out: list[Output] = [
            self._queue_event(
                "queue.abandoned", call, wait_seconds=now - call.arrived_at,
                position=self._position(call, queue),
            )
        ]  # fmt: skip
        self._finish(call, CallState.ABANDONED, CancelReason.ABANDONED, now, out)
        return out

    def ended(self, call_id: str, now: float) -> list[Output]:
        """The connected call hung up: the agent goes to wrap-up (or straight back to idle)."""
        call = self._call(call_id)
        QUEUE_CALL.next(call.state, CallInput.END)
        assert call.agent_id is not None
        agent = self._agents[call.agent_id]
        cfg = self._queues[call.queue_id].config
        wrap = cfg.wrapup_seconds > 0
        new = RESERVATION.next(agent.state, AgentInput.WRAPUP if wrap else AgentInput.END)
        out: list[Output] = []
        del self._calls[call_id]
        call.state = CallState.ENDED
        agent.talk_seconds += now - call.answered_at
        agent.state, agent.call_id = new, None
        if wrap:
            self._serial += 1
            agent.wrap_serial = self._serial
            until = now + cfg.wrapup_seconds
            self._push(until, _WRAPUP, agent.agent_id, agent.wrap_serial)
            out.append(self._agent_event("agent.wrapup_started", agent, cfg.queue_id, until=until))
        else:
            self._became_idle(agent, now, out)
        return out

    def wrapup_ended(self, agent_id: str, now: float) -> list[Output]:
        """The agent finished after-call work early (the deadline does it otherwise)."""
        agent = self._agent(agent_id)
        RESERVATION.next(agent.state, AgentInput.WRAPPED)
        out: list[Output] = []
        self._wrapped(agent, now, out)
        return out

    def request_callback(self, call_id: str, number: str, now: float) -> list[Output]:
        """The waiting customer hangs up but keeps their place; an agent calls them back."""
        call = self._call(call_id)
        QUEUE_CALL.next(call.state, CallInput.CALLBACK)
        if call.callback is not None:
            raise Conflict("a callback is already requested", code="callback_already_requested")
        call.callback = number
        queue = self._queues[call.queue_id]
        position = self._position(call, queue)
        return [
            self._queue_event("queue.callback_requested", call, number=number, position=position)
        ]

    def pick(self, agent_id: str, call_id: str, now: float) -> list[Output]:
        """The agent takes this waiting call, out of turn."""
        call, agent = self._call(call_id), self._agent(agent_id)
        QUEUE_CALL.next(call.state, CallInput.PICK)
        RESERVATION.next(agent.state, AgentInput.RESERVE)
        if call.queue_id not in agent.queues:
            raise Invalid(
                "the agent is not a member of the call's queue",
                code="agent_not_member", agent_id=agent_id, queue_id=call.queue_id,
            )  # fmt: skip
        out: list[Output] = []
        self._offer(call, [agent], now, out)
        return out

    def move(self, call_id: str, queue_id: str, now: float) -> list[Output]:
        """Move a waiting (or offered) call to another queue; it keeps its arrival order."""
        call = self._call(call_id)
        QUEUE_CALL.next(call.state, CallInput.MOVE)
        target = self._queue(queue_id)
        if queue_id == call.queue_id:
            raise Invalid("the call is already in this queue", code="queue_call_same_queue")
        cfg = target.config
        if cfg.max_length is not None and len(target.line) >= cfg.max_length:
            raise LimitExceeded("the queue is full", code="queue_full", queue_id=queue_id)
        out: list[Output] = []
        out.append(self._queue_event("queue.left", call, reason="moved", to_queue=queue_id))
        released = self._withdraw(call, CancelReason.MOVED, out)
        source = self._queues[call.queue_id]
        self._leave(call, source, out)
        call.state = CallState.WAITING
        call.queue_id, call.entered_at = queue_id, now
        call.need = cfg.required_skills | call.skills
        call.tried.clear()
        target.stats.entered += 1
        self._enter(call, target, out)
        self._arm_max_wait(call)
        self._dispatch((call,), [a.agent_id for a in released], now, out)
        return out

    def remove(self, call_id: str, now: float, *, reason: str = "removed") -> list[Output]:
        """The call left the queue by an operator's action (transfer, redirect, kill)."""
        call = self._call(call_id)
        QUEUE_CALL.next(call.state, CallInput.REMOVE)
        self._queues[call.queue_id].stats.removed += 1
        out: list[Output] = [self._queue_event("queue.left", call, reason=reason)]
        self._finish(call, CallState.REMOVED, CancelReason.REMOVED, now, out)
        return out

    def tick(self, now: float) -> list[Output]:
        """Act on every deadline due by ``now``, in deadline order."""
        out: list[Output] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._live(entry):
                continue
            _, _, kind, key, _ = entry
            if kind == _OFFER:
                call_id, agent_id = key.split("\x00")
                call, agent = self._calls[call_id], self._agents[agent_id]
                self._miss(call, agent, now, out, "timeout", cancel=True)
            elif kind == _MAX_WAIT:
                call = self._calls[key]
                queue = self._queues[call.queue_id]
                QUEUE_CALL.next(call.state, CallInput.OVERFLOW)
                queue.stats.overflowed += 1
                self._overflowed(call.call_id, queue.config, OverflowReason.MAX_WAIT, out)
                self._finish(call, CallState.OVERFLOWED, CancelReason.OVERFLOWED, now, out)
            else:
                self._wrapped(self._agents[key], now, out)
        return out

    # --------------------------------------------------------------------------- internals

    def _queue(self, queue_id: str) -> QueueSlot:
        try:
            return self._queues[queue_id]
        except KeyError:
            raise NotFound("queue", queue_id) from None

    def _call(self, call_id: str) -> QueueCall:
        try:
            return self._calls[call_id]
        except KeyError:
            raise NotFound("queue_call", call_id) from None

    def _agent(self, agent_id: str) -> AgentSlot:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise NotFound("agent", agent_id) from None

    @staticmethod
    def _require_offer(call: QueueCall, agent_id: str) -> None:
        if agent_id not in call.offers:
            raise Conflict(
                "the call is not offered to this agent",
                code="offer_not_found", call_id=call.call_id, agent_id=agent_id,
            )  # fmt: skip

    def _index(self, agent: AgentSlot) -> None:
        available = agent.available
        for qid in agent.queues:
            self._members[qid].add(agent.agent_id)
            if available:
                self._idle[qid].add(agent.agent_id)

    def _unindex(self, agent: AgentSlot) -> None:
        for qid in agent.queues:
            self._members[qid].discard(agent.agent_id)
            self._idle[qid].discard(agent.agent_id)

    def _unidle(self, agent: AgentSlot) -> None:
        for qid in agent.queues:
            self._idle[qid].discard(agent.agent_id)

    def _forget(self, agent: AgentSlot) -> None:
        self._unindex(agent)
        del self._agents[agent.agent_id]

    def _queue_event(self, type_: str, call: QueueCall, **data: object) -> DomainEvent:
        return DomainEvent(
            type_, EventCategory.QUEUE, call.call_id, {"queue_id": call.queue_id, **data}
        )

    @staticmethod
    def _agent_event(
        type_: str, agent: AgentSlot, queue_id: str | None, **data: object
    ) -> DomainEvent:
        return DomainEvent(
            type_, EventCategory.AGENT, None,
            {"agent_id": agent.agent_id, "queue_id": queue_id, **data},
        )  # fmt: skip

    @staticmethod
    def _position(call: QueueCall, queue: QueueSlot) -> int:
        return bisect_left(queue.line, call.line_key) + 1

    def _enter(self, call: QueueCall, queue: QueueSlot, out: list[Output]) -> None:
        self._serial += 1
        call.epoch = self._serial
        line = queue.line
        i = bisect_left(line, call.line_key)
        line.insert(i, call.line_key)
        out.append(self._queue_event("queue.entered", call, position=i + 1))
        self._positions(queue, i + 1, out)

    def _leave(self, call: QueueCall, queue: QueueSlot, out: list[Output]) -> None:
        line = queue.line
        i = bisect_left(line, call.line_key)
        del line[i]
        self._positions(queue, i, out)

    def _positions(self, queue: QueueSlot, start: int, out: list[Output]) -> None:
        qid = queue.config.queue_id
        for j in range(start, len(queue.line)):
            out.append(
                DomainEvent(
                    "queue.position_changed", EventCategory.QUEUE, queue.line[j][2],
                    {"queue_id": qid, "position": j + 1},
                )
            )  # fmt: skip

    def _push(self, when: float, kind: int, key: str, token: int) -> None:
        self._serial += 1
        heapq.heappush(self._deadlines, (when, self._serial, kind, key, token))

    def _live(self, entry: _Deadline) -> bool:
        when, _, kind, key, token = entry
        if kind == _OFFER:
            call_id, agent_id = key.split("\x00")
            offered = self._calls.get(call_id)
            return offered is not None and offered.offers.get(agent_id) == token
        if kind == _MAX_WAIT:
            call = self._calls.get(key)
            if call is None or call.epoch != token or call.callback is not None:
                return False
            limit = self._queues[call.queue_id].config.max_wait
            return (
                call.state is not CallState.CONNECTED
                and limit is not None
                and call.entered_at + limit == when
            )
        agent = self._agents.get(key)
        return agent is not None and agent.state is AgentState.WRAPUP and agent.wrap_serial == token

    def _arm_max_wait(self, call: QueueCall) -> None:
        limit = self._queues[call.queue_id].config.max_wait
        if limit is not None and call.callback is None:
            self._push(call.entered_at + limit, _MAX_WAIT, call.call_id, call.epoch)

    def _candidates(self, call: QueueCall) -> list[AgentSlot]:
        queue = self._queues[call.queue_id]
        need, agents = call.need, self._agents
        if need:
            eligible = [
                a
                for aid in self._idle[call.queue_id]
                if all(s in (a := agents[aid]).skills for s in need)
            ]
        else:
            eligible = [agents[aid] for aid in self._idle[call.queue_id]]
        return choose_agents(queue, call, eligible)

    def _oldest_for(self, agent: AgentSlot) -> QueueCall | None:
        """The first call in customer order, in the agent's queues, that the agent can take."""
        best: QueueCall | None = None
        skills = agent.skills
        for qid in agent.queues:
            queue = self._queues.get(qid)
            if queue is None or not all(s in skills for s in queue.config.required_skills):
                continue
            for key in queue.line:
                if best is not None and key[:2] >= best.key:
                    break
                call = self._calls[key[2]]
                if call.state is CallState.WAITING and all(s in skills for s in call.skills):
                    best = call
                    break
        return best

    def _dispatch(
        self, calls: Iterable[QueueCall], agent_ids: Iterable[str], now: float, out: list[Output]
    ) -> None:
        """Offer until no released call has an idle eligible agent and no released agent a call.

        Each round takes the first call in customer order among the released calls that some idle
        agent can take and the calls the released agents would take, and offers it to the agents
        its queue's strategy chooses. Only released calls and agents can form new pairs: before
        the input the engine was work-conserving.
        """
        pending = sorted((c for c in calls if c.state is CallState.WAITING), key=lambda c: c.key)
        agents = list(dict.fromkeys(agent_ids))
        i = 0
        while True:
            best: QueueCall | None = None
            chosen: list[AgentSlot] = []
            while i < len(pending):
                call = pending[i]
                if call.state is CallState.WAITING and call.call_id in self._calls:
                    chosen = self._candidates(call)
                    if chosen:
                        best = call
                        break
                i += 1
            keep: list[str] = []
            for aid in agents:
                agent = self._agents.get(aid)
                if agent is None or not agent.available:
                    continue
                found = self._oldest_for(agent)
                if found is None:
                    continue
                keep.append(aid)
                if best is None or found.key < best.key:
                    best, chosen = found, []
            agents = keep
            if best is None:
                return
            self._offer(best, chosen or self._candidates(best), now, out)

    def _offer(
        self, call: QueueCall, agents: list[AgentSlot], now: float, out: list[Output]
    ) -> None:
        queue = self._queues[call.queue_id]
        cfg = queue.config
        for agent in agents:
            RESERVATION.next(agent.state, AgentInput.RESERVE)
        call.state = CallState.OFFERED
        for agent in agents:
            self._serial += 1
            call.offers[agent.agent_id] = self._serial
            agent.state, agent.call_id = AgentState.RESERVED, call.call_id
            self._unidle(agent)
            key = f"{call.call_id}\x00{agent.agent_id}"
            self._push(now + cfg.ring_timeout, _OFFER, key, self._serial)
            if call.callback is None:
                out.append(Offer(call.call_id, agent.agent_id, cfg.queue_id, cfg.ring_timeout))
            else:
                out.append(
                    CallbackDue(
                        call.call_id, agent.agent_id, cfg.queue_id, call.callback,
                        cfg.ring_timeout,
                    )
                )  # fmt: skip
            out.append(self._queue_event("queue.offered", call, agent_id=agent.agent_id))
            queue.cursor = agent.agent_id

    def _release_agent(self, agent: AgentSlot) -> None:
        agent.state = RESERVATION.next(agent.state, AgentInput.RELEASE)
        agent.call_id = None
        if agent.signing_out:
            self._forget(agent)
        elif agent.ready:
            for qid in agent.queues:
                self._idle[qid].add(agent.agent_id)

    def _withdraw(
        self, call: QueueCall, reason: CancelReason, out: list[Output]
    ) -> list[AgentSlot]:
        released = []
        for aid in sorted(call.offers):
            out.append(CancelOffer(call.call_id, aid, reason))
            agent = self._agents[aid]
            self._release_agent(agent)
            released.append(agent)
        call.offers.clear()
        return [a for a in released if a.available and a.agent_id in self._agents]

    def _finish(
        self, call: QueueCall, state: CallState, reason: CancelReason, now: float, out: list[Output]
    ) -> None:
        released = self._withdraw(call, reason, out)
        self._leave(call, self._queues[call.queue_id], out)
        call.state = state
        del self._calls[call.call_id]
        self._dispatch((), [a.agent_id for a in released], now, out)

    def _end_offer(
        self,
        call: QueueCall,
        agent: AgentSlot,
        out: list[Output],
        reason: CancelReason,
        released: list[QueueCall],
    ) -> None:
        out.append(CancelOffer(call.call_id, agent.agent_id, reason))
        del call.offers[agent.agent_id]
        self._release_agent(agent)
        if not call.offers:
            call.state = QUEUE_CALL.next(call.state, CallInput.RELEASE)
            released.append(call)

    def _miss(
        self,
        call: QueueCall,
        agent: AgentSlot,
        now: float,
        out: list[Output],
        reason: str,
        *,
        cancel: bool,
    ) -> None:
        cfg = self._queues[call.queue_id].config
        if cancel:
            out.append(CancelOffer(call.call_id, agent.agent_id, CancelReason.TIMEOUT))
        del call.offers[agent.agent_id]
        call.tried.add(agent.agent_id)
        agent.consecutive_missed += 1
        out.append(
            self._agent_event(
                "agent.offer_missed", agent, cfg.queue_id, call_id=call.call_id, reason=reason,
                consecutive_missed=agent.consecutive_missed,
            )
        )  # fmt: skip
        self._release_agent(agent)
        limit = cfg.max_consecutive_misses
        if limit and agent.consecutive_missed >= limit and agent.ready:
            agent.ready, agent.consecutive_missed = False, 0
            self._unidle(agent)
            out.append(AgentToAway(agent.agent_id, cfg.away_option))
        released: list[QueueCall] = []
        if not call.offers:
            call.state = QUEUE_CALL.next(call.state, CallInput.RELEASE)
            released.append(call)
        self._dispatch(released, (agent.agent_id,), now, out)

    def _became_idle(self, agent: AgentSlot, now: float, out: list[Output]) -> None:
        agent.idle_since = now
        if agent.signing_out:
            self._forget(agent)
        elif agent.ready:
            for qid in agent.queues:
                self._idle[qid].add(agent.agent_id)
            self._dispatch((), (agent.agent_id,), now, out)

    def _wrapped(self, agent: AgentSlot, now: float, out: list[Output]) -> None:
        agent.state = RESERVATION.next(agent.state, AgentInput.WRAPPED)
        out.append(self._agent_event("agent.wrapup_ended", agent, None))
        self._became_idle(agent, now, out)

    @staticmethod
    def _overflowed(
        call_id: str, cfg: QueueConfig, reason: OverflowReason, out: list[Output]
    ) -> None:
        out.append(Overflow(call_id, cfg.queue_id, cfg.overflow, reason))
        out.append(
            DomainEvent(
                "queue.overflowed",
                EventCategory.QUEUE,
                call_id,
                {
                    "queue_id": cfg.queue_id,
                    "reason": str(reason),
                    "destination": _dest(cfg.overflow),
                },
            )
        )
