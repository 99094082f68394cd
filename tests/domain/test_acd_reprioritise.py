"""Re-prioritising a waiting or offered call (#4)."""

from __future__ import annotations

from typing import Any

import pytest

from callbridge.domain.acd import Offer, QueueConfig
from callbridge.domain.errors import DomainError

from .acd_support import agent, engine, moved_up, offered, show


def changed(call_id: str, priority: int, previous: int, position: int) -> Any:
    return (
        "queue.priority_changed",
        call_id,
        {"queue_id": "q1", "priority": priority, "previous": previous, "position": position},
    )


def test_a_raised_call_moves_ahead_of_lower_priorities_and_the_others_move_down() -> None:
    acd = engine(QueueConfig("q1"))
    for i, prio in enumerate((0, 0, 0, 0), 1):
        acd.arrive(f"c{i}", "q1", float(i), priority=prio)
    assert show(acd.reprioritise("c3", 5, 10.0)) == [
        changed("c3", 5, 0, 1),
        moved_up("c3", 1),
        moved_up("c1", 2),
        moved_up("c2", 3),
    ]
    assert acd.line("q1") == ["c3", "c1", "c2", "c4"]
    # the next free agent takes it first
    assert show(acd.agent_available(agent("a1"), 11.0))[:2] == [
        Offer("c3", "a1", "q1", 20.0),
        offered("c3", "a1"),
    ]


def test_it_keeps_its_arrival_order_within_the_new_priority() -> None:
    acd = engine(QueueConfig("q1"))
    acd.arrive("c1", "q1", 1.0, priority=2)
    acd.arrive("c2", "q1", 2.0, priority=0)
    acd.arrive("c3", "q1", 3.0, priority=2)
    assert acd.line("q1") == ["c1", "c3", "c2"]
    assert show(acd.reprioritise("c2", 2, 4.0)) == [
        changed("c2", 2, 0, 2),
        moved_up("c2", 2),
        moved_up("c3", 3),
    ]
    assert acd.line("q1") == ["c1", "c2", "c3"]
    # lowering: behind every higher priority
    assert show(acd.reprioritise("c1", 0, 5.0)) == [
        changed("c1", 0, 2, 3),
        moved_up("c2", 1),
        moved_up("c3", 2),
        moved_up("c1", 3),
    ]
    assert acd.line("q1") == ["c2", "c3", "c1"]


def test_an_unchanged_priority_is_a_no_op_and_an_offered_call_keeps_ringing() -> None:
    acd = engine(QueueConfig("q1"))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 1.0)
    acd.arrive("c2", "q1", 2.0)
    assert acd.calls["c1"].state == "offered"
    assert acd.reprioritise("c2", 0, 3.0) == []
    assert show(acd.reprioritise("c2", 9, 3.0)) == [
        changed("c2", 9, 0, 1),
        moved_up("c2", 1),
        moved_up("c1", 2),
    ]
    assert acd.calls["c1"].state == "offered" and acd.agents["a1"].state == "reserved"
    assert show(acd.reprioritise("c1", 9, 4.0)) == [
        changed("c1", 9, 0, 1),
        moved_up("c1", 1),
        moved_up("c2", 2),
    ]
    assert acd.line("q1") == ["c1", "c2"]


@pytest.mark.parametrize(
    ("setup", "code"),
    [("unknown", "queue_call_not_found"), ("connected", "queue_call_connected")],
)
def test_illegal_for_unknown_or_connected_calls(setup: str, code: str) -> None:
    acd = engine(QueueConfig("q1"))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 1.0)
    if setup == "connected":
        acd.answered("c1", "a1", 2.0)
    with pytest.raises(DomainError) as e:
        acd.reprioritise("c1" if setup == "connected" else "nope", 3, 3.0)
    assert e.value.code == code
