"""SQLite storage on the stdlib :mod:`sqlite3` module.

One connection, used straight from the event loop: every operation is a handful of indexed
statements that take well under a millisecond, so handing them to a thread would cost more than
it saves. The database runs in WAL mode with ``synchronous=NORMAL`` (a commit survives a crash of
the process; only an OS crash or power cut can lose the last few), with foreign keys on and a busy
timeout so that a second process (a CLI, a backup) waits instead of failing.

Since nothing awaits inside an operation, commits never interleave: each runs in its own
``BEGIN IMMEDIATE`` transaction and the per-tenant ``seq`` comes from the ``tenant_seq`` table.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..domain.cdr import CallRecord
from ..domain.events import EventCategory, StoredEvent
from ..ports.storage import Batch, CdrPage, CdrQuery, IdempotencyRecord
from .migrations import check_not_newer, load_migrations
from .storage_common import (
    cdr_filter,
    cdr_writes,
    decode_cdr,
    decode_json,
    decode_json_array,
    document_ops,
    encode_cdr,
    encode_doc,
    encode_json,
    event_counts,
    format_ts,
    page_bounds,
    parse_ts,
    to_utc,
)

_NEXT_SEQ = """
INSERT INTO tenant_seq (tenant_id, last_seq) VALUES (?, ?)
ON CONFLICT (tenant_id) DO UPDATE SET last_seq = last_seq + excluded.last_seq
RETURNING last_seq
"""
_INSERT_EVENT = """
INSERT INTO events (tenant_id, seq, type, category, occurred_at, call_id, data)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_PUT_DOC = """
INSERT INTO documents (kind, id, tenant_id, doc) VALUES (?, ?, ?, ?)
ON CONFLICT (kind, id) DO UPDATE SET tenant_id = excluded.tenant_id, doc = excluded.doc
"""
_DELETE_DOC = "DELETE FROM documents WHERE kind = ? AND id = ?"
_INSERT_CDR = """
INSERT INTO cdrs (call_id, tenant_id, from_number, to_number, started_at, ended_at, doc)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (call_id) DO NOTHING
"""
_UPDATE_CDR = """
UPDATE cdrs SET
    tenant_id = ?, from_number = ?, to_number = ?, started_at = ?, ended_at = ?, doc = ?
WHERE call_id = ?
"""
_SELECT_EVENTS = "SELECT seq, type, category, occurred_at, call_id, data FROM events"
_CATEGORY_TEXT = {category: category.value for category in EventCategory}  # no enum lookups


