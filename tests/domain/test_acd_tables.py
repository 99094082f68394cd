"""The ACD engine's transition tables, walked over the product of their states and inputs, and
the engine's refusals: an illegal input raises a stable code and leaves the engine as it was."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from callbridge.domain.acd import (
    QUEUE_CALL,
    RESERVATION,
    AcdEngine,
    AgentInput,
    AgentState,
    CallInput,
    CallState,
    QueueConfig,
)
from callbridge.domain.errors import DomainError, IllegalTransition

from .acd_support import agent, engine

W, OF, C = "waiting", "offered", "connected"
CALL_ALLOWED = {
    (W, "offer"): OF,
    (W, "pick"): OF,
    (W, "callback"): W,
    (W, "move"): W,
    (W, "abandon"): "abandoned",
    (W, "overflow"): "overflowed",
    (W, "remove"): "removed",
    (OF, "answer"): C,
    (OF, "release"): W,
    (OF, "move"): W,
    (OF, "abandon"): "abandoned",
    (OF, "overflow"): "overflowed",
    (OF, "remove"): "removed",
    (C, "end"): "ended",
}
CALL_CODES = {
    (W, "answer"): "queue_call_not_offered",
    (W, "release"): "queue_call_cannot_release",
    (W, "end"): "queue_call_not_connected",
    (OF, "offer"): "queue_call_already_offered",
    (OF, "pick"): "queue_call_already_offered",
    (OF, "callback"): "queue_call_already_offered",
    (OF, "end"): "queue_call_not_connected",
    **{(C, i): "queue_call_connected" for i in CallInput if i != "end"},
    **{
        (s, i): "queue_call_gone"
        for s in ("ended", "abandoned", "overflowed", "removed")
        for i in CallInput
    },
}
AGENT_ALLOWED = {
    ("idle", "reserve"): "reserved",
    ("reserved", "answer"): "busy",
    ("reserved", "release"): "idle",
    ("busy", "end"): "idle",
    ("busy", "wrapup"): "wrapup",
    ("wrapup", "wrapped"): "idle",
}
AGENT_CODES = {
    ("reserved", "reserve"): "agent_already_offered",
    ("busy", "reserve"): "agent_busy",
    ("wrapup", "reserve"): "agent_in_wrapup",
    ("idle", "answer"): "agent_not_offered",
    ("idle", "release"): "agent_not_offered",
    ("idle", "wrapped"): "agent_not_in_wrapup",
    ("busy", "wrapped"): "agent_not_in_wrapup",
    ("reserved", "wrapped"): "agent_not_in_wrapup",
}


@pytest.mark.parametrize(("state", "event"), [(s, e) for s in CallState for e in CallInput])
def test_queue_call_table(state: CallState, event: CallInput) -> None:
    expected = CALL_ALLOWED.get((state, event))
    if expected is not None:
        assert QUEUE_CALL.next(state, event) == expected
        return
    with pytest.raises(IllegalTransition) as e:
        QUEUE_CALL.next(state, event)
    assert e.value.code == CALL_CODES.get((state, event), f"queue_call_cannot_{event}")


@pytest.mark.parametrize(("state", "event"), [(s, e) for s in AgentState for e in AgentInput])
def test_reservation_table(state: AgentState, event: AgentInput) -> None:
    expected = AGENT_ALLOWED.get((state, event))
    if expected is not None:
        assert RESERVATION.next(state, event) == expected
        return
    with pytest.raises(IllegalTransition) as e:
        RESERVATION.next(state, event)
    assert e.value.code == AGENT_CODES.get((state, event), f"reservation_cannot_{event}")


def test_tables_declare_codes_only_for_refused_pairs() -> None:
    assert not set(QUEUE_CALL.codes) & set(QUEUE_CALL.table)
    assert not set(RESERVATION.codes) & set(RESERVATION.table)
    assert {(str(s), str(e)) for s, e in QUEUE_CALL.table} == set(CALL_ALLOWED)
    assert {(str(s), str(e)) for s, e in RESERVATION.table} == set(AGENT_ALLOWED)


# ------------------------------------------------------------------- refusals by the engine


def snapshot(acd: AcdEngine) -> str:
    return repr(copy.deepcopy(acd.__dict__))


def scenario(call_state: str) -> AcdEngine:
    """c1 in q1 in ``call_state``; a1 holds it when offered or connected; a2 is idle, not ready."""
    acd = engine(QueueConfig("q1", wrapup_seconds=10.0), QueueConfig("q2"))
    acd.agent_available(agent("a2"), 0.0)
    acd.agent_unavailable("a2", 0.0)
    acd.agent_available(agent("a1"), 0.0)
    if call_state == W:
        acd.agent_unavailable("a1", 0.0)
    acd.arrive("c1", "q1", 1.0)
    if call_state == C:
        acd.answered("c1", "a1", 2.0)
    assert acd.calls["c1"].state == call_state
    return acd


CALL_INPUTS: dict[str, Callable[[AcdEngine], Any]] = {
    "pick": lambda acd: acd.pick("a2", "c1", 5.0),
    "answer": lambda acd: acd.answered("c1", "a1", 5.0),
    "release": lambda acd: acd.missed("c1", "a1", 5.0),
    "callback": lambda acd: acd.request_callback("c1", "+1555", 5.0),
    "move": lambda acd: acd.move("c1", "q2", 5.0),
    "abandon": lambda acd: acd.abandoned("c1", 5.0),
    "remove": lambda acd: acd.remove("c1", 5.0),
    "end": lambda acd: acd.ended("c1", 5.0),
}


@pytest.mark.parametrize("state", [W, OF, C])
@pytest.mark.parametrize("event", list(CALL_INPUTS))
def test_engine_refuses_illegal_call_inputs_and_changes_nothing(state: str, event: str) -> None:
    acd = scenario(state)
    if (state, event) in CALL_ALLOWED:
        CALL_INPUTS[event](acd)  # accepted
        return
    before = snapshot(acd)
    with pytest.raises(DomainError) as e:
        CALL_INPUTS[event](acd)
    assert e.value.code == CALL_CODES.get((state, event), f"queue_call_cannot_{event}")
    assert snapshot(acd) == before


@pytest.mark.parametrize(
    ("agent_state", "code"),
    [("reserved", "agent_already_offered"), ("busy", "agent_busy"), ("wrapup", "agent_in_wrapup")],
)
def test_engine_refuses_to_reserve_an_agent_twice(agent_state: str, code: str) -> None:
    acd = scenario(OF if agent_state == "reserved" else C)
    if agent_state == "wrapup":
        acd.ended("c1", 3.0)
    acd.agent_unavailable("a2", 4.0)
    acd.arrive("c2", "q1", 4.0)
    assert acd.agents["a1"].state == agent_state
    before = snapshot(acd)
    with pytest.raises(IllegalTransition) as e:
        acd.pick("a1", "c2", 5.0)
    assert e.value.code == code
    assert snapshot(acd) == before


@pytest.mark.parametrize("call_state", [W, OF, C])
def test_engine_refuses_to_end_a_wrapup_that_is_not_running(call_state: str) -> None:
    acd = scenario(call_state)
    before = snapshot(acd)
    with pytest.raises(IllegalTransition) as e:
        acd.wrapup_ended("a1", 5.0)
    assert e.value.code == "agent_not_in_wrapup"
    assert snapshot(acd) == before
