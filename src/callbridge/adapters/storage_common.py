"""Encoding and planning rules shared by every storage adapter.

The memory, SQLite and PostgreSQL adapters must be interchangeable, so everything that decides
*what* is stored lives here and only *how* it is stored differs between them:

* documents and event data are JSON, encoded with orjson (datetimes, enums, UUIDs, dataclasses and
  pydantic models are accepted; anything else raises :class:`TypeError`) and always handed back
  decoded from that JSON, so a caller never shares a mutable object with the store;
* times are instants: a naive datetime is taken as UTC and every datetime read back is UTC-aware;
* within one batch the puts apply in order, then the deletes (a key both put and deleted ends up
  deleted), and a call record given twice keeps the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel

from ..domain.cdr import CallRecord
from ..ports.storage import Batch, CdrQuery, EncodedDoc, Put


def _default(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_json(value: Any) -> str:
    """JSON text of ``value``; :class:`TypeError` when part of it cannot be represented."""
    return orjson.dumps(value, default=_default).decode()


def encode_doc(doc: dict[str, Any] | EncodedDoc) -> str:
    """The JSON text to store for a put's document (an :class:`EncodedDoc` is stored as is)."""
    if type(doc) is EncodedDoc:
        return doc.json
    return encode_json(doc)


def decode_json(text: str | bytes) -> Any:
    return orjson.loads(text)


def decode_json_array(texts: list[str]) -> list[Any]:
    """``[decode_json(t) for t in texts]`` for texts of :func:`encode_json`, in one decoder call.

    A batch's events are decoded together this way: joined into one JSON array they decode to the
    same values, with one call's overhead instead of one per event.
    """
    return orjson.loads("[" + ",".join(texts) + "]")  # type: ignore[no-any-return]


def to_utc(moment: datetime) -> datetime:
    """The same instant as an aware UTC datetime (a naive datetime is taken to be UTC)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_ts(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC text (``2026-01-01T09:00:00.000000+00:00``) that sorts by time."""
    return to_utc(moment).isoformat(timespec="microseconds")


def parse_ts(text: str) -> datetime:
    return to_utc(datetime.fromisoformat(text))


def encode_cdr(record: CallRecord) -> str:
    return record.model_dump_json()


def decode_cdr(text: str | bytes) -> CallRecord:
    return CallRecord.model_validate_json(text)


@dataclass(frozen=True, slots=True)
class DocOp:
    """The net effect of a batch on one document: ``put`` is None for a delete."""

    kind: str
    id: str
    put: Put | None


def document_ops(batch: Batch) -> list[DocOp]:
    """One operation per touched ``(kind, id)``, sorted by key.

    Sorting gives every transaction the same lock order, so concurrent commits on a server
    database cannot deadlock on document rows.
    """
    final: dict[tuple[str, str], Put | None] = {}
    for put in batch.puts:
        final[(put.kind, put.id)] = put
    for delete in batch.deletes:
        final[(delete.kind, delete.id)] = None
    return [DocOp(kind, id_, final[(kind, id_)]) for kind, id_ in sorted(final)]


def cdr_writes(batch: Batch) -> list[CallRecord]:
    """The call records of a batch, the last one per ``call_id``, sorted by ``call_id``."""
    final = {record.call_id: record for record in batch.cdrs}
    return [final[call_id] for call_id in sorted(final)]


def event_counts(batch: Batch) -> list[tuple[str, int]]:
    """How many events each tenant gets, by tenant id (the order seq counters are locked in)."""
    counts: dict[str, int] = {}
    for tenant_id, _ in batch.events:
        counts[tenant_id] = counts.get(tenant_id, 0) + 1
    return sorted(counts.items())


def page_bounds(limit: int, offset: int) -> tuple[int, int]:
    """``limit`` and ``offset`` clamped to be non-negative."""
    return max(limit, 0), max(offset, 0)


def cdr_filter(
    query: CdrQuery, placeholder: str, timestamp: Callable[[datetime], Any]
) -> tuple[str, list[Any]]:
    """The WHERE clause (over ``cdrs c``) and parameters of a CDR search, for either SQL dialect:
    ``placeholder`` is ``?`` or ``%s``; ``timestamp`` turns a datetime into the stored form."""
    p = placeholder
    clauses = [f"c.tenant_id = {p}"]
    params: list[Any] = [query.tenant_id]
    if query.calling_number is not None:
        clauses.append(f"c.from_number = {p}")
        params.append(query.calling_number)
    if query.called_number is not None:
        clauses.append(f"c.to_number = {p}")
        params.append(query.called_number)
    if query.extension_id is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM cdr_extensions e"
            f" WHERE e.call_id = c.call_id AND e.extension_id = {p})"
        )
        params.append(query.extension_id)
    if query.started_from is not None:
        clauses.append(f"c.started_at >= {p}")
        params.append(timestamp(query.started_from))
    if query.started_to is not None:
        clauses.append(f"c.started_at <= {p}")
        params.append(timestamp(query.started_to))
    return " AND ".join(clauses), params
