"""The event bus port: fan-out of committed events to live subscribers.

Publishing never waits for a subscriber. Each subscription has a bounded queue; a subscriber that
falls behind by more than its bound is closed with ``reason = "slow_consumer"`` (it can reconnect
and resume from the log with its cursor), so one slow client never stalls the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from ..domain.events import StoredEvent


class Subscription(Protocol):
    closed_reason: str | None

    def __aiter__(self) -> AsyncIterator[StoredEvent]: ...

    def close(self, reason: str = "closed") -> None: ...


class EventBus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, events: Sequence[StoredEvent]) -> None: ...

    def subscribe(self, tenant_ids: frozenset[str] | None, maxsize: int = 1000) -> Subscription:
        """Live events of the given tenants (None: every tenant)."""
        ...
