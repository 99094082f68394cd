"""Which agent gets the call: every strategy, member priority, skills, and customer order."""

from __future__ import annotations

import pytest

from callbridge.domain.acd import AgentProfile, CancelOffer, CancelReason, Offer, QueueConfig
from callbridge.domain.acd import Strategy as S

from .acd_support import agent, engine, entered, moved_up, offered, show


def offered_agent(outputs: list[object]) -> list[str]:
    return [o.agent_id for o in outputs if isinstance(o, Offer)]


def arrives_for(call_id: str, agent_id: str, position: int = 1) -> list[object]:
    """The outputs of an arrival offered at once to ``agent_id``."""
    return [
        entered(call_id, position),
        Offer(call_id, agent_id, "q1", 20.0),
        offered(call_id, agent_id),
    ]


def three_idle_agents(strategy: S) -> tuple[object, float]:
    """a1, a2, a3 became available at t=1, 2, 3 (a1 has been idle longest)."""
    acd = engine(QueueConfig("q1", strategy))
    for t, aid in enumerate(("a1", "a2", "a3"), start=1):
        assert acd.agent_available(agent(aid), float(t)) == []
    return acd, 3.0


def test_longest_idle_offers_the_agent_idle_longest() -> None:
    acd = engine(QueueConfig("q1", S.LONGEST_IDLE))
    acd.agent_available(agent("a2"), 2.0)
    acd.agent_available(agent("a1"), 3.0)
    assert show(acd.arrive("c1", "q1", 10.0)) == [
        entered("c1"),
        Offer("c1", "a2", "q1", 20.0),
        offered("c1", "a2"),
    ]


def test_longest_idle_counts_from_the_end_of_the_last_call() -> None:
    acd = engine(QueueConfig("q1"))
    acd.agent_available(agent("a1"), 1.0)
    acd.agent_available(agent("a2"), 2.0)
    acd.arrive("c1", "q1", 5.0)  # -> a1
    acd.answered("c1", "a1", 6.0)
    acd.ended("c1", 7.0)  # a1 idle since 7, a2 since 2
    assert show(acd.arrive("c2", "q1", 8.0)) == arrives_for("c2", "a2")


def test_round_robin_keeps_a_cursor_per_queue() -> None:
    acd, t = three_idle_agents(S.ROUND_ROBIN)
    got = []
    for n in range(5):
        cid = f"c{n}"
        (o,) = [x for x in acd.arrive(cid, "q1", t + n) if isinstance(x, Offer)]
        got.append(o.agent_id)
        acd.answered(cid, o.agent_id, t + n)
        acd.ended(cid, t + n)
    assert got == ["a1", "a2", "a3", "a1", "a2"]


def test_ring_all_offers_every_idle_member_and_the_first_answer_wins() -> None:
    acd, t = three_idle_agents(S.RING_ALL)
    assert show(acd.arrive("c1", "q1", t)) == [
        entered("c1"),
        Offer("c1", "a1", "q1", 20.0),
        offered("c1", "a1"),
        Offer("c1", "a2", "q1", 20.0),
        offered("c1", "a2"),
        Offer("c1", "a3", "q1", 20.0),
        offered("c1", "a3"),
    ]
    assert show(acd.answered("c1", "a2", t + 4)) == [
        (
            "queue.answered",
            "c1",
            {"queue_id": "q1", "agent_id": "a2", "wait_seconds": 4.0, "within_service_level": True},
        ),
        CancelOffer("c1", "a1", CancelReason.ANSWERED_ELSEWHERE),
        CancelOffer("c1", "a3", CancelReason.ANSWERED_ELSEWHERE),
    ]
    assert acd.agents["a1"].state == "idle" and acd.agents["a2"].state == "busy"


def test_ring_all_rings_only_the_best_member_priority() -> None:
    acd = engine(QueueConfig("q1", S.RING_ALL))
    acd.agent_available(agent("a1", {"q1": 2}), 0.0)
    acd.agent_available(agent("a2", {"q1": 1}), 0.0)
    acd.agent_available(agent("a3", {"q1": 1}), 0.0)
    assert show(acd.arrive("c1", "q1", 1.0)) == [
        entered("c1"),
        Offer("c1", "a2", "q1", 20.0),
        offered("c1", "a2"),
        Offer("c1", "a3", "q1", 20.0),
        offered("c1", "a3"),
    ]


def test_ring_all_cancelled_agents_take_the_next_caller() -> None:
    acd, t = three_idle_agents(S.RING_ALL)
    acd.arrive("c1", "q1", t)
    acd.arrive("c2", "q1", t)  # everyone is ringing for c1: c2 waits
    assert acd.calls["c2"].state == "waiting"
    assert show(acd.answered("c1", "a1", t + 1)) == [
        (
            "queue.answered",
            "c1",
            {"queue_id": "q1", "agent_id": "a1", "wait_seconds": 1.0, "within_service_level": True},
        ),
        CancelOffer("c1", "a2", CancelReason.ANSWERED_ELSEWHERE),
        CancelOffer("c1", "a3", CancelReason.ANSWERED_ELSEWHERE),
        moved_up("c2", 1),
        Offer("c2", "a2", "q1", 20.0),  # released by the answer, straight to c2
        offered("c2", "a2"),
        Offer("c2", "a3", "q1", 20.0),
        offered("c2", "a3"),
    ]


