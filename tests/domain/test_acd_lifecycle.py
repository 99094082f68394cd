"""Offers, timeouts, misses, wrap-up, overflow, callback and the actions on waiting calls:
the exact outputs (commands and events, in order) a client and the service would see."""

from __future__ import annotations

import pytest

from callbridge.domain.acd import (
    AgentToAway,
    CallbackDue,
    CancelOffer,
    CancelReason,
    Destination,
    DestinationKind,
    Offer,
    Overflow,
    OverflowReason,
    QueueConfig,
)
from callbridge.domain.errors import Conflict, IllegalTransition, Invalid, LimitExceeded, NotFound

from .acd_support import agent, engine, entered, moved_up, offered, show

R = CancelReason


def missed(agent_id: str, call_id: str, n: int, reason: str = "timeout") -> object:
    return (
        "agent.offer_missed",
        None,
        {
            "agent_id": agent_id,
            "queue_id": "q1",
            "call_id": call_id,
            "reason": reason,
            "consecutive_missed": n,
        },
    )


def answered(call_id: str, agent_id: str, wait: float, within: bool = True) -> object:
    return (
        "queue.answered",
        call_id,
        {
            "queue_id": "q1",
            "agent_id": agent_id,
            "wait_seconds": wait,
            "within_service_level": within,
        },
    )


def test_arrival_answer_hangup_without_wrapup() -> None:
    acd = engine(QueueConfig("q1"))
    acd.agent_available(agent("a1"), 0.0)
    assert show(acd.arrive("c1", "q1", 1.0)) == [
        entered("c1"),
        Offer("c1", "a1", "q1", 20.0),
        offered("c1", "a1"),
    ]
    assert acd.next_deadline() == 21.0
    assert show(acd.answered("c1", "a1", 3.0)) == [answered("c1", "a1", 2.0)]
    assert acd.next_deadline() is None  # the ring timeout is void
    assert show(acd.ended("c1", 60.0)) == []
    assert "c1" not in acd.calls and acd.agents["a1"].state == "idle"
    assert acd.agents["a1"].talk_seconds == 57.0 and acd.agents["a1"].calls_answered == 1


def test_waiting_callers_see_their_position_change() -> None:
    acd = engine(QueueConfig("q1"))
    acd.arrive("c1", "q1", 1.0)
    assert show(acd.arrive("c2", "q1", 2.0)) == [entered("c2", 2)]
    assert show(acd.arrive("c3", "q1", 3.0, priority=1)) == [
        entered("c3", 1),
        moved_up("c1", 2),
        moved_up("c2", 3),
    ]
    acd.agent_available(agent("a1"), 4.0)  # offered c3, still first in line while ringing
    assert show(acd.answered("c3", "a1", 5.0)) == [
        answered("c3", "a1", 2.0),
        moved_up("c1", 1),
        moved_up("c2", 2),
    ]


def test_ring_timeout_is_a_missed_offer_and_the_call_moves_on_to_the_next_agent() -> None:
    acd = engine(QueueConfig("q1", ring_timeout=15.0))
    acd.agent_available(agent("a1"), 0.0)
    acd.agent_available(agent("a2"), 1.0)
    acd.arrive("c1", "q1", 10.0)  # -> a1
    assert show(acd.tick(24.9)) == []
    assert show(acd.tick(25.0)) == [
        CancelOffer("c1", "a1", R.TIMEOUT),
        missed("a1", "c1", 1),
        Offer("c1", "a2", "q1", 15.0),
        offered("c1", "a2"),
    ]
    assert acd.agents["a1"].state == "idle"  # and free for the next caller
    assert show(acd.answered("c1", "a2", 26.0)) == [answered("c1", "a2", 16.0)]
    assert acd.agents["a2"].consecutive_missed == 0


def test_a_rejected_offer_is_a_miss_reported_by_the_service() -> None:
    acd = engine(QueueConfig("q1"))
    acd.agent_available(agent("a1"), 0.0)
    acd.agent_available(agent("a2"), 1.0)
    acd.arrive("c1", "q1", 2.0)
    assert show(acd.missed("c1", "a1", 3.0, rejected=True)) == [
        missed("a1", "c1", 1, "rejected"),
        Offer("c1", "a2", "q1", 20.0),
        offered("c1", "a2"),
    ]


