"""Call control through the service layer, proven on the simulated switch's media model."""

from __future__ import annotations

import pytest
from tests.support import World

from callbridge.adapters.simswitch import EndpointScript
from callbridge.domain.calls import Call, CallState, HangupCause, LegState
from callbridge.domain.errors import DomainError, NotFound, PermissionDenied
from callbridge.domain.tenancy import Level


async def connected(w: World, a: str = "101", b: str = "102") -> tuple[Call, str, str]:
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext[a], b)
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call.id)
    assert call.state is CallState.ANSWERED
    by_number = {leg.number: leg.id for leg in call.legs.values()}
    return call, by_number[a], by_number[b]


async def types(w: World, call_id: str) -> list[str]:
    return [e.type for e in await w.c.calls.timeline(w.admin, w.tenant, call_id)]


async def test_originate_rings_extension_first_then_target_and_bridges(world: World) -> None:
    w = world
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    assert [leg.number for leg in call.legs.values()] == ["101"]
    await w.settle()
    call, _a, _b = (
        await connected(w) if False else (w.c.calls.get(w.admin, w.tenant, call.id), "", "")
    )
    legs = {leg.number: leg for leg in call.legs.values()}
    assert legs["101"].state is LegState.ANSWERED and legs["102"].state is LegState.ANSWERED
    assert w.sim.hears(legs["101"].id) == {legs["102"].id}
    assert w.sim.hears(legs["102"].id) == {legs["101"].id}
    assert await types(w, call.id) == [
        "call.created",
        "leg.created",
        "leg.ringing",
        "call.state_changed",
        "leg.answered",
        "leg.created",
        "leg.ringing",
        "leg.answered",
        "bridge.created",
        "call.state_changed",
    ]
    # the call's last event (the agents' phone state events follow it in the log)
    assert call.seq == (await w.c.calls.timeline(w.admin, w.tenant, call.id))[-1].seq


async def test_originate_with_outbound_queue_presents_its_caller_id(world: World) -> None:
    w = world
    call = await w.c.calls.originate(
        w.admin, w.tenant, w.ext["101"], "19735552106", outbound_queue_id=w.outbound_queue
    )
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call.id)
    assert call.caller_id == "18005550100"
    external = next(leg for leg in call.legs.values() if leg.number == "19735552106")
    assert w.sim.leg_state(external.id).state == "answered"


@pytest.mark.parametrize(
    ("behaviour", "cause"),
    [("busy", HangupCause.BUSY), ("reject", HangupCause.REJECTED), ("fail", HangupCause.FAILED)],
)
async def test_target_failure_ends_the_attempt_with_its_cause(
    world: World, behaviour: str, cause: HangupCause
) -> None:
    w = world
    w.sim.set_script("19735550000", EndpointScript(behaviour=behaviour))  # type: ignore[arg-type]
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "19735550000")
    await w.settle()
    assert call.id not in w.c.calls.calls
    record = await w.c.core.storage.get_cdr(w.tenant, call.id)
    assert record is not None and record.cause is cause
    assert all(leg.cause is not None for leg in record.legs)
    assert w.sim.legs() and all(s.state == "hungup" for s in w.sim.legs().values())


async def test_no_answer_after_timeout(world: World) -> None:
    w = world
    w.sim.set_script("19735550001", EndpointScript(behaviour="no_answer"))
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "19735550001")
    await w.settle(5)
    assert call.id in w.c.calls.calls
    await w.settle(30)
    record = await w.c.core.storage.get_cdr(w.tenant, call.id)
    assert record is not None and record.cause is HangupCause.NO_ANSWER


async def test_extension_not_answering_ends_call(world: World) -> None:
    w = world
    w.sim.set_script("101", EndpointScript(behaviour="busy"))
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    record = await w.c.core.storage.get_cdr(w.tenant, call.id)
    assert record is not None and record.cause is HangupCause.BUSY
    assert [leg.number for leg in record.legs] == ["101"]  # the target was never dialled


async def test_originate_refusals(world: World) -> None:
    w = world
    with pytest.raises(DomainError) as e1:
        await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "12ab")
    assert e1.value.code == "number_malformed"
    with pytest.raises(NotFound) as e2:
        await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "999")
    assert e2.value.code == "extension_not_found"
    with pytest.raises(NotFound) as e3:
        await w.c.calls.originate(w.admin, w.tenant, "beta-101", "102")
    assert e3.value.code == "extension_not_found"
    with pytest.raises(DomainError) as e4:
        await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "300")
    assert e4.value.code == "target_is_queue"
    with pytest.raises(DomainError) as e5:
        await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102", outbound_queue_id=w.queue)
    assert e5.value.code == "queue_not_outbound"
    assert w.c.calls.calls == {}


