"""Ordered, resumable event streams: no gap, no duplicate, slow consumers dropped."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from tests.support import World

from callbridge.domain.events import StoredEvent
from callbridge.domain.tenancy import Level, Permission
from callbridge.service.streams import StreamClosed


async def take(stream: object, n: int) -> list[StoredEvent]:
    out: list[StoredEvent] = []
    it = stream.__aiter__()  # type: ignore[attr-defined]
    for _ in range(n):
        out.append(await asyncio.wait_for(it.__anext__(), 2))
    return out


async def subscribed(w: World, n: int = 1) -> None:
    for _ in range(100):
        if w.c.core.bus.subscriber_count >= n:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0)
    raise AssertionError("no subscriber")


async def test_resume_after_disconnect_has_no_gap_and_no_duplicate(world: World) -> None:
    w = world
    first = w.c.streams.follow(w.admin, w.tenant, after=0)
    got = await take(first, 5)
    await first.aclose()
    last = got[-1].seq
    # things happen while the client is away
    await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    resumed = w.c.streams.follow(w.admin, w.tenant, after=last)
    total = await w.c.core.storage.last_seq(w.tenant)
    rest = await take(resumed, total - last)
    # and live events keep coming on the same stream
    await w.c.calls.originate(w.admin, w.tenant, w.ext["103"], "104")
    await w.settle()
    live = await take(resumed, 3)
    await resumed.aclose()
    seqs = [e.seq for e in got + rest + live]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_stream_without_cursor_starts_from_now(world: World) -> None:
    w = world
    before = await w.c.core.storage.last_seq(w.tenant)
    stream = w.c.streams.follow(w.admin, w.tenant)
    reader = asyncio.ensure_future(take(stream, 1))
    await subscribed(w)
    await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    (event,) = await reader
    assert event.seq == before + 1 and event.type == "call.created"
    await stream.aclose()


async def test_events_are_filtered_by_permission(world: World) -> None:
    w = world
    d = w.c.directory
    role = await d.create_role("agent-events-only", [Permission.AGENT_EVENTS], tenant_id=w.tenant)
    p = await d.create_principal("watcher", Level.TENANT, "telco-1", [role.id], tenant_id=w.tenant)
    watcher = d.actor_for(p)
    before = await w.c.core.storage.last_seq(w.tenant)
    stream = w.c.streams.follow(watcher, w.tenant, after=before)
    await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Ready")
    logged = await w.c.core.storage.events(w.tenant, before, 10_000)
    agent_events = [e for e in logged if e.category == "agent"]
    assert len(agent_events) < len(logged)  # the call's own events were logged too
    got = await take(stream, len(agent_events))  # ... but only the agent events arrive
    assert [e.seq for e in got] == [e.seq for e in agent_events]
    assert got[-1].type == "agent.signed_in"
    await stream.aclose()


async def test_other_tenants_events_are_never_delivered(world: World) -> None:
    w = world
    stream = w.c.streams.follow(w.other_admin, w.other_tenant)
    reader = asyncio.ensure_future(take(stream, 1))
    await subscribed(w)
    await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    assert not reader.done()
    await w.c.directory.create_extension(w.other_admin, w.other_tenant, {"number": "555"})
    (event,) = await reader
    assert event.tenant_id == w.other_tenant
    await stream.aclose()


async def test_slow_subscriber_is_dropped_without_delaying_others(world: World) -> None:
    w = world
    w.c.streams.queue_size = 12
    slow = w.c.streams.follow(w.admin, w.tenant)
    fast = w.c.streams.follow(w.admin, w.tenant)
    slow_it, fast_it = slow.__aiter__(), fast.__aiter__()
    first_slow = asyncio.ensure_future(slow_it.__anext__())
    received: list[StoredEvent] = []

    async def consume() -> None:
        async for e in fast_it:
            received.append(e)

    consumer = asyncio.ensure_future(consume())
    await subscribed(w, 2)
    for number in ("102", "103", "104"):  # ~10 events each; the fast reader keeps up
        await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], number)
        await w.settle()
        for _ in range(5):
            await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    total = await w.c.core.storage.last_seq(w.tenant)
    assert (await first_slow).seq > 0
    with pytest.raises(StreamClosed) as exc:  # the slow one, once it reads again, learns why
        while True:
            await asyncio.wait_for(slow_it.__anext__(), 1)
    assert exc.value.details["reason"] == "slow_consumer"
    assert received and received[-1].seq == total
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
    await slow.aclose()
    await fast.aclose()