def test_n_consecutive_misses_move_the_agent_to_the_configured_away_option() -> None:
    acd = engine(QueueConfig("q1", max_consecutive_misses=2, away_option="Missed Calls"))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 0.0)
    assert show(acd.tick(20.0)) == [
        CancelOffer("c1", "a1", R.TIMEOUT),
        missed("a1", "c1", 1),
        Offer("c1", "a1", "q1", 20.0),  # nobody else: a new round
        offered("c1", "a1"),
    ]
    assert show(acd.tick(40.0)) == [
        CancelOffer("c1", "a1", R.TIMEOUT),
        missed("a1", "c1", 2),
        AgentToAway("a1", "Missed Calls"),
    ]
    assert acd.calls["c1"].state == "waiting" and not acd.agents["a1"].ready
    # back from away: the count starts again, and the waiting caller is offered at once
    assert show(acd.agent_available(agent("a1"), 50.0)) == [
        Offer("c1", "a1", "q1", 20.0),
        offered("c1", "a1"),
    ]
    assert acd.agents["a1"].consecutive_missed == 0


def test_an_answer_resets_the_miss_count() -> None:
    acd = engine(QueueConfig("q1", max_consecutive_misses=2))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 0.0)
    acd.tick(20.0)
    assert acd.agents["a1"].consecutive_missed == 1
    acd.answered("c1", "a1", 21.0)
    assert acd.agents["a1"].consecutive_missed == 0


def test_wrapup_per_queue_then_the_agent_takes_the_next_caller() -> None:
    acd = engine(QueueConfig("q1", wrapup_seconds=30.0))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 1.0)
    acd.answered("c1", "a1", 2.0)
    acd.arrive("c2", "q1", 3.0)
    assert show(acd.ended("c1", 10.0)) == [
        ("agent.wrapup_started", None, {"agent_id": "a1", "queue_id": "q1", "until": 40.0}),
    ]
    assert acd.next_deadline() == 40.0 and acd.agents["a1"].state == "wrapup"
    assert show(acd.tick(40.0)) == [
        ("agent.wrapup_ended", None, {"agent_id": "a1", "queue_id": None}),
        Offer("c2", "a1", "q1", 20.0),
        offered("c2", "a1"),
    ]


def test_wrapup_can_end_early() -> None:
    acd = engine(QueueConfig("q1", wrapup_seconds=30.0))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 1.0)
    acd.answered("c1", "a1", 2.0)
    acd.ended("c1", 10.0)
    assert show(acd.wrapup_ended("a1", 12.0)) == [
        ("agent.wrapup_ended", None, {"agent_id": "a1", "queue_id": None})
    ]
    assert acd.tick(40.0) == [] and acd.agents["a1"].idle_since == 12.0
    with pytest.raises(IllegalTransition) as e:
        acd.wrapup_ended("a1", 13.0)
    assert e.value.code == "agent_not_in_wrapup"


def test_abandon_while_ringing_cancels_the_offer_and_frees_the_agent() -> None:
    acd = engine(QueueConfig("q1"))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 1.0)
    acd.arrive("c2", "q1", 2.0)
    assert show(acd.abandoned("c1", 5.0)) == [
        ("queue.abandoned", "c1", {"queue_id": "q1", "wait_seconds": 4.0, "position": 1}),
        CancelOffer("c1", "a1", R.ABANDONED),
        moved_up("c2", 1),
        Offer("c2", "a1", "q1", 20.0),
        offered("c2", "a1"),
    ]
    assert acd.agents["a1"].consecutive_missed == 0  # not the agent's miss
    assert acd.stats("q1").abandoned == 1


OVERFLOW = Destination(DestinationKind.EXTENSION, "2000")


def overflowed(call_id: str, reason: str) -> object:
    return (
        "queue.overflowed",
        call_id,
        {
            "queue_id": "q1",
            "reason": reason,
            "destination": {"kind": "extension", "target": "2000"},
        },
    )


