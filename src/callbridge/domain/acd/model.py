"""The ACD engine's own input records and its output commands.

Inputs are small frozen records the service layer builds from its own entities (queues, agent
state, presence options), so the engine depends on nothing else in the domain. Outputs are
*commands* -- what the service must now do on the switch or to an agent (ring an agent, stop
ringing, overflow a call, call a customer back, move an agent away) -- interleaved, in order, with
:class:`~callbridge.domain.events.DomainEvent` values for the event log.

Time is a ``float`` number of seconds on any monotonic scale the caller chooses (the service uses
its ``Clock``); the engine never reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ..errors import Invalid
from ..events import DomainEvent


class Strategy(StrEnum):
    """How a queue chooses among its idle, eligible members (after member priority)."""

    LONGEST_IDLE = "longest_idle"
    ROUND_ROBIN = "round_robin"
    RING_ALL = "ring_all"
    FEWEST_CALLS = "fewest_calls"
    LEAST_TALK_TIME = "least_talk_time"
    SKILLS = "skills"


class DestinationKind(StrEnum):
    QUEUE = "queue"
    EXTENSION = "extension"
    NUMBER = "number"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an overflowing or transferred call goes; the service carries it out."""

    kind: DestinationKind
    target: str


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """One queue's distribution settings (durations in seconds; ``None`` = no limit)."""

    queue_id: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    required_skills: frozenset[str] = frozenset()
    ring_timeout: float = 20.0
    wrapup_seconds: float = 0.0
    max_wait: float | None = None
    max_length: int | None = None
    overflow: Destination | None = None
    service_level_seconds: float = 20.0
    max_consecutive_misses: int = 0  # 0 = never move an agent away for missing offers
    away_option: str = "Missed Calls"

    def __post_init__(self) -> None:
        bad = [
            name
            for name, ok in (
                ("ring_timeout", self.ring_timeout > 0),
                ("wrapup_seconds", self.wrapup_seconds >= 0),
                ("max_wait", self.max_wait is None or self.max_wait > 0),
                ("max_length", self.max_length is None or self.max_length >= 0),
                ("service_level_seconds", self.service_level_seconds >= 0),
                ("max_consecutive_misses", self.max_consecutive_misses >= 0),
            )
            if not ok
        ]
        if bad:
            raise Invalid(
                f"queue {self.queue_id!r}: out of range: {', '.join(bad)}",
                code="queue_config_invalid",
                fields=bad,
            )


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """What the engine needs to know about a signed-in agent.

    ``skills`` maps a skill to its proficiency (higher is better); ``queues`` maps each queue the
    agent is a member of to the member priority (lower number is offered first). ``calls_answered``
    and ``talk_seconds`` seed the counters of the fewest-calls and least-talk-time strategies
    (e.g. the day's figures after a restart).
    """

    agent_id: str
    queues: Mapping[str, int]
    skills: Mapping[str, int] = field(default_factory=dict)
    calls_answered: int = 0
    talk_seconds: float = 0.0


# ---------------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring ``agent_id`` with the waiting ``call_id`` (the agent is reserved until it ends)."""

    call_id: str
    agent_id: str
    queue_id: str
    ring_timeout: float


@dataclass(frozen=True, slots=True)
class CallbackDue:
    """Ring ``agent_id``; on answer, dial the customer of the callback ``call_id`` at ``number``."""

    call_id: str
    agent_id: str
    queue_id: str
    number: str
    ring_timeout: float


class CancelReason(StrEnum):
    TIMEOUT = "timeout"
    ANSWERED_ELSEWHERE = "answered_elsewhere"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    REMOVED = "removed"
    MOVED = "moved"
    AGENT_UNAVAILABLE = "agent_unavailable"


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing ``agent_id`` for ``call_id``; the reservation is over."""

    call_id: str
    agent_id: str
    reason: CancelReason


class OverflowReason(StrEnum):
    MAX_WAIT = "max_wait"
    MAX_LENGTH = "max_length"


@dataclass(frozen=True, slots=True)
class Overflow:
    """Send ``call_id`` to ``destination`` (``None``: none configured -- end the call)."""

    call_id: str
    queue_id: str
    destination: Destination | None
    reason: OverflowReason


@dataclass(frozen=True, slots=True)
class AgentToAway:
    """Move the agent to the away presence option ``option`` (too many missed offers)."""

    agent_id: str
    option: str


Command = Offer | CallbackDue | CancelOffer | Overflow | AgentToAway
Output = Command | DomainEvent


def commands(outputs: list[Output]) -> list[Command]:
    return [o for o in outputs if not isinstance(o, DomainEvent)]


def events(outputs: list[Output]) -> list[DomainEvent]:
    return [o for o in outputs if isinstance(o, DomainEvent)]
