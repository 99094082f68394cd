"""The engine's books: its records, the indexes that keep decisions fast, queue lines with
their positions, and deadlines.

Indexes: per queue, the *line* (waiting and offered calls as ``(-priority, arrival, id)`` in a
sorted list: ``bisect`` finds a call's place, positions are indexes) and the set of ready, idle
members (the only agents a decision looks at); deadlines in one heap, checked for staleness when
they come up (an offer answered, a call moved, a wrap-up ended early) instead of being removed.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Mapping

from ..errors import Conflict, NotFound
from ..events import DomainEvent, EventCategory
from .model import Destination, Output
from .records import AgentSlot, QueueCall, QueueSlot, QueueStats
from .tables import RESERVATION, AgentInput, AgentState, CallState

OFFER_DEADLINE, MAX_WAIT_DEADLINE, WRAPUP_DEADLINE = 0, 1, 2
# when, tie-break, kind, call or agent id, agent id of an offer, serial of what it times
Deadline = tuple[float, int, int, str, str, int]


def destination_data(d: Destination | None) -> dict[str, str] | None:
    return None if d is None else {"kind": str(d.kind), "target": d.target}


class Ledger:
    def __init__(self) -> None:
        self._queues: dict[str, QueueSlot] = {}
        self._calls: dict[str, QueueCall] = {}
        self._agents: dict[str, AgentSlot] = {}
        self._members: defaultdict[str, set[str]] = defaultdict(set)
        self._idle: defaultdict[str, set[str]] = defaultdict(set)  # ready and idle members
        self._deadlines: list[Deadline] = []
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

    def members(self, queue_id: str) -> frozenset[str]:
        """Every agent known to the engine who is a member of the queue, ready or not."""
        return frozenset(self._members.get(queue_id, ()))

    def idle_agents(self, queue_id: str) -> frozenset[str]:
        """The queue's members who are ready and idle (the only ones a decision looks at)."""
        return frozenset(self._idle.get(queue_id, ()))

    def stats(self, queue_id: str) -> QueueStats:
        return self._queue(queue_id).stats

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # ------------------------------------------------------------------------ bookkeeping

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
        insort(queue.waiting, call.line_key)
        out.append(self._queue_event("queue.entered", call, position=i + 1))
        self._positions(queue, i + 1, out)

    def _leave(self, call: QueueCall, queue: QueueSlot, out: list[Output]) -> None:
        """Take the call out of its line (before its state leaves waiting or offered)."""
        if call.state is CallState.WAITING:
            self._unwait(call)
        line = queue.line
        i = bisect_left(line, call.line_key)
        del line[i]
        self._positions(queue, i, out)

    def _wait(self, call: QueueCall) -> None:
        insort(self._queues[call.queue_id].waiting, call.line_key)

    def _unwait(self, call: QueueCall) -> None:
        waiting = self._queues[call.queue_id].waiting
        del waiting[bisect_left(waiting, call.line_key)]

    def _positions(
        self, queue: QueueSlot, start: int, out: list[Output], stop: int | None = None
    ) -> None:
        qid = queue.config.queue_id
        for j in range(start, len(queue.line) if stop is None else stop):
            out.append(
                DomainEvent(
                    "queue.position_changed", EventCategory.QUEUE, queue.line[j][2],
                    {"queue_id": qid, "position": j + 1},
                )
            )  # fmt: skip

    def _push(self, when: float, kind: int, key: str, token: int, agent_id: str = "") -> None:
        self._serial += 1
        heapq.heappush(self._deadlines, (when, self._serial, kind, key, agent_id, token))

    def _live(self, entry: Deadline) -> bool:
        when, _, kind, key, agent_id, token = entry
        if kind == OFFER_DEADLINE:
            offered = self._calls.get(key)
            return offered is not None and offered.offers.get(agent_id) == token
        if kind == MAX_WAIT_DEADLINE:
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
            self._push(call.entered_at + limit, MAX_WAIT_DEADLINE, call.call_id, call.epoch)

    def _release_agent(self, agent: AgentSlot) -> None:
        agent.state = RESERVATION.next(agent.state, AgentInput.RELEASE)
        agent.call_id = None
        if agent.signing_out:
            self._forget(agent)
        elif agent.ready:
            for qid in agent.queues:
                self._idle[qid].add(agent.agent_id)
