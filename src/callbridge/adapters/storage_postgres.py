"""PostgreSQL storage on psycopg 3 (async) with a connection pool.

Documents, event data and call records are ``jsonb``; times are ``timestamptz``. A commit is one
transaction: it first takes the next ``seq`` numbers of each tenant from ``tenant_seq`` with an
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (the row lock serialises concurrent commits of
one tenant until they end, so numbers are never skipped or reused, and a rolled back commit gives
its numbers back), then writes everything else in one pipeline. Rows are always locked in the
same order (tenants, then documents, then call records, each sorted) so that concurrent commits
cannot deadlock.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import orjson
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import TupleRow
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from ..domain.cdr import CallRecord
from ..domain.events import EventCategory, StoredEvent
from ..ports.storage import Batch, CdrPage, CdrQuery, IdempotencyRecord
from .migrations import check_not_newer, load_migrations
from .storage_common import (
    cdr_filter,
    cdr_writes,
    decode_cdr,
    document_ops,
    encode_cdr,
    encode_doc,
    encode_json,
    event_counts,
    page_bounds,
    to_utc,
)

_Conn = AsyncConnection[TupleRow]

_NEXT_SEQ = """
INSERT INTO tenant_seq (tenant_id, last_seq) VALUES (%s, %s)
ON CONFLICT (tenant_id) DO UPDATE SET last_seq = tenant_seq.last_seq + EXCLUDED.last_seq
RETURNING last_seq
"""
_INSERT_EVENT = """
INSERT INTO events (tenant_id, seq, type, category, occurred_at, call_id, data)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)
"""
_PUT_DOC = """
INSERT INTO documents (kind, id, tenant_id, doc) VALUES (%s, %s, %s, %s::jsonb)
ON CONFLICT (kind, id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, doc = EXCLUDED.doc
"""
_PUT_CDR = """
INSERT INTO cdrs (call_id, tenant_id, from_number, to_number, started_at, ended_at, doc)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (call_id) DO UPDATE SET
    tenant_id = EXCLUDED.tenant_id, from_number = EXCLUDED.from_number,
    to_number = EXCLUDED.to_number, started_at = EXCLUDED.started_at,
    ended_at = EXCLUDED.ended_at, doc = EXCLUDED.doc
"""
_SELECT_EVENTS = "SELECT seq, type, category, occurred_at, call_id, data FROM events"
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('callbridge.migrate.' || %s))"


class PostgresStorage:
    """The storage port in a PostgreSQL database (tables in the connection's ``search_path``)."""

    def __init__(
        self, dsn: str, *, min_size: int = 1, max_size: int = 10, open_timeout: float = 30.0
    ) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._open_timeout = open_timeout
        self._pool: AsyncConnectionPool[_Conn] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool: AsyncConnectionPool[_Conn] = AsyncConnectionPool(
            self._dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            kwargs={"autocommit": True},
            configure=_configure,
            name="callbridge-storage",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=self._open_timeout)
            async with pool.connection() as conn:
                await _migrate(conn)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def _db(self) -> AsyncConnectionPool[_Conn]:
        if self._pool is None:
            raise RuntimeError("storage is not open")
        return self._pool

    async def _one(self, query: str, params: Sequence[Any] = ()) -> TupleRow | None:
        async with self._db.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchone()

    async def _all(self, query: str, params: Sequence[Any] = ()) -> list[TupleRow]:
        async with self._db.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    async def schema_version(self) -> int:
        row = await self._one("SELECT coalesce(max(version), 0) FROM schema_migrations")
        return 0 if row is None else int(row[0])

    # ------------------------------------------------------------------ documents

    async def get(self, kind: str, id: str) -> dict[str, Any] | None:
        row = await self._one("SELECT doc FROM documents WHERE kind = %s AND id = %s", (kind, id))
        return None if row is None else dict(row[0])

    async def list(self, kind: str, tenant_id: str | None = None) -> builtins.list[dict[str, Any]]:
        if tenant_id is None:
            rows = await self._all("SELECT doc FROM documents WHERE kind = %s ORDER BY id", (kind,))
        else:
            rows = await self._all(
                "SELECT doc FROM documents WHERE kind = %s AND tenant_id = %s ORDER BY id",
                (kind, tenant_id),
            )
        return [dict(row[0]) for row in rows]

    # ------------------------------------------------------------------ commit

    async def commit(self, batch: Batch) -> builtins.list[StoredEvent]:
        pool = self._db
        if not batch:
            return []
        async with pool.connection() as conn, conn.transaction():
            cursor = conn.cursor()
            next_seq: dict[str, int] = {}
            for tenant_id, count in event_counts(batch):
                await cursor.execute(_NEXT_SEQ, (tenant_id, count))
                row = await cursor.fetchone()
                assert row is not None
                next_seq[tenant_id] = int(row[0]) - count + 1
            async with conn.pipeline():
                stored = await _append_events(cursor, batch, next_seq)
                for op in document_ops(batch):
                    if op.put is None:
                        await cursor.execute(
                            "DELETE FROM documents WHERE kind = %s AND id = %s", (op.kind, op.id)
                        )
                    else:
                        put = op.put
                        await cursor.execute(
                            _PUT_DOC, (put.kind, put.id, put.tenant_id, encode_doc(put.doc))
                        )
                for record in cdr_writes(batch):
                    await _put_cdr(cursor, record)
        return stored

    # ------------------------------------------------------------------ event log

    async def events(
        self, tenant_id: str, after: int = 0, limit: int = 1000, call_id: str | None = None
    ) -> builtins.list[StoredEvent]:
        limit, after = page_bounds(limit, after)
        if call_id is None:
            rows = await self._all(
                f"{_SELECT_EVENTS} WHERE tenant_id = %s AND seq > %s ORDER BY seq LIMIT %s",
                (tenant_id, after, limit),
            )
        else:
            rows = await self._all(
                f"{_SELECT_EVENTS} WHERE tenant_id = %s AND call_id = %s AND seq > %s"
                " ORDER BY seq LIMIT %s",
                (tenant_id, call_id, after, limit),
            )
        return [
            StoredEvent(
                tenant_id=tenant_id,
                seq=row[0],
                type=row[1],
                category=EventCategory(row[2]),
                occurred_at=to_utc(row[3]),
                call_id=row[4],
                data=row[5],
            )
            for row in rows
        ]

    async def last_seq(self, tenant_id: str) -> int:
        row = await self._one("SELECT last_seq FROM tenant_seq WHERE tenant_id = %s", (tenant_id,))
        return 0 if row is None else int(row[0])

    # ------------------------------------------------------------------ call records

    async def get_cdr(self, tenant_id: str, call_id: str) -> CallRecord | None:
        row = await self._one(
            "SELECT doc::text FROM cdrs WHERE call_id = %s AND tenant_id = %s",
            (call_id, tenant_id),
        )
        return None if row is None else decode_cdr(row[0])

    async def search_cdrs(self, query: CdrQuery) -> CdrPage:
        where, params = cdr_filter(query, "%s", to_utc)
        limit, offset = page_bounds(query.limit, query.offset)
        async with self._db.connection() as conn, conn.transaction():
            # One snapshot for the count and the page.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor = await conn.execute(f"SELECT count(*) FROM cdrs c WHERE {where}", params)
            row = await cursor.fetchone()
            total = 0 if row is None else int(row[0])
            items: builtins.list[CallRecord] = []
            if limit and offset < total:
                cursor = await conn.execute(
                    f"SELECT c.doc::text FROM cdrs c WHERE {where}"
                    " ORDER BY c.started_at DESC, c.call_id DESC LIMIT %s OFFSET %s",
                    [*params, limit, offset],
                )
                items = [decode_cdr(r[0]) for r in await cursor.fetchall()]
        return CdrPage(items=items, total=total)

    # ------------------------------------------------------------------ idempotency

    async def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = await self._one(
            "SELECT fingerprint, status, body, created_at FROM idempotency"
            " WHERE scope = %s AND key = %s",
            (scope, key),
        )
        if row is None:
            return None
        return IdempotencyRecord(
            scope=scope,
            key=key,
            fingerprint=row[0],
            status=int(row[1]),
            body=bytes(row[2]),
            created_at=to_utc(row[3]),
        )

    async def put_idempotency(self, record: IdempotencyRecord) -> bool:
        async with self._db.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO idempotency (scope, key, fingerprint, status, body, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (scope, key) DO NOTHING",
                (
                    record.scope,
                    record.key,
                    record.fingerprint,
                    record.status,
                    bytes(record.body),
                    to_utc(record.created_at),
                ),
            )
            return cursor.rowcount == 1


# ---------------------------------------------------------------------- helpers


async def _configure(conn: _Conn) -> None:
    """Decode ``json``/``jsonb`` results with orjson, like the other adapters."""
    set_json_loads(orjson.loads, conn)


async def _append_events(
    cursor: AsyncCursor[TupleRow], batch: Batch, next_seq: dict[str, int]
) -> list[StoredEvent]:
    occurred_at = to_utc(batch.occurred_at)
    rows: list[tuple[Any, ...]] = []
    stored: list[StoredEvent] = []
    for tenant_id, event in batch.events:
        seq = next_seq[tenant_id]
        next_seq[tenant_id] = seq + 1
        data = encode_json(event.data)
        rows.append(
            (tenant_id, seq, event.type, event.category.value, occurred_at, event.call_id, data)
        )
        stored.append(
            StoredEvent(
                tenant_id=tenant_id,
                seq=seq,
                type=event.type,
                category=event.category,
                occurred_at=occurred_at,
                call_id=event.call_id,
                data=orjson.loads(data),
            )
        )
    if rows:
        await cursor.executemany(_INSERT_EVENT, rows)
    return stored


async def _put_cdr(cursor: AsyncCursor[TupleRow], record: CallRecord) -> None:
    await cursor.execute(
        _PUT_CDR,
        (
            record.call_id,
            record.tenant_id,
            record.from_number,
            record.to_number,
            to_utc(record.started_at),
            to_utc(record.ended_at),
            encode_cdr(record),
        ),
    )
    await cursor.execute("DELETE FROM cdr_extensions WHERE call_id = %s", (record.call_id,))
    extensions = sorted(set(record.extension_ids))
    if extensions:
        await cursor.executemany(
            "INSERT INTO cdr_extensions (call_id, extension_id) VALUES (%s, %s)",
            [(record.call_id, ext) for ext in extensions],
        )


async def _migrate(conn: _Conn) -> None:
    """Apply the pending migrations in one transaction.

    An advisory lock keyed on the target schema makes concurrent openers wait for each other.
    """
    async with conn.transaction():
        cursor = await conn.execute("SELECT current_schema()")
        row = await cursor.fetchone()
        schema = "" if row is None or row[0] is None else str(row[0])
        await conn.execute(_MIGRATION_LOCK, (schema,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT version FROM schema_migrations")
        applied = {int(r[0]) for r in await cursor.fetchall()}
        check_not_newer("postgres", max(applied, default=0))
        for migration in load_migrations("postgres"):
            if migration.version in applied:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
