"""Domain events: what happened, in the past tense.

Domain methods return :class:`DomainEvent` values; the service layer stamps them with the tenant's
next ``seq`` and the time, appends them to the durable log and only then publishes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventCategory(StrEnum):
    """Which permission gates delivery of an event."""

    CALL = "call"
    AGENT = "agent"
    QUEUE = "queue"
    CONFIG = "config"


# Events are plain dataclasses, not pydantic models: a call makes a dozen or more of them, they
# are built only from already-typed values, and validating each one cost a large share of a
# call's CPU time (measured). orjson and FastAPI serialise dataclasses as they are.


@dataclass(slots=True)
class DomainEvent:
    type: str
    category: EventCategory = EventCategory.CALL
    call_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StoredEvent:
    """An event as it sits in the log: ordered per tenant by ``seq`` (1, 2, 3 ... no gaps)."""

    tenant_id: str
    seq: int
    type: str
    category: EventCategory
    occurred_at: datetime
    call_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def call_event(type_: str, call_id: str, **data: Any) -> DomainEvent:
    # positional: keyword arguments to a dataclass cost twice as much (a call makes ~16 events)
    return DomainEvent(type_, EventCategory.CALL, call_id, data)
