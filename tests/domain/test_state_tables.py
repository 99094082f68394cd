"""Every transition table of the domain, walked over the whole product of its states and events.

For each (state, event) pair: a pair in the table moves to the expected state; any other pair
raises IllegalTransition with a stable code, and the entity method that uses the table leaves the
entity exactly as it was. The expected tables and codes are written out here on purpose: changing a
table or a code is an API change and must show up as a failing test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel

from callbridge.domain.agents import PHONE, PRESENCE, AgentState, PhoneEvent, PhoneState
from callbridge.domain.calls import (
    CALL,
    HOLD,
    LEG,
    MUTE,
    RECORDING,
    Call,
    CallEvent,
    CallOrigin,
    CallState,
    Direction,
    HangupCause,
    HoldEvent,
    HoldState,
    Leg,
    LegEvent,
    LegState,
    MuteEvent,
    MuteState,
    PartyKind,
    Recording,
    RecordingEvent,
    RecordingState,
    SuppressionWindow,
)
from callbridge.domain.directory import PresenceType
from callbridge.domain.errors import IllegalTransition
from callbridge.domain.fsm import Machine

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=30)

# (state, event) -> new state, for every pair each table allows.
ALLOWED: dict[str, dict[tuple[str, str], str]] = {
    "leg": {
        ("dialing", "ring"): "ringing",
        ("dialing", "answer"): "answered",
        ("dialing", "hangup"): "hungup",
        ("ringing", "answer"): "answered",
        ("ringing", "hangup"): "hungup",
        ("answered", "hangup"): "hungup",
    },
    "hold": {("active", "hold"): "held", ("held", "unhold"): "active"},
    "mute": {("unmuted", "mute"): "muted", ("muted", "unmute"): "unmuted"},
    "call": {
        ("setup", "ring"): "ringing",
        ("setup", "queue"): "queued",
        ("setup", "answer"): "answered",
        ("setup", "end"): "ended",
        ("ringing", "queue"): "queued",
        ("ringing", "answer"): "answered",
        ("ringing", "end"): "ended",
        ("queued", "answer"): "answered",
        ("queued", "end"): "ended",
        ("answered", "queue"): "queued",
        ("answered", "end"): "ended",
    },
    "recording": {
        ("active", "suppress"): "suppressed",
        ("active", "stop"): "stopped",
        ("suppressed", "unsuppress"): "active",
        ("suppressed", "stop"): "stopped",
    },
    "phone": {
        ("idle", "offer"): "ringing",
        ("idle", "answer"): "talking",
        ("ringing", "answer"): "talking",
        ("ringing", "miss"): "idle",
        ("ringing", "release"): "idle",
        ("talking", "hold"): "held",
        ("talking", "release"): "idle",
        ("talking", "wrapup"): "wrapup",
        ("held", "unhold"): "talking",
        ("held", "release"): "idle",
        ("held", "wrapup"): "wrapup",
        ("wrapup", "done"): "idle",
    },
    "presence": {
        ("sign_out", "ready"): "ready",
        ("sign_out", "away"): "away",
        ("ready", "away"): "away",
        ("ready", "sign_out"): "sign_out",
        ("away", "ready"): "ready",
        ("away", "away"): "away",
        ("away", "sign_out"): "sign_out",
    },
}

# (state, event) -> code, for every refused pair (the rest of the product).
REFUSED: dict[str, dict[tuple[str, str], str]] = {
    "leg": {
        ("ringing", "ring"): "leg_cannot_ring",
        ("answered", "ring"): "leg_already_answered",
        ("answered", "answer"): "leg_already_answered",
        ("hungup", "ring"): "leg_already_hungup",
        ("hungup", "answer"): "leg_already_hungup",
        ("hungup", "hangup"): "leg_already_hungup",
    },
    "hold": {("active", "unhold"): "leg_not_held", ("held", "hold"): "leg_already_held"},
    "mute": {("unmuted", "unmute"): "leg_not_muted", ("muted", "mute"): "leg_already_muted"},
    "call": {
        ("ringing", "ring"): "call_cannot_ring",
        ("queued", "ring"): "call_cannot_ring",
        ("queued", "queue"): "call_cannot_queue",
        ("answered", "ring"): "call_cannot_ring",
        ("answered", "answer"): "call_cannot_answer",
        ("ended", "ring"): "call_ended",
        ("ended", "queue"): "call_ended",
        ("ended", "answer"): "call_ended",
        ("ended", "end"): "call_ended",
    },
    "recording": {
        ("active", "unsuppress"): "recording_not_suppressed",
        ("suppressed", "suppress"): "recording_already_suppressed",
        ("stopped", "suppress"): "recording_stopped",
        ("stopped", "unsuppress"): "recording_stopped",
        ("stopped", "stop"): "recording_stopped",
    },
    "phone": {
        ("idle", "hold"): "phone_cannot_hold",
        ("idle", "unhold"): "phone_cannot_unhold",
        ("idle", "miss"): "phone_cannot_miss",
        ("idle", "release"): "phone_cannot_release",
        ("idle", "wrapup"): "phone_cannot_wrapup",
        ("idle", "done"): "agent_not_in_wrapup",
        ("ringing", "offer"): "agent_already_offered",
        ("ringing", "hold"): "phone_cannot_hold",
        ("ringing", "unhold"): "phone_cannot_unhold",
        ("ringing", "wrapup"): "phone_cannot_wrapup",
        ("ringing", "done"): "phone_cannot_done",
        ("talking", "offer"): "agent_busy",
        ("talking", "answer"): "phone_cannot_answer",
        ("talking", "unhold"): "agent_not_held",
        ("talking", "miss"): "phone_cannot_miss",
        ("talking", "done"): "phone_cannot_done",
        ("held", "offer"): "agent_busy",
        ("held", "answer"): "phone_cannot_answer",
        ("held", "hold"): "agent_already_held",
        ("held", "miss"): "phone_cannot_miss",
        ("held", "done"): "phone_cannot_done",
        ("wrapup", "offer"): "agent_in_wrapup",
        ("wrapup", "answer"): "phone_cannot_answer",
        ("wrapup", "hold"): "phone_cannot_hold",
        ("wrapup", "unhold"): "phone_cannot_unhold",
        ("wrapup", "miss"): "phone_cannot_miss",
        ("wrapup", "release"): "phone_cannot_release",
        ("wrapup", "wrapup"): "phone_cannot_wrapup",
    },
    "presence": {
        ("ready", "ready"): "agent_already_ready",
        ("sign_out", "sign_out"): "agent_already_signed_out",
    },
}

MACHINES: dict[str, tuple[Machine[Any, Any], type[StrEnum], type[StrEnum]]] = {
    "leg": (LEG, LegState, LegEvent),
    "hold": (HOLD, HoldState, HoldEvent),
    "mute": (MUTE, MuteState, MuteEvent),
    "call": (CALL, CallState, CallEvent),
    "recording": (RECORDING, RecordingState, RecordingEvent),
    "phone": (PHONE, PhoneState, PhoneEvent),
    "presence": (PRESENCE, PresenceType, PresenceType),
}


def product(name: str) -> list[tuple[StrEnum, StrEnum]]:
    _, states, events = MACHINES[name]
    return [(s, e) for s in states for e in events]


def all_pairs() -> list[Any]:
    return [
        pytest.param(name, s, e, id=f"{name}-{s}-{e}")
        for name in MACHINES
        for s, e in product(name)
    ]


# --------------------------------------------------------------------------- the tables


@pytest.mark.parametrize("name", list(MACHINES))
def test_expectations_cover_the_whole_product(name: str) -> None:
    machine, _, _ = MACHINES[name]
    assert machine.name == name
    pairs = {(str(s), str(e)) for s, e in product(name)}
    allowed, refused = set(ALLOWED[name]), set(REFUSED[name])
    assert not allowed & refused
    assert allowed | refused == pairs
    assert {(str(s), str(e)) for s, e in machine.table} == allowed
    # every specific code the machine declares is for a pair it refuses
    assert {(str(s), str(e)) for s, e in machine.codes} <= refused


@pytest.mark.parametrize(("name", "state", "event"), all_pairs())
def test_machine_next(name: str, state: StrEnum, event: StrEnum) -> None:
    machine, states, _ = MACHINES[name]
    key = (str(state), str(event))
    if key in ALLOWED[name]:
        assert machine.allows(state, event)
        new = machine.next(state, event)
        assert new == states(ALLOWED[name][key])
        assert type(new) is states
    else:
        assert not machine.allows(state, event)
        with pytest.raises(IllegalTransition) as exc:
            machine.next(state, event)
        assert exc.value.code == REFUSED[name][key]
        assert exc.value.details == {"machine": name, "state": str(state), "event": str(event)}


# --------------------------------------------------------------------------- the entities


def make_call(call_state: CallState = CallState.ANSWERED, **leg_fields: Any) -> Call:
    call = Call(
        id="c1",
        tenant_id="t1",
        origin=CallOrigin.INBOUND,
        from_number="+4930123456",
        to_number="500",
        state=call_state,
        created_at=T0,
    )
    if leg_fields:
        call.legs["l1"] = Leg(
            id="l1",
            kind=PartyKind.EXTENSION,
            direction=Direction.OUTBOUND,
            number="201",
            created_at=T0,
            **leg_fields,
        )
    return call


def make_agent(**fields: Any) -> AgentState:
    return AgentState(
        tenant_id="t1", extension_id="e1", presence_since=T0, phone_since=T0, **fields
    )


def check(
    entity: BaseModel,
    apply: Callable[[], object],
    read: Callable[[], StrEnum],
    name: str,
    state: StrEnum,
    event: StrEnum,
) -> None:
    """Apply the event through the entity; check the new state, or the refusal and no change."""
    key = (str(state), str(event))
    if key in ALLOWED[name]:
        apply()
        assert read() == ALLOWED[name][key]
        return
    before = entity.model_dump()
    with pytest.raises(IllegalTransition) as exc:
        apply()
    assert exc.value.code == REFUSED[name][key]
    assert entity.model_dump() == before


@pytest.mark.parametrize(("state", "event"), product("leg"))
def test_call_leg_methods(state: LegState, event: LegEvent) -> None:
    call = make_call(CallState.RINGING, state=state)
    apply: dict[LegEvent, Callable[[], object]] = {
        LegEvent.RING: lambda: call.leg_ringing("l1"),
        LegEvent.ANSWER: lambda: call.leg_answered("l1", NOW),
        LegEvent.HANGUP: lambda: call.leg_hungup("l1", HangupCause.NORMAL, NOW),
    }
    check(call, apply[event], lambda: call.legs["l1"].state, "leg", state, event)


@pytest.mark.parametrize(("state", "event"), product("hold"))
def test_call_hold_methods(state: HoldState, event: HoldEvent) -> None:
    call = make_call(state=LegState.ANSWERED, hold=state)
    apply = {HoldEvent.HOLD: call.hold, HoldEvent.UNHOLD: call.unhold}[event]
    check(call, lambda: apply("l1"), lambda: call.legs["l1"].hold, "hold", state, event)


@pytest.mark.parametrize(("state", "event"), product("mute"))
def test_call_mute_methods(state: MuteState, event: MuteEvent) -> None:
    call = make_call(state=LegState.ANSWERED, mute=state)
    apply = {MuteEvent.MUTE: call.mute, MuteEvent.UNMUTE: call.unmute}[event]
    check(call, lambda: apply("l1"), lambda: call.legs["l1"].mute, "mute", state, event)


# RING has no method of its own: leg_ringing only moves the call when CALL.allows it.
@pytest.mark.parametrize(
    ("state", "event"), [(s, e) for s, e in product("call") if e is not CallEvent.RING]
)
def test_call_lifecycle_methods(state: CallState, event: CallEvent) -> None:
    call = make_call(state)  # no legs, so end() is allowed to proceed
    apply: dict[CallEvent, Callable[[], object]] = {
        CallEvent.QUEUE: lambda: call.mark_queued("q1", NOW),
        CallEvent.ANSWER: lambda: call.mark_answered(NOW),
        CallEvent.END: lambda: call.end(HangupCause.NORMAL, NOW),
    }
    if (state, event) == (CallState.ANSWERED, CallEvent.ANSWER):
        before = call.model_dump()
        assert call.mark_answered(NOW) == []  # idempotent: no refusal, no event, no change
        assert call.model_dump() == before
        return
    check(call, apply[event], lambda: call.state, "call", state, event)


@pytest.mark.parametrize("state", list(CallState))
def test_leg_ringing_moves_the_call_only_when_allowed(state: CallState) -> None:
    call = make_call(state)
    call.legs["l2"] = Leg(
        id="l2", kind=PartyKind.EXTENSION, direction=Direction.OUTBOUND, number="202", created_at=T0
    )
    events = call.leg_ringing("l2")
    expected = CALL.next(state, CallEvent.RING) if CALL.allows(state, CallEvent.RING) else state
    assert call.state is expected
    assert events[0].type == "leg.ringing"
    assert ("call.state_changed" in [e.type for e in events]) == (expected is not state)


@pytest.mark.parametrize(("state", "event"), product("recording"))
def test_call_recording_methods(state: RecordingState, event: RecordingEvent) -> None:
    call = make_call(state=LegState.ANSWERED)
    suppressions = (
        [SuppressionWindow(started_at=T0, by="u0")] if state is RecordingState.SUPPRESSED else []
    )
    call.recording = Recording(id="r1", state=state, started_at=T0, suppressions=suppressions)
    apply: dict[RecordingEvent, Callable[[], object]] = {
        RecordingEvent.SUPPRESS: lambda: call.suppress_recording(NOW, "u1"),
        RecordingEvent.UNSUPPRESS: lambda: call.unsuppress_recording(NOW, "u1"),
        RecordingEvent.STOP: lambda: call.stop_recording(NOW),
    }
    rec = call.recording
    check(call, apply[event], lambda: rec.state, "recording", state, event)


@pytest.mark.parametrize(("state", "event"), product("phone"))
def test_agent_phone_event(state: PhoneState, event: PhoneEvent) -> None:
    agent = make_agent(phone=state, consecutive_missed=1)
    check(agent, lambda: agent.phone_event(event, NOW), lambda: agent.phone, "phone", state, event)


@pytest.mark.parametrize(("state", "event"), product("presence"))
def test_agent_set_presence(state: PresenceType, event: PresenceType) -> None:
    agent = make_agent(presence=state, presence_name="Current")
    check(
        agent,
        lambda: agent.set_presence(event, "Other", NOW),
        lambda: agent.presence,
        "presence",
        state,
        event,
    )
