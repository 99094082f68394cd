"""The supervision part of the call aggregate: modes, who hears the supervisor, events."""

from __future__ import annotations

import pytest
from tests.domain.test_calls import at, call_with_answered, refused, summary

from callbridge.domain.calls import (
    BridgeKind,
    Call,
    HangupCause,
    Supervision,
    SupervisionMode,
)


@pytest.mark.parametrize(
    ("mode", "heard_by"),
    [
        (SupervisionMode.LISTEN, []),
        (SupervisionMode.WHISPER, ["agent"]),
        (SupervisionMode.BARGE, None),
    ],
)
def test_who_hears_the_supervisor(mode: SupervisionMode, heard_by: list[str] | None) -> None:
    assert Supervision(mode=mode, agent_leg_id="agent").heard_by() == heard_by


def supervised_call() -> Call:
    call = call_with_answered("agent", "cust", "sup")
    call.legs["sup"].supervision = Supervision(mode=SupervisionMode.LISTEN, agent_leg_id="agent")
    call.bridge("br", ["agent", "cust"], BridgeKind.TWO_PARTY)
    call.join_bridge("br", "sup")
    return call


def test_start_switch_and_end_events() -> None:
    call = supervised_call()
    refused(
        call,
        lambda: call.change_supervision("sup", SupervisionMode.BARGE),
        "supervision_not_started",
    )
    assert summary(call.supervision_started("sup")) == [
        (
            "supervision.started",
            {
                "leg_id": "sup",
                "mode": SupervisionMode.LISTEN,
                "supervisor_extension_id": "e3",
                "agent_leg_id": "agent",
            },
        )
    ]
    refused(call, lambda: call.supervision_started("sup"), "supervision_active")
    assert call.change_supervision("sup", SupervisionMode.LISTEN) == []
    assert summary(call.change_supervision("sup", SupervisionMode.WHISPER)) == [
        (
            "supervision.mode_changed",
            {
                "leg_id": "sup",
                "mode": SupervisionMode.WHISPER,
                "previous": SupervisionMode.LISTEN,
                "agent_leg_id": "agent",
            },
        )
    ]
    events = summary(call.leg_hungup("sup", HangupCause.KICKED, at(5)))
    assert events[-1] == ("supervision.ended", {"leg_id": "sup", "cause": HangupCause.KICKED})
    assert call.legs["sup"].supervision is not None and not call.legs["sup"].supervision.active


def test_only_a_supervisor_changes_mode_and_whisper_needs_the_agent() -> None:
    call = supervised_call()
    call.supervision_started("sup")
    refused(call, lambda: call.change_supervision("cust", SupervisionMode.BARGE), "not_supervisor")
    call.change_supervision("sup", SupervisionMode.BARGE)
    call.leg_hungup("agent", HangupCause.NORMAL, at(3))
    refused(
        call,
        lambda: call.change_supervision("sup", SupervisionMode.WHISPER),
        "not_supervisable",
    )
    assert call.change_supervision("sup", SupervisionMode.LISTEN) != []


def test_a_supervisor_hung_up_before_it_joined_logs_no_end() -> None:
    call = call_with_answered("agent", "cust", "sup")
    call.legs["sup"].supervision = Supervision(mode=SupervisionMode.BARGE, agent_leg_id="agent")
    events = summary(call.leg_hungup("sup", HangupCause.NORMAL, at(2)))
    assert [t for t, _ in events] == ["leg.hungup"]
