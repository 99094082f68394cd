"""Agent presence and phone state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callbridge.domain.agents import AgentState, PhoneEvent, PhoneState
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
    [ev] = a.set_presence(PresenceType.READY, "Available", at(5))
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
        (PhoneEvent.ANSWER, PhoneState.BUSY),
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


def test_missed_offers_are_counted_and_an_answer_resets_the_count() -> None:
    a = agent()
    for _ in range(3):
        a.phone_event(PhoneEvent.OFFER, at(1))
        a.phone_event(PhoneEvent.MISS, at(2))
    assert a.consecutive_missed == 3
    a.phone_event(PhoneEvent.OFFER, at(3))
    a.phone_event(PhoneEvent.RELEASE, at(4))  # the caller gave up: not a miss
    assert a.consecutive_missed == 3
    a.phone_event(PhoneEvent.OFFER, at(5))
    a.phone_event(PhoneEvent.ANSWER, at(6))
    assert a.consecutive_missed == 0


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        (PhoneState.RINGING, "agent_already_offered"),
        (PhoneState.BUSY, "agent_busy"),
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


def test_a_refused_miss_does_not_count() -> None:
    a = agent(phone=PhoneState.BUSY, consecutive_missed=1)
    with pytest.raises(IllegalTransition) as exc:
        a.phone_event(PhoneEvent.MISS, at(1))
    assert exc.value.code == "phone_cannot_miss"
    assert a.consecutive_missed == 1


def test_agent_state_round_trips_as_json() -> None:
    a = agent(presence=PresenceType.AWAY, presence_name="Lunch", phone=PhoneState.WRAPUP)
    assert AgentState.model_validate_json(a.model_dump_json()) == a
