"""Call detail records: what remains of a call once it has ended."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from .calls import Call, HangupCause, SuppressionWindow


class LegRecord(BaseModel):
    id: str
    number: str
    kind: str
    direction: str
    extension_id: str | None = None
    created_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    cause: HangupCause | None = None


class CallRecord(BaseModel):
    call_id: str
    tenant_id: str
    origin: str
    from_number: str
    to_number: str
    caller_id: str | None = None
    queue_id: str | None = None
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime
    duration_s: float
    talk_s: float
    cause: HangupCause | None = None
    extension_ids: list[str] = Field(default_factory=list)
    legs: list[LegRecord] = Field(default_factory=list)
    recording_id: str | None = None
    suppressions: list[SuppressionWindow] = Field(default_factory=list)

    @classmethod
    def of(cls, call: Call) -> CallRecord:
        if call.ended_at is None:
            raise ValueError("only an ended call has a record")
        rec = call.recording
        return cls(
            call_id=call.id,
            tenant_id=call.tenant_id,
            origin=call.origin,
            from_number=call.from_number,
            to_number=call.to_number,
            caller_id=call.caller_id,
            queue_id=call.queue_id,
            started_at=call.created_at,
            answered_at=call.answered_at,
            ended_at=call.ended_at,
            duration_s=(call.ended_at - call.created_at).total_seconds(),
            talk_s=(call.ended_at - call.answered_at).total_seconds() if call.answered_at else 0.0,
            cause=call.cause,
            extension_ids=call.extension_ids(),
            legs=[
                LegRecord(
                    id=leg.id,
                    number=leg.number,
                    kind=leg.kind,
                    direction=leg.direction,
                    extension_id=leg.extension_id,
                    created_at=leg.created_at,
                    answered_at=leg.answered_at,
                    ended_at=leg.ended_at,
                    cause=leg.cause,
                )
                for leg in call.legs.values()
            ],
            recording_id=rec.id if rec else None,
            suppressions=list(rec.suppressions) if rec else [],
        )
