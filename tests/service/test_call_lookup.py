"""Finding calls by id or by number and time (live and finished), and the queue a call waits in
(the reads the CCS dialect's 4.20, 4.21 and 4.25-4.27 need)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.service.acd_support import arrive, setup_queue
from tests.support import World

from callbridge.domain.calls import Call
from callbridge.domain.cdr import CallRecord
from callbridge.domain.errors import Conflict, Invalid, NotFound, PermissionDenied
from callbridge.domain.tenancy import Permission
from callbridge.service.auth import Actor


async def answered_call(w: World, target: str = "19735552106") -> str:
    call = await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], target)
    await w.settle(1)
    return call.id


async def test_find_gives_the_live_call_then_its_record(world: World) -> None:
    w = world
    call_id = await answered_call(w)
    live = await w.c.calls.find(w.admin, w.tenant, call_id)
    assert isinstance(live, Call) and live.state == "answered"
    await w.c.calls.kill(w.admin, w.tenant, call_id)
    await w.settle()
    record = await w.c.calls.find(w.admin, w.tenant, call_id)
    assert isinstance(record, CallRecord) and record.cause == "killed"


async def test_find_hides_other_tenants_calls_like_unknown_ones(world: World) -> None:
    w = world
    call_id = await answered_call(w)
    with pytest.raises(NotFound) as other:
        await w.c.calls.find(w.other_admin, w.other_tenant, call_id)
    with pytest.raises(NotFound) as unknown:
        await w.c.calls.find(w.admin, w.tenant, "NOSUCHCALL123")
    assert other.value.code == unknown.value.code == "call_not_found"


async def test_search_matches_numbers_and_start_time_over_live_and_finished_calls(
    world: World,
) -> None:
    w = world
    t0 = w.c.core.clock.now()
    first = await answered_call(w)
    await w.c.calls.kill(w.admin, w.tenant, first)
    await w.settle(60)
    second = await answered_call(w, "19735550002")
    found = await w.c.calls.search(w.admin, w.tenant)
    assert [(type(x).__name__, getattr(x, "id", None) or x.call_id) for x in found] == [
        ("Call", second),
        ("CallRecord", first),
    ]
    by_called = await w.c.calls.search(w.admin, w.tenant, called_number="19735552106")
    assert [x.call_id for x in by_called if isinstance(x, CallRecord)] == [first]
    assert len(by_called) == 1
    assert await w.c.calls.search(w.admin, w.tenant, calling_number="999") == []
    early = await w.c.calls.search(
        w.admin, w.tenant, started_from=t0, started_to=t0 + timedelta(seconds=30)
    )
    assert [x.call_id for x in early if isinstance(x, CallRecord)] == [first] and len(early) == 1
    assert await w.c.calls.search(w.other_admin, w.other_tenant) == []


async def test_search_refuses_naive_and_inverted_times(world: World) -> None:
    w = world
    with pytest.raises(Invalid) as naive:
        await w.c.calls.search(
            w.admin, w.tenant, started_from=datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
        )
    assert naive.value.code == "datetime_naive"
    later = datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(Invalid) as inverted:
        await w.c.calls.search(
            w.admin, w.tenant, started_from=later, started_to=later - timedelta(hours=1)
        )
    assert inverted.value.code == "time_range_inverted"


async def test_queue_of_names_the_queue_a_call_waits_in(world: World) -> None:
    w = world
    await setup_queue(w, members=("101",))
    await w.c.agents.set_state(w.admin, w.tenant, w.ext["101"], "Coffee Break")
    waiting = await arrive(w)
    assert w.c.acd.desk.queue_of(w.admin, w.tenant, waiting) == w.queue
    with pytest.raises(NotFound):
        w.c.acd.desk.queue_of(w.other_admin, w.other_tenant, waiting)
    with pytest.raises(NotFound):
        w.c.acd.desk.queue_of(w.admin, w.tenant, "NOSUCHCALL123")


async def test_queue_of_refuses_a_call_that_is_not_waiting(world: World) -> None:
    w = world
    call_id = await answered_call(w)
    with pytest.raises(Conflict) as refused:
        w.c.acd.desk.queue_of(w.admin, w.tenant, call_id)
    assert refused.value.code == "call_not_waiting"


async def test_a_listing_can_ask_for_the_listing_permission(world: World) -> None:
    w = world
    call_id = await answered_call(w)
    lister = Actor(w.admin.principal, frozenset({Permission.CALLS_LISTING_VIEW}))
    listed = w.c.calls.list_calls(lister, w.tenant, permission=Permission.CALLS_LISTING_VIEW)
    assert [c.id for c in listed] == [call_id]
    with pytest.raises(PermissionDenied):
        w.c.calls.list_calls(lister, w.tenant)