async def test_agent_without_call_control_is_refused(world: World) -> None:
    w = world
    d = w.c.directory
    role = await d.create_role("viewer", [], tenant_id=w.tenant)
    p = await d.create_principal("viewer", Level.TENANT, "telco-1", [role.id], tenant_id=w.tenant)
    with pytest.raises(PermissionDenied):
        await w.c.calls.originate(d.actor_for(p), w.tenant, w.ext["101"], "102")


async def test_hold_and_unhold(world: World) -> None:
    w = world
    call, a, b = await connected(w)
    await w.c.calls.hold(w.admin, w.tenant, call.id, b)
    assert w.sim.hears(b) == {"music"}
    assert w.sim.hears(a) == frozenset()  # the other side hears nothing of the held party
    with pytest.raises(DomainError) as exc:
        await w.c.calls.hold(w.admin, w.tenant, call.id, b)
    assert exc.value.code == "leg_already_held"
    assert w.c.calls.calls[call.id].legs[b].hold == "held"
    await w.c.calls.unhold(w.admin, w.tenant, call.id, b)
    assert w.sim.hears(b) == {a} and w.sim.hears(a) == {b}
    with pytest.raises(DomainError) as exc2:
        await w.c.calls.unhold(w.admin, w.tenant, call.id, b)
    assert exc2.value.code == "leg_not_held"


async def test_mute_and_unmute(world: World) -> None:
    w = world
    call, a, b = await connected(w)
    await w.c.calls.mute(w.admin, w.tenant, call.id, a)
    assert w.sim.hears(b) == frozenset() and w.sim.hears(a) == {b}
    with pytest.raises(DomainError) as exc:
        await w.c.calls.mute(w.admin, w.tenant, call.id, a)
    assert exc.value.code == "leg_already_muted"
    await w.c.calls.unmute(w.admin, w.tenant, call.id, a)
    assert w.sim.hears(b) == {a}


async def test_unknown_call_and_leg(world: World) -> None:
    w = world
    call, a, _ = await connected(w)
    with pytest.raises(NotFound) as e1:
        await w.c.calls.hold(w.admin, w.tenant, "nope", a)
    assert e1.value.code == "call_not_found"
    with pytest.raises(NotFound) as e2:
        await w.c.calls.hold(w.admin, w.tenant, call.id, "nope")
    assert e2.value.code == "leg_not_found"
    with pytest.raises(NotFound):  # another tenant's call is not found, not forbidden
        await w.c.calls.hold(w.other_admin, w.other_tenant, call.id, a)
    with pytest.raises(NotFound):
        await w.c.calls.hold(w.other_admin, w.tenant, call.id, a)


async def test_hangup_one_leg_hangs_up_the_lone_peer_and_writes_a_record(world: World) -> None:
    w = world
    call, a, b = await connected(w)
    await w.c.calls.hangup(w.admin, w.tenant, call.id, b)
    assert call.id not in w.c.calls.calls
    record = await w.c.core.storage.get_cdr(w.tenant, call.id)
    assert record is not None and record.cause is HangupCause.NORMAL
    assert w.sim.leg_state(a).state == "hungup" and w.sim.leg_state(b).state == "hungup"


async def test_remote_hangup_ends_call(world: World) -> None:
    w = world
    call, a, _b = await connected(w)
    w.sim.remote_hangup(a)
    await w.settle()
    assert call.id not in w.c.calls.calls
    assert (await types(w, call.id))[-1] == "call.ended"


async def test_kill_hangs_up_every_leg(world: World) -> None:
    w = world
    call, a, b = await connected(w)
    killed = await w.c.calls.kill(w.admin, w.tenant, call.id)
    assert killed.state is CallState.ENDED and killed.cause is HangupCause.KILLED
    assert {w.sim.leg_state(x).state for x in (a, b)} == {"hungup"}
    with pytest.raises(NotFound):
        await w.c.calls.kill(w.admin, w.tenant, call.id)


async def test_blind_transfer_replaces_the_peer(world: World) -> None:
    w = world
    call, a, b = await connected(w)
    await w.c.calls.transfer(w.admin, w.tenant, call.id, b, "103")  # 102 stays, 101 leaves
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call.id)
    c_leg = next(leg for leg in call.legs.values() if leg.number == "103")
    assert call.legs[a].cause is HangupCause.TRANSFERRED
    assert w.sim.hears(b) == {c_leg.id} and w.sim.hears(c_leg.id) == {b}
    assert "leg.transferring" in await types(w, call.id)


