"""Drafts: a command or switch event works on a copy of the call; a failure leaves the live call
exactly as it was (nothing of the dropped draft leaks into it, nothing is committed)."""

from __future__ import annotations

import pytest
from tests.service.test_calls import connected, types
from tests.support import World

from callbridge.domain.calls import HoldState, LegState
from callbridge.domain.errors import DomainError
from callbridge.ports.switch import SwitchError


def _refuse_hold(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    async def hold(leg_id: str) -> None:
        raise SwitchError(f"no music for {leg_id}")

    monkeypatch.setattr(w.sim, "hold", hold)


async def test_a_command_the_switch_refuses_leaves_the_live_call_as_it_was(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    call, a, _ = await connected(w)
    live = w.c.calls.calls[call.id]
    before, log = live.model_dump(), await types(w, call.id)
    _refuse_hold(w, monkeypatch)
    with pytest.raises(DomainError):  # the domain held the draft's leg, then the switch failed
        await w.c.calls.hold(w.admin, w.tenant, call.id, a)
    assert w.c.calls.calls[call.id] is live
    assert live.model_dump() == before
    assert live.legs[a].hold is HoldState.ACTIVE
    assert await types(w, call.id) == log


async def test_a_failed_switch_event_drops_its_draft_and_not_the_rest_of_the_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    x, x_a, x_b = await connected(w, "101", "102")
    y, y_a, _ = await connected(w, "103", "104")
    live_x = w.c.calls.calls[x.id]
    before, log = live_x.model_dump(), await types(w, x.id)
    _refuse_hold(w, monkeypatch)
    # one batch: x's party holds (the draft holds its peer, then the switch fails), y sends DTMF
    w.sim.remote_hold(x_a)
    w.sim.remote_dtmf(y_a, "5")
    await w.settle()
    assert w.c.calls.calls[x.id] is live_x
    assert live_x.model_dump() == before
    assert live_x.legs[x_b].hold is HoldState.ACTIVE
    assert await types(w, x.id) == log  # not even leg.party_held, the event before the failure
    assert (await types(w, y.id))[-1] == "dtmf.received"
    assert w.c.calls.calls[y.id].legs[y_a].state is LegState.ANSWERED