def test_fewest_calls_prefers_the_agent_with_fewer_answered_calls() -> None:
    acd = engine(QueueConfig("q1", S.FEWEST_CALLS))
    acd.agent_available(AgentProfile("a1", {"q1": 1}, calls_answered=5), 0.0)
    acd.agent_available(AgentProfile("a2", {"q1": 1}, calls_answered=2), 1.0)
    assert show(acd.arrive("c1", "q1", 2.0)) == arrives_for("c1", "a2")


def test_least_talk_time_prefers_the_agent_who_talked_least() -> None:
    acd = engine(QueueConfig("q1", S.LEAST_TALK_TIME))
    acd.agent_available(agent("a1"), 0.0)
    acd.agent_available(agent("a2"), 0.0)
    acd.arrive("c1", "q1", 1.0)  # a1 (tie on talk time and idle: agent id)
    acd.arrive("c2", "q1", 1.0)  # a2
    acd.answered("c1", "a1", 1.0)
    acd.answered("c2", "a2", 1.0)
    acd.ended("c2", 100.0)  # a2 talked 99 s
    acd.ended("c1", 11.0)  # a1 talked 10 s, and has been idle for less time
    assert show(acd.arrive("c3", "q1", 200.0)) == arrives_for("c3", "a1")


def test_skills_require_every_skill_and_prefer_higher_proficiency() -> None:
    q = QueueConfig("q1", S.SKILLS, required_skills=frozenset({"fr"}))
    acd = engine(q)
    acd.agent_available(agent("a1", fr=3), 0.0)  # idle longest
    acd.agent_available(agent("a2", fr=5, billing=1), 1.0)
    acd.agent_available(agent("a3", billing=9), 2.0)  # lacks fr: never eligible
    assert show(acd.arrive("c1", "q1", 5.0)) == arrives_for("c1", "a2")
    assert show(acd.arrive("c2", "q1", 5.0)) == arrives_for("c2", "a1", 2)
    assert show(acd.arrive("c3", "q1", 5.0)) == [entered("c3", 3)]  # a3 is idle, unskilled


def test_call_skills_add_to_the_queue_skills() -> None:
    acd = engine(QueueConfig("q1", S.SKILLS))
    acd.agent_available(agent("a1", fr=9), 0.0)
    acd.agent_available(agent("a2", fr=1, vip=1), 1.0)
    assert show(acd.arrive("c1", "q1", 2.0, skills=frozenset({"vip"}))) == arrives_for("c1", "a2")


def test_skills_tie_goes_to_the_longest_idle() -> None:
    acd = engine(QueueConfig("q1", S.SKILLS, required_skills=frozenset({"fr"})))
    acd.agent_available(agent("a2", fr=4), 1.0)
    acd.agent_available(agent("a1", fr=4), 2.0)
    assert show(acd.arrive("c1", "q1", 3.0)) == arrives_for("c1", "a2")


@pytest.mark.parametrize("strategy", [s for s in S if s is not S.RING_ALL])
def test_member_priority_applies_before_every_strategy(strategy: S) -> None:
    acd = engine(QueueConfig("q1", strategy))
    acd.agent_available(AgentProfile("a1", {"q1": 5}, calls_answered=0), 0.0)
    acd.agent_available(AgentProfile("a2", {"q1": 1}, calls_answered=9, talk_seconds=900), 9.0)
    assert show(acd.arrive("c1", "q1", 10.0)) == arrives_for("c1", "a2")


def test_customers_higher_priority_first_then_arrival_order() -> None:
    acd = engine(QueueConfig("q1"))
    acd.arrive("c1", "q1", 1.0)
    acd.arrive("c2", "q1", 2.0, priority=5)
    acd.arrive("c3", "q1", 3.0)
    assert acd.line("q1") == ["c2", "c1", "c3"]
    order = []
    acd.agent_available(agent("a1"), 4.0)
    for t in (5.0, 6.0, 7.0):
        (o,) = [x for x in acd.agents.values()]
        cid = o.call_id
        assert cid is not None
        order.append(cid)
        acd.answered(cid, "a1", t)
        acd.ended(cid, t)
    assert order == ["c2", "c1", "c3"]


def test_an_agent_of_several_queues_takes_the_oldest_customer_across_them() -> None:
    acd = engine(QueueConfig("q1"), QueueConfig("q2"))
    acd.arrive("c1", "q2", 1.0)
    acd.arrive("c2", "q1", 2.0)
    acd.arrive("c3", "q2", 3.0, priority=1)  # higher priority beats older c1
    out = acd.agent_available(agent("a1", {"q1": 1, "q2": 9}), 4.0)
    assert show(out) == [Offer("c3", "a1", "q2", 20.0), offered("c3", "a1", "q2")]
    # c3 back in line; a1 missed it, but nobody else can take it: a new round, c3 first again
    assert show(acd.missed("c3", "a1", 5.0, rejected=True))[1:] == [
        Offer("c3", "a1", "q2", 20.0),
        offered("c3", "a1", "q2"),
    ]


def test_an_agent_without_the_skills_skips_to_a_call_it_can_take() -> None:
    acd = engine(QueueConfig("q1"))
    acd.arrive("c1", "q1", 1.0, skills=frozenset({"de"}))
    acd.arrive("c2", "q1", 2.0)
    assert show(acd.agent_available(agent("a1", fr=1), 3.0)) == [
        Offer("c2", "a1", "q1", 20.0),
        offered("c2", "a1"),
    ]
