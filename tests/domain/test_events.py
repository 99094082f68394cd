"""Call events are built positionally on the hot path: they must match the field names."""

from __future__ import annotations

from datetime import UTC, datetime

from callbridge.domain.calls import Call, CallOrigin
from callbridge.domain.events import DomainEvent, EventCategory, call_event


def test_call_events_fill_the_fields_they_name() -> None:
    expected = DomainEvent(
        type="leg.ringing",
        category=EventCategory.CALL,
        call_id="C1",
        data={"leg_id": "l1", "number": "101"},
    )
    assert call_event("leg.ringing", "C1", leg_id="l1", number="101") == expected
    call = Call(
        id="C1",
        tenant_id="t1",
        origin=CallOrigin.INBOUND,
        from_number="1",
        to_number="2",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert call._ev("leg.ringing", leg_id="l1", number="101") == expected
