"""In-process event bus: fan-out of published events to bounded per-subscriber queues.

:meth:`MemoryEventBus.publish` never waits: it ``put_nowait``\\s each event into the queue of every
subscription whose tenant filter matches. When a queue is full the subscriber has fallen too far
behind; it is closed with ``closed_reason = "slow_consumer"`` and the others carry on.

Closing a subscription (for any reason) ends its iteration *immediately*: events still queued are
dropped. A closed subscriber must resume from the durable log with its cursor anyway (it may
already have missed events), so handing it a stale tail would only delay that and keep memory
held for a client that is known to be behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..domain.events import StoredEvent


class MemorySubscription:
    """One subscriber's view of the bus: an async iterator of :class:`StoredEvent`."""

    def __init__(
        self, bus: MemoryEventBus | None, tenant_ids: frozenset[str] | None, maxsize: int
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.closed_reason: str | None = None
        self.tenant_ids = tenant_ids
        self._bus = bus
        # None in the queue is the end marker that wakes a reader blocked on an empty queue.
        self._queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue(maxsize)

    def __aiter__(self) -> MemorySubscription:
        return self

    async def __anext__(self) -> StoredEvent:
        if self.closed_reason is not None:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None or self.closed_reason is not None:
            raise StopAsyncIteration
        return event

    def close(self, reason: str = "closed") -> None:
        """End the iteration now (queued events are dropped); later calls do nothing."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        if self._bus is not None:
            self._bus._forget(self)
            self._bus = None
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def _offer(self, event: StoredEvent) -> None:
        if self.tenant_ids is not None and event.tenant_id not in self.tenant_ids:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.close("slow_consumer")


class MemoryEventBus:
    """The event bus port within one process.

    A new bus accepts subscribers straight away; :meth:`stop` closes every subscription with
    reason ``"shutdown"``, and until the next :meth:`start` a new subscription is born closed with
    that reason.
    """

    def __init__(self) -> None:
        self._subscriptions: dict[int, MemorySubscription] = {}
        self._stopped = False

    async def start(self) -> None:
        self._stopped = False

    async def stop(self) -> None:
        self._stopped = True
        for subscription in list(self._subscriptions.values()):
            subscription.close("shutdown")

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        subscriptions = list(self._subscriptions.values())
        for event in events:
            for subscription in subscriptions:
                if subscription.closed_reason is None:
                    subscription._offer(event)

    def subscribe(
        self, tenant_ids: frozenset[str] | None, maxsize: int = 1000
    ) -> MemorySubscription:
        """Live events of the given tenants (None: every tenant) from now on."""
        if self._stopped:
            subscription = MemorySubscription(None, tenant_ids, maxsize)
            subscription.close("shutdown")
            return subscription
        subscription = MemorySubscription(self, tenant_ids, maxsize)
        self._subscriptions[id(subscription)] = subscription
        return subscription

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def _forget(self, subscription: MemorySubscription) -> None:
        self._subscriptions.pop(id(subscription), None)