def test_max_wait_overflows_to_the_destination() -> None:
    acd = engine(QueueConfig("q1", max_wait=60.0, overflow=OVERFLOW))
    acd.arrive("c1", "q1", 0.0)
    acd.arrive("c2", "q1", 10.0)
    assert acd.next_deadline() == 60.0
    assert show(acd.tick(60.0)) == [
        Overflow("c1", "q1", OVERFLOW, OverflowReason.MAX_WAIT),
        overflowed("c1", "max_wait"),
        moved_up("c2", 1),
    ]
    assert "c1" not in acd.calls and acd.stats("q1").overflowed == 1


def test_max_wait_while_ringing_withdraws_the_offer() -> None:
    acd = engine(QueueConfig("q1", max_wait=30.0, ring_timeout=40.0, overflow=OVERFLOW))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 0.0)
    assert show(acd.tick(30.0)) == [
        Overflow("c1", "q1", OVERFLOW, OverflowReason.MAX_WAIT),
        overflowed("c1", "max_wait"),
        CancelOffer("c1", "a1", R.OVERFLOWED),
    ]
    assert acd.agents["a1"].state == "idle" and acd.tick(40.0) == []


def test_max_length_overflows_new_arrivals_at_once() -> None:
    acd = engine(QueueConfig("q1", max_length=1, overflow=OVERFLOW))
    acd.arrive("c1", "q1", 0.0)
    assert show(acd.arrive("c2", "q1", 1.0)) == [
        Overflow("c2", "q1", OVERFLOW, OverflowReason.MAX_LENGTH),
        overflowed("c2", "max_length"),
    ]
    assert acd.line("q1") == ["c1"] and "c2" not in acd.calls


def test_callback_keeps_the_place_and_calls_back_when_an_agent_is_free() -> None:
    acd = engine(QueueConfig("q1", max_wait=60.0))
    acd.arrive("c1", "q1", 0.0)
    acd.arrive("c2", "q1", 1.0)
    assert show(acd.request_callback("c1", "+15551234567", 5.0)) == [
        (
            "queue.callback_requested",
            "c1",
            {"queue_id": "q1", "number": "+15551234567", "position": 1},
        ),
    ]
    assert acd.tick(100.0)[0] == Overflow("c2", "q1", None, OverflowReason.MAX_WAIT)
    assert "c1" in acd.calls  # a callback does not overflow
    assert show(acd.agent_available(agent("a1"), 120.0)) == [
        CallbackDue("c1", "a1", "q1", "+15551234567", 20.0),
        offered("c1", "a1"),
    ]
    with pytest.raises(IllegalTransition) as e:
        acd.request_callback("c1", "+1555", 121.0)
    assert e.value.code == "queue_call_already_offered"


def test_a_second_callback_request_is_refused() -> None:
    acd = engine(QueueConfig("q1"))
    acd.arrive("c1", "q1", 0.0)
    acd.request_callback("c1", "+1555", 1.0)
    with pytest.raises(Conflict) as e:
        acd.request_callback("c1", "+1666", 2.0)
    assert e.value.code == "callback_already_requested"
    assert acd.calls["c1"].callback == "+1555"


def test_pick_a_specific_waiting_call() -> None:
    acd = engine(QueueConfig("q1"))
    acd.arrive("c1", "q1", 0.0)
    acd.arrive("c2", "q1", 1.0)
    acd.agent_available(agent("a1"), 2.0)  # -> c1
    acd.agent_available(agent("a2", {"q1": 1, "q2": 1}), 3.0)  # -> c2
    acd.arrive("c3", "q1", 4.0)
    acd.arrive("c4", "q1", 5.0)
    acd.answered("c2", "a2", 6.0)
    acd.ended("c2", 7.0)  # a2 -> c3
    acd.missed("c3", "a2", 8.0, rejected=True)  # nobody else free: c3 to a2 again
    acd.agent_unavailable("a2", 9.0)  # c3 waits
    assert acd.calls["c3"].state == "waiting" and acd.agents["a2"].state == "idle"
    assert show(acd.pick("a2", "c4", 10.0)) == [
        Offer("c4", "a2", "q1", 20.0),
        offered("c4", "a2"),
    ]
    with pytest.raises(IllegalTransition) as e:
        acd.pick("a2", "c3", 11.0)
    assert e.value.code == "agent_already_offered"
    with pytest.raises(IllegalTransition) as e:
        acd.pick("a1", "c4", 11.0)
    assert e.value.code == "queue_call_already_offered"


