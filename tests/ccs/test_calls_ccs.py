"""CCS 4.19-4.27: listing calls (live, one, filter) and the call actions, driven by real calls on
the simulated switch. The 400 body of 4.19-4.22 is the spec's ``{"success": true, …}`` quirk."""

from __future__ import annotations

from typing import Any

from tests.ccs.golden import assert_golden
from tests.ccs.world import API, EXT, OTHER, OTHER_TENANT, OWN_TENANT, QUEUE, CcsWorld

from callbridge import demo
from callbridge.domain.calls import Call
from callbridge.domain.tenancy import Level, Permission
from callbridge.service.auth import system_actor

CALLS = f"{API}/calls"
EXT_112 = f"{API}/tenants/{OWN_TENANT}/extensions/{EXT['112']}"


async def click_to_call(ccs: CcsWorld, target: str = "19735552106") -> str:
    """Agent 112 calls ``target`` with the demo outbound queue; answered after settling."""
    async with ccs.client("agent") as cl:
        r = await cl.post(
            EXT_112,
            json={"request": "dial", "target": target, "outbound_queue_uuid": QUEUE["Outbound"]},
        )
    assert r.status_code == 200, r.text
    await ccs.settle()
    call_id: str = r.json()["call_id"]
    return call_id


async def waiting_call(ccs: CcsWorld, caller: str = "19735550123", to: str = "386") -> str:
    """A customer waiting in Q386 (ext 386): every demo agent is away, so nobody takes it."""
    system = system_actor()
    for number in ("112", "113", "114"):
        state = ccs.c.agents.state(system, OWN_TENANT, EXT[number])
        if state.presence_name != "Coffee Break":
            await ccs.c.agents.set_state(system, OWN_TENANT, EXT[number], "Coffee Break")
    call_id = await ccs.c.calls.simulate_inbound(system, OWN_TENANT, caller, to)
    await ccs.settle()
    assert ccs.c.calls.calls[call_id].state == "queued"
    return call_id


async def other_tenant_call(ccs: CcsWorld) -> str:
    call = await ccs.c.calls.originate(
        system_actor(), OTHER_TENANT, OTHER["ext_112"], "19735552106"
    )
    await ccs.settle()
    return call.id


def live(ccs: CcsWorld, call_id: str) -> Call:
    return ccs.c.calls.calls[call_id]


async def act(ccs: CcsWorld, call_id: str, user: str = "agent", **body: Any) -> Any:
    async with ccs.client(user) as cl:
        return await cl.post(f"{CALLS}/{call_id}", json=body)


# ---------------------------------------------------------------- 4.19 list


async def test_list_calls_shows_progress_and_answered_calls(ccs: CcsWorld) -> None:
    async with ccs.client("tenant_admin") as cl:
        empty = await cl.get(CALLS)
    waiting = await waiting_call(ccs)
    await ccs.settle(12)
    answered = await click_to_call(ccs)
    await ccs.settle(7)
    await other_tenant_call(ccs)
    async with ccs.client("tenant_admin") as cl:
        r = await cl.get(CALLS + "/")
    assert_golden("calls_list_empty", empty)
    assert empty.content == b'{"total":"0","success":true,"items":[]}'
    assert_golden("calls_list", r)
    body = r.json()
    assert body["total"] == "2"
    assert [(i["call_id"], i["state"]) for i in body["items"]] == [
        (waiting, "queued"),
        (answered, "answered"),
    ]
    assert "answered_on" not in body["items"][0] and "talk_duration" in body["items"][1]


async def test_list_calls_errors_use_the_success_true_quirk(ccs: CcsWorld) -> None:
    async with ccs.client("telco") as cl:
        telco = await cl.get(CALLS)
    async with ccs.client(None) as cl:
        anonymous = await cl.get(CALLS)
    assert_golden("calls_list_telco_user", telco)
    assert telco.json()["success"] is True and telco.status_code == 400
    assert_golden("calls_list_unauthorized", anonymous)


# ---------------------------------------------------------------- 4.20 one call


async def test_get_a_call_in_progress_answered_and_ended(ccs: CcsWorld) -> None:
    waiting = await waiting_call(ccs)
    await ccs.settle(5)
    answered = await click_to_call(ccs)
    await ccs.settle(90)
    async with ccs.client("agent") as cl:
        progress = await cl.get(f"{CALLS}/{waiting}")
        talking = await cl.get(f"{CALLS}/{answered}/")
        await cl.post(f"{CALLS}/{answered}", json={"request": "kill"})
        await ccs.settle()
        ended = await cl.get(f"{CALLS}/{answered}")
    assert_golden("calls_get_progress", progress)
    assert_golden("calls_get_answered", talking)
    assert_golden("calls_get_ended", ended)
    assert progress.json()["state"] == "queued"
    assert progress.json()["queue_id"] == {"uuid": QUEUE["Q386"], "name": "Q386"}
    assert talking.json()["talk_duration"] == "0:01:30"
    assert ended.json()["hangup_cause"] == "killed" and ended.json()["ended_on"] != ""


