"""Ordered, resumable event streams for one tenant.

A stream first subscribes to the bus (so nothing published from now on is missed), then replays
the log after the client's cursor, then follows the live subscription, skipping what the replay
already delivered and filling from the log any gap the bus shows (commits of one tenant can be
published slightly out of order). The result: every event after the cursor exactly once, in
``seq`` order. Events the actor may not receive are skipped but still advance the cursor.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from ..domain.errors import DomainError
from ..domain.events import StoredEvent
from .auth import Actor
from .core import Core
from .directory import Directory

PAGE = 500


class StreamClosed(DomainError):
    """The live subscription ended (slow consumer, shutdown); resume from the last seq."""

    code = "stream_closed"


class EventStreams:
    def __init__(self, core: Core, directory: Directory, queue_size: int = 1000) -> None:
        self.core = core
        self.directory = directory
        self.queue_size = queue_size

    async def page(
        self, actor: Actor, tenant_id: str, after: int = 0, limit: int = 100
    ) -> tuple[list[StoredEvent], int]:
        """Up to ``limit`` log entries after ``after``: the ones the actor may receive, and the
        cursor to continue from (it moves past skipped entries too)."""
        self.directory.tenant(actor, tenant_id)
        events = await self.core.storage.events(tenant_id, after, limit)
        visible = [e for e in events if actor.may_receive(e.category)]
        return visible, events[-1].seq if events else after

    async def follow(
        self, actor: Actor, tenant_id: str, after: int | None = None
    ) -> AsyncGenerator[StoredEvent, None]:
        """Every event with ``seq > after`` (None: from now on), then live ones, forever."""
        self.directory.tenant(actor, tenant_id)
        storage = self.core.storage
        # The cursor is fixed before subscribing: whatever is committed in between is in the log.
        last = await storage.last_seq(tenant_id) if after is None else after
        sub = self.core.bus.subscribe(frozenset({tenant_id}), self.queue_size)
        try:
            while True:
                backlog = await storage.events(tenant_id, last, PAGE)
                for event in backlog:
                    last = event.seq
                    if actor.may_receive(event.category):
                        yield event
                if len(backlog) < PAGE:
                    break
            async for event in sub:
                if event.seq <= last:
                    continue
                if event.seq > last + 1:
                    for missing in await storage.events(tenant_id, last, event.seq - last - 1):
                        last = missing.seq
                        if actor.may_receive(missing.category):
                            yield missing
                last = event.seq
                if actor.may_receive(event.category):
                    yield event
            raise StreamClosed(
                f"event stream closed: {sub.closed_reason}; resume with after={last}",
                reason=sub.closed_reason,
                last_seq=last,
            )
        finally:
            sub.close()
