"""Agent presence and phone state."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime, timedelta
from enum import Enum

import pytest

from callbridge.domain.agents import (
    PHONE,
    AgentState,
    PhoneEvent,
    PhoneState,
    clock_duration,
    phone_steps,
)
from callbridge.domain.directory import PresenceType
from callbridge.domain.errors import IllegalTransition
from callbridge.domain.events import EventCategory

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def agent(**fields: object) -> AgentState:
    return AgentState.model_validate(
        {"tenant_id": "t1", "extension_id": "e1", "presence_since": T0, "phone_since": T0, **fields}
    )


def test_a_new_agent_is_signed_out_and_idle() -> None:
    a = agent()
    assert (a.presence, a.presence_name, a.phone) == (
        PresenceType.SIGN_OUT,
        "Sign Out",
        PhoneState.IDLE,
    )
    assert (a.consecutive_missed, a.queue_id, a.queue_since) == (0, None, None)


def test_set_presence_event_and_timestamps() -> None:
    a = agent()
    ev, signed_in = a.set_presence(PresenceType.READY, "Available", at(5))
    assert signed_in.type == "agent.signed_in"
    assert signed_in.data == {
        "extension_id": "e1",
        "presence": {"type": PresenceType.READY, "name": "Available"},
    }
    assert (ev.type, ev.category, ev.call_id) == (
        "agent.presence_changed",
        EventCategory.AGENT,
        None,
    )
    assert ev.data == {
        "extension_id": "e1",
        "presence": {"type": PresenceType.READY, "name": "Available"},
        "previous": {"type": PresenceType.SIGN_OUT, "name": "Sign Out"},
    }
    assert (a.presence, a.presence_name, a.presence_since) == (
        PresenceType.READY,
        "Available",
        at(5),
    )
    assert a.phone_since == T0  # presence does not touch the phone


def test_away_to_another_away_option() -> None:
    a = agent(presence=PresenceType.AWAY, presence_name="Lunch")
    [ev] = a.set_presence(PresenceType.AWAY, "Meeting", at(1))
    assert ev.data["previous"] == {"type": PresenceType.AWAY, "name": "Lunch"}
    assert (a.presence, a.presence_name) == (PresenceType.AWAY, "Meeting")


@pytest.mark.parametrize(
    ("presence", "name", "target", "code"),
    [
        (PresenceType.AWAY, "Lunch", PresenceType.AWAY, "agent_already_away"),
        (PresenceType.READY, "Available", PresenceType.READY, "agent_already_ready"),
        (PresenceType.SIGN_OUT, "Sign Out", PresenceType.SIGN_OUT, "agent_already_signed_out"),
    ],
)
def test_same_presence_again_is_refused(
    presence: PresenceType, name: str, target: PresenceType, code: str
) -> None:
    a = agent(presence=presence, presence_name=name)
    before = a.model_dump()
    with pytest.raises(IllegalTransition) as exc:
        a.set_presence(target, name, at(9))
    assert exc.value.code == code
    assert a.model_dump() == before


def test_ready_again_is_refused_even_with_another_name() -> None:
    a = agent(presence=PresenceType.READY, presence_name="Available")
    with pytest.raises(IllegalTransition) as exc:
        a.set_presence(PresenceType.READY, "Ready too", at(1))
    assert exc.value.code == "agent_already_ready"
    assert a.presence_name == "Available"


def test_a_call_cycle_through_the_phone_states() -> None:
    a = agent(presence=PresenceType.READY)
    steps = [
        (PhoneEvent.OFFER, PhoneState.RINGING),
        (PhoneEvent.ANSWER, PhoneState.TALKING),
        (PhoneEvent.HOLD, PhoneState.HELD),
        (PhoneEvent.UNHOLD, PhoneState.TALKING),
        (PhoneEvent.WRAPUP, PhoneState.WRAPUP),
        (PhoneEvent.DONE, PhoneState.IDLE),
    ]
    previous = PhoneState.IDLE
    for i, (event, state) in enumerate(steps, start=1):
        [ev] = a.phone_event(event, at(i))
        assert (ev.type, ev.category) == ("agent.phone_state_changed", EventCategory.AGENT)
        assert ev.data == {"extension_id": "e1", "state": state, "previous": previous}
        assert (a.phone, a.phone_since) == (state, at(i))
        previous = state
    assert a.presence is PresenceType.READY  # the phone does not touch presence


def test_busy_is_the_old_name_of_talking() -> None:
    assert PhoneState.BUSY is PhoneState.TALKING
    assert list(PhoneState) == ["idle", "ringing", "talking", "held", "wrapup"]


def test_missed_offers_are_counted_and_an_answer_or_ready_resets_the_count() -> None:
    a = agent(presence=PresenceType.READY)
    for i in range(3):
        [ev] = a.miss_offer("q1", f"c{i}")
        assert (ev.type, ev.data["consecutive_missed"]) == ("agent.offer_missed", i + 1)
        assert ev.data["queue_id"] == "q1" and ev.data["call_id"] == f"c{i}"
    assert a.consecutive_missed == 3
    a.phone_event(PhoneEvent.OFFER, at(3))
    a.phone_event(PhoneEvent.MISS, at(4))  # the phone stops ringing; counting is miss_offer's
    assert (a.phone, a.consecutive_missed) == (PhoneState.IDLE, 3)
    a.follow(PhoneState.TALKING, at(5), call_id="own")  # the agent's own call: no reset
    a.follow(PhoneState.IDLE, at(6))
    assert a.consecutive_missed == 3
    a.follow(PhoneState.RINGING, at(7), call_id="c4", queue_call=True)
    a.follow(PhoneState.TALKING, at(8), call_id="c4", queue_call=True)
    assert a.consecutive_missed == 0
    a.miss_offer("q1", "c9")
    a.set_presence(PresenceType.AWAY, "Lunch", at(7))
    assert a.consecutive_missed == 1
    a.set_presence(PresenceType.READY, "Ready", at(8))
    assert a.consecutive_missed == 0


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        (PhoneState.RINGING, "agent_already_offered"),
        (PhoneState.TALKING, "agent_busy"),
        (PhoneState.HELD, "agent_busy"),
        (PhoneState.WRAPUP, "agent_in_wrapup"),
    ],
)
def test_offers_to_an_agent_who_is_not_idle(phone: PhoneState, code: str) -> None:
    a = agent(phone=phone, consecutive_missed=2)
    before = a.model_dump()
    with pytest.raises(IllegalTransition) as exc:
        a.phone_event(PhoneEvent.OFFER, at(1))
    assert exc.value.code == code
    assert a.model_dump() == before


def test_sign_out_event() -> None:
    a = agent(presence=PresenceType.AWAY, presence_name="Lunch")
    changed, signed_out = a.set_presence(PresenceType.SIGN_OUT, "End of Shift", at(1))
    assert changed.type == "agent.presence_changed"
    assert (signed_out.type, signed_out.data["name"]) == ("agent.signed_out", "End of Shift")
    assert not a.signed_in


@pytest.mark.parametrize(
    ("current", "observed", "flags", "steps"),
    [
        ("idle", "idle", {}, []),
        ("idle", "ringing", {}, ["offer"]),
        ("idle", "talking", {}, ["answer"]),
        ("idle", "held", {}, ["answer", "hold"]),
        ("ringing", "talking", {}, ["answer"]),
        ("ringing", "idle", {}, ["release"]),
        ("ringing", "idle", {"missed": True}, ["miss"]),
        ("talking", "held", {}, ["hold"]),
        ("held", "talking", {}, ["unhold"]),
        ("talking", "idle", {}, ["release"]),
        ("talking", "idle", {"wrapup": True}, ["wrapup"]),
        ("held", "idle", {"wrapup": True}, ["wrapup"]),
        ("talking", "ringing", {"wrapup": True}, ["release", "offer"]),
        ("wrapup", "idle", {}, []),
        ("wrapup", "ringing", {}, ["done", "offer"]),
        ("wrapup", "talking", {}, ["done", "answer"]),
    ],
)
def test_phone_steps_walk_the_table(
    current: str, observed: str, flags: dict[str, bool], steps: list[str]
) -> None:
    assert phone_steps(PhoneState(current), PhoneState(observed), **flags) == steps
    state = PhoneState(current)
    for step in steps:  # every step is a legal transition
        state = PHONE.next(state, PhoneEvent(step))
    expected = PhoneState.WRAPUP if flags.get("wrapup") and observed == "idle" else observed
    assert state == (PhoneState.WRAPUP if current == "wrapup" and observed == "idle" else expected)


def test_wrapup_cannot_be_observed() -> None:
    with pytest.raises(ValueError):
        phone_steps(PhoneState.IDLE, PhoneState.WRAPUP)


def test_follow_sets_call_wrapup_deadline_and_queue_state() -> None:
    a = agent(presence=PresenceType.READY)
    events = a.follow(PhoneState.RINGING, at(1), call_id="c1")
    events += a.set_queue("q1", at(1))
    assert (a.phone, a.call_id, a.queue_status) == (PhoneState.RINGING, "c1", "Offered")
    events += a.follow(PhoneState.TALKING, at(3), call_id="c1")
    assert a.queue_status == "Connected"
    events += a.follow(PhoneState.IDLE, at(60), wrapup_seconds=30)
    assert (a.phone, a.wrapup_until, a.queue_status) == (PhoneState.WRAPUP, at(90), "Wrap Up")
    assert [e.type for e in events] == [
        "agent.phone_state_changed",
        "agent.queue_state_changed",
        "agent.phone_state_changed",
        "agent.phone_state_changed",
    ]
    assert events[0].data["call_id"] == "c1" and events[3].data["call_id"] == "c1"
    done = a.end_wrapup(at(90))
    assert [e.type for e in done] == ["agent.phone_state_changed", "agent.queue_state_changed"]
    assert (a.phone, a.call_id, a.queue_id, a.wrapup_until) == (PhoneState.IDLE, None, None, None)


def test_clock_duration_is_the_ccs_format() -> None:
    assert clock_duration(0) == "0:00:00"
    assert clock_duration(421878) == "117:11:18"
    assert clock_duration(-5) == "0:00:00"


def test_agent_state_round_trips_as_json() -> None:
    a = agent(
        presence=PresenceType.AWAY,
        presence_name="Lunch",
        phone=PhoneState.WRAPUP,
        wrapup_until=at(30),
        queue_id="q1",
        queue_since=at(1),
    )
    assert AgentState.model_validate_json(a.model_dump_json()) == a


def test_every_field_is_immutable_so_a_shallow_copy_is_a_safe_draft() -> None:
    def immutable(annotation: object) -> bool:
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            return all(immutable(a) for a in typing.get_args(annotation))
        return isinstance(annotation, type) and issubclass(
            annotation, (str, int, float, bool, datetime, type(None), Enum)
        )

    assert AgentState.model_config.get("extra") in (None, "ignore", "forbid")
    assert not AgentState.__private_attributes__
    for name, info in AgentState.model_fields.items():
        assert immutable(info.annotation), name
    state = agent(call_id="c1", queue_id="q1", queue_since=T0, wrapup_until=at(5))
    draft = state.model_copy()
    draft.follow(PhoneState.TALKING, at(1), call_id="c2")
    draft.consecutive_missed = 3
    assert draft.phone is PhoneState.TALKING and draft.call_id == "c2"
    assert state == agent(call_id="c1", queue_id="q1", queue_since=T0, wrapup_until=at(5))