async def test_blind_transfer_to_external_number_while_held(world: World) -> None:
    w = world
    call, _a, b = await connected(w)
    await w.c.calls.hold(w.admin, w.tenant, call.id, b)
    await w.c.calls.transfer(w.admin, w.tenant, call.id, b, "+19735552106")
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call.id)
    ext = next(leg for leg in call.legs.values() if leg.number == "+19735552106")
    assert w.sim.hears(b) == {ext.id}


async def test_blind_transfer_to_queue_waits_with_music(world: World) -> None:
    w = world
    call, _a, b = await connected(w)
    await w.c.calls.transfer(w.admin, w.tenant, call.id, b, "300")
    call = w.c.calls.get(w.admin, w.tenant, call.id)
    assert call.state is CallState.QUEUED and call.queue_id == w.queue
    assert w.sim.hears(b) == {"music"}


async def test_transfer_failure_hangs_up_transferred_party(world: World) -> None:
    w = world
    w.sim.set_script("103", EndpointScript(behaviour="busy"))
    call, _a, b = await connected(w)
    await w.c.calls.transfer(w.admin, w.tenant, call.id, b, "103")
    assert w.sim.hears(b) == {"music"}  # waiting for the target
    await w.settle()
    record = await w.c.core.storage.get_cdr(w.tenant, call.id)
    assert record is not None and record.cause is HangupCause.BUSY


async def test_park_and_unpark(world: World) -> None:
    w = world
    call, a, b = await connected(w)
    _, slot = await w.c.calls.park(w.admin, w.tenant, call.id, b)
    assert slot == "701"
    assert w.sim.hears(b) == {"music"}
    assert w.sim.leg_state(a).state == "hungup"  # the parker's phone is free
    assert w.c.calls.parking_lot(w.admin, w.tenant).slots["701"].leg_id == b
    await w.c.calls.unpark(w.admin, w.tenant, "701", w.ext["103"])
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call.id)
    c_leg = next(leg for leg in call.legs.values() if leg.number == "103")
    assert w.sim.hears(b) == {c_leg.id}
    assert w.c.calls.parking_lot(w.admin, w.tenant).slots == {}
    evs = await types(w, call.id)
    assert "leg.parked" in evs and "leg.unparked" in evs


async def test_park_refusals(world: World) -> None:
    w = world
    call, _a, b = await connected(w)
    call2, a2, b2 = await connected(w, "103", "104")
    await w.c.calls.park(w.admin, w.tenant, call.id, b, "705")
    with pytest.raises(DomainError) as e1:
        await w.c.calls.park(w.admin, w.tenant, call2.id, b2, "705")
    assert e1.value.code == "slot_occupied"
    assert w.sim.hears(b2) == {a2}  # the refused park changed nothing
    with pytest.raises(DomainError) as e2:
        await w.c.calls.park(w.admin, w.tenant, call2.id, b2, "799")
    assert e2.value.code == "parking_slot_invalid"
    with pytest.raises(DomainError) as e3:
        await w.c.calls.unpark(w.admin, w.tenant, "702", w.ext["101"])
    assert e3.value.code == "slot_empty"
    _, slot = await w.c.calls.park(w.admin, w.tenant, call2.id, b2)
    assert slot == "701"


async def test_parking_lot_full(world: World) -> None:
    w = world
    for i in range(10):
        w.sim.set_script(f"1973555{i:04d}", EndpointScript())
    calls = []
    for i in range(10):
        call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], f"1973555{i:04d}")
        calls.append(call.id)
    await w.settle()
    for cid in calls:
        ext_leg = next(leg for leg in w.c.calls.calls[cid].legs.values() if leg.number != "101")
        await w.c.calls.park(w.admin, w.tenant, cid, ext_leg.id)
    call, _a, b = await connected(w, "103", "104")
    with pytest.raises(DomainError) as exc:
        await w.c.calls.park(w.admin, w.tenant, call.id, b)
    assert exc.value.code == "parking_lot_full"


async def test_conference_add_party_and_kick(world: World) -> None:
    w = world
    call, a, b = await connected(w)
    await w.c.calls.add_party(w.admin, w.tenant, call.id, "103")
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call.id)
    c_leg = next(leg.id for leg in call.legs.values() if leg.number == "103")
    assert w.sim.hears(a) == {b, c_leg}
    assert w.sim.hears(b) == {a, c_leg}
    assert w.sim.hears(c_leg) == {a, b}
    assert next(iter(call.bridges.values())).kind == "conference"
    await w.c.calls.kick(w.admin, w.tenant, call.id, c_leg)
    assert w.sim.hears(a) == {b}
    assert w.c.calls.get(w.admin, w.tenant, call.id).legs[c_leg].cause is HangupCause.KICKED
    with pytest.raises(DomainError) as exc:
        await w.c.calls.kick(w.admin, w.tenant, call.id, c_leg)
    assert exc.value.code == "leg_already_hungup"


