"""The event bus port contract, run against the in-process bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.domain.events import EventCategory, StoredEvent
from callbridge.ports.bus import EventBus, Subscription

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def event(tenant_id: str, seq: int) -> StoredEvent:
    return StoredEvent(
        tenant_id=tenant_id,
        seq=seq,
        type="call.created",
        category=EventCategory.CALL,
        occurred_at=T0,
        call_id=f"c{seq}",
    )


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    bus = MemoryEventBus()
    await bus.start()
    yield bus
    await bus.stop()


async def take(sub: Subscription, n: int) -> list[tuple[str, int]]:
    got: list[tuple[str, int]] = []
    async with asyncio.timeout(1):
        async for e in sub:
            got.append((e.tenant_id, e.seq))
            if len(got) == n:
                break
    return got


async def drain(sub: Subscription) -> list[tuple[str, int]]:
    """Everything until the subscription ends (fails if it does not end)."""
    async with asyncio.timeout(1):
        return [(e.tenant_id, e.seq) async for e in sub]


async def test_delivers_in_publish_order(bus: EventBus) -> None:
    sub = bus.subscribe(None)
    await bus.publish([event("t1", 1), event("t1", 2)])
    await bus.publish([event("t1", 3)])
    assert await take(sub, 3) == [("t1", 1), ("t1", 2), ("t1", 3)]
    assert sub.closed_reason is None


async def test_only_events_published_after_subscribing(bus: EventBus) -> None:
    await bus.publish([event("t1", 1)])
    sub = bus.subscribe(None)
    await bus.publish([event("t1", 2)])
    assert await take(sub, 1) == [("t1", 2)]


async def test_tenant_filter(bus: EventBus) -> None:
    only_t1 = bus.subscribe(frozenset({"t1"}))
    t2_t3 = bus.subscribe(frozenset({"t2", "t3"}))
    everyone = bus.subscribe(None)
    nobody = bus.subscribe(frozenset())
    published = [event("t1", 1), event("t2", 1), event("t3", 1), event("t1", 2), event("t4", 1)]
    await bus.publish(published)
    assert await take(everyone, 5) == [(e.tenant_id, e.seq) for e in published]
    assert await take(only_t1, 2) == [("t1", 1), ("t1", 2)]
    assert await take(t2_t3, 2) == [("t2", 1), ("t3", 1)]
    # nothing else was queued for them: the next event they get is the next one of theirs
    await bus.publish([event("t4", 2), event("t1", 3), event("t3", 2)])
    assert await take(only_t1, 1) == [("t1", 3)]
    assert await take(t2_t3, 1) == [("t3", 2)]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await anext(aiter(nobody))


async def test_slow_consumer_is_closed_and_fast_one_gets_everything(bus: EventBus) -> None:
    slow = bus.subscribe(None, maxsize=3)
    fast = bus.subscribe(None, maxsize=2)
    received: list[int] = []

    async def consume() -> None:
        async for e in fast:
            received.append(e.seq)

    consumer = asyncio.create_task(consume())
    for seq in range(1, 11):
        await bus.publish([event("t1", seq)])
        await asyncio.sleep(0)  # the fast consumer keeps up; the slow one never reads
        if seq == 3:
            assert slow.closed_reason is None  # exactly full is not yet behind
        if seq == 4:
            assert slow.closed_reason == "slow_consumer"
    await asyncio.sleep(0)
    assert received == list(range(1, 11))
    assert fast.closed_reason is None
    assert await drain(slow) == []  # ends immediately: the queued events are dropped
    fast.close()
    async with asyncio.timeout(1):
        await consumer
    assert fast.closed_reason == "closed"


async def test_close_wakes_a_waiting_reader(bus: EventBus) -> None:
    sub = bus.subscribe(None)
    reader = asyncio.create_task(drain(sub))
    await asyncio.sleep(0)
    sub.close("client_gone")
    assert await reader == []
    assert sub.closed_reason == "client_gone"
    sub.close("again")  # later closes change nothing
    assert sub.closed_reason == "client_gone"
    await bus.publish([event("t1", 1)])
    assert await drain(sub) == []


async def test_close_drops_queued_events(bus: EventBus) -> None:
    sub = bus.subscribe(None)
    await bus.publish([event("t1", 1), event("t1", 2)])
    assert await take(sub, 1) == [("t1", 1)]
    sub.close()
    assert sub.closed_reason == "closed"
    assert await drain(sub) == []


async def test_stop_closes_every_subscription() -> None:
    bus = MemoryEventBus()
    await bus.start()
    a, b = bus.subscribe(None), bus.subscribe(frozenset({"t1"}))
    reader = asyncio.create_task(drain(a))
    await asyncio.sleep(0)
    await bus.stop()
    assert await reader == []
    assert (a.closed_reason, b.closed_reason) == ("shutdown", "shutdown")
    assert bus.subscriber_count == 0

    late = bus.subscribe(None)  # while stopped a subscription is born closed
    assert late.closed_reason == "shutdown"
    assert await drain(late) == []

    await bus.start()
    again = bus.subscribe(None)
    await bus.publish([event("t1", 1)])
    assert await take(again, 1) == [("t1", 1)]
    await bus.stop()


async def test_subscriber_count_and_bad_maxsize(bus: MemoryEventBus) -> None:
    a = bus.subscribe(None)
    bus.subscribe(None)
    assert bus.subscriber_count == 2
    a.close()
    assert bus.subscriber_count == 1
    with pytest.raises(ValueError):
        bus.subscribe(None, maxsize=0)
