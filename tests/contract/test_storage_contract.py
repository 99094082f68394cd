"""The storage port contract, run against every adapter (see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from callbridge.adapters.migrations import SCHEMA_VERSION, load_migrations
from callbridge.adapters.storage_common import decode_json, decode_json_array, encode_json
from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.adapters.storage_postgres import PostgresStorage
from callbridge.adapters.storage_sqlite import SqliteStorage, split_statements
from callbridge.domain.cdr import CallRecord
from callbridge.domain.events import DomainEvent, EventCategory, call_event
from callbridge.ports.storage import (
    Batch,
    CdrQuery,
    Delete,
    EncodedDoc,
    IdempotencyRecord,
    Put,
    Storage,
)

if TYPE_CHECKING:
    from tests.contract.conftest import Backend

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def put(kind: str, id_: str, tenant_id: str | None = "t1", **doc: Any) -> Put:
    return Put(kind, id_, tenant_id, {"id": id_, **doc})


def batch(*items: Put | Delete | tuple[str, DomainEvent] | CallRecord, at: datetime = T0) -> Batch:
    b = Batch(occurred_at=at)
    for item in items:
        if isinstance(item, Put):
            b.puts.append(item)
        elif isinstance(item, Delete):
            b.deletes.append(item)
        elif isinstance(item, CallRecord):
            b.cdrs.append(item)
        else:
            b.events.append(item)
    return b


def ev(tenant_id: str, type_: str = "call.created", call_id: str | None = "c1", **data: Any):
    return (tenant_id, call_event(type_, call_id, **data) if call_id else DomainEvent(type=type_))


def cdr(
    call_id: str,
    *,
    tenant_id: str = "t1",
    started_at: datetime = T0,
    from_number: str = "+15550001",
    to_number: str = "+15550002",
    extension_ids: list[str] | None = None,
) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        tenant_id=tenant_id,
        origin="api",
        from_number=from_number,
        to_number=to_number,
        started_at=started_at,
        ended_at=started_at + timedelta(seconds=30),
        duration_s=30.0,
        talk_s=20.0,
        extension_ids=extension_ids or [],
    )


# --------------------------------------------------------------------------- documents


async def test_get_missing_document_is_none(storage: Storage) -> None:
    assert await storage.get("agent", "nope") is None
    assert await storage.list("agent") == []


async def test_put_get_round_trip(storage: Storage) -> None:
    doc = {"name": "Zoë ☎", "n": 3, "x": 1.5, "ok": True, "none": None, "tags": ["a", {"b": 2}]}
    await storage.commit(batch(Put("agent", "a1", "t1", doc)))
    assert await storage.get("agent", "a1") == doc
    assert await storage.get("queue", "a1") is None  # kind is part of the key


async def test_an_encoded_document_is_stored_as_the_same_json(storage: Storage) -> None:
    doc = {"name": "Zoë ☎", "n": 3, "x": 1.5, "ok": True, "none": None, "tags": ["a", {"b": 2}]}
    await storage.commit(batch(Put("agent", "a1", "t1", EncodedDoc(encode_json(doc)))))
    await storage.commit(batch(Put("agent", "a2", "t1", doc), put("agent", "a3", "t2")))
    assert await storage.get("agent", "a1") == doc
    assert await storage.list("agent", "t1") == [doc, doc]
    await storage.commit(batch(Put("agent", "a1", "t2", EncodedDoc('{"id":"a1","v":2}'))))
    assert await storage.get("agent", "a1") == {"id": "a1", "v": 2}  # replaced, tenant moved
    assert [d["id"] for d in await storage.list("agent", "t2")] == ["a1", "a3"]


async def test_values_come_back_as_their_json(storage: Storage) -> None:
    class Color(StrEnum):
        RED = "red"

    doc = {"at": datetime(2026, 1, 1, 9, 0, tzinfo=UTC), "color": Color.RED}
    await storage.commit(batch(Put("agent", "a1", "t1", doc)))
    assert await storage.get("agent", "a1") == {"at": "2026-01-01T09:00:00+00:00", "color": "red"}


async def test_put_replaces_existing_document(storage: Storage) -> None:
    await storage.commit(batch(put("agent", "a1", "t1", v=1)))
    await storage.commit(batch(put("agent", "a1", "t2", v=2)))
    assert await storage.get("agent", "a1") == {"id": "a1", "v": 2}
    assert await storage.list("agent", "t1") == []
    assert await storage.list("agent", "t2") == [{"id": "a1", "v": 2}]


async def test_list_orders_by_id_and_filters_by_tenant(storage: Storage) -> None:
    ids = ["b", "a10", "B", "a2", "a", "é"]
    await storage.commit(batch(*(put("agent", i, "t1") for i in ids)))
    await storage.commit(batch(put("agent", "c", "t2"), put("agent", "g", None), put("queue", "q")))
    listed = [d["id"] for d in await storage.list("agent", "t1")]
    assert listed == sorted(ids) == ["B", "a", "a10", "a2", "b", "é"]
    assert [d["id"] for d in await storage.list("agent")] == [*sorted(ids[:-1]), "c", "g", "é"]
    assert [d["id"] for d in await storage.list("agent", "t2")] == ["c"]
    assert await storage.list("agent", "t3") == []
    assert [d["id"] for d in await storage.list("queue")] == ["q"]


async def test_delete(storage: Storage) -> None:
    await storage.commit(batch(put("agent", "a1"), put("agent", "a2")))
    await storage.commit(batch(Delete("agent", "a1"), Delete("agent", "missing")))
    assert await storage.get("agent", "a1") is None
    assert [d["id"] for d in await storage.list("agent")] == ["a2"]


async def test_batch_applies_puts_in_order_then_deletes(storage: Storage) -> None:
    await storage.commit(
        batch(put("agent", "a1", v=1), put("agent", "a1", v=2), put("agent", "a2"))
    )
    assert await storage.get("agent", "a1") == {"id": "a1", "v": 2}
    await storage.commit(batch(Delete("agent", "a2"), put("agent", "a2", v=3)))
    assert await storage.get("agent", "a2") is None


async def test_documents_are_not_shared_with_the_caller(storage: Storage) -> None:
    doc: dict[str, Any] = {"id": "a1", "tags": ["x"]}
    await storage.commit(batch(Put("agent", "a1", "t1", doc)))
    doc["tags"].append("changed-after-put")
    got = await storage.get("agent", "a1")
    assert got == {"id": "a1", "tags": ["x"]}
    assert got is not None
    got["tags"].append("changed-after-get")
    assert await storage.get("agent", "a1") == {"id": "a1", "tags": ["x"]}
    (listed,) = await storage.list("agent")
    listed["tags"].clear()
    assert await storage.list("agent") == [{"id": "a1", "tags": ["x"]}]


# --------------------------------------------------------------------------- commit and seq


async def test_empty_batch_does_nothing(storage: Storage) -> None:
    assert not Batch(occurred_at=T0)
    assert await storage.commit(Batch(occurred_at=T0)) == []
    assert await storage.last_seq("t1") == 0


async def test_commit_stamps_events(storage: Storage) -> None:
    at = datetime(2026, 3, 1, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    stored = await storage.commit(
        batch(
            ev("t1", "call.created", "c1", number="+1555"),
            ("t1", DomainEvent(type="agent.ready", category=EventCategory.AGENT)),
            at=at,
        )
    )
    assert [(e.tenant_id, e.seq, e.type, e.category, e.call_id) for e in stored] == [
        ("t1", 1, "call.created", EventCategory.CALL, "c1"),
        ("t1", 2, "agent.ready", EventCategory.AGENT, None),
    ]
    assert stored[0].data == {"number": "+1555"} and stored[1].data == {}
    for e in stored:
        assert e.occurred_at == at
        assert e.occurred_at.utcoffset() == timedelta(0)
    assert await storage.events("t1") == stored
    assert await storage.last_seq("t1") == 2


async def test_naive_times_are_taken_as_utc(storage: Storage) -> None:
    (stored,) = await storage.commit(batch(ev("t1"), at=datetime(2026, 3, 1, 9, 0)))  # noqa: DTZ001
    assert stored.occurred_at == T0 and stored.occurred_at.tzinfo is not None
    assert (await storage.events("t1"))[0].occurred_at == T0


async def test_seq_is_per_tenant_and_follows_batch_order(storage: Storage) -> None:
    first = await storage.commit(batch(ev("t1", "a"), ev("t2", "b"), ev("t1", "c")))
    assert [(e.tenant_id, e.seq, e.type) for e in first] == [
        ("t1", 1, "a"),
        ("t2", 1, "b"),
        ("t1", 2, "c"),
    ]
    second = await storage.commit(batch(ev("t2", "d"), ev("t1", "e")))
    assert [(e.tenant_id, e.seq) for e in second] == [("t2", 2), ("t1", 3)]
    assert [e.type for e in await storage.events("t1")] == ["a", "c", "e"]
    assert [e.type for e in await storage.events("t2")] == ["b", "d"]
    assert (await storage.last_seq("t1"), await storage.last_seq("t2")) == (3, 2)
    assert await storage.last_seq("t3") == 0


@pytest.mark.parametrize("where", ["document", "event"])
async def test_failed_commit_leaves_nothing_behind(storage: Storage, where: str) -> None:
    await storage.commit(batch(put("agent", "b-keep", v=1), ev("t1", "first"), cdr("c0")))
    bad: dict[str, Any] = {"oops": object()}
    failing = batch(
        ev("t1", "second"),
        ev("t2", "other"),
        ev("t1", "third", **(bad if where == "event" else {})),
        put("agent", "a-new"),
        put("agent", "b-keep", v=2),
        Put("agent", "c-bad", "t1", bad if where == "document" else {}),
        Delete("agent", "b-keep") if where == "event" else Delete("agent", "d-none"),
        cdr("c1", extension_ids=["e1"]),
    )
    with pytest.raises(TypeError):
        await storage.commit(failing)

    assert await storage.last_seq("t1") == 1 and await storage.last_seq("t2") == 0
    assert [e.type for e in await storage.events("t1")] == ["first"]
    assert await storage.events("t2") == []
    assert await storage.list("agent") == [{"id": "b-keep", "v": 1}]
    assert await storage.get_cdr("t1", "c1") is None
    assert (await storage.search_cdrs(CdrQuery("t1", extension_id="e1"))).total == 0

    (after,) = await storage.commit(batch(ev("t1", "fourth")))
    assert after.seq == 2  # the failed commit consumed no seq


async def test_concurrent_commits_get_contiguous_seqs(storage: Storage) -> None:
    async def one(i: int) -> list[Any]:
        return await storage.commit(
            batch(ev("t1", "x", n=i), put("agent", f"a{i:02}"), ev("t1", "y", n=i), ev("t2", "z"))
        )

    results = await asyncio.gather(*(one(i) for i in range(50)))
    seqs: list[int] = []
    for i, stored in enumerate(results):
        x, y, _z = stored
        assert (x.data, y.data, x.type, y.type) == ({"n": i}, {"n": i}, "x", "y")
        assert y.seq == x.seq + 1  # a commit's events are consecutive
        seqs += [x.seq, y.seq]
    assert sorted(seqs) == list(range(1, 101))
    logged = await storage.events("t1", limit=1000)
    assert [e.seq for e in logged] == list(range(1, 101))
    assert sorted(e.seq for r in results for e in r if e.tenant_id == "t2") == list(range(1, 51))
    assert await storage.last_seq("t1") == 100
    assert len(await storage.list("agent")) == 50


# --------------------------------------------------------------------------- event log


async def test_events_after_limit_and_call(storage: Storage) -> None:
    for i in range(1, 11):
        await storage.commit(batch(ev("t1", f"e{i}", call_id=f"c{i % 2}")))
    await storage.commit(batch(ev("t2", "other", call_id="c1")))

    assert [e.seq for e in await storage.events("t1")] == list(range(1, 11))
    assert [e.seq for e in await storage.events("t1", after=7)] == [8, 9, 10]
    assert [e.seq for e in await storage.events("t1", after=2, limit=3)] == [3, 4, 5]
    assert await storage.events("t1", after=10) == []
    assert await storage.events("t1", limit=0) == []
    assert [e.seq for e in await storage.events("t1", call_id="c1")] == [1, 3, 5, 7, 9]
    assert [e.seq for e in await storage.events("t1", after=3, limit=2, call_id="c1")] == [5, 7]
    assert await storage.events("t1", call_id="nope") == []
    assert [e.tenant_id for e in await storage.events("t2", call_id="c1")] == ["t2"]
    assert await storage.events("t9") == []


# --------------------------------------------------------------------------- call records


async def test_cdr_round_trip_and_tenant_check(storage: Storage) -> None:
    record = cdr(
        "c1",
        started_at=datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        extension_ids=["e1", "e2"],
    )
    await storage.commit(batch(record))
    assert await storage.get_cdr("t1", "c1") == record
    assert await storage.get_cdr("t2", "c1") is None
    assert await storage.get_cdr("t1", "c2") is None


async def test_cdr_put_twice_replaces(storage: Storage) -> None:
    await storage.commit(batch(cdr("c1", from_number="+1", extension_ids=["e1"])))
    replacement = cdr("c1", from_number="+2", extension_ids=["e2"])
    await storage.commit(batch(replacement))
    assert await storage.get_cdr("t1", "c1") == replacement
    assert (await storage.search_cdrs(CdrQuery("t1"))).total == 1
    assert (await storage.search_cdrs(CdrQuery("t1", calling_number="+1"))).total == 0
    assert (await storage.search_cdrs(CdrQuery("t1", extension_id="e1"))).total == 0
    assert (await storage.search_cdrs(CdrQuery("t1", extension_id="e2"))).items == [replacement]


async def test_cdr_replacement_moves_every_indexed_field(storage: Storage) -> None:
    first = cdr("c1", to_number="+X", extension_ids=["e1", "e2"])
    await storage.commit(batch(first))
    later = T0 + timedelta(hours=1)
    moved = cdr("c1", tenant_id="t2", started_at=later, from_number="+9", to_number="+Y")
    await storage.commit(batch(moved))
    assert await storage.get_cdr("t1", "c1") is None
    assert await storage.get_cdr("t2", "c1") == moved
    assert (await storage.search_cdrs(CdrQuery("t1"))).total == 0
    for query in (
        CdrQuery("t2", calling_number="+9", called_number="+Y", started_from=later),
        CdrQuery("t2", started_to=later, started_from=later),
    ):
        assert (await storage.search_cdrs(query)).items == [moved]
    for tenant in ("t1", "t2"):  # the replacement has no extensions: the old ones are gone
        for ext in ("e1", "e2"):
            assert (await storage.search_cdrs(CdrQuery(tenant, extension_id=ext))).total == 0
    back = cdr("c1", extension_ids=["e2", "e2", "e1"])
    await storage.commit(batch(back, back))
    assert (await storage.search_cdrs(CdrQuery("t1", extension_id="e2"))).items == [back]
    assert (await storage.search_cdrs(CdrQuery("t1", extension_id="e1"))).items == [back]


async def test_event_data_comes_back_as_its_json_and_unshared(storage: Storage) -> None:
    class Color(StrEnum):
        RED = "red"

    data: dict[str, Any] = {
        "at": datetime(2026, 1, 1, 9, 0, tzinfo=UTC),
        "color": Color.RED,
        "nested": {"list": [1, 2.5, None, True, "Zoë ☎"]},
    }
    as_json = {
        "at": "2026-01-01T09:00:00+00:00",
        "color": "red",
        "nested": {"list": [1, 2.5, None, True, "Zoë ☎"]},
    }
    stored = await storage.commit(
        batch(ev("t1", "a", **data), ev("t2", "b", **data), ev("t1", "c"), ev("t1", "d", **data))
    )
    assert [e.data for e in stored] == [as_json, as_json, {}, as_json]
    assert [type(e.data["color"]) for e in stored if e.data] == [str, str, str]
    first, second = stored[0].data, stored[1].data
    assert first is not second and first["nested"] is not second["nested"]
    first["nested"]["list"].clear()
    assert second["nested"]["list"] == as_json["nested"]["list"]
    assert data["nested"]["list"] == as_json["nested"]["list"]  # the caller's data is untouched
    assert [e.data for e in await storage.events("t1")] == [as_json, {}, as_json]
    assert [e.data for e in await storage.events("t2")] == [as_json]


def _calls() -> list[CallRecord]:
    at = [T0 + timedelta(minutes=m) for m in range(6)]
    return [
        cdr("c0", started_at=at[0], from_number="+A", to_number="+X", extension_ids=["e1"]),
        cdr("c1", started_at=at[1], from_number="+B", to_number="+X", extension_ids=["e1", "e2"]),
        cdr("c2", started_at=at[2], from_number="+A", to_number="+Y"),
        # same start as c2: the tie is broken by call_id, descending
        cdr("c3", started_at=at[2], from_number="+A", to_number="+X", extension_ids=["e2"]),
        cdr("c4", started_at=at[4], from_number="+B", to_number="+Y", extension_ids=["e1"]),
        # another tenant, same numbers and extension
        cdr("c5", tenant_id="t2", started_at=at[5], from_number="+A", extension_ids=["e1"]),
    ]


async def _ids(storage: Storage, **filters: Any) -> tuple[list[str], int]:
    page = await storage.search_cdrs(CdrQuery("t1", **filters))
    return [r.call_id for r in page.items], page.total


async def test_search_cdrs_filters(storage: Storage) -> None:
    await storage.commit(batch(*_calls()))
    assert await _ids(storage) == (["c4", "c3", "c2", "c1", "c0"], 5)
    assert await _ids(storage, calling_number="+A") == (["c3", "c2", "c0"], 3)
    assert await _ids(storage, called_number="+Y") == (["c4", "c2"], 2)
    assert await _ids(storage, extension_id="e1") == (["c4", "c1", "c0"], 3)
    assert await _ids(storage, extension_id="e2") == (["c3", "c1"], 2)
    assert await _ids(storage, calling_number="+A", called_number="+X") == (["c3", "c0"], 2)
    assert await _ids(storage, calling_number="+A", extension_id="e1") == (["c0"], 1)
    assert await _ids(storage, calling_number="+X") == ([], 0)
    assert await _ids(storage, extension_id="e9") == ([], 0)
    page = await storage.search_cdrs(CdrQuery("t2", extension_id="e1"))
    assert ([r.call_id for r in page.items], page.total) == (["c5"], 1)
    assert (await storage.search_cdrs(CdrQuery("t3"))).total == 0


async def test_search_cdrs_time_range_is_inclusive(storage: Storage) -> None:
    await storage.commit(batch(*_calls()))
    m = [T0 + timedelta(minutes=i) for i in range(6)]
    assert await _ids(storage, started_from=m[1], started_to=m[2]) == (["c3", "c2", "c1"], 3)
    assert await _ids(storage, started_from=m[2]) == (["c4", "c3", "c2"], 3)
    assert await _ids(storage, started_to=m[1]) == (["c1", "c0"], 2)
    assert await _ids(storage, started_from=m[1] + timedelta(microseconds=1)) == (
        ["c4", "c3", "c2"],
        3,
    )
    assert await _ids(storage, started_to=m[1] - timedelta(microseconds=1)) == (["c0"], 1)
    # bounds in another zone mean the same instants
    plus2 = timezone(timedelta(hours=2))
    assert await _ids(
        storage, started_from=m[4].astimezone(plus2), started_to=m[5].astimezone(plus2)
    ) == (["c4"], 1)
    assert await _ids(storage, started_from=m[3], started_to=m[3]) == ([], 0)
    assert await _ids(storage, calling_number="+B", started_from=m[2]) == (["c4"], 1)


async def test_search_cdrs_zone_of_the_record_does_not_matter(storage: Storage) -> None:
    # 09:30+01:00 is 08:30Z, earlier than 09:00Z although its local text sorts later.
    early = cdr(
        "early", started_at=datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    )
    late = cdr("late", started_at=T0)
    await storage.commit(batch(early, late))
    assert await _ids(storage) == (["late", "early"], 2)
    assert await _ids(storage, started_to=T0 - timedelta(minutes=1)) == (["early"], 1)


async def test_search_cdrs_pagination(storage: Storage) -> None:
    await storage.commit(batch(*_calls()))
    assert await _ids(storage, limit=2) == (["c4", "c3"], 5)
    assert await _ids(storage, limit=2, offset=2) == (["c2", "c1"], 5)
    assert await _ids(storage, limit=2, offset=4) == (["c0"], 5)
    assert await _ids(storage, limit=2, offset=5) == ([], 5)
    assert await _ids(storage, limit=0) == ([], 5)
    assert await _ids(storage, extension_id="e1", limit=1, offset=1) == (["c1"], 3)


# --------------------------------------------------------------------------- idempotency


def _idem(key: str = "k1", scope: str = "p1", status: int = 201) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope=scope,
        key=key,
        fingerprint="sha256:abc",
        status=status,
        body=b'{"id":"c1"}\x00\xff',
        created_at=datetime(2026, 3, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=1))),
    )


async def test_idempotency(storage: Storage) -> None:
    assert await storage.get_idempotency("p1", "k1") is None
    assert await storage.put_idempotency(_idem()) is True
    got = await storage.get_idempotency("p1", "k1")
    assert got == _idem()
    assert got is not None and got.created_at.utcoffset() == timedelta(0)
    assert await storage.put_idempotency(_idem(status=500)) is False
    assert await storage.get_idempotency("p1", "k1") == _idem()
    assert await storage.get_idempotency("p2", "k1") is None
    assert await storage.put_idempotency(_idem(scope="p2", status=202)) is True
    assert (await storage.get_idempotency("p2", "k1")) == _idem(scope="p2", status=202)


# --------------------------------------------------------------------------- lifecycle


async def test_schema_version_and_restart(backend: Backend) -> None:
    first = backend.make()
    await first.open()
    await first.open()  # opening twice is harmless
    assert await first.schema_version() == SCHEMA_VERSION
    await first.commit(batch(put("agent", "a1"), ev("t1"), cdr("c1")))
    await first.put_idempotency(_idem())
    await first.close()
    await first.close()  # so is closing twice

    second = backend.make()
    await second.open()
    try:
        assert await second.schema_version() == SCHEMA_VERSION
        assert await second.get("agent", "a1") == {"id": "a1"}
        assert await second.last_seq("t1") == 1
        assert await second.get_cdr("t1", "c1") == cdr("c1")
        assert await second.get_idempotency("p1", "k1") == _idem()
        (next_event,) = await second.commit(batch(ev("t1")))
        assert next_event.seq == 2
    finally:
        await second.close()
    if backend.applied_versions is not None:
        assert await backend.applied_versions() == list(range(1, SCHEMA_VERSION + 1))


async def test_concurrent_opens_migrate_once(backend: Backend) -> None:
    stores = [backend.make() for _ in range(3)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        assert [await s.schema_version() for s in stores] == [SCHEMA_VERSION] * 3
    finally:
        for s in stores:
            await s.close()
    if backend.applied_versions is not None:
        assert await backend.applied_versions() == list(range(1, SCHEMA_VERSION + 1))


async def test_closed_storage_refuses_work(backend: Backend) -> None:
    store = backend.make()
    with pytest.raises(RuntimeError):
        await store.get("agent", "a1")
    await store.open()
    await store.close()
    with pytest.raises(RuntimeError):
        await store.commit(batch(ev("t1")))


# --------------------------------------------------------------------------- adapter specifics


def test_every_dialect_reaches_the_schema_version() -> None:
    for dialect in ("sqlite", "postgres"):
        migrations = load_migrations(dialect)
        assert [m.version for m in migrations] == list(range(1, SCHEMA_VERSION + 1))
        assert migrations[0].name == "initial"


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    script = """-- comment
CREATE TABLE a (x INTEGER);
CREATE TRIGGER t AFTER INSERT ON a BEGIN
    UPDATE a SET x = x + 1;
    DELETE FROM a WHERE x > 10;
