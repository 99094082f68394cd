"""Helpers for the ACD engine tests: build an engine and show outputs as comparable values."""

from __future__ import annotations

from typing import Any

from callbridge.domain.acd import AcdEngine, AgentProfile, Output, QueueConfig
from callbridge.domain.events import DomainEvent


def show(outputs: list[Output]) -> list[Any]:
    """Commands as they are; events as ``(type, call_id, data)`` tuples."""
    return [(o.type, o.call_id, o.data) if isinstance(o, DomainEvent) else o for o in outputs]


def engine(*queues: QueueConfig) -> AcdEngine:
    acd = AcdEngine()
    for q in queues:
        assert acd.configure_queue(q, 0.0) == []
    return acd


def agent(agent_id: str, queues: dict[str, int] | None = None, **skills: int) -> AgentProfile:
    return AgentProfile(agent_id, queues if queues is not None else {"q1": 1}, skills)


def entered(call_id: str, position: int = 1, queue_id: str = "q1") -> Any:
    return ("queue.entered", call_id, {"queue_id": queue_id, "position": position})


def offered(call_id: str, agent_id: str, queue_id: str = "q1") -> Any:
    return ("queue.offered", call_id, {"queue_id": queue_id, "agent_id": agent_id})


def moved_up(call_id: str, position: int, queue_id: str = "q1") -> Any:
    return ("queue.position_changed", call_id, {"queue_id": queue_id, "position": position})
