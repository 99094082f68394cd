"""The engine's mutable records and the ordering rules that choose between them.

Ordering rules (project-defined; see ``docs/acd.md``):

* **Customers** are ordered by ``(-priority, arrival sequence)``: higher priority first, then
  first come, first served. A call moved to another queue keeps its arrival sequence. An agent who
  becomes free takes the first call in that order, across every queue they are a member of,
  whose skills they have.
* **Agents** for a call are ordered by: not yet offered this call before offered (an unanswered
  offer moves on to the next agent), then member priority (lower number first), then the queue's
  strategy, ties broken by the agent id so the engine is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .model import QueueConfig, Strategy
from .tables import AgentState, CallState


@dataclass(slots=True, eq=False)
class QueueCall:
    call_id: str
    queue_id: str
    priority: int
    skills: frozenset[str]  # the call's own requirement
    need: frozenset[str]  # the call's and its queue's
    seq: int
    arrived_at: float
    entered_at: float  # in its current queue (maximum wait counts from here)
    state: CallState = CallState.WAITING
    offers: dict[str, int] = field(default_factory=dict)  # agent id -> offer serial
    tried: set[str] = field(default_factory=set)  # agents who missed it
    callback: str | None = None  # the number to call back
    agent_id: str | None = None  # once connected
    answered_at: float = 0.0
    epoch: int = 0  # changes each time it enters a queue (stale maximum-wait deadlines)

    @property
    def key(self) -> tuple[int, int]:
        return (-self.priority, self.seq)

    @property
    def line_key(self) -> tuple[int, int, str]:
        return (-self.priority, self.seq, self.call_id)


@dataclass(slots=True, eq=False)
class AgentSlot:
    agent_id: str
    queues: dict[str, int]  # queue id -> member priority
    skills: dict[str, int]  # skill -> proficiency
    idle_since: float
    calls_answered: int = 0
    talk_seconds: float = 0.0
    state: AgentState = AgentState.IDLE
    ready: bool = True
    signing_out: bool = False
    call_id: str | None = None  # the offered or connected call
    consecutive_missed: int = 0
    wrap_serial: int = 0

    @property
    def available(self) -> bool:
        return self.ready and self.state is AgentState.IDLE


@dataclass(slots=True)
class QueueStats:
    entered: int = 0
    answered: int = 0
    answered_within_service_level: int = 0
    abandoned: int = 0
    overflowed: int = 0
    removed: int = 0
    total_answer_wait: float = 0.0

    @property
    def service_level(self) -> float | None:
        """Share of answered calls answered within the threshold (``None`` before the first)."""
        if not self.answered:
            return None
        return self.answered_within_service_level / self.answered


@dataclass(slots=True, eq=False)
class QueueSlot:
    config: QueueConfig
    # (-priority, seq, call id) of every waiting or offered call, kept sorted: the line.
    line: list[tuple[int, int, str]] = field(default_factory=list)
    # The same for the calls waiting (no offer in flight): what a free agent looks through.
    waiting: list[tuple[int, int, str]] = field(default_factory=list)
    cursor: str | None = None  # round robin: the agent offered last
    stats: QueueStats = field(default_factory=QueueStats)


def choose_agents(
    queue: QueueSlot, call: QueueCall, candidates: list[AgentSlot]
) -> list[AgentSlot]:
    """The agents to offer ``call`` to, from its idle, ready, skilled queue members."""
    if not candidates:
        return []
    qid = queue.config.queue_id
    strategy = queue.config.strategy
    if strategy is Strategy.RING_ALL:
        tier = min(a.queues[qid] for a in candidates)
        return sorted((a for a in candidates if a.queues[qid] == tier), key=lambda a: a.agent_id)
    tried = call.tried
    if strategy is Strategy.ROUND_ROBIN:
        cursor = queue.cursor

        def rr(a: AgentSlot) -> tuple[bool, int, bool, str]:
            after = cursor is None or a.agent_id > cursor
            return (a.agent_id in tried, a.queues[qid], not after, a.agent_id)

        return [min(candidates, key=rr)]
    metric = _METRICS[strategy]
    need = call.need
    return [
        min(
            candidates,
            key=lambda a: (
                a.agent_id in tried,
                a.queues[qid],
                metric(a, need),
                a.idle_since,
                a.agent_id,
            ),
        )
    ]


def _no_metric(agent: AgentSlot, need: frozenset[str]) -> float:
    return 0.0


def _fewest_calls(agent: AgentSlot, need: frozenset[str]) -> float:
    return float(agent.calls_answered)


def _talk_time(agent: AgentSlot, need: frozenset[str]) -> float:
    return agent.talk_seconds


def _proficiency(agent: AgentSlot, need: frozenset[str]) -> float:
    # Higher total proficiency over the required skills first.
    skills: Mapping[str, int] = agent.skills
    return -float(sum(skills[s] for s in need))


_METRICS = {
    Strategy.LONGEST_IDLE: _no_metric,
    Strategy.FEWEST_CALLS: _fewest_calls,
    Strategy.LEAST_TALK_TIME: _talk_time,
    Strategy.SKILLS: _proficiency,
}