async def test_get_an_unknown_or_other_tenants_call(ccs: CcsWorld) -> None:
    theirs = await other_tenant_call(ccs)
    async with ccs.client("agent") as cl:
        unknown = await cl.get(f"{CALLS}/0BS9DD02LEMUI")
        other = await cl.get(f"{CALLS}/{theirs}")
    assert_golden("calls_get_unknown", unknown)
    assert unknown.content == b'{"success":true,"reason":"call \'0BS9DD02LEMUI\' not found"}'
    assert other.status_code == 400
    assert other.json() == {"success": True, "reason": f"call {theirs!r} not found"}


# ---------------------------------------------------------------- 4.21 filter


async def test_filter_by_numbers_and_time_range_in_a_named_zone(ccs: CcsWorld) -> None:
    # the fake clock starts at 2026-01-01 09:00:00 UTC (04:00 AM in US/Eastern)
    first = await click_to_call(ccs)
    async with ccs.client("agent") as cl:
        await cl.post(f"{CALLS}/{first}", json={"request": "kill"})
    await ccs.settle(3600)
    second = await click_to_call(ccs)
    await ccs.settle(10)
    waiting = await waiting_call(ccs, caller="19735550999")
    async with ccs.client("agent") as cl:
        by_time = await cl.get(
            f"{CALLS}/filter",
            params={
                "calling_number": "112",
                "called_number": "19735552106",
                "from_datetime": "2026-01-01T03:59:00",
                "to_datetime": "2026-01-01T04:30:00",
                "time_z": "US/Eastern",
            },
        )
        by_number = await cl.get(f"{CALLS}/filter/", params={"calling_number": "19735550999 "})
        everything = await cl.get(f"{CALLS}/filter", params={"time_z": "UTC"})
    assert_golden("calls_filter", by_time)
    assert [i["call_id"] for i in by_time.json()["items"]] == [first]
    assert [i["call_id"] for i in by_number.json()["items"]] == [waiting]
    assert [i["call_id"] for i in everything.json()["items"]] == [waiting, second, first]
    assert everything.json()["total"] == "3"


async def test_filter_errors_name_the_parameter(ccs: CcsWorld) -> None:
    async with ccs.client("agent") as cl:
        bad_time = await cl.get(f"{CALLS}/filter", params={"from_datetime": "yesterday"})
        bad_zone = await cl.get(f"{CALLS}/filter", params={"time_z": "Mars/Olympus"})
        unknown = await cl.get(f"{CALLS}/filter", params={"caller": "112"})
        inverted = await cl.get(
            f"{CALLS}/filter",
            params={"from_datetime": "2021-10-07T07:22:24", "to_datetime": "2021-10-07T07:22:21"},
        )
    assert_golden("calls_filter_bad_datetime", bad_time)
    assert_golden("calls_filter_bad_time_z", bad_zone)
    assert_golden("calls_filter_unknown_parameter", unknown)
    assert_golden("calls_filter_inverted_range", inverted)
    for r in (bad_time, bad_zone, unknown, inverted):
        assert r.status_code == 400 and r.json()["success"] is True


async def test_filter_with_the_spec_example_query(ccs: CcsWorld) -> None:
    async with ccs.client("agent") as cl:
        r = await cl.get(
            f"{CALLS}/filter?calling_number=501&called_number=101&from_datetime=2021-10-07T07:22:21"
            "&to_datetime=2021-10-07T07:22:24&time_z=UTC"
        )
    assert r.content == b'{"total":"0","success":true,"items":[]}'


# ---------------------------------------------------------------- 4.22/4.23 suppression


async def test_suppression_start_and_stop_are_kept_in_the_call_record(ccs: CcsWorld) -> None:
    call_id = await click_to_call(ccs)
    await ccs.c.calls.start_recording(system_actor(), OWN_TENANT, call_id)
    await ccs.settle(20)
    start = await act(ccs, call_id, request="startSuppression")
    await ccs.settle(45)
    stop = await act(ccs, call_id, request="stopSuppression")
    async with ccs.client("agent") as cl:
        during = await cl.get(f"{CALLS}/{call_id}")
    assert_golden("calls_suppression_start", start)
    assert_golden("calls_suppression_stop", stop)
    assert start.json()["recording"] == "suppressed" and stop.json()["recording"] == "active"
    assert during.json()["recording"]["suppressions"][0]["duration"] == "0:00:45"
    await act(ccs, call_id, request="kill")
    await ccs.settle()
    record = await ccs.c.core.storage.get_cdr(OWN_TENANT, call_id)
    assert record is not None and len(record.suppressions) == 1
    window = record.suppressions[0]
    assert window.ended_at is not None
    assert (window.ended_at - window.started_at).total_seconds() == 45
    assert window.by == "az123456-b003-4e5f-9a0b-000000000003"  # the agent: the audit trail


