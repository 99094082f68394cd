"""Extensions whose ``recording_type`` is ``Mandatory`` have every connected call recorded."""

from __future__ import annotations

from tests.service.acd_support import arrive, setup_queue
from tests.support import World


async def mandatory(w: World, number: str) -> None:
    await w.c.directory.update_extension(
        w.admin, w.tenant, w.ext[number], {"recording_type": "Mandatory"}
    )


async def test_a_click_to_call_from_a_mandatory_extension_is_recorded_once_connected(
    world: World,
) -> None:
    w = world
    await mandatory(w, "101")
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "19735552106")
    assert call.recording is None  # nobody is connected yet
    await w.settle()
    live = w.c.calls.calls[call.id]
    assert live.recording is not None and live.recording.state == "active"
    assert w.sim.recording(live.recording.id).state == "active"
    events = await w.c.core.storage.events(w.tenant, 0, 1000, call_id=call.id)
    assert [e.type for e in events].count("recording.started") == 1


async def test_other_extensions_are_not_recorded_and_a_stopped_recording_stays_stopped(
    world: World,
) -> None:
    w = world
    plain = await w.c.calls.originate(w.admin, w.tenant, w.ext["102"], "19735552106")
    await w.settle()
    assert w.c.calls.calls[plain.id].recording is None
    await mandatory(w, "101")
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "103")
    await w.settle()
    await w.c.calls.stop_recording(w.admin, w.tenant, call.id)
    await w.c.calls.transfer(w.admin, w.tenant, call.id, _leg_of(w, call.id, "101"), "104")
    await w.settle()
    live = w.c.calls.calls[call.id]
    assert sorted(g.number for g in live.live_legs()) == ["101", "104"]  # 101 connected again
    assert live.recording is not None and live.recording.state == "stopped"


async def test_a_queue_call_answered_by_a_mandatory_agent_is_recorded(world: World) -> None:
    w = world
    await mandatory(w, "101")
    await setup_queue(w, members=("101",))
    call_id = await arrive(w)
    rec = w.c.calls.calls[call_id].recording
    assert rec is not None and rec.state == "active"


def _leg_of(w: World, call_id: str, number: str) -> str:
    (leg,) = [g for g in w.c.calls.calls[call_id].live_legs() if g.number == number]
    return leg.id