END;
-- trailing comment
"""
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


async def test_sqlite_in_memory_database() -> None:
    store = SqliteStorage(":memory:")
    await store.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        (stored,) = await store.commit(batch(ev("t1"), put("agent", "a1")))
        assert stored.seq == 1
        assert await store.get("agent", "a1") == {"id": "a1"}
    finally:
        await store.close()


async def test_sqlite_connection_settings(tmp_path: Path) -> None:
    store = SqliteStorage(str(tmp_path / "db.sqlite"))
    await store.open()
    try:
        db = store._db
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        await store.close()


async def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStorage(str(path))
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'x')")
    with pytest.raises(RuntimeError, match="newer"):
        await SqliteStorage(str(path)).open()


async def test_sqlite_0002_carries_version_1_documents_into_a_rowid_table(tmp_path: Path) -> None:
    """A database left at schema version 1 (documents WITHOUT ROWID) keeps every document, its
    tenant and its order through 0002, and takes puts and deletes as before afterwards."""
    path = tmp_path / "db.sqlite"
    (initial,) = [m for m in load_migrations("sqlite") if m.version == 1]
    big = {"id": "c1", "blob": "x" * 3000, "n": [1, 2.5, None]}  # overflows any page
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "CREATE TABLE schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for statement in split_statements(initial.sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (1, 'initial', 'x')")
        conn.executemany(
            "INSERT INTO documents (kind, id, tenant_id, doc) VALUES (?, ?, ?, ?)",
            [
                ("calls", "c1", "t1", encode_json(big)),
                ("agent", "b", "t2", '{"id":"b"}'),
                ("agent", "a", "t1", '{"id":"a","name":"Zoë ☎"}'),
                ("config", "g", None, '{"id":"g"}'),
            ],
        )
    store = SqliteStorage(str(path))
    await store.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        assert await store.get("calls", "c1") == big
        assert await store.list("agent") == [{"id": "a", "name": "Zoë ☎"}, {"id": "b"}]
        assert await store.list("agent", "t2") == [{"id": "b"}]
        assert await store.list("config") == [{"id": "g"}]
        await store.commit(batch(put("agent", "a", "t2", v=2), Delete("calls", "c1")))
        assert await store.list("agent", "t2") == [{"id": "a", "v": 2}, {"id": "b"}]
        assert await store.get("calls", "c1") is None
        db = store._db
        (sql,) = db.execute("SELECT sql FROM sqlite_schema WHERE name = 'documents'").fetchone()
        assert "WITHOUT ROWID" not in sql and "PRIMARY KEY (kind, id)" in sql
        indexes = {r[1] for r in db.execute("PRAGMA index_list(documents)")}
        assert "documents_kind_tenant" in indexes
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_refuses_a_newer_schema(postgres_schema_dsn: str) -> None:
    store = PostgresStorage(postgres_schema_dsn)
    await store.open()
    await store.close()
    async with await psycopg.AsyncConnection.connect(postgres_schema_dsn) as conn:
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'f')")
    with pytest.raises(RuntimeError, match="newer"):
        await PostgresStorage(postgres_schema_dsn).open()


async def test_memory_storage_keeps_data_across_close() -> None:
    store = MemoryStorage()
    await store.open()
    await store.commit(batch(ev("t1")))
    await store.close()
    await store.open()
    assert await store.last_seq("t1") == 1
    await store.close()


def test_decode_json_array_matches_decoding_each() -> None:
    values: list[Any] = [{}, {"a": [1, {"b": None}]}, "x", 1.5, [], None, True, {"é": "☎"}]
    texts = [encode_json(value) for value in values]
    assert decode_json_array(texts) == [decode_json(text) for text in texts] == values
    assert decode_json_array([]) == []