def test_pick_needs_membership() -> None:
    acd = engine(QueueConfig("q1"), QueueConfig("q2"))
    acd.agent_available(agent("a1", {"q2": 1}), 0.0)
    acd.arrive("c1", "q1", 1.0)
    with pytest.raises(Invalid) as e:
        acd.pick("a1", "c1", 2.0)
    assert e.value.code == "agent_not_member"
    assert acd.calls["c1"].state == "waiting" and acd.agents["a1"].state == "idle"


def test_remove_a_waiting_call_transfer_or_kill() -> None:
    acd = engine(QueueConfig("q1"))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 1.0)
    acd.arrive("c2", "q1", 2.0)
    to = Destination(DestinationKind.QUEUE, "q7")
    assert show(acd.remove("c2", 3.0, reason="transferred", destination=to)) == [
        (
            "queue.left",
            "c2",
            {
                "queue_id": "q1",
                "reason": "transferred",
                "destination": {"kind": "queue", "target": "q7"},
            },
        ),
    ]
    assert show(acd.remove("c1", 4.0, reason="killed")) == [
        ("queue.left", "c1", {"queue_id": "q1", "reason": "killed"}),
        CancelOffer("c1", "a1", R.REMOVED),
    ]
    assert acd.calls == {} and acd.stats("q1").removed == 2
    with pytest.raises(NotFound) as e:
        acd.remove("c1", 5.0)
    assert e.value.code == "queue_call_not_found"


def test_move_a_waiting_call_to_another_queue_keeping_its_arrival_order() -> None:
    acd = engine(QueueConfig("q1"), QueueConfig("q2"))
    acd.arrive("c1", "q1", 1.0)
    acd.arrive("c2", "q2", 2.0)
    assert show(acd.move("c1", "q2", 3.0)) == [
        ("queue.left", "c1", {"queue_id": "q1", "reason": "moved", "to_queue": "q2"}),
        entered("c1", 1, "q2"),
        moved_up("c2", 2, "q2"),
    ]
    out = acd.agent_available(agent("a1", {"q2": 1}), 4.0)
    assert show(out) == [Offer("c1", "a1", "q2", 20.0), offered("c1", "a1", "q2")]
    assert show(acd.move("c1", "q1", 5.0)) == [
        ("queue.left", "c1", {"queue_id": "q2", "reason": "moved", "to_queue": "q1"}),
        CancelOffer("c1", "a1", R.MOVED),
        moved_up("c2", 1, "q2"),
        entered("c1", 1, "q1"),
        Offer("c2", "a1", "q2", 20.0),
        offered("c2", "a1", "q2"),
    ]


def test_move_refusals_leave_the_call_where_it_was() -> None:
    acd = engine(QueueConfig("q1"), QueueConfig("q2", max_length=1))
    acd.arrive("c1", "q1", 1.0)
    acd.arrive("c2", "q2", 2.0)
    with pytest.raises(LimitExceeded) as e:
        acd.move("c1", "q2", 3.0)
    assert e.value.code == "queue_full"
    with pytest.raises(Invalid) as e2:
        acd.move("c1", "q1", 3.0)
    assert e2.value.code == "queue_call_same_queue"
    with pytest.raises(NotFound) as e3:
        acd.move("c1", "q9", 3.0)
    assert e3.value.code == "queue_not_found"
    assert acd.line("q1") == ["c1"] and acd.line("q2") == ["c2"]


def test_agent_going_away_while_ringing_withdraws_the_offer_to_the_next_agent() -> None:
    acd = engine(QueueConfig("q1"))
    acd.agent_available(agent("a1"), 0.0)
    acd.agent_available(agent("a2"), 1.0)
    acd.arrive("c1", "q1", 2.0)
    assert show(acd.agent_unavailable("a1", 3.0)) == [
        CancelOffer("c1", "a1", R.AGENT_UNAVAILABLE),
        Offer("c1", "a2", "q1", 20.0),
        offered("c1", "a2"),
    ]
    assert acd.agents["a1"].consecutive_missed == 0