async def test_join_active_and_held_call_into_three_party(world: World) -> None:
    w = world
    first, agent1, cust1 = await connected(w, "101", "102")
    await w.c.calls.hold(w.admin, w.tenant, first.id, cust1)
    second, agent2, cust2 = await connected(w, "101", "103")
    joined = await w.c.calls.join(w.admin, w.tenant, second.id, first.id)
    assert w.sim.hears(agent2) == {cust1, cust2}
    assert w.sim.hears(cust1) == {agent2, cust2}
    assert w.sim.hears(cust2) == {agent2, cust1}
    assert w.sim.leg_state(agent1).state == "hungup"
    assert first.id not in w.c.calls.calls
    record = await w.c.core.storage.get_cdr(w.tenant, first.id)
    assert record is not None and record.cause is HangupCause.JOINED
    assert set(joined.legs) >= {agent2, cust1, cust2}
    # the merged call goes on: hanging up leaves a two-party call
    await w.c.calls.kick(w.admin, w.tenant, second.id, cust2)
    assert w.sim.hears(agent2) == {cust1}


async def test_join_refusals(world: World) -> None:
    w = world
    first, _, _ = await connected(w, "101", "102")
    second, _, _ = await connected(w, "103", "104")
    with pytest.raises(DomainError) as e1:
        await w.c.calls.join(w.admin, w.tenant, first.id, second.id)
    assert e1.value.code == "calls_share_no_party"
    with pytest.raises(DomainError) as e2:
        await w.c.calls.join(w.admin, w.tenant, first.id, first.id)
    assert e2.value.code == "join_same_call"
    assert w.c.calls.calls[first.id].state is CallState.ANSWERED


async def test_recording_suppression_audit_trail(world: World) -> None:
    w = world
    call, _a, _b = await connected(w)
    call = await w.c.calls.start_recording(w.admin, w.tenant, call.id)
    assert call.recording is not None
    rec_id = call.recording.id
    await w.settle(10)
    await w.c.calls.suppress_recording(w.admin, w.tenant, call.id)
    with pytest.raises(DomainError) as exc:
        await w.c.calls.suppress_recording(w.admin, w.tenant, call.id)
    assert exc.value.code == "recording_already_suppressed"
    await w.settle(5)
    await w.c.calls.unsuppress_recording(w.admin, w.tenant, call.id)
    await w.settle(3)
    await w.c.calls.kill(w.admin, w.tenant, call.id)
    assert w.sim.recording_segments(rec_id) == [(0.0, 10.0), (15.0, 18.0)]
    record = await w.c.core.storage.get_cdr(w.tenant, call.id)
    assert record is not None and len(record.suppressions) == 1
    window = record.suppressions[0]
    assert (
        window.ended_at is not None and (window.ended_at - window.started_at).total_seconds() == 5
    )
    assert window.by == w.admin.id


async def test_recording_refusals(world: World) -> None:
    w = world
    call, _, _ = await connected(w)
    with pytest.raises(DomainError) as e1:
        await w.c.calls.suppress_recording(w.admin, w.tenant, call.id)
    assert e1.value.code == "recording_not_found"
    await w.c.calls.start_recording(w.admin, w.tenant, call.id)
    with pytest.raises(DomainError) as e2:
        await w.c.calls.start_recording(w.admin, w.tenant, call.id)
    assert e2.value.code == "recording_active"
    with pytest.raises(DomainError) as e3:
        await w.c.calls.unsuppress_recording(w.admin, w.tenant, call.id)
    assert e3.value.code == "recording_not_suppressed"


async def test_dtmf_send_and_receive(world: World) -> None:
    w = world
    call, _a, b = await connected(w)
    await w.c.calls.send_dtmf(w.admin, w.tenant, call.id, b, "12#")
    assert w.sim.dtmf_sent(b) == ["12#"]
    with pytest.raises(DomainError) as exc:
        await w.c.calls.send_dtmf(w.admin, w.tenant, call.id, b, "x")
    assert exc.value.code == "dtmf_invalid"
    w.sim.remote_dtmf(b, "5")
    await w.settle()
    assert (await types(w, call.id))[-1] == "dtmf.received"


