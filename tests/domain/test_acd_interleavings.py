"""Random interleavings of everything that can happen to a queue, checked after every step.

A hypothesis rule-based state machine drives one engine through arrivals, answers, misses,
hang-ups, wrap-ups, availability and profile changes, sign-outs, ticks of the clock, queue
configuration changes, callbacks, picks, moves and removals. After every step it checks the
engine's own invariants (``callbridge.domain.acd.invariants``) and, from the outputs alone, what
the service would rely on:

* the service is never asked to ring an agent who is still ringing for another offer, and the
  offers it believes are ringing are exactly the engine's reservations;
* the agents it connected are exactly the engine's busy agents;
* customer order: when an agent is offered a call (other than one it picked), no call that comes
  before it (higher priority, or same priority and earlier arrival) and that the agent could take
  is left waiting in any of the agent's queues;
* no call is lost: every call that arrived is waiting, offered or connected in the engine, or the
  outputs said it overflowed, was abandoned or removed, or its end was reported.

The same machine runs against deliberately broken engines, which it must catch.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from callbridge.domain.acd import (
    AcdEngine,
    AgentProfile,
    AgentState,
    CallbackDue,
    CallState,
    CancelOffer,
    CancelReason,
    Destination,
    DestinationKind,
    Offer,
    Output,
    Overflow,
    QueueConfig,
    Strategy,
)
from callbridge.domain.acd.invariants import violations
from callbridge.domain.acd.records import AgentSlot, QueueCall
from callbridge.domain.errors import DomainError
from callbridge.domain.events import DomainEvent

QUEUES = ["q1", "q2", "q3"]
AGENTS = ["a1", "a2", "a3", "a4", "a5"]
SKILLS = ["fr", "de"]

configs = st.builds(
    QueueConfig,
    queue_id=st.just("q?"),
    strategy=st.sampled_from(Strategy),
    required_skills=st.sampled_from([frozenset(), frozenset(), frozenset({"fr"})]),
    ring_timeout=st.sampled_from([5.0, 15.0, 30.0]),
    wrapup_seconds=st.sampled_from([0.0, 10.0]),
    max_wait=st.sampled_from([None, None, 60.0, 120.0]),
    max_length=st.sampled_from([None, None, 3, 5]),
    overflow=st.just(Destination(DestinationKind.EXTENSION, "2000")),
    max_consecutive_misses=st.sampled_from([0, 2, 3]),
)
profiles = st.tuples(
    st.dictionaries(st.sampled_from(QUEUES), st.integers(1, 3), min_size=1),
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5)),
)


def eligible(agent: AgentSlot, call: QueueCall) -> bool:
    return call.queue_id in agent.queues and all(s in agent.skills for s in call.need)


def checked(base: type[AcdEngine]) -> type[AcdEngine]:
    """``base`` with a customer-order check at the moment of every offer."""

    class Checked(base):  # type: ignore[valid-type,misc]
        picking = False
        order_violations: list[str]

        def _offer(self, call: QueueCall, agents: list[AgentSlot], *args: Any) -> None:
            if not self.picking:
                for agent in agents:
                    for other in self.calls.values():
                        if (
                            other is not call
                            and other.state is CallState.WAITING
                            and other.key < call.key
                            and eligible(agent, other)
                        ):
                            self.order_violations.append(
                                f"{call.call_id} offered to {agent.agent_id} before {other.call_id}"
                            )
            super()._offer(call, agents, *args)

    return Checked


class Interleavings(RuleBasedStateMachine):
    engine_class: type[AcdEngine] = AcdEngine

    def __init__(self) -> None:
        super().__init__()
        self.acd: Any = checked(self.engine_class)()
        self.acd.order_violations = []
        self.now = 0.0
        self.n = 0
        self.live: set[str] = set()  # calls the outputs say are in the engine
        self.gone: dict[str, str] = {}  # call -> how it left
        self.ringing: dict[str, str] = {}  # agent -> call, from the outputs
        self.connected: dict[str, str] = {}  # agent -> call, from the answers
        self.problems: list[str] = []

    # ---------------------------------------------------------------------------- helpers

    def absorb(self, outputs: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, Offer | CallbackDue):
                if o.agent_id in self.ringing:
                    self.problems.append(f"second offer to {o.agent_id}: {o}")
                self.ringing[o.agent_id] = o.call_id
            elif isinstance(o, CancelOffer):
                if self.ringing.pop(o.agent_id, None) != o.call_id:
                    self.problems.append(f"cancel of an offer not ringing: {o}")
            elif isinstance(o, Overflow):
                self.leave(o.call_id, "overflowed")
            elif isinstance(o, DomainEvent):
                if o.type == "queue.abandoned":
                    self.leave(o.call_id, "abandoned")
                elif o.type == "queue.left" and o.data["reason"] != "moved":
                    self.leave(o.call_id, "removed")

    def leave(self, call_id: str | None, how: str) -> None:
        assert call_id is not None
        self.live.discard(call_id)
        self.gone[call_id] = how

    def calls_in(self, *states: CallState) -> list[str]:
        return sorted(c.call_id for c in self.acd.calls.values() if c.state in states)

    def agents_in(self, state: AgentState) -> list[str]:
        return sorted(a.agent_id for a in self.acd.agents.values() if a.state is state)

    # ------------------------------------------------------------------------------ rules

    @initialize(
        cs=st.lists(configs, min_size=3, max_size=3),
        ps=st.lists(profiles, min_size=1, max_size=4),
    )
    def setup(self, cs: list[QueueConfig], ps: list[tuple[dict[str, int], dict[str, int]]]) -> None:
        for qid, cfg in zip(QUEUES, cs, strict=False):
            self.absorb(self.acd.configure_queue(_with_id(cfg, qid), self.now))
        for agent, (queues, skills) in zip(AGENTS, ps, strict=False):
            self.absorb(self.acd.agent_available(AgentProfile(agent, queues, skills), self.now))

    @rule(
        queue=st.sampled_from(QUEUES),
        priority=st.integers(0, 2),
        skills=st.sampled_from([frozenset(), frozenset(), frozenset({"de"})]),
    )
    def arrive(self, queue: str, priority: int, skills: frozenset[str]) -> None:
        self.n += 1
        cid = f"c{self.n}"
        self.live.add(cid)
        self.absorb(self.acd.arrive(cid, queue, self.now, priority=priority, skills=skills))

    @rule(agent=st.sampled_from(AGENTS), profile=profiles)
    def available(self, agent: str, profile: tuple[dict[str, int], dict[str, int]]) -> None:
        queues, skills = profile
        self.absorb(self.acd.agent_available(AgentProfile(agent, queues, skills), self.now))

    @rule(data=st.data(), sign_out=st.booleans())
    def unavailable(self, data: st.DataObject, sign_out: bool) -> None:
        known = sorted(self.acd.agents)
        if known:
            agent = data.draw(st.sampled_from(known))
            self.absorb(self.acd.agent_unavailable(agent, self.now, sign_out=sign_out))

    @precondition(lambda self: bool(self.ringing))
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        agent, call = data.draw(st.sampled_from(sorted(self.ringing.items())))
        del self.ringing[agent]
        self.connected[agent] = call
        self.absorb(self.acd.answered(call, agent, self.now))

    @precondition(lambda self: bool(self.ringing))
    @rule(data=st.data(), rejected=st.booleans())
    def no_answer(self, data: st.DataObject, rejected: bool) -> None:
        """The service reports a ring timeout or a rejection."""
        agent, call = data.draw(st.sampled_from(sorted(self.ringing.items())))
        del self.ringing[agent]
        self.absorb(self.acd.missed(call, agent, self.now, rejected=rejected))

    @precondition(lambda self: bool(self.connected))
    @rule(data=st.data())
    def hang_up(self, data: st.DataObject) -> None:
        agent, call = data.draw(st.sampled_from(sorted(self.connected.items())))
        del self.connected[agent]
        self.absorb(self.acd.ended(call, self.now))
        self.leave(call, "ended")

    @rule(data=st.data(), seconds=st.integers(0, 20), end_wrapup=st.booleans())
    def time_passes(self, data: st.DataObject, seconds: int, end_wrapup: bool) -> None:
        """The clock moves on (deadlines fire); maybe an agent ends wrap-up early first."""
        agents = self.agents_in(AgentState.WRAPUP)
        if end_wrapup and agents:
            self.absorb(self.acd.wrapup_ended(data.draw(st.sampled_from(agents)), self.now))
        self.now += seconds
        self.absorb(self.acd.tick(self.now))

    @rule(queue=st.sampled_from(QUEUES), cfg=configs)
    def reconfigure(self, queue: str, cfg: QueueConfig) -> None:
        self.absorb(self.acd.configure_queue(_with_id(cfg, queue), self.now))

    @precondition(lambda self: bool(self.live))
    @rule(
        data=st.data(),
        action=st.sampled_from(["abandon", "callback", "pick", "move", "remove", "reprioritise"]),
        queue=st.sampled_from(QUEUES),
    )
    def waiting_call(self, data: st.DataObject, action: str, queue: str) -> None:
        """The customer hangs up or asks for a callback, an agent picks the call, an operator
        moves, transfers, ends or re-prioritises it."""
        acd, now = self.acd, self.now
        calls = self.calls_in(CallState.WAITING, CallState.OFFERED)
        if action == "pick":
            pairs = [
                (a, c)
                for a in self.agents_in(AgentState.IDLE)
                for c in self.calls_in(CallState.WAITING)
                if acd.calls[c].queue_id in acd.agents[a].queues
            ]
            if pairs:
                agent, call = data.draw(st.sampled_from(pairs))
                acd.picking = True
                try:
                    self.absorb(acd.pick(agent, call, now))
                finally:
                    acd.picking = False
            return
        if action == "callback":
            calls = [c for c in self.calls_in(CallState.WAITING) if not acd.calls[c].callback]
        if not calls:
            return
        call = data.draw(st.sampled_from(calls))
        if action == "abandon":
            self.absorb(acd.abandoned(call, now))
        elif action == "callback":
            self.absorb(acd.request_callback(call, "+15550000", now))
        elif action == "remove":
            self.absorb(acd.remove(call, now, reason="transferred"))
        elif action == "reprioritise":
            self.absorb(acd.reprioritise(call, data.draw(st.integers(0, 3)), now))
        else:
            try:
                self.absorb(acd.move(call, queue, now))
            except DomainError as e:
                assert e.code in ("queue_full", "queue_call_same_queue"), e.code

    # ------------------------------------------------------------------------- invariants

    @invariant()
    def engine_invariants_hold(self) -> None:
        found = violations(self.acd)
        assert not found, f"engine invariant: {found}"

    @invariant()
    def outputs_agree_with_the_engine(self) -> None:
        assert not self.problems, f"outputs: {self.problems}"
        reserved = {
            a.agent_id: a.call_id
            for a in self.acd.agents.values()
            if a.state is AgentState.RESERVED
        }
        assert self.ringing == reserved, f"outputs: ringing {self.ringing} != {reserved}"
        busy = {
            a.agent_id: a.call_id for a in self.acd.agents.values() if a.state is AgentState.BUSY
        }
        assert self.connected == busy, f"outputs: connected {self.connected} != {busy}"

    @invariant()
    def customers_are_offered_in_order(self) -> None:
        assert not self.acd.order_violations, f"customer order: {self.acd.order_violations}"

    @invariant()
    def no_call_is_lost(self) -> None:
        assert set(self.acd.calls) == self.live, f"lost: {self.live ^ set(self.acd.calls)}"
        assert not self.live & set(self.gone), f"lost: {self.live & set(self.gone)}"
        assert len(self.live) + len(self.gone) == self.n, "lost: a call vanished"


def _with_id(cfg: QueueConfig, queue_id: str) -> QueueConfig:
    from dataclasses import replace

    return replace(cfg, queue_id=queue_id)


FAST = settings(
    max_examples=200,
    stateful_step_count=50,
    derandomize=True,  # a seeded, deterministic run in CI
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_random_interleavings_keep_every_invariant() -> None:
    run_state_machine_as_test(Interleavings, settings=FAST)


# --------------------------------------------------------- the invariants can fail: mutants


class LeavesAgentsReservedOnAbandon(AcdEngine):
    def _withdraw(self, call: Any, reason: CancelReason, out: list[Output]) -> Any:
        if reason is CancelReason.ABANDONED:
            call.offers.clear()
            return []
        return super()._withdraw(call, reason, out)


class NewestCallFirst(AcdEngine):
    def _oldest_for(self, agent: Any) -> Any:
        for qid in agent.queues:
            queue = self.queues.get(qid)
            for key in reversed(queue.line if queue else []):
                call = self.calls[key[2]]
                if call.state is CallState.WAITING and eligible(agent, call):
                    return call
        return None


class ForgetsToDispatchAfterWrapup(AcdEngine):
    def _became_idle(self, agent: Any, now: float, out: list[Output]) -> None:
        agent.idle_since = now
        if agent.ready:
            for qid in agent.queues:
                self._idle[qid].add(agent.agent_id)


class KeepsOfferedAgentsIdle(AcdEngine):
    def _unidle(self, agent: Any) -> None:
        if agent.ready:
            return
        super()._unidle(agent)


class RemoveLeavesOffersRinging(AcdEngine):
    def _withdraw(self, call: Any, reason: CancelReason, out: list[Output]) -> Any:
        if reason is CancelReason.REMOVED:
            return []
        return super()._withdraw(call, reason, out)


class SilentRingTimeout(AcdEngine):
    def _miss(self, *args: Any, cancel: bool) -> None:
        super()._miss(*args, cancel=False)


class AbandonWithoutEvent(AcdEngine):
    def abandoned(self, call_id: str, now: float) -> list[Output]:
        out = super().abandoned(call_id, now)
        return [o for o in out if not (isinstance(o, DomainEvent) and o.type == "queue.abandoned")]


MUTANT_SETTINGS = settings(FAST, phases=[Phase.generate], report_multiple_bugs=False)


@pytest.mark.parametrize(
    ("mutant", "caught_by"),
    [
        (LeavesAgentsReservedOnAbandon, "reserved without a live offer"),
        (NewestCallFirst, "customer order"),
        (ForgetsToDispatchAfterWrapup, "waits while"),
        (KeepsOfferedAgentsIdle, "idle index"),
        (RemoveLeavesOffersRinging, "reserved without a live offer"),
        (SilentRingTimeout, "outputs"),
        (AbandonWithoutEvent, "lost"),
    ],
)
def test_the_invariants_catch_a_broken_engine(mutant: type[AcdEngine], caught_by: str) -> None:
    machine = type(f"Interleavings{mutant.__name__}", (Interleavings,), {"engine_class": mutant})
    with pytest.raises(AssertionError, match=caught_by):
        run_state_machine_as_test(machine, settings=MUTANT_SETTINGS)
