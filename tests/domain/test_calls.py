"""The Call aggregate: legs, bridges, parking, recording, DTMF and the end of a call.

Every refusal is checked for its code and for leaving the call exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callbridge.domain.calls import (
    BridgeKind,
    Call,
    CallOrigin,
    CallState,
    Direction,
    HangupCause,
    HoldState,
    Leg,
    LegState,
    MuteState,
    PartyKind,
    RecordingState,
)
from callbridge.domain.errors import (
    Conflict,
    DomainError,
    IllegalTransition,
    Invalid,
    NotFound,
)
from callbridge.domain.events import DomainEvent, EventCategory

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_call(**fields: Any) -> Call:
    defaults: dict[str, Any] = {
        "id": "c1",
        "tenant_id": "t1",
        "origin": CallOrigin.ORIGINATE,
        "from_number": "101",
        "to_number": "+4930123456",
        "caller_id": "+4930000000",
        "created_at": T0,
    }
    return Call(**{**defaults, **fields})


def new_leg(leg_id: str, number: str = "101", **fields: Any) -> Leg:
    kind = PartyKind.EXTENSION if len(number) <= 6 else PartyKind.EXTERNAL
    return Leg(
        id=leg_id,
        kind=kind,
        direction=Direction.OUTBOUND,
        number=number,
        created_at=T0,
        **fields,
    )


def call_with_answered(*leg_ids: str) -> Call:
    call = new_call()
    for i, leg_id in enumerate(leg_ids):
        call.add_leg(new_leg(leg_id, f"10{i + 1}", extension_id=f"e{i + 1}"))
        call.leg_answered(leg_id, at(1))
    call.mark_answered(at(1))
    return call


def summary(events: list[DomainEvent]) -> list[tuple[str, dict[str, Any]]]:
    for e in events:
        assert e.call_id == "c1"
        assert e.category is EventCategory.CALL
    return [(e.type, e.data) for e in events]


def refused(
    call: Call, action: Callable[[], object], code: str, kind: type[DomainError] = DomainError
) -> DomainError:
    """The action raises ``kind`` with ``code`` and the call is unchanged."""
    before = call.model_dump()
    with pytest.raises(kind) as exc:
        action()
    assert exc.value.code == code
    assert call.model_dump() == before
    return exc.value


# --------------------------------------------------------------------------- queries


def test_created_event_and_queries() -> None:
    call = new_call()
    ev = call.created_event()
    assert (ev.type, ev.call_id) == ("call.created", "c1")
    assert ev.data == {
        "origin": CallOrigin.ORIGINATE,
        "from_number": "101",
        "to_number": "+4930123456",
        "caller_id": "+4930000000",
    }
    assert call.state is CallState.SETUP
    assert not call.ended
    assert call.live_legs() == []
    err = refused(call, lambda: call.leg("nope"), "leg_not_found", NotFound)
    assert err.details == {"id": "nope"}


def test_extension_ids_are_sorted_and_unique() -> None:
    call = new_call()
    call.add_leg(new_leg("a", "102", extension_id="e2"))
    call.add_leg(new_leg("b", "101", extension_id="e1"))
    call.add_leg(new_leg("c", "+4930123456"))
    call.add_leg(new_leg("d", "102", extension_id="e2"))
    assert call.extension_ids() == ["e1", "e2"]


# --------------------------------------------------------------------------- legs


def test_add_leg() -> None:
    call = new_call()
    events = call.add_leg(new_leg("a", "101", extension_id="e1"))
    assert summary(events) == [
        (
            "leg.created",
            {
                "leg_id": "a",
                "kind": PartyKind.EXTENSION,
                "direction": Direction.OUTBOUND,
                "number": "101",
                "extension_id": "e1",
            },
        )
    ]
    assert call.leg("a").state is LegState.DIALING
    err = refused(call, lambda: call.add_leg(new_leg("a", "102")), "leg_exists", Conflict)
    assert err.details == {"leg_id": "a"}
    assert call.leg("a").number == "101"


def test_add_leg_to_an_ended_call_is_refused() -> None:
    call = new_call(state=CallState.ENDED)
    refused(call, lambda: call.add_leg(new_leg("a")), "call_ended", IllegalTransition)


def test_leg_ringing_moves_the_call_once() -> None:
    call = new_call()
    call.add_leg(new_leg("a", "101"))
    call.add_leg(new_leg("b", "102"))
    assert summary(call.leg_ringing("a")) == [
        ("leg.ringing", {"leg_id": "a", "number": "101"}),
        ("call.state_changed", {"state": CallState.RINGING, "previous": CallState.SETUP}),
    ]
    assert summary(call.leg_ringing("b")) == [("leg.ringing", {"leg_id": "b", "number": "102"})]
    assert call.state is CallState.RINGING
    assert call.leg("a").state is LegState.RINGING
    refused(call, lambda: call.leg_ringing("a"), "leg_cannot_ring", IllegalTransition)


def test_leg_answered_then_call_answered() -> None:
    call = new_call()
    call.add_leg(new_leg("a", "101"))
    call.leg_ringing("a")
    assert summary(call.leg_answered("a", at(3))) == [
        ("leg.answered", {"leg_id": "a", "number": "101"})
    ]
    leg = call.leg("a")
    assert (leg.state, leg.answered_at) == (LegState.ANSWERED, at(3))
    assert call.state is CallState.RINGING  # one party is not a conversation
    refused(call, lambda: call.leg_answered("a", at(4)), "leg_already_answered")
    assert summary(call.mark_answered(at(5))) == [
        ("call.state_changed", {"state": CallState.ANSWERED, "previous": CallState.RINGING})
    ]
    assert call.answered_at == at(5)
    assert call.mark_answered(at(9)) == []
    assert call.answered_at == at(5)


def test_answered_at_is_kept_when_answered_again_after_queueing() -> None:
    call = call_with_answered("a", "b")
    assert summary(call.mark_queued("q1", at(10))) == [
        ("call.state_changed", {"state": CallState.QUEUED, "previous": CallState.ANSWERED})
    ]
    assert call.queue_id == "q1"
    call.mark_answered(at(20))
    assert call.answered_at == at(1)


def test_mark_queued_refused_keeps_queue_id() -> None:
    call = new_call(state=CallState.QUEUED, queue_id="q1")
    refused(call, lambda: call.mark_queued("q2", at(1)), "call_cannot_queue")
    assert call.queue_id == "q1"


def test_leg_hungup_records_cause_and_leaves_the_bridge() -> None:
    call = call_with_answered("a", "b")
    call.bridge("br", ["a", "b"], BridgeKind.TWO_PARTY)
    assert summary(call.leg_hungup("a", HangupCause.NORMAL, at(30))) == [
        ("leg.hungup", {"leg_id": "a", "number": "101", "cause": HangupCause.NORMAL}),
        ("bridge.left", {"bridge_id": "br", "leg_id": "a"}),
    ]
    leg = call.leg("a")
    assert (leg.state, leg.cause, leg.ended_at, leg.bridge_id) == (
        LegState.HUNGUP,
        HangupCause.NORMAL,
        at(30),
        None,
    )
    assert not leg.live
    assert call.bridges["br"].leg_ids == ["b"]
    assert call.peers_of("b") == []
    assert [x.id for x in call.live_legs()] == ["b"]
    assert summary(call.leg_hungup("b", HangupCause.BUSY, at(31)))[-1] == (
        "bridge.destroyed",
        {"bridge_id": "br"},
    )
    assert call.bridges == {}
    refused(call, lambda: call.leg_hungup("b", HangupCause.NORMAL, at(32)), "leg_already_hungup")


def test_hangup_of_a_parked_leg_unparks_it() -> None:
    call = call_with_answered("a")
    call.park("a", "701")
    assert summary(call.leg_hungup("a", HangupCause.NORMAL, at(5))) == [
        ("leg.hungup", {"leg_id": "a", "number": "101", "cause": HangupCause.NORMAL}),
        ("leg.unparked", {"leg_id": "a", "slot": "701"}),
    ]
    assert call.leg("a").parked_slot is None


def test_unknown_leg_is_not_found() -> None:
    call = call_with_answered("a")
    for action in (
        lambda: call.leg_ringing("x"),
        lambda: call.leg_answered("x", at(1)),
        lambda: call.leg_hungup("x", HangupCause.NORMAL, at(1)),
        lambda: call.hold("x"),
        lambda: call.mute("x"),
        lambda: call.park("x", "701"),
        lambda: call.unpark("x"),
        lambda: call.leave_bridge("x"),
        lambda: call.bridge("br", ["a", "x"], BridgeKind.TWO_PARTY),
        lambda: call.dtmf_sent("x", "1"),
        lambda: call.peers_of("x"),
    ):
        refused(call, action, "leg_not_found", NotFound)


# --------------------------------------------------------------------------- bridges


def test_bridge_two_legs() -> None:
    call = call_with_answered("a", "b")
    assert summary(call.bridge("br", ["a", "b"], BridgeKind.TWO_PARTY)) == [
        (
            "bridge.created",
            {"bridge_id": "br", "kind": BridgeKind.TWO_PARTY, "leg_ids": ["a", "b"]},
        )
    ]
    assert call.bridges["br"].leg_ids == ["a", "b"]
    assert call.leg("a").bridge_id == call.leg("b").bridge_id == "br"
    assert [x.id for x in call.peers_of("a")] == ["b"]
    assert call.peers_of("b")[0].id == "a"


def test_bridge_refusals_change_nothing() -> None:
    call = call_with_answered("a", "b", "c", "d")
    call.add_leg(new_leg("ringing", "109"))
    call.leg_ringing("ringing")
    call.add_leg(new_leg("gone", "108"))
    call.leg_answered("gone", at(1))
    call.leg_hungup("gone", HangupCause.NORMAL, at(2))
    call.park("d", "701")
    call.bridge("br", ["a", "b"], BridgeKind.TWO_PARTY)

    def make(legs: list[str], bridge_id: str = "new") -> Callable[[], object]:
        return lambda: call.bridge(bridge_id, legs, BridgeKind.TWO_PARTY)

    refused(call, make(["c"], "br"), "bridge_exists", Conflict)
    refused(call, make(["c", "ringing"]), "leg_not_answered", IllegalTransition)
    refused(call, make(["c", "gone"]), "leg_already_hungup", IllegalTransition)
    err = refused(call, make(["c", "a"]), "leg_already_bridged", Conflict)
    assert err.details == {"leg_id": "a"}
    refused(call, make(["c", "d"]), "leg_parked", Conflict)
    assert call.leg("c").bridge_id is None


def test_bridge_on_an_ended_call_is_refused() -> None:
    call = new_call(state=CallState.ENDED)
    refused(call, lambda: call.bridge("br", [], BridgeKind.CONFERENCE), "call_ended")


def test_join_turns_a_two_party_bridge_into_a_conference() -> None:
    call = call_with_answered("a", "b", "c", "d")
    call.bridge("br", ["a", "b"], BridgeKind.TWO_PARTY)
    assert summary(call.join_bridge("br", "c")) == [
        ("bridge.joined", {"bridge_id": "br", "leg_id": "c"}),
        ("bridge.became_conference", {"bridge_id": "br"}),
    ]
    assert call.bridges["br"].kind is BridgeKind.CONFERENCE
    assert call.bridges["br"].leg_ids == ["a", "b", "c"]
    assert sorted(x.id for x in call.peers_of("c")) == ["a", "b"]
    # already a conference: no second became_conference
    assert summary(call.join_bridge("br", "d")) == [
        ("bridge.joined", {"bridge_id": "br", "leg_id": "d"})
    ]


def test_join_a_conference_and_a_two_party_bridge_of_one() -> None:
    call = call_with_answered("a", "b")
    call.bridge("conf", ["a"], BridgeKind.CONFERENCE)
    assert [t for t, _ in summary(call.join_bridge("conf", "b"))] == ["bridge.joined"]
    call2 = call_with_answered("a", "b")
    call2.bridge("br", ["a"], BridgeKind.TWO_PARTY)
    call2.join_bridge("br", "b")
    assert call2.bridges["br"].kind is BridgeKind.TWO_PARTY


def test_join_refusals_change_nothing() -> None:
    call = call_with_answered("a", "b", "c")
    call.add_leg(new_leg("ringing", "109"))
    call.bridge("br", ["a", "b"], BridgeKind.TWO_PARTY)
    refused(call, lambda: call.join_bridge("nope", "c"), "bridge_not_found", NotFound)
    refused(call, lambda: call.join_bridge("br", "a"), "leg_already_bridged", Conflict)
    refused(call, lambda: call.join_bridge("br", "ringing"), "leg_not_answered")
    ended = new_call(state=CallState.ENDED)
    refused(ended, lambda: ended.join_bridge("br", "a"), "call_ended")


def test_join_refuses_a_parked_leg() -> None:
    call = call_with_answered("a", "b", "c")
    call.bridge("br", ["a", "b"], BridgeKind.TWO_PARTY)
    call.park("c", "701")
    refused(call, lambda: call.join_bridge("br", "c"), "leg_parked", Conflict)


def test_bridge_with_a_leg_listed_twice() -> None:
    call = call_with_answered("a", "b")
    refused(
        call,
        lambda: call.bridge("br", ["a", "a", "b"], BridgeKind.TWO_PARTY),
        "leg_duplicated",
        Invalid,
    )


def test_leave_bridge() -> None:
    call = call_with_answered("a", "b", "c")
    call.bridge("br", ["a", "b", "c"], BridgeKind.CONFERENCE)
    assert summary(call.leave_bridge("b")) == [("bridge.left", {"bridge_id": "br", "leg_id": "b"})]
    assert call.bridges["br"].leg_ids == ["a", "c"]
    assert call.leg("b").bridge_id is None
    refused(call, lambda: call.leave_bridge("b"), "leg_not_bridged", Conflict)
    call.leave_bridge("a")
    assert summary(call.leave_bridge("c")) == [
        ("bridge.left", {"bridge_id": "br", "leg_id": "c"}),
        ("bridge.destroyed", {"bridge_id": "br"}),
    ]
    assert call.bridges == {}


# --------------------------------------------------------------------------- hold and mute


def test_hold_mute_and_their_events() -> None:
    call = call_with_answered("a", "b")
    assert summary(call.hold("a")) == [("leg.held", {"leg_id": "a"})]
    assert call.leg("a").hold is HoldState.HELD
    assert summary(call.unhold("a")) == [("leg.unheld", {"leg_id": "a"})]
    assert summary(call.mute("a")) == [("leg.muted", {"leg_id": "a"})]
    assert call.leg("a").mute is MuteState.MUTED
    assert summary(call.unmute("a")) == [("leg.unmuted", {"leg_id": "a"})]
    assert (call.leg("a").hold, call.leg("a").mute) == (HoldState.ACTIVE, MuteState.UNMUTED)


def test_hold_and_mute_refusals() -> None:
    call = call_with_answered("a")
    call.add_leg(new_leg("ringing", "109"))
    call.hold("a")
    call.mute("a")
    refused(call, lambda: call.hold("a"), "leg_already_held", IllegalTransition)
    refused(call, lambda: call.mute("a"), "leg_already_muted", IllegalTransition)
    for action in (call.hold, call.unhold, call.mute, call.unmute):
        refused(call, lambda action=action: action("ringing"), "leg_not_answered")  # type: ignore[misc]
    call.unhold("a")
    call.unmute("a")
    refused(call, lambda: call.unhold("a"), "leg_not_held")
    refused(call, lambda: call.unmute("a"), "leg_not_muted")
    call.leg_hungup("a", HangupCause.NORMAL, at(9))
    refused(call, lambda: call.hold("a"), "leg_already_hungup")


# --------------------------------------------------------------------------- parking


def test_park_takes_the_leg_out_of_its_bridge() -> None:
    call = call_with_answered("a", "b")
    call.bridge("br", ["a", "b"], BridgeKind.TWO_PARTY)
    assert summary(call.park("b", "703")) == [
        ("bridge.left", {"bridge_id": "br", "leg_id": "b"}),
        ("leg.parked", {"leg_id": "b", "slot": "703"}),
    ]
    leg = call.leg("b")
    assert (leg.parked_slot, leg.bridge_id) == ("703", None)
    assert call.bridges["br"].leg_ids == ["a"]
    assert summary(call.unpark("b")) == [("leg.unparked", {"leg_id": "b", "slot": "703"})]
    assert call.leg("b").parked_slot is None
    call.join_bridge("br", "b")
    assert [x.id for x in call.peers_of("a")] == ["b"]


def test_park_a_leg_outside_any_bridge() -> None:
    call = call_with_answered("a")
    assert summary(call.park("a", "701")) == [("leg.parked", {"leg_id": "a", "slot": "701"})]


def test_park_and_unpark_refusals() -> None:
    call = call_with_answered("a", "b")
    call.add_leg(new_leg("ringing", "109"))
    call.park("a", "701")
    err = refused(call, lambda: call.park("a", "702"), "leg_already_parked", Conflict)
    assert err.details == {"slot": "701"}
    refused(call, lambda: call.park("ringing", "702"), "leg_not_answered")
    refused(call, lambda: call.unpark("b"), "leg_not_parked", Conflict)
    call.leg_hungup("b", HangupCause.NORMAL, at(3))
    refused(call, lambda: call.unpark("b"), "leg_already_hungup")
    ended = new_call(state=CallState.ENDED)
    refused(ended, lambda: ended.park("a", "701"), "call_ended")


# --------------------------------------------------------------------------- recording


def test_recording_with_suppress_windows_for_audit() -> None:
    call = call_with_answered("a", "b")
    assert summary(call.start_recording("r1", at(10))) == [
        ("recording.started", {"recording_id": "r1"})
    ]
    rec = call.recording
    assert rec is not None
    assert (rec.id, rec.state, rec.started_at) == ("r1", RecordingState.ACTIVE, at(10))
    assert summary(call.suppress_recording(at(20), "agent-1")) == [
        ("recording.suppressed", {"recording_id": "r1", "by": "agent-1"})
    ]
    assert rec.state is RecordingState.SUPPRESSED
    assert summary(call.unsuppress_recording(at(25), "agent-2")) == [
        ("recording.unsuppressed", {"recording_id": "r1", "by": "agent-2"})
    ]
    call.suppress_recording(at(40), None)
    assert summary(call.stop_recording(at(50))) == [("recording.stopped", {"recording_id": "r1"})]
    windows = [(w.started_at, w.ended_at, w.by) for w in rec.suppressions]
    assert windows == [(at(20), at(25), "agent-1"), (at(40), at(50), None)]
    assert (rec.state, rec.stopped_at) == (RecordingState.STOPPED, at(50))


def test_recording_refusals() -> None:
    call = call_with_answered("a")
    for action in (
        lambda: call.suppress_recording(at(1), None),
        lambda: call.unsuppress_recording(at(1), None),
        lambda: call.stop_recording(at(1)),
    ):
        refused(call, action, "recording_not_found", Invalid)
    call.start_recording("r1", at(1))
    refused(call, lambda: call.start_recording("r2", at(2)), "recording_active", Conflict)
    refused(call, lambda: call.unsuppress_recording(at(2), None), "recording_not_suppressed")
    call.suppress_recording(at(3), "u")
    refused(call, lambda: call.start_recording("r2", at(4)), "recording_active", Conflict)
    refused(call, lambda: call.suppress_recording(at(4), "u"), "recording_already_suppressed")
    call.stop_recording(at(5))
    refused(call, lambda: call.stop_recording(at(6)), "recording_stopped")
    refused(call, lambda: call.suppress_recording(at(6), "u"), "recording_stopped")
    # a new recording may start once the previous one stopped
    call.start_recording("r2", at(7))
    assert call.recording is not None
    assert (call.recording.id, call.recording.suppressions) == ("r2", [])


# --------------------------------------------------------------------------- the end


def test_end_refuses_while_legs_are_live() -> None:
    call = call_with_answered("a", "b")
    call.leg_hungup("a", HangupCause.NORMAL, at(5))
    refused(call, lambda: call.end(HangupCause.NORMAL, at(6)), "call_has_live_legs", Conflict)
    assert call.state is CallState.ANSWERED


def test_end_stops_the_recording_and_ends_the_call() -> None:
    call = call_with_answered("a", "b")
    call.start_recording("r1", at(2))
    call.suppress_recording(at(3), "u")
    call.leg_hungup("a", HangupCause.NORMAL, at(5))
    call.leg_hungup("b", HangupCause.NORMAL, at(5))
    assert summary(call.end(HangupCause.NORMAL, at(6))) == [
        ("recording.stopped", {"recording_id": "r1"}),
        ("call.state_changed", {"state": CallState.ENDED, "previous": CallState.ANSWERED}),
        ("call.ended", {"cause": HangupCause.NORMAL}),
    ]
    assert (call.state, call.ended_at, call.cause) == (CallState.ENDED, at(6), HangupCause.NORMAL)
    assert call.ended
    assert call.recording is not None
    assert call.recording.suppressions[0].ended_at == at(6)
    refused(call, lambda: call.end(HangupCause.NORMAL, at(7)), "call_ended")
    for action in (
        lambda: call.hold("a"),
        lambda: call.start_recording("r2", at(7)),
        lambda: call.mark_answered(at(7)),
        lambda: call.dtmf_sent("a", "1"),
    ):
        refused(call, action, "call_ended", IllegalTransition)


def test_end_without_recording_or_answer() -> None:
    call = new_call()
    call.add_leg(new_leg("a"))
    call.leg_hungup("a", HangupCause.BUSY, at(2))
    assert [t for t, _ in summary(call.end(HangupCause.BUSY, at(2)))] == [
        "call.state_changed",
        "call.ended",
    ]
    assert call.answered_at is None


# --------------------------------------------------------------------------- DTMF


def test_dtmf() -> None:
    call = call_with_answered("a")
    assert summary(call.dtmf_sent("a", "0123456789*#ABCD")) == [
        ("dtmf.sent", {"leg_id": "a", "digits": "0123456789*#ABCD"})
    ]
    for bad in ("", "E", "12 3", "a", "1-2"):
        refused(call, lambda bad=bad: call.dtmf_sent("a", bad), "dtmf_invalid", Invalid)  # type: ignore[misc]
    call.add_leg(new_leg("ringing", "109"))
    refused(call, lambda: call.dtmf_sent("ringing", "1"), "leg_not_answered")