async def test_suppression_errors(ccs: CcsWorld) -> None:
    call_id = await click_to_call(ccs)
    not_recorded = await act(ccs, call_id, request="startSuppression")
    await ccs.c.calls.start_recording(system_actor(), OWN_TENANT, call_id)
    not_suppressed = await act(ccs, call_id, request="stopSuppression")
    await act(ccs, call_id, request="startSuppression")
    twice = await act(ccs, call_id, request="startSuppression")
    unknown = await act(ccs, "0BS9DD02LEMUI", request="stopSuppression")
    assert_golden("calls_suppression_start_not_recorded", not_recorded)
    assert_golden("calls_suppression_stop_not_suppressed", not_suppressed)
    assert_golden("calls_suppression_start_twice", twice)
    assert_golden("calls_suppression_stop_unknown_call", unknown)
    assert not_recorded.json()["success"] is True  # 4.22's documented quirk
    assert not_suppressed.json()["success"] is False  # 4.23 documents success false


# ---------------------------------------------------------------- 4.24 kill


async def test_kill_ends_the_call(ccs: CcsWorld) -> None:
    call_id = await click_to_call(ccs)
    r = await act(ccs, call_id, request="kill")
    await ccs.settle()
    again = await act(ccs, call_id, request="kill")
    assert_golden("calls_kill", r)
    assert_golden("calls_kill_ended_call", again)
    assert call_id not in ccs.c.calls.calls
    record = await ccs.c.core.storage.get_cdr(OWN_TENANT, call_id)
    assert record is not None and record.cause == "killed"


async def test_call_action_body_errors(ccs: CcsWorld) -> None:
    call_id = await click_to_call(ccs)
    unknown_request = await act(ccs, call_id, request="hangup")
    async with ccs.client("agent") as cl:
        no_body = await cl.post(f"{CALLS}/{call_id}")
    async with ccs.client("telco") as cl:
        telco = await cl.post(f"{CALLS}/{call_id}", json={"request": "kill"})
        telco_quirk = await cl.post(f"{CALLS}/{call_id}", json={"request": "startSuppression"})
    assert_golden("calls_action_unknown_request", unknown_request)
    assert_golden("calls_action_no_body", no_body)
    assert_golden("calls_action_telco_user", telco)
    assert telco_quirk.json() == {"success": True, "reason": telco.json()["reason"]}
    assert live(ccs, call_id).state == "answered"


# ---------------------------------------------------------------- 4.25-4.27 waiting calls


async def test_wait_transfer_to_an_extension(ccs: CcsWorld) -> None:
    call_id = await waiting_call(ccs)
    r = await act(ccs, call_id, request="wait_transfer", target="120")
    await ccs.settle()
    assert_golden("calls_wait_transfer", r)
    call = live(ccs, call_id)
    assert call.state == "answered"
    assert sorted(g.number for g in call.live_legs()) == ["120", "19735550123"]
    assert ccs.c.acd.desk.waiting(system_actor(), OWN_TENANT, QUEUE["Q386"]) == []


async def test_wait_transfer_to_a_number_and_to_a_queue_extension(ccs: CcsWorld) -> None:
    first = await waiting_call(ccs)
    second = await waiting_call(ccs, caller="19735550124")
    out = await act(ccs, first, request="wait_transfer", target="19735552109")
    moved = await act(ccs, second, request="wait_transfer", target="387")
    await ccs.settle()
    assert out.status_code == moved.status_code == 200
    assert "19735552109" in [g.number for g in live(ccs, first).live_legs()]
    assert live(ccs, second).queue_id == QUEUE["Q3878"]


async def test_wait_redirect_moves_the_call_to_another_acd(ccs: CcsWorld) -> None:
    call_id = await waiting_call(ccs)
    r = await act(ccs, call_id, request="wait_redirect", target=QUEUE["Q3878"])
    await ccs.settle()
    assert_golden("calls_wait_redirect", r)
    assert live(ccs, call_id).queue_id == QUEUE["Q3878"]
    waiting = ccs.c.acd.desk.waiting(system_actor(), OWN_TENANT, QUEUE["Q3878"])
    assert [w.call_id for w in waiting] == [call_id]


