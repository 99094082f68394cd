"""Group commit: concurrent commits share a transaction; each caller gets its own events."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.adapters.storage_sqlite import SqliteStorage
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


async def test_an_idle_committer_writes_at_once(storage: CountingStorage) -> None:
    g = GroupCommitter(storage, delay_s=10.0)
    await asyncio.wait_for(g.commit(batch("t", "e1")), timeout=1.0)
    assert storage.commits == 1


async def test_a_busy_committer_waits_out_the_delay_and_merges_what_gathered(
    storage: CountingStorage,
) -> None:
    g = GroupCommitter(storage, delay_s=0.05)
    await g.commit(batch("t", "first"))
    ended = time.monotonic()
    # back to back: the next transaction waits until 50 ms after the first ended, and the
    # commits requested meanwhile share it
    second = asyncio.ensure_future(g.commit(batch("t", "second")))
    await asyncio.sleep(0.01)
    assert not second.done()
    third = asyncio.ensure_future(g.commit(batch("t", "third")))
    stored = await asyncio.gather(second, third)
    assert time.monotonic() - ended >= 0.05
    assert storage.commits == 2
    assert [[e.type for e in s] for s in stored] == [["second"], ["third"]]
    assert [e.seq for s in stored for e in s] == [2, 3]


async def test_the_delay_is_what_the_storage_declares(tmp_path: Path) -> None:
    assert GroupCommitter(MemoryStorage()).delay_s == 0.0
    sqlite = SqliteStorage(str(tmp_path / "db.sqlite"))
    assert GroupCommitter(sqlite).delay_s == SqliteStorage.commit_delay_s > 0
    assert GroupCommitter(sqlite, delay_s=0).delay_s == 0
