"""CCS call objects (4.19-4.21, project-defined: the spec's bodies are cut off).

A call renders in one of the two shapes the spec names:

* **progress** (not answered yet, or never answered): who calls whom, the queue, the
  extensions involved, when it started and for how long it has lasted;
* **answered**: the same plus ``answered_on``, ``talk_duration`` and the connected parties.

A live :class:`~callbridge.domain.calls.Call` and the record of a finished one
(:class:`~callbridge.domain.cdr.CallRecord`) render alike; a finished call has ``ended_on`` and
``hangup_cause`` filled in. Datetimes are the spec's ``2021-03-12 07:23:02 AM`` in UTC
(:func:`.wire.ccs_datetime`); durations are ``H:MM:SS`` like 4.15's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...domain.agents import clock_duration
from ...domain.calls import Call, CallOrigin, LegState, SuppressionWindow
from ...domain.cdr import CallRecord
from ...domain.directory import Extension, Queue
from .wire import ccs_datetime


@dataclass(frozen=True, slots=True)
class Party:
    number: str
    kind: str
    extension_id: str | None
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What both a live call and a call record say, in one shape."""

    call_id: str
    state: str
    origin: str
    from_number: str
    to_number: str
    caller_id: str | None
    queue_id: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    cause: str | None
    extension_ids: list[str]
    parties: list[Party]
    recording: str
    suppressions: list[SuppressionWindow]

    @classmethod
    def of(cls, item: Call | CallRecord) -> CallFacts:
        if isinstance(item, Call):
            rec = item.recording
            return cls(
                call_id=item.id,
                state=item.state.value,
                origin=item.origin.value,
                from_number=item.from_number,
                to_number=item.to_number,
                caller_id=item.caller_id,
                queue_id=item.queue_id,
                started_at=item.created_at,
                answered_at=item.answered_at,
                ended_at=item.ended_at,
                cause=None if item.cause is None else item.cause.value,
                extension_ids=item.extension_ids(),
                parties=[
                    Party(leg.number, leg.kind.value, leg.extension_id, leg.answered_at)
                    for leg in item.legs.values()
                    if leg.state is LegState.ANSWERED
                ],
                recording="none" if rec is None else rec.state.value,
                suppressions=[] if rec is None else list(rec.suppressions),
            )
        return cls(
            call_id=item.call_id,
            state="ended",
            origin=item.origin,
            from_number=item.from_number,
            to_number=item.to_number,
            caller_id=item.caller_id,
            queue_id=item.queue_id,
            started_at=item.started_at,
            answered_at=item.answered_at,
            ended_at=item.ended_at,
            cause=None if item.cause is None else item.cause.value,
            extension_ids=list(item.extension_ids),
            parties=[
                Party(leg.number, leg.kind, leg.extension_id, leg.answered_at)
                for leg in item.legs
                if leg.answered_at is not None
            ],
            recording="none" if item.recording_id is None else "stopped",
            suppressions=list(item.suppressions),
        )


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a call object names besides the call: the tenant's queues and extensions."""

    now: datetime
    queues: dict[str, Queue]
    extensions: dict[str, Extension]


def _queue(ctx: CallContext, queue_id: str | None) -> dict[str, str]:
    queue = None if queue_id is None else ctx.queues.get(queue_id)
    if queue is None:
        return {"uuid": queue_id or "", "name": ""}
    return {"uuid": queue.id, "name": queue.name}


def _extensions(ctx: CallContext, ids: list[str]) -> list[dict[str, str]]:
    out = []
    for ext_id in ids:
        ext = ctx.extensions.get(ext_id)
        out.append({"uuid": ext_id, "extension": ext.number if ext is not None else ""})
    return out


def _suppressions(ctx: CallContext, windows: list[SuppressionWindow]) -> list[dict[str, str]]:
    return [
        {
            "started_on": ccs_datetime(w.started_at),
            "ended_on": ccs_datetime(w.ended_at),
            "duration": clock_duration(((w.ended_at or ctx.now) - w.started_at).total_seconds()),
        }
        for w in windows
    ]


def call_object(item: Call | CallRecord, ctx: CallContext) -> dict[str, Any]:
    """The call in its "progress" or "answered" shape (see the module docstring)."""
    f = CallFacts.of(item)
    end = f.ended_at or ctx.now
    body: dict[str, Any] = {
        "call_id": f.call_id,
        "state": f.state,
        "direction": "outbound" if f.origin == CallOrigin.ORIGINATE else "inbound",
        "calling_number": f.from_number,
        "called_number": f.to_number,
        "caller_id": f.caller_id or "",
        "queue_id": _queue(ctx, f.queue_id),
        "extensions": _extensions(ctx, f.extension_ids),
        "started_on": ccs_datetime(f.started_at),
    }
    if f.answered_at is not None:
        body["answered_on"] = ccs_datetime(f.answered_at)
    body["duration"] = clock_duration((end - f.started_at).total_seconds())
    if f.answered_at is not None:
        body["talk_duration"] = clock_duration((end - f.answered_at).total_seconds())
        body["connected_parties"] = [
            {
                "number": p.number,
                "type": p.kind,
                "extension_uuid": p.extension_id or "",
                "connected_on": ccs_datetime(p.answered_at),
            }
            for p in f.parties
        ]
    body["recording"] = {"state": f.recording, "suppressions": _suppressions(ctx, f.suppressions)}
    body["ended_on"] = ccs_datetime(f.ended_at)
    body["hangup_cause"] = f.cause or ""
    return body
