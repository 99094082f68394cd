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

from ..errors import Conflict, Invalid, LimitExceeded
from .distribution import Distributor
from .ledger import MAX_WAIT_DEADLINE, OFFER_DEADLINE, WRAPUP_DEADLINE, destination_data
from .model import (
    AgentProfile,
    CancelReason,
    Destination,
    Output,
    OverflowReason,
    QueueConfig,
)
from .records import AgentSlot, QueueCall, QueueSlot
from .tables import QUEUE_CALL, RESERVATION, AgentInput, AgentState, CallInput, CallState


class AcdEngine(Distributor):
    """The queue engine. Every method is one input; ``now`` is in seconds (see the module)."""

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
        arrived_at: float | None = None,
    ) -> list[Output]:
        """A customer entered the queue (or overflowed at once if it is full).

        ``arrived_at`` (default ``now``) restores a call queued earlier, e.g. after a restart:
        its wait, maximum wait and service level count from then. Calls are ordered by the
        order of ``arrive`` inputs, so restore them in their original arrival order.
        """
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
        since = now if arrived_at is None else arrived_at
        call = QueueCall(
            call_id, queue_id, priority, skills, cfg.required_skills | skills,
            self._seq, since, since,
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
        released = self._withdraw(call, CancelReason.ANSWERED_ELSEWHERE, out)
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
            self._push(until, WRAPUP_DEADLINE, agent.agent_id, agent.wrap_serial)
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
        waiting = QUEUE_CALL.next(call.state, CallInput.MOVE)
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
        call.state, call.queue_id, call.entered_at = waiting, queue_id, now
        call.need = cfg.required_skills | call.skills
        call.tried.clear()
        target.stats.entered += 1
        self._enter(call, target, out)
        self._arm_max_wait(call)
        self._dispatch((call,), [a.agent_id for a in released], now, out)
        return out

    def reprioritise(self, call_id: str, priority: int, now: float) -> list[Output]:
        """Change a waiting (or offered) call's priority (#4): it keeps its arrival order
        within the new priority. Emits ``queue.priority_changed`` and the position changes;
        nothing when the priority is unchanged. No offer is made or withdrawn: which calls
        wait and which agents are idle does not change, so the engine stays work-conserving.
        """
        call = self._call(call_id)
        QUEUE_CALL.next(call.state, CallInput.MOVE)  # waiting or offered only (stable codes)
        if priority == call.priority:
            return []
        queue = self._queues[call.queue_id]
        line = queue.line
        waiting = call.state is CallState.WAITING
        if waiting:
            self._unwait(call)
        i = bisect_left(line, call.line_key)
        del line[i]
        previous, call.priority = call.priority, priority
        j = bisect_left(line, call.line_key)
        line.insert(j, call.line_key)
        if waiting:
            self._wait(call)
        out: list[Output] = [
            self._queue_event(
                "queue.priority_changed", call, priority=priority, previous=previous,
                position=j + 1,
            )
        ]  # fmt: skip
        self._positions(queue, min(i, j), out, stop=max(i, j) + 1)
        return out

    def remove(
        self,
        call_id: str,
        now: float,
        *,
        reason: str = "removed",
        destination: Destination | None = None,
    ) -> list[Output]:
        """The call left the queue by an operator's action: transferred to ``destination``
        (``reason="transferred"``), ended (``"killed"``), ... The service does the transfer."""
        call = self._call(call_id)
        QUEUE_CALL.next(call.state, CallInput.REMOVE)
        self._queues[call.queue_id].stats.removed += 1
        data: dict[str, object] = {"reason": reason}
        if destination is not None:
            data["destination"] = destination_data(destination)
        out: list[Output] = [self._queue_event("queue.left", call, **data)]
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
            _, _, kind, key, agent_id, _ = entry
            if kind == OFFER_DEADLINE:
                call_id = key
                call, agent = self._calls[call_id], self._agents[agent_id]
                self._miss(call, agent, now, out, "timeout", cancel=True)
            elif kind == MAX_WAIT_DEADLINE:
                call = self._calls[key]
                queue = self._queues[call.queue_id]
                QUEUE_CALL.next(call.state, CallInput.OVERFLOW)
                queue.stats.overflowed += 1
                self._overflowed(call.call_id, queue.config, OverflowReason.MAX_WAIT, out)
                self._finish(call, CallState.OVERFLOWED, CancelReason.OVERFLOWED, now, out)
            else:
                self._wrapped(self._agents[key], now, out)
        return out