async def test_wait_kill_ends_a_waiting_call(ccs: CcsWorld) -> None:
    call_id = await waiting_call(ccs)
    r = await act(ccs, call_id, request="wait_kill")
    await ccs.settle()
    assert_golden("calls_wait_kill", r)
    assert call_id not in ccs.c.calls.calls
    record = await ccs.c.core.storage.get_cdr(OWN_TENANT, call_id)
    assert record is not None and record.cause == "killed"


async def test_wait_action_errors(ccs: CcsWorld) -> None:
    talking = await click_to_call(ccs)
    waiting = await waiting_call(ccs)
    theirs = await other_tenant_call(ccs)
    not_waiting = await act(ccs, talking, request="wait_kill")
    no_target = await act(ccs, waiting, request="wait_transfer")
    bad_target = await act(ccs, waiting, request="wait_transfer", target="999")
    other_queue = await act(ccs, waiting, request="wait_redirect", target=OTHER["queue"])
    outbound = await act(ccs, waiting, request="wait_redirect", target=QUEUE["Outbound"])
    same = await act(ccs, waiting, request="wait_redirect", target=QUEUE["Q386"])
    other_call = await act(ccs, theirs, request="wait_kill")
    unknown_call = await act(ccs, "0BS9DD02LEMUI", request="wait_kill")
    assert_golden("calls_wait_not_waiting", not_waiting)
    assert_golden("calls_wait_transfer_missing_target", no_target)
    assert_golden("calls_wait_transfer_unknown_extension", bad_target)
    assert_golden("calls_wait_redirect_other_tenant_queue", other_queue)
    assert_golden("calls_wait_redirect_not_an_acd", outbound)
    assert_golden("calls_wait_redirect_same_queue", same)
    assert_golden("calls_wait_kill_unknown_call", unknown_call)
    assert other_call.json() == {"success": False, "reason": f"call {theirs!r} not found"}
    assert live(ccs, waiting).state == "queued" and live(ccs, talking).state == "answered"


async def test_listing_needs_calls_listing_view_and_one_call_needs_calls_view(
    ccs: CcsWorld,
) -> None:
    d = ccs.c.directory
    role = await d.create_role("Wallboard", [Permission.CALLS_LISTING_VIEW], OWN_TENANT)
    p = await d.create_principal(
        "Wallboard",
        Level.TENANT,
        demo.TELCO_ID,
        [demo.ROLES["api"][0], role.id],
        tenant_id=OWN_TENANT,
    )
    _, ccs.tokens["wallboard"] = await d.issue_token(p.id)
    call_id = await click_to_call(ccs)
    async with ccs.client("wallboard") as cl:
        listed = await cl.get(CALLS)
        one = await cl.get(f"{CALLS}/{call_id}")
    assert [i["call_id"] for i in listed.json()["items"]] == [call_id]
    assert_golden("calls_get_missing_permission", one)


async def test_a_spec_only_client_suppresses_a_mandatory_recording(ccs: CcsWorld) -> None:
    """With extension 112 set to Mandatory recording (4.14), its click-to-call is recorded and
    4.22/4.23 pause and resume it."""
    await ccs.c.directory.update_extension(
        system_actor(), OWN_TENANT, EXT["112"], {"recording_type": "Mandatory"}
    )
    call_id = await click_to_call(ccs)
    async with ccs.client("agent") as cl:
        recorded = await cl.get(f"{CALLS}/{call_id}")
    start = await act(ccs, call_id, request="startSuppression")
    await ccs.settle(10)
    stop = await act(ccs, call_id, request="stopSuppression")
    assert recorded.json()["recording"] == {"state": "active", "suppressions": []}
    assert start.status_code == stop.status_code == 200
    rec = live(ccs, call_id).recording
    assert rec is not None and ccs.sim.recording(rec.id).state == "active"
    assert len(ccs.sim.recording_segments(rec.id)) == 2  # recorded, paused 10 s, recording again


async def test_a_call_that_ended_unanswered_keeps_the_progress_shape(ccs: CcsWorld) -> None:
    call_id = await click_to_call(ccs, target="19735550000")  # scripted busy
    await ccs.settle(5)
    async with ccs.client("agent") as cl:
        r = await cl.get(f"{CALLS}/{call_id}")
    assert_golden("calls_get_ended_unanswered", r)
    body = r.json()
    assert (body["state"], body["hangup_cause"]) == ("ended", "busy")
    assert "answered_on" not in body and "connected_parties" not in body