class SqliteStorage:
    """The storage port in one SQLite file (or ``":memory:"``)."""

    #: The group committer starts a transaction no sooner than this after the previous one
    #: (:mod:`callbridge.service.group_commit`): each costs ``BEGIN``, the sequence counter and a
    #: ``COMMIT`` that writes and checksums every page it touched, whatever it carries, so under
    #: load one per few milliseconds instead of one per switch event saves CPU (bench/README.md).
    commit_delay_s: float = 0.008

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._conn is not None:
            return
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("storage is not open")
        return self._conn

    async def schema_version(self) -> int:
        return _applied_version(self._db)

    # ------------------------------------------------------------------ documents

    async def get(self, kind: str, id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT doc FROM documents WHERE kind = ? AND id = ?", (kind, id)
        ).fetchone()
        return None if row is None else dict(decode_json(row[0]))

    async def list(self, kind: str, tenant_id: str | None = None) -> builtins.list[dict[str, Any]]:
        if tenant_id is None:
            rows = self._db.execute(
                "SELECT doc FROM documents WHERE kind = ? ORDER BY id", (kind,)
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT doc FROM documents WHERE kind = ? AND tenant_id = ? ORDER BY id",
                (kind, tenant_id),
            ).fetchall()
        return [dict(decode_json(row[0])) for row in rows]

    # ------------------------------------------------------------------ commit

    async def commit(self, batch: Batch) -> builtins.list[StoredEvent]:
        db = self._db
        if not batch:
            return []
        # A plain try/except rather than ``with _transaction(db)``: this runs for every commit
        # and the generator-based context manager cost more than the statements around it.
        db.execute("BEGIN IMMEDIATE")
        try:
            stored = _append_events(db, batch) if batch.events else []
            _write_documents(db, batch)
            for record in cdr_writes(batch):
                _put_cdr(db, record)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return stored

    # ------------------------------------------------------------------ event log

    async def events(
        self, tenant_id: str, after: int = 0, limit: int = 1000, call_id: str | None = None
    ) -> builtins.list[StoredEvent]:
        limit, after = page_bounds(limit, after)
        if call_id is None:
            rows = self._db.execute(
                f"{_SELECT_EVENTS} WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (tenant_id, after, limit),
            ).fetchall()
        else:
            rows = self._db.execute(
                f"{_SELECT_EVENTS} WHERE tenant_id = ? AND call_id = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (tenant_id, call_id, after, limit),
            ).fetchall()
        return [_event(tenant_id, row) for row in rows]

    async def last_seq(self, tenant_id: str) -> int:
        row = self._db.execute(
            "SELECT last_seq FROM tenant_seq WHERE tenant_id = ?", (tenant_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    # ------------------------------------------------------------------ call records

    async def get_cdr(self, tenant_id: str, call_id: str) -> CallRecord | None:
        row = self._db.execute(
            "SELECT doc FROM cdrs WHERE call_id = ? AND tenant_id = ?", (call_id, tenant_id)
        ).fetchone()
        return None if row is None else decode_cdr(row[0])

    async def search_cdrs(self, query: CdrQuery) -> CdrPage:
        where, params = cdr_filter(query, "?", format_ts)
        db = self._db
        total = int(db.execute(f"SELECT count(*) FROM cdrs c WHERE {where}", params).fetchone()[0])
        limit, offset = page_bounds(query.limit, query.offset)
        items: builtins.list[CallRecord] = []
        if limit and offset < total:
            rows = db.execute(
                f"SELECT c.doc FROM cdrs c WHERE {where}"
                " ORDER BY c.started_at DESC, c.call_id DESC LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            items = [decode_cdr(row[0]) for row in rows]
        return CdrPage(items=items, total=total)

    # ------------------------------------------------------------------ idempotency

    async def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = self._db.execute(
            "SELECT fingerprint, status, body, created_at FROM idempotency"
            " WHERE scope = ? AND key = ?",
            (scope, key),
        ).fetchone()
        if row is None:
            return None
        return IdempotencyRecord(
            scope=scope,
            key=key,
            fingerprint=row[0],
            status=int(row[1]),
            body=bytes(row[2]),
            created_at=parse_ts(row[3]),
        )

    async def put_idempotency(self, record: IdempotencyRecord) -> bool:
        cursor = self._db.execute(
            "INSERT INTO idempotency (scope, key, fingerprint, status, body, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING",
            (
                record.scope,
                record.key,
                record.fingerprint,
                record.status,
                bytes(record.body),
                format_ts(record.created_at),
            ),
        )
        return cursor.rowcount == 1


# ---------------------------------------------------------------------- helpers


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back when anything fails (COMMIT included)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _append_events(db: sqlite3.Connection, batch: Batch) -> list[StoredEvent]:
    events = batch.events
    next_seq: dict[str, int] = {}
    for tenant_id, count in event_counts(batch):
        last = int(db.execute(_NEXT_SEQ, (tenant_id, count)).fetchone()[0])
        next_seq[tenant_id] = last - count + 1
    seqs: list[int] = []
    for tenant_id, _ in events:
        seqs.append(next_seq[tenant_id])
        next_seq[tenant_id] += 1
    occurred_at = to_utc(batch.occurred_at)
    occurred_text = occurred_at.isoformat(timespec="microseconds")  # format_ts, already UTC
    texts = [encode_json(event.data) for _, event in events]
    db.executemany(
        _INSERT_EVENT,
        [
            (tenant_id, seq, e.type, _CATEGORY_TEXT[e.category], occurred_text, e.call_id, text)
            for (tenant_id, e), seq, text in zip(events, seqs, texts, strict=True)
        ],
    )
    # Each event hands out its data decoded from the stored text, as every adapter does (an
    # independent, JSON-safe copy); decoded in one call for the whole batch.
    return [
        StoredEvent(tenant_id, seq, e.type, e.category, occurred_at, e.call_id, data)
        for (tenant_id, e), seq, data in zip(events, seqs, decode_json_array(texts), strict=True)
    ]


def _write_documents(db: sqlite3.Connection, batch: Batch) -> None:
    """The batch's net document changes: one ``executemany`` for the puts, one for the deletes.

    :func:`document_ops` leaves at most one operation per key, so running the deletes apart from
    the puts ends in the same rows as running them in key order.
    """
    if not (batch.puts or batch.deletes):
        return
    puts: list[tuple[str, str, str | None, str]] = []
    deletes: list[tuple[str, str]] = []
    for op in document_ops(batch):
        put = op.put
        if put is None:
            deletes.append((op.kind, op.id))
        else:
            puts.append((put.kind, put.id, put.tenant_id, encode_doc(put.doc)))
    if puts:
        db.executemany(_PUT_DOC, puts)
    if deletes:
        db.executemany(_DELETE_DOC, deletes)


def _put_cdr(db: sqlite3.Connection, record: CallRecord) -> None:
    row = (
        record.call_id,
        record.tenant_id,
        record.from_number,
        record.to_number,
        format_ts(record.started_at),
        format_ts(record.ended_at),
        encode_cdr(record),
    )
    # A call's record is nearly always new: then it has no extension rows to clear (the foreign
    # key allows none without it), and the plain insert saves the DELETE. A replaced record
    # takes the update and clears the old extension rows.
    if db.execute(_INSERT_CDR, row).rowcount == 0:
        db.execute(_UPDATE_CDR, (*row[1:], row[0]))
        db.execute("DELETE FROM cdr_extensions WHERE call_id = ?", (record.call_id,))
    if record.extension_ids:
        db.executemany(
            "INSERT INTO cdr_extensions (call_id, extension_id) VALUES (?, ?)",
            [(record.call_id, ext) for ext in sorted(set(record.extension_ids))],
        )


def _event(tenant_id: str, row: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        tenant_id=tenant_id,
        seq=row[0],
        type=row[1],
        category=EventCategory(row[2]),
        occurred_at=parse_ts(row[3]),
        call_id=row[4],
        data=decode_json(row[5]),
    )


# ---------------------------------------------------------------------- migrations


def _applied_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])


def _migrate(db: sqlite3.Connection) -> None:
    """Apply the pending migrations, each in its own transaction with its bookkeeping row."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    check_not_newer("sqlite", _applied_version(db))
    for migration in load_migrations("sqlite"):
        with _transaction(db):
            # Re-checked under the write lock: another process may have just applied it.
            done = db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if done is not None:
                continue
            for statement in split_statements(migration.sql):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at)"
                " VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                (migration.version, migration.name),
            )


def split_statements(script: str) -> list[str]:
    """The complete SQL statements of ``script`` (trigger bodies stay whole)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if statement.strip(";").strip():
                statements.append(statement)
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise ValueError(f"incomplete SQL statement at end of migration: {pending.strip()!r}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())