def test_sign_out_while_busy_finishes_the_call_then_forgets_the_agent() -> None:
    acd = engine(QueueConfig("q1", wrapup_seconds=5.0))
    acd.agent_available(agent("a1"), 0.0)
    acd.arrive("c1", "q1", 1.0)
    acd.answered("c1", "a1", 2.0)
    assert acd.agent_unavailable("a1", 3.0, sign_out=True) == []
    assert acd.agents["a1"].state == "busy"
    acd.arrive("c2", "q1", 4.0)
    acd.ended("c1", 10.0)
    acd.tick(15.0)
    assert "a1" not in acd.agents and acd.calls["c2"].state == "waiting"
    assert acd.idle_agents("q1") == frozenset()


def test_queue_config_change_redistributes() -> None:
    acd = engine(QueueConfig("q1", required_skills=frozenset({"fr"})))
    acd.agent_available(agent("a1", de=1), 0.0)
    acd.arrive("c1", "q1", 1.0)
    assert acd.calls["c1"].state == "waiting"
    out = acd.configure_queue(QueueConfig("q1", ring_timeout=10.0), 2.0)
    assert show(out) == [Offer("c1", "a1", "q1", 10.0), offered("c1", "a1")]


def test_service_level_counts_answers_within_the_threshold() -> None:
    acd = engine(QueueConfig("q1", service_level_seconds=10.0))
    acd.arrive("c1", "q1", 0.0)
    acd.arrive("c2", "q1", 0.0)
    acd.agent_available(agent("a1"), 5.0)
    acd.agent_available(agent("a2"), 11.0)
    assert show(acd.answered("c1", "a1", 6.0))[0] == answered("c1", "a1", 6.0)
    assert show(acd.answered("c2", "a2", 12.0))[0] == answered("c2", "a2", 12.0, within=False)
    stats = acd.stats("q1")
    assert (stats.answered, stats.answered_within_service_level, stats.service_level) == (2, 1, 0.5)


def test_stale_inputs_are_refused_with_stable_codes_and_change_nothing() -> None:
    acd = engine(QueueConfig("q1"))
    acd.agent_available(agent("a1"), 0.0)
    acd.agent_available(agent("a2"), 0.0)
    acd.arrive("c1", "q1", 1.0)  # -> a1
    with pytest.raises(Conflict) as e:
        acd.answered("c1", "a2", 2.0)
    assert e.value.code == "offer_not_found"
    with pytest.raises(Conflict) as e:
        acd.arrive("c1", "q1", 2.0)
    assert e.value.code == "queue_call_exists"
    acd.answered("c1", "a1", 2.0)
    with pytest.raises(IllegalTransition) as e2:
        acd.abandoned("c1", 3.0)
    assert e2.value.code == "queue_call_connected"
    with pytest.raises(IllegalTransition) as e2:
        acd.missed("c1", "a1", 3.0)
    assert e2.value.code == "queue_call_connected"
    with pytest.raises(NotFound) as e3:
        acd.arrive("c9", "q9", 3.0)
    assert e3.value.code == "queue_not_found"
    with pytest.raises(NotFound) as e3:
        acd.agent_unavailable("a9", 3.0)
    assert e3.value.code == "agent_not_found"
    assert acd.calls["c1"].state == "connected" and acd.agents["a1"].state == "busy"
    assert acd.agents["a2"].state == "idle"


def test_a_call_restored_after_a_restart_keeps_its_wait() -> None:
    acd = engine(QueueConfig("q1", max_wait=60.0, overflow=OVERFLOW))
    acd.arrive("c1", "q1", 100.0, arrived_at=50.0)
    assert acd.next_deadline() == 110.0
    acd.agent_available(agent("a1"), 105.0)
    assert show(acd.answered("c1", "a1", 106.0))[0] == answered("c1", "a1", 56.0, within=False)


@pytest.mark.parametrize(
    "field",
    [
        {"ring_timeout": 0.0},
        {"wrapup_seconds": -1.0},
        {"max_wait": 0.0},
        {"max_length": -1},
        {"service_level_seconds": -1.0},
        {"max_consecutive_misses": -1},
    ],
)
def test_queue_config_out_of_range_fails_loudly(field: dict[str, float]) -> None:
    with pytest.raises(Invalid) as e:
        QueueConfig("q1", **field)  # type: ignore[arg-type]
    assert e.value.code == "queue_config_invalid"
    assert e.value.details["fields"] == list(field)
