"""Group commit: concurrent commits share a transaction; each caller gets its own events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.domain.events import DomainEvent, StoredEvent
from callbridge.ports.storage import Batch, Delete, Put
from callbridge.service.group_commit import GroupCommitter

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class CountingStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.commits = 0

    async def commit(self, batch: Batch) -> list[StoredEvent]:
        self.commits += 1
        await asyncio.sleep(0)  # like a real database: the loop runs while we write
        return await super().commit(batch)


def batch(tenant: str, *types: str, put: str | None = None, delete: str | None = None) -> Batch:
    b = Batch(occurred_at=NOW, events=[(tenant, DomainEvent(type=t)) for t in types])
    if put:
        b.puts.append(Put("docs", put, tenant, {"id": put}))
    if delete:
        b.deletes.append(Delete("docs", delete))
    return b


@pytest.fixture
async def storage() -> CountingStorage:
    s = CountingStorage()
    await s.open()
    return s


async def test_concurrent_commits_share_transactions_and_keep_their_events(
    storage: CountingStorage,
) -> None:
    g = GroupCommitter(storage)
    results = await asyncio.gather(*(g.commit(batch("t", f"e{i}a", f"e{i}b")) for i in range(50)))
    assert storage.commits < 50
    for i, stored in enumerate(results):
        assert [e.type for e in stored] == [f"e{i}a", f"e{i}b"]
    assert [e.seq for r in results for e in r] == list(range(1, 101))


async def test_a_failing_batch_fails_only_its_caller(storage: CountingStorage) -> None:
    g = GroupCommitter(storage)
    bad = batch("t", "bad")
    bad.puts.append(Put("docs", "x", "t", {"v": object()}))  # cannot be stored as JSON
    results = await asyncio.gather(
        g.commit(batch("t", "ok1")),
        g.commit(bad),
        g.commit(batch("t", "ok2")),
        return_exceptions=True,
    )
    assert isinstance(results[1], TypeError)
    assert [e.type for e in results[0]] == ["ok1"]  # type: ignore[union-attr]
    assert [e.type for e in results[2]] == ["ok2"]  # type: ignore[union-attr]
    assert [e.seq for e in await storage.events("t")] == [1, 2]


async def test_a_put_after_a_delete_of_the_same_document_is_not_merged(
    storage: CountingStorage,
) -> None:
    g = GroupCommitter(storage)
    await g.commit(batch("t", put="d1"))
    await asyncio.gather(
        g.commit(batch("t", "del", delete="d1")), g.commit(batch("t", "put", put="d1"))
    )
    assert await storage.get("docs", "d1") == {"id": "d1"}


async def test_drain_waits_for_pending_commits(storage: CountingStorage) -> None:
    g = GroupCommitter(storage)
    pending = [asyncio.ensure_future(g.commit(batch("t", f"e{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    await g.drain()
    assert all(p.done() for p in pending)
    assert await storage.last_seq("t") == 5
    await g.drain()  # idle: returns at once
