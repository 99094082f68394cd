"""AgentLegs.observed keeps the deciding leg as calls come, change and go: it must always agree
with the leg a full scan of the phone's legs picks (talking over held over ringing, then id)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from callbridge.domain.agents import PhoneState
from callbridge.domain.calls import (
    Call,
    CallOrigin,
    CallState,
    Direction,
    HoldState,
    Leg,
    LegState,
    PartyKind,
)
from callbridge.service.agent_legs import _RANK, AgentLegs, LegView

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PHONES = ["ext-a", "ext-b"]


def scanned(legs: AgentLegs, ext_id: str) -> LegView | None:
    views = sorted(legs.legs_of(ext_id), key=lambda v: (-_RANK[v.phone], v.leg_id))
    return views[0] if views else None


def new_call(n: int, rng: random.Random) -> Call:
    call = Call(
        id=f"CALL{n:09d}",
        tenant_id="t",
        origin=CallOrigin.INBOUND,
        from_number="100",
        to_number="200",
        created_at=NOW,
    )
    for i in range(rng.randint(1, 2)):
        leg_id = f"{rng.random():.6f}-{n}-{i}"  # random order, like the switch's leg ids
        call.legs[leg_id] = Leg(
            id=leg_id,
            kind=PartyKind.EXTENSION,
            direction=Direction.OUTBOUND,
            number="1",
            extension_id=rng.choice([*PHONES, None]),
            created_at=NOW,
        )
    return call


def change(call: Call, rng: random.Random) -> None:
    """Answer, hold, resume or hang up one leg, or end the whole call."""
    what = rng.random()
    if what < 0.15:
        call.state = CallState.ENDED
        return
    leg = rng.choice(list(call.legs.values()))
    if what < 0.5:
        leg.state = LegState.ANSWERED
    elif what < 0.7:
        leg.hold = HoldState.HELD if leg.hold is HoldState.ACTIVE else HoldState.ACTIVE
    elif what < 0.85:
        leg.state = LegState.HUNGUP
    else:
        leg.state = LegState.RINGING


def test_observed_agrees_with_a_full_scan_through_random_call_histories() -> None:
    rng = random.Random(7)
    legs = AgentLegs(is_agent=lambda ext_id: ext_id in PHONES)
    calls: dict[str, Call] = {}
    for step in range(3000):
        if not calls or rng.random() < 0.3:
            call = new_call(step, rng)
            calls[call.id] = call
        else:
            call = calls[rng.choice(sorted(calls))]
            change(call, rng)
        legs.update(call)
        if call.state is CallState.ENDED:
            del calls[call.id]
        for ext_id in PHONES:
            if rng.random() < 0.7:  # not asked after every commit: the cache must still follow
                assert legs.observed(ext_id) == scanned(legs, ext_id), step
    assert any(legs.observed(e) is not None for e in PHONES)


def test_a_held_call_on_the_phone_decides_over_a_ringing_one() -> None:
    legs = AgentLegs(is_agent=lambda ext_id: True)
    rng = random.Random(1)
    ringing = new_call(1, rng)
    for leg in ringing.legs.values():
        leg.extension_id = "ext-a"
    legs.update(ringing)
    assert legs.observed("ext-a") is not None
    assert legs.observed("ext-a").phone is PhoneState.RINGING  # type: ignore[union-attr]
    held = new_call(2, rng)
    for leg in held.legs.values():
        leg.extension_id, leg.state, leg.hold = "ext-a", LegState.ANSWERED, HoldState.HELD
    legs.update(held)
    assert legs.observed("ext-a").phone is PhoneState.HELD  # type: ignore[union-attr]
    held.state = CallState.ENDED
    legs.update(held)
    assert legs.observed("ext-a").phone is PhoneState.RINGING  # type: ignore[union-attr]
    ringing.state = CallState.ENDED
    legs.update(ringing)
    assert legs.observed("ext-a") is None
