"""Group commit: the commits requested while one is being written share the next transaction.

Each commit of SQLite or PostgreSQL costs roughly the same whether it carries one change or a
hundred, so under load the commits that queue up behind a running one are merged into a single
:class:`Batch` and written together; every caller still gets exactly its own stored events, in
order. With no contention a commit is written at once, so nothing waits. If a merged transaction
fails, its batches are retried one by one, so one bad batch never fails another caller's.

Commit delay: a storage whose transactions carry a fixed cost (SQLite: ``BEGIN``, the
sequence counter, the WAL frames and checksums of ``COMMIT``) declares ``commit_delay_s``, and a
transaction then starts no sooner than that after the previous one ended. An idle server
(commits further apart) never waits; a busy one writes what gathered meanwhile together. The
call pump awaits its commit, so the switch events behind it gather in its inbox too and its next
batch is larger: fewer, larger batches and transactions per call, for a few milliseconds more
latency per commit under load.
"""

from __future__ import annotations

import asyncio
import math
import time

from ..domain.events import StoredEvent
from ..ports.storage import Batch, Storage


class GroupCommitter:
    def __init__(
        self, storage: Storage, max_batches: int = 256, delay_s: float | None = None
    ) -> None:
        self.storage = storage
        self.max_batches = max_batches
        # None: what the storage declares (see the module docstring); 0 never waits
        self.delay_s = (
            float(getattr(storage, "commit_delay_s", 0.0)) if delay_s is None else delay_s
        )
        self._queue: list[tuple[Batch, asyncio.Future[list[StoredEvent]]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_end = -math.inf  # time.monotonic() when the last transaction ended

    async def drain(self) -> None:
        """Wait until every commit requested so far is written (shutdown calls this)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def commit(self, batch: Batch) -> list[StoredEvent]:
        future: asyncio.Future[list[StoredEvent]] = asyncio.get_running_loop().create_future()
        self._queue.append((batch, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="callbridge-group-commit")
        return await future

    async def _write(self) -> None:
        while self._queue:
            wait = self._last_end + self.delay_s - time.monotonic()
            if wait > 0:  # busy: let more commits join this one
                await asyncio.sleep(wait)
            try:
                await self._write_group(self._take())
            finally:
                self._last_end = time.monotonic()

    async def _write_group(
        self, group: list[tuple[Batch, asyncio.Future[list[StoredEvent]]]]
    ) -> None:
        if len(group) == 1:
            await self._one(*group[0])
            return
        merged = Batch(occurred_at=group[0][0].occurred_at)
        for batch, _ in group:
            merged.puts.extend(batch.puts)
            merged.deletes.extend(batch.deletes)
            merged.events.extend(batch.events)
            merged.cdrs.extend(batch.cdrs)
        try:
            stored = await self.storage.commit(merged)
        except Exception:
            for batch, future in group:  # find the culprit: each on its own
                await self._one(batch, future)
            return
        start = 0
        for batch, future in group:
            if not future.done():
                future.set_result(stored[start : start + len(batch.events)])
            start += len(batch.events)

    def _take(self) -> list[tuple[Batch, asyncio.Future[list[StoredEvent]]]]:
        """The longest prefix of the queue that can share a transaction.

        A batch that puts a document an earlier batch of the group deletes waits for the next
        transaction: the storage applies a batch's puts before its deletes.
        """
        group = [self._queue.pop(0)]
        deleted = {(d.kind, d.id) for d in group[0][0].deletes}
        while self._queue and len(group) < self.max_batches:
            batch = self._queue[0][0]
            if any((p.kind, p.id) in deleted for p in batch.puts):
                break
            deleted.update((d.kind, d.id) for d in batch.deletes)
            group.append(self._queue.pop(0))
        return group

    async def _one(self, batch: Batch, future: asyncio.Future[list[StoredEvent]]) -> None:
        try:
            stored = await self.storage.commit(batch)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(stored)
