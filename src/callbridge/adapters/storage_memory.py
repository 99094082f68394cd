"""In-memory storage for unit tests.

It follows the same rules as the SQL adapters (see :mod:`.storage_common`): values go through
JSON on the way in and out, times come back as UTC, a failed commit changes nothing and every
operation but :meth:`MemoryStorage.open` and :meth:`MemoryStorage.close` needs an open store.
The instance itself is the database: what it holds survives ``close()`` and a later ``open()``.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.cdr import CallRecord
from ..domain.events import EventCategory, StoredEvent
from ..ports.storage import Batch, CdrPage, CdrQuery, IdempotencyRecord
from .migrations import SCHEMA_VERSION
from .storage_common import (
    cdr_writes,
    decode_cdr,
    decode_json,
    document_ops,
    encode_cdr,
    encode_doc,
    encode_json,
    event_counts,
    page_bounds,
    to_utc,
)


@dataclass(frozen=True, slots=True)
class _Doc:
    tenant_id: str | None
    json: str


@dataclass(frozen=True, slots=True)
class _Event:
    seq: int
    type: str
    category: EventCategory
    occurred_at: datetime
    call_id: str | None
    data_json: str


@dataclass(frozen=True, slots=True)
class _Cdr:
    call_id: str
    tenant_id: str
    from_number: str
    to_number: str
    started_at: datetime
    extension_ids: frozenset[str]
    json: str


class MemoryStorage:
    """The storage port held in dictionaries."""

    def __init__(self) -> None:
        self._open = False
        self._docs: dict[tuple[str, str], _Doc] = {}
        self._events: dict[str, list[_Event]] = {}  # per tenant, index = seq - 1
        self._cdrs: dict[str, _Cdr] = {}
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("storage is not open")

    async def schema_version(self) -> int:
        self._check_open()
        return SCHEMA_VERSION

    async def get(self, kind: str, id: str) -> dict[str, Any] | None:
        self._check_open()
        doc = self._docs.get((kind, id))
        return None if doc is None else dict(decode_json(doc.json))

    async def list(self, kind: str, tenant_id: str | None = None) -> builtins.list[dict[str, Any]]:
        self._check_open()
        keys = sorted(
            key
            for key, doc in self._docs.items()
            if key[0] == kind and (tenant_id is None or doc.tenant_id == tenant_id)
        )
        return [dict(decode_json(self._docs[key].json)) for key in keys]

    async def commit(self, batch: Batch) -> builtins.list[StoredEvent]:
        self._check_open()
        if not batch:
            return []
        # Stage everything first (encoding may fail), then apply: all or nothing.
        next_seq = {t: len(self._events.get(t, ())) + 1 for t, _ in event_counts(batch)}
        occurred_at = to_utc(batch.occurred_at)
        staged: builtins.list[tuple[str, _Event]] = []
        for tenant_id, event in batch.events:
            seq = next_seq[tenant_id]
            next_seq[tenant_id] = seq + 1
            row = _Event(
                seq, event.type, event.category, occurred_at, event.call_id, encode_json(event.data)
            )
            staged.append((tenant_id, row))
        docs = [
            (op, None if op.put is None else _Doc(op.put.tenant_id, encode_doc(op.put.doc)))
            for op in document_ops(batch)
        ]
        cdrs = [self._cdr_row(record) for record in cdr_writes(batch)]

        for tenant_id, row in staged:
            self._events.setdefault(tenant_id, []).append(row)
        for op, doc in docs:
            if doc is None:
                self._docs.pop((op.kind, op.id), None)
            else:
                self._docs[(op.kind, op.id)] = doc
        for cdr in cdrs:
            self._cdrs[cdr.call_id] = cdr
        return [_stored(tenant_id, row) for tenant_id, row in staged]

    @staticmethod
    def _cdr_row(record: CallRecord) -> _Cdr:
        return _Cdr(
            call_id=record.call_id,
            tenant_id=record.tenant_id,
            from_number=record.from_number,
            to_number=record.to_number,
            started_at=to_utc(record.started_at),
            extension_ids=frozenset(record.extension_ids),
            json=encode_cdr(record),
        )

    async def events(
        self, tenant_id: str, after: int = 0, limit: int = 1000, call_id: str | None = None
    ) -> builtins.list[StoredEvent]:
        self._check_open()
        limit, after = page_bounds(limit, after)
        log = self._events.get(tenant_id, [])
        if call_id is None:
            rows = log[after : after + limit]
        else:
            rows = [row for row in log[after:] if row.call_id == call_id][:limit]
        return [_stored(tenant_id, row) for row in rows]

    async def last_seq(self, tenant_id: str) -> int:
        self._check_open()
        return len(self._events.get(tenant_id, ()))

    async def get_cdr(self, tenant_id: str, call_id: str) -> CallRecord | None:
        self._check_open()
        cdr = self._cdrs.get(call_id)
        if cdr is None or cdr.tenant_id != tenant_id:
            return None
        return decode_cdr(cdr.json)

    async def search_cdrs(self, query: CdrQuery) -> CdrPage:
        self._check_open()
        started_from = None if query.started_from is None else to_utc(query.started_from)
        started_to = None if query.started_to is None else to_utc(query.started_to)
        matches = [
            cdr
            for cdr in self._cdrs.values()
            if cdr.tenant_id == query.tenant_id
            and (query.calling_number is None or cdr.from_number == query.calling_number)
            and (query.called_number is None or cdr.to_number == query.called_number)
            and (query.extension_id is None or query.extension_id in cdr.extension_ids)
            and (started_from is None or cdr.started_at >= started_from)
            and (started_to is None or cdr.started_at <= started_to)
        ]
        matches.sort(key=lambda cdr: (cdr.started_at, cdr.call_id), reverse=True)
        limit, offset = page_bounds(query.limit, query.offset)
        items = [decode_cdr(cdr.json) for cdr in matches[offset : offset + limit]]
        return CdrPage(items=items, total=len(matches))

    async def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        self._check_open()
        return self._idempotency.get((scope, key))

    async def put_idempotency(self, record: IdempotencyRecord) -> bool:
        self._check_open()
        if (record.scope, record.key) in self._idempotency:
            return False
        self._idempotency[(record.scope, record.key)] = IdempotencyRecord(
            scope=record.scope,
            key=record.key,
            fingerprint=record.fingerprint,
            status=record.status,
            body=bytes(record.body),
            created_at=to_utc(record.created_at),
        )
        return True


def _stored(tenant_id: str, row: _Event) -> StoredEvent:
    return StoredEvent(
        tenant_id=tenant_id,
        seq=row.seq,
        type=row.type,
        category=row.category,
        occurred_at=row.occurred_at,
        call_id=row.call_id,
        data=decode_json(row.data_json),
    )
