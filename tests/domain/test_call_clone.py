"""``Call.clone``: the drafts' deep copy. Equal to the call, valid, and sharing nothing mutable;
every field of the call's models is either immutable or copied explicitly (a new field that is
neither fails here until the clone learns it)."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from pydantic import BaseModel

from callbridge.domain.calls import (
    Bridge,
    BridgeKind,
    Call,
    CallOrigin,
    Direction,
    HangupCause,
    Leg,
    LegRole,
    PartyKind,
    Recording,
    Supervision,
    SupervisionMode,
    SuppressionWindow,
)

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
IMMUTABLE = (str, int, float, bool, datetime, type(None))

#: the mutable fields Call.clone copies itself, and the models they hold
COPIED = {
    (Call, "legs"): Leg,
    (Call, "bridges"): Bridge,
    (Call, "recording"): Recording,
    (Leg, "supervision"): Supervision,
    (Bridge, "leg_ids"): None,
    (Recording, "suppressions"): SuppressionWindow,
}
MODELS = (Call, Leg, Bridge, Recording, Supervision, SuppressionWindow)


def _immutable(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_immutable(a) for a in typing.get_args(annotation))
    return isinstance(annotation, type) and (
        issubclass(annotation, IMMUTABLE) or issubclass(annotation, Enum)
    )


def test_every_field_is_immutable_or_copied_by_the_clone() -> None:
    for model in MODELS:
        assert model.model_config.get("extra") in (None, "ignore", "forbid"), model
        assert not model.__private_attributes__, model
        for name, info in model.model_fields.items():
            assert _immutable(info.annotation) or (model, name) in COPIED, (model, name)


def rich_call() -> Call:
    """A call using every mutable part: legs, a supervisor, a conference, a recording."""
    call = Call(
        id="C1",
        tenant_id="t1",
        origin=CallOrigin.INBOUND,
        from_number="15551230000",
        to_number="300",
        caller_id="15551230000",
        created_at=T0,
    )
    for leg_id, kind, number, ext in (
        ("a", PartyKind.EXTERNAL, "15551230000", None),
        ("b", PartyKind.EXTENSION, "101", "ext-101"),
        ("c", PartyKind.EXTENSION, "102", "ext-102"),
    ):
        call.add_leg(
            Leg(
                id=leg_id,
                kind=kind,
                direction=Direction.INBOUND if ext is None else Direction.OUTBOUND,
                number=number,
                extension_id=ext,
                created_at=T0,
            )
        )
        call.leg_answered(leg_id, T0 + timedelta(seconds=1))
    call.bridge("br", ["a", "b"], BridgeKind.TWO_PARTY)
    call.join_bridge("br", "c")
    call.add_leg(
        Leg(
            id="s",
            kind=PartyKind.EXTENSION,
            direction=Direction.OUTBOUND,
            number="199",
            extension_id="ext-199",
            created_at=T0,
            role=LegRole.SUPERVISOR,
            supervision=Supervision(mode=SupervisionMode.LISTEN, agent_leg_id="b"),
        )
    )
    call.leg_answered("s", T0)
    call.join_bridge("br", "s")
    call.supervision_started("s")
    call.mark_answered(T0)
    call.start_recording("rec", T0)
    call.suppress_recording(T0 + timedelta(seconds=2), "ext-101")
    call.unsuppress_recording(T0 + timedelta(seconds=3), "ext-101")
    call.suppress_recording(T0 + timedelta(seconds=4), None)
    return call


def _mutable_parts(value: Any, found: dict[int, Any]) -> dict[int, Any]:
    if isinstance(value, BaseModel):
        found[id(value)] = value
        for item in value.__dict__.values():
            _mutable_parts(item, found)
    elif isinstance(value, (list, dict, set)):
        found[id(value)] = value
        for item in value.values() if isinstance(value, dict) else value:
            _mutable_parts(item, found)
    return found


def test_the_clone_is_equal_valid_and_shares_nothing_mutable() -> None:
    call = rich_call()
    clone = call.clone()
    assert clone == call and type(clone) is Call
    assert clone.model_dump(mode="json") == call.model_dump(mode="json")
    assert Call.model_validate(clone.model_dump()) == clone  # what a draft holds stays valid
    assert not _mutable_parts(call, {}).keys() & _mutable_parts(clone, {}).keys()
    # ... and every field's own state too (fields_set, no extras)
    for original, copied in zip(_models(call), _models(clone), strict=True):
        assert copied.model_fields_set == original.model_fields_set
        assert copied.model_extra is None and copied.__pydantic_private__ is None


def _models(call: Call) -> list[BaseModel]:
    return [m for m in _mutable_parts(call, {}).values() if isinstance(m, BaseModel)]


def test_changing_the_clone_leaves_the_call_as_it_was() -> None:
    call = rich_call()
    before = call.model_dump()
    clone = call.clone()
    clone.unsuppress_recording(T0 + timedelta(seconds=5), None)
    clone.leg_hungup("s", HangupCause.NORMAL, T0 + timedelta(seconds=6))  # supervision ends
    for leg_id in ("a", "b", "c"):
        clone.leg_hungup(leg_id, HangupCause.NORMAL, T0 + timedelta(seconds=6))
    clone.end(HangupCause.NORMAL, T0 + timedelta(seconds=6))
    clone.seq = 42
    assert call.model_dump() == before
    assert clone.model_dump() != before
