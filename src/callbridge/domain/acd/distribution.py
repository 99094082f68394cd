"""Distribution: who gets which call, offering, and what happens when offers and calls end.

Every path that frees an agent or puts a call back in line ends in :meth:`Distributor._dispatch`
with exactly what it freed, which keeps the engine work-conserving without scanning everything.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from ..events import DomainEvent, EventCategory
from .ledger import OFFER_DEADLINE, Ledger, destination_data
from .model import (
    AgentToAway,
    CallbackDue,
    CancelOffer,
    CancelReason,
    Offer,
    Output,
    Overflow,
    OverflowReason,
    QueueConfig,
)
from .records import AgentSlot, QueueCall, choose_agents
from .tables import QUEUE_CALL, RESERVATION, AgentInput, AgentState, CallInput, CallState


class Distributor(Ledger):
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
            for key in queue.waiting:
                if best is not None and key[:2] >= best.key:
                    break
                call = self._calls[key[2]]
                if all(s in skills for s in call.skills):
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
        # Nothing becomes waiting or idle during a dispatch, things only get offered: a call's
        # candidates only shrink and an agent's first call only moves back, so both are cached
        # and recomputed only when what they name has been taken.
        pending = sorted((c for c in calls if c.state is CallState.WAITING), key=lambda c: c.key)
        i = 0
        cached: list[AgentSlot] = []
        heap: list[tuple[tuple[int, int], str, QueueCall]] = []  # (call key, agent, call)
        for aid in dict.fromkeys(agent_ids):
            self._push_first_call(heap, aid)
        while True:
            best: QueueCall | None = None
            chosen: list[AgentSlot] = []
            while i < len(pending):
                call = pending[i]
                if call.state is CallState.WAITING:
                    if not (cached and all(a.available for a in cached)):
                        cached = self._candidates(call)
                    if cached:
                        best, chosen = call, cached
                        break
                i += 1
                cached = []
            while heap:
                _, aid, found = heap[0]
                agent = self._agents.get(aid)
                if found.state is CallState.WAITING and agent is not None and agent.available:
                    break
                heapq.heappop(heap)
                self._push_first_call(heap, aid)
            if heap and (best is None or heap[0][0] < best.key):
                best, chosen = heap[0][2], []
            if best is None:
                return
            self._offer(best, chosen or self._candidates(best), now, out)

    def _push_first_call(
        self, heap: list[tuple[tuple[int, int], str, QueueCall]], agent_id: str
    ) -> None:
        agent = self._agents.get(agent_id)
        if agent is not None and agent.available:
            found = self._oldest_for(agent)
            if found is not None:
                heapq.heappush(heap, (found.key, agent_id, found))

    def _offer(
        self, call: QueueCall, agents: list[AgentSlot], now: float, out: list[Output]
    ) -> None:
        queue = self._queues[call.queue_id]
        cfg = queue.config
        for agent in agents:
            RESERVATION.next(agent.state, AgentInput.RESERVE)
        self._unwait(call)
        call.state = CallState.OFFERED
        for agent in agents:
            self._serial += 1
            call.offers[agent.agent_id] = self._serial
            agent.state, agent.call_id = AgentState.RESERVED, call.call_id
            self._unidle(agent)
            deadline = now + cfg.ring_timeout
            self._push(deadline, OFFER_DEADLINE, call.call_id, self._serial, agent.agent_id)
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
            self._wait(call)
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
            self._wait(call)
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
                    "destination": destination_data(cfg.overflow),
                },
            )
        )
