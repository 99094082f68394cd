"""The storage port.

Configuration and live state are documents (JSON objects) addressed by ``(kind, id)`` and
optionally owned by a tenant. The event log, call records (CDRs) and idempotency records have
their own tables because they are queried differently.

Every change a command makes is written by one :meth:`Storage.commit` of a :class:`Batch`: the
puts, deletes, events and CDRs land together or not at all, and the events get the tenant's next
``seq`` numbers (1, 2, 3 ..., no gaps, no reuse) in the order given.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..domain.cdr import CallRecord
from ..domain.events import DomainEvent, StoredEvent


@dataclass(frozen=True, slots=True)
class EncodedDoc:
    """A document already encoded as the JSON text of one object.

    The call path hands its call document over as pydantic's ``model_dump_json()`` rather than a
    ``model_dump(mode="json")`` dict the adapter then encodes again: one encoding per put instead
    of two, for the same stored JSON. The text must decode to exactly the dict it stands for.
    """

    json: str


@dataclass(slots=True)
class Put:
    kind: str
    id: str
    tenant_id: str | None
    doc: dict[str, Any] | EncodedDoc


@dataclass(slots=True)
class Delete:
    kind: str
    id: str


@dataclass(slots=True)
class Batch:
    occurred_at: datetime
    puts: list[Put] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    events: list[tuple[str, DomainEvent]] = field(default_factory=list)  # (tenant_id, event)
    cdrs: list[CallRecord] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.puts or self.deletes or self.events or self.cdrs)


@dataclass(frozen=True, slots=True)
class CdrQuery:
    tenant_id: str
    calling_number: str | None = None
    called_number: str | None = None
    extension_id: str | None = None
    started_from: datetime | None = None  # inclusive
    started_to: datetime | None = None  # inclusive
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class CdrPage:
    items: list[CallRecord]
    total: int


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    scope: str  # principal id
    key: str
    fingerprint: str  # hash of method + path + body
    status: int
    body: bytes
    created_at: datetime


class Storage(Protocol):
    async def open(self) -> None:
        """Connect and apply pending schema migrations."""
        ...

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def get(self, kind: str, id: str) -> dict[str, Any] | None: ...

    async def list(self, kind: str, tenant_id: str | None = None) -> builtins.list[dict[str, Any]]:
        """All documents of ``kind`` (of one tenant when given), ordered by id."""
        ...

    async def commit(self, batch: Batch) -> builtins.list[StoredEvent]: ...

    async def events(
        self, tenant_id: str, after: int = 0, limit: int = 1000, call_id: str | None = None
    ) -> builtins.list[StoredEvent]:
        """Events of a tenant with ``seq > after`` in ``seq`` order (of one call when given)."""
        ...

    async def last_seq(self, tenant_id: str) -> int: ...

    async def get_cdr(self, tenant_id: str, call_id: str) -> CallRecord | None: ...

    async def search_cdrs(self, query: CdrQuery) -> CdrPage:
        """Newest first (started_at desc, call_id desc)."""
        ...

    async def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None: ...

    async def put_idempotency(self, record: IdempotencyRecord) -> bool:
        """Store a record; False (and nothing stored) when (scope, key) already exists."""
        ...
