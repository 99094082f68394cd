"""What a party does on its own phone (hold/resume, blind transfer via REFER), reported by the
switch as HELD / RESUMED / TRANSFER_REQUESTED, proven on the simulated switch's media model."""

from __future__ import annotations

from tests.service.test_calls import connected, types
from tests.support import World

from callbridge.domain.calls import CallState, HangupCause


async def test_party_hold_from_the_phone_gives_the_peer_music_and_resume_ends_it(
    world: World,
) -> None:
    w = world
    call, agent, other = await connected(w)
    w.sim.remote_hold(agent)
    await w.settle()
    assert w.sim.hears(other) == {"music"}  # the other party hears music
    live = w.c.calls.get(w.admin, w.tenant, call.id)
    assert live.legs[other].hold == "held" and live.legs[agent].hold == "active"
    w.sim.remote_resume(agent)
    await w.settle()
    assert w.sim.hears(other) == {agent} and w.sim.hears(agent) == {other}
    live = w.c.calls.get(w.admin, w.tenant, call.id)
    assert live.legs[other].hold == "active"
    log = await types(w, call.id)
    held_at = log.index("leg.party_held")
    assert log[held_at : held_at + 2] == ["leg.party_held", "leg.held"]
    resumed_at = log.index("leg.party_resumed")
    assert log[resumed_at : resumed_at + 2] == ["leg.party_resumed", "leg.unheld"]


async def test_party_hold_leaves_an_already_held_peer_alone(world: World) -> None:
    w = world
    call, agent, other = await connected(w)
    await w.c.calls.hold(w.admin, w.tenant, call.id, other)
    w.sim.remote_hold(agent)
    await w.settle()
    log = await types(w, call.id)
    assert log.count("leg.held") == 1 and log[-1] == "leg.party_held"
    assert w.c.calls.get(w.admin, w.tenant, call.id).state is CallState.ANSWERED


async def test_transfer_pressed_on_a_phone_transfers_its_peer(world: World) -> None:
    w = world
    call, agent, other = await connected(w)  # 101 (agent) <-> 102
    w.sim.remote_transfer(agent, "103")
    await w.settle()
    live = w.c.calls.get(w.admin, w.tenant, call.id)
    target = next(leg for leg in live.legs.values() if leg.number == "103")
    assert live.legs[agent].cause is HangupCause.TRANSFERRED
    assert w.sim.leg_state(agent).state == "hungup"  # the referring leg is released
    assert w.sim.hears(other) == {target.id} and w.sim.hears(target.id) == {other}
    assert "leg.transferring" in await types(w, call.id)
    assert w.sim.transfer_refusals(agent) == []


async def test_transfer_pressed_on_a_held_call_unholds_and_transfers(world: World) -> None:
    w = world
    call, agent, other = await connected(w)
    w.sim.remote_hold(agent)  # phones often hold before they REFER
    w.sim.remote_transfer(agent, "+19735552106")
    await w.settle()
    live = w.c.calls.get(w.admin, w.tenant, call.id)
    target = next(leg for leg in live.legs.values() if leg.number == "+19735552106")
    assert w.sim.hears(other) == {target.id}


async def test_transfer_to_an_unknown_extension_is_refused_and_the_call_goes_on(
    world: World,
) -> None:
    w = world
    call, agent, other = await connected(w)
    w.sim.remote_transfer(agent, "999")
    await w.settle()
    assert w.sim.transfer_refusals(agent) == ["extension_not_found"]
    assert w.sim.hears(other) == {agent} and w.sim.hears(agent) == {other}
    live = w.c.calls.get(w.admin, w.tenant, call.id)
    assert live.state is CallState.ANSWERED and all(leg.live for leg in live.legs.values())
    assert (await types(w, call.id))[-1] == "leg.transfer_refused"


async def test_transfer_to_a_malformed_number_is_refused(world: World) -> None:
    w = world
    _call, agent, _other = await connected(w)
    w.sim.remote_transfer(agent, "12ab")
    await w.settle()
    assert w.sim.transfer_refusals(agent) == ["number_malformed"]


async def test_a_caller_from_outside_may_not_transfer(world: World) -> None:
    w = world
    call_id = await w.c.calls.simulate_inbound(w.admin, w.tenant, "19735550123", "102")
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call_id)
    legs = {leg.number: leg.id for leg in call.legs.values()}
    customer, agent = legs["19735550123"], legs["102"]
    w.sim.remote_transfer(customer, "+19005550199")
    await w.settle()
    assert w.sim.transfer_refusals(customer) == ["transfer_forbidden"]
    assert w.sim.hears(customer) == {agent} and w.sim.hears(agent) == {customer}
    assert len(w.c.calls.get(w.admin, w.tenant, call_id).legs) == 2  # nothing was dialled