async def test_inbound_call_to_extension_and_to_queue(world: World) -> None:
    w = world
    call_id = await w.c.calls.simulate_inbound(w.admin, w.tenant, "19735550123", "102")
    await w.settle()
    call = w.c.calls.get(w.admin, w.tenant, call_id)
    assert call.state is CallState.ANSWERED and call.origin == "inbound"
    legs = {leg.number: leg.id for leg in call.legs.values()}
    assert w.sim.hears(legs["19735550123"]) == {legs["102"]}
    queued_id = await w.c.calls.simulate_inbound(w.admin, w.tenant, "19735550124", "300")
    await w.settle()
    queued = w.c.calls.get(w.admin, w.tenant, queued_id)
    assert queued.state is CallState.QUEUED
    assert w.sim.hears(next(iter(queued.legs))) == {"music"}


async def test_inbound_call_to_busy_extension_is_released(world: World) -> None:
    w = world
    w.sim.set_script("102", EndpointScript(behaviour="busy"))
    call_id = await w.c.calls.simulate_inbound(w.admin, w.tenant, "19735550123", "102")
    await w.settle()
    record = await w.c.core.storage.get_cdr(w.tenant, call_id)
    assert record is not None and record.cause is HangupCause.BUSY
    assert all(s.state == "hungup" for s in w.sim.legs().values())


async def test_caller_hanging_up_while_ringing_cancels_the_extension(world: World) -> None:
    w = world
    w.sim.set_script("102", EndpointScript(answer_after=10))
    call_id = await w.c.calls.simulate_inbound(w.admin, w.tenant, "19735550123", "102")
    await w.settle(1)
    call = w.c.calls.get(w.admin, w.tenant, call_id)
    legs = {leg.number: leg.id for leg in call.legs.values()}
    w.sim.remote_hangup(legs["19735550123"])
    await w.settle()
    assert w.sim.leg_state(legs["102"]).state == "hungup"
    assert call_id not in w.c.calls.calls


async def test_operations_on_ended_or_unanswered_legs_are_refused(world: World) -> None:
    w = world
    w.sim.set_script("102", EndpointScript(answer_after=10))
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle(1)
    ringing = next(leg for leg in w.c.calls.calls[call.id].legs.values() if leg.number == "102")
    before = w.c.calls.calls[call.id].model_dump()
    with pytest.raises(DomainError) as exc:
        await w.c.calls.hold(w.admin, w.tenant, call.id, ringing.id)
    assert exc.value.code == "leg_not_answered"
    assert w.c.calls.calls[call.id].model_dump() == before


async def test_transfer_and_conference_refusals(world: World) -> None:
    w = world
    call, a, b = await connected(w)
    with pytest.raises(NotFound) as e1:
        await w.c.calls.transfer(w.admin, w.tenant, call.id, b, "999")
    assert e1.value.code == "extension_not_found"
    await w.c.calls.add_party(w.admin, w.tenant, call.id, "103")
    await w.settle()
    before = w.c.calls.calls[call.id].model_dump()
    with pytest.raises(DomainError) as e2:
        await w.c.calls.transfer(w.admin, w.tenant, call.id, b, "104")
    assert e2.value.code == "leg_in_conference"
    assert w.c.calls.calls[call.id].model_dump() == before
    _, slot = await w.c.calls.park(w.admin, w.tenant, call.id, b)
    w.sim.set_script("104", EndpointScript(answer_after=30))
    await w.c.calls.unpark(w.admin, w.tenant, slot, w.ext["104"])
    with pytest.raises(DomainError) as e3:
        await w.c.calls.unpark(w.admin, w.tenant, slot, w.ext["101"])
    assert e3.value.code == "unpark_in_progress"


async def test_add_party_needs_a_connected_call(world: World) -> None:
    w = world
    w.sim.set_script("102", EndpointScript(answer_after=30))
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    with pytest.raises(DomainError) as exc:
        await w.c.calls.add_party(w.admin, w.tenant, call.id, "103")
    assert exc.value.code == "call_not_bridged"


async def test_a_failed_command_leaves_the_parking_lot_as_it_was(world: World) -> None:
    w = world
    call, a, b = await connected(w)
    w.sim.remote_hangup(b)  # the switch knows, the core has not heard yet
    with pytest.raises(DomainError):
        await w.c.calls.park(w.admin, w.tenant, call.id, b, "703")
    assert w.c.calls.parking_lot(w.admin, w.tenant).slots == {}
    await w.settle()
    assert call.id not in w.c.calls.calls
