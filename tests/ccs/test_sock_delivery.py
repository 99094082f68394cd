"""``/6/v2/sock`` delivery: permissions gate each category, tenants never see each other's
events, a reconnect resumes from a cursor with no gap and no duplicate, a slow client is closed
without stalling the others, and shutdown closes cleanly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tests.ccs.sock_harness import SockClient, assert_golden_lines
from tests.ccs.world import EXT, OTHER, OTHER_TELCO, OTHER_TENANT, OWN_TENANT, CcsWorld

from callbridge import demo
from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.api.ccs import sock
from callbridge.api.ccs.events import TABLE
from callbridge.domain.directory import PresenceType
from callbridge.domain.events import EventCategory
from callbridge.domain.tenancy import Level, Permission
from callbridge.service.auth import hash_secret, system_actor

SYSTEM = system_actor()


async def user_with(ccs: CcsWorld, *perms: Permission, tenant: str = OWN_TENANT) -> str:
    """A token of a new tenant-level user whose only role grants ``perms``."""
    d = ccs.c.directory
    role = await d.create_role(f"role {len(d.roles)}", list(perms), tenant)
    telco = demo.TELCO_ID if tenant == OWN_TENANT else OTHER_TELCO
    p = await d.create_principal(
        f"user {len(d.principals)}", Level.TENANT, telco, [role.id], tenant
    )
    _, secret = await d.issue_token(p.id)
    return secret


async def agent_goes_away(ccs: CcsWorld, tenant: str = OWN_TENANT) -> None:
    ext = EXT["112"] if tenant == OWN_TENANT else OTHER["ext_112"]
    await ccs.c.agents.set_state(SYSTEM, tenant, ext, "Coffee Break")
    await ccs.settle()


async def queue_call(ccs: CcsWorld, tenant: str = OWN_TENANT) -> None:
    """An inbound call through a queue, answered by an agent: call, agent and queue events."""
    await ccs.c.calls.simulate_inbound(SYSTEM, tenant, "19735550123", "386")
    await ccs.settle(2)


def categories(frames: list[Any]) -> set[str]:
    return {f["event"] for f in frames}


# ------------------------------------------------------------------------------ gating

CALLS, AGENTS, QUEUES = (
    Permission.CALL_EVENTS,
    Permission.AGENT_EVENTS,
    Permission.INBOUND_QUEUE_EVENTS,
)
GATES: list[tuple[str, list[Permission], set[str]]] = [
    ("call", [CALLS], {"call"}),
    ("agent", [AGENTS], {"agent"}),
    ("queue", [QUEUES], {"inbound_queue"}),
    ("call+queue", [CALLS, QUEUES], {"call", "inbound_queue"}),
    ("none", [Permission.API, Permission.AGENT_CONTROL, Permission.CALL_CONTROL], set()),
]


@pytest.mark.parametrize(("name", "perms", "expected"), GATES, ids=[g[0] for g in GATES])
async def test_each_category_needs_its_permission(
    ccs: CcsWorld, name: str, perms: list[Permission], expected: set[str]
) -> None:
    token = await user_with(ccs, *perms)
    async with SockClient(ccs) as ws:
        ack = await ws.connect(token)
        await queue_call(ccs)
        await agent_goes_away(ccs)
        frames = await ws.drain()
    order = ["call", "agent", "inbound_queue"]
    assert ack["events"] == [k for k in order if k in expected]
    assert categories(frames) == expected
    if not expected:
        assert frames == []


async def test_the_socket_does_not_need_the_api_permission(ccs: CcsWorld) -> None:
    token = await user_with(ccs, Permission.AGENT_EVENTS)
    async with SockClient(ccs) as ws:
        assert (await ws.connect(token))["success"] is True
        await agent_goes_away(ccs)
        frames = await ws.drain()
    assert [f["type"] for f in frames] == ["agent_state"]


async def test_configuration_events_are_not_sent_even_to_admins(ccs: CcsWorld) -> None:
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["tenant_admin"])
        before = await ccs.c.core.storage.last_seq(OWN_TENANT)
        await ccs.c.directory.create_presence_option(
            SYSTEM, OWN_TENANT, PresenceType.AWAY, "Training"
        )
        assert await ccs.c.core.storage.last_seq(OWN_TENANT) == before + 1
        assert await ws.drain() == []
        await agent_goes_away(ccs)
        frames = await ws.drain()
    assert [f["cursor"] for f in frames] == [str(before + 2)]


async def test_an_agent_state_change_is_delivered_as_golden(ccs: CcsWorld) -> None:
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["agent"])
        await agent_goes_away(ccs)
        await ws.drain()
    assert_golden_lines("sock_agent_state_change", ws.transcript)


async def test_a_queue_call_is_delivered_as_golden(ccs: CcsWorld) -> None:
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["telco"], tenant_uuid=OWN_TENANT)
        await queue_call(ccs)
        frames = await ws.drain()
    mapped = {ccs_type for ccs_type, _ in TABLE.values()}
    assert frames and all(f["type"] in mapped for f in frames)
    assert_golden_lines("sock_queue_call", ws.transcript)


# ------------------------------------------------------------------------- cross-tenant


@pytest.mark.parametrize(
    ("user", "tenant", "other"),
    [
        ("tenant_admin", OWN_TENANT, OTHER_TENANT),
        ("agent", OWN_TENANT, OTHER_TENANT),
        ("telco", OWN_TENANT, OTHER_TENANT),
        ("other_admin", OTHER_TENANT, OWN_TENANT),
        ("other_agent", OTHER_TENANT, OWN_TENANT),
        ("other_telco", OTHER_TENANT, OWN_TENANT),
    ],
)
async def test_a_tenant_never_sees_another_tenants_events(
    ccs: CcsWorld, user: str, tenant: str, other: str
) -> None:
    fields = {"tenant_uuid": tenant} if "telco" in user else {}
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens[user], **fields)
        await queue_call(ccs, other)
        await agent_goes_away(ccs, other)
        assert await ws.drain() == []
        await agent_goes_away(ccs, tenant)
        frames = await ws.drain()
    assert frames and {f["tenant_uuid"] for f in frames} == {tenant}


# ------------------------------------------------------------------------------- resume


async def test_a_reconnect_resumes_from_the_cursor_with_no_gap_and_no_duplicate(
    ccs: CcsWorld,
) -> None:
    token = ccs.tokens["tenant_admin"]
    start = (await ack_of(ccs, token))["cursor"]
    async with SockClient(ccs) as ws:
        await ws.connect(token)
        await queue_call(ccs)
        first = await ws.drain()
    assert first
    # events while disconnected
    await agent_goes_away(ccs)
    await ccs.c.calls.simulate_inbound(SYSTEM, OWN_TENANT, "19735550124", "387")
    await ccs.settle(1)
    async with SockClient(ccs) as ws:
        ack = await ws.connect(token, cursor=first[-1]["cursor"])
        assert ack["cursor"] == first[-1]["cursor"]
        missed = await ws.drain()
        await ccs.c.agents.set_state(SYSTEM, OWN_TENANT, EXT["112"], "Ready")
        await ccs.settle()
        live = await ws.drain()
    resumed = first + missed + live
    # one connection that saw everything from the first cursor gets exactly the same frames
    async with SockClient(ccs) as ws:
        await ws.connect(token, cursor=start)
        everything = await ws.drain()
    assert resumed == everything
    cursors = [int(f["cursor"]) for f in everything]
    assert cursors == sorted(set(cursors))
    assert missed and live and live[0]["type"] == "agent_state"


async def ack_of(ccs: CcsWorld, token: str, **fields: Any) -> Any:
    async with SockClient(ccs) as ws:
        return await ws.connect(token, **fields)


async def test_cursor_as_number_is_accepted_and_zero_replays_the_whole_log(
    ccs: CcsWorld,
) -> None:
    head = await ccs.c.core.storage.last_seq(OWN_TENANT)
    async with SockClient(ccs) as ws:
        ack = await ws.connect(ccs.tokens["tenant_admin"], cursor=0)
        frames = await ws.drain()
    assert ack["cursor"] == "0"
    assert all(0 < int(f["cursor"]) <= head for f in frames)
    assert categories(frames) <= {"agent"}  # the demo seeding: agents signed in


async def test_a_long_replay_waits_for_the_client_instead_of_overflowing(
    ccs: CcsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sock, "LIMITS", sock.SockLimits(queue_size=2))
    for _ in range(3):
        await agent_goes_away(ccs)
        await ccs.c.agents.set_state(SYSTEM, OWN_TENANT, EXT["112"], "Ready")
    await ccs.settle()
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["tenant_admin"], cursor=0)
        frames = await ws.drain()
    log = await ccs.c.core.storage.events(OWN_TENANT, 0, 1000)
    expected = [str(e.seq) for e in log if e.category is not EventCategory.CONFIG]
    assert len(expected) > 2 * 2
    assert [f["cursor"] for f in frames] == expected


# -------------------------------------------------------------------- slow consumer


async def test_a_slow_client_is_closed_with_its_cursor_and_others_carry_on(
    ccs: CcsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sock, "LIMITS", sock.SockLimits(queue_size=20, close_timeout_s=0.05))
    token = ccs.tokens["tenant_admin"]
    async with SockClient(ccs) as slow, SockClient(ccs) as fast:
        ack = await slow.connect(token)
        await fast.connect(token)
        slow.pause()
        fast_frames = []
        for _ in range(3):
            await queue_call(ccs)
            fast_frames += await fast.drain()
        assert len(fast_frames) > 20
        assert int(fast_frames[-1]["cursor"]) == await ccs.c.core.storage.last_seq(OWN_TENANT)
        assert slow.task is not None
        await asyncio.wait_for(slow.task, 2)  # the server gave up on the slow client
        assert fast.task is not None and not fast.task.done()
    # the goodbye could not be written to a client that does not read (uvicorn then drops the
    # TCP connection); the client resumes from the last cursor it received
    assert slow.from_app.empty()
    async with SockClient(ccs) as again:
        await again.connect(token, cursor=ack["cursor"])
        assert await again.drain() == fast_frames


async def test_a_slow_client_that_reads_again_gets_the_goodbye_and_resumes(
    ccs: CcsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sock, "LIMITS", sock.SockLimits(queue_size=20, close_timeout_s=1.0))
    token = ccs.tokens["tenant_admin"]
    async with SockClient(ccs) as slow:
        ack = await slow.connect(token)
        slow.pause()
        for _ in range(3):
            await queue_call(ccs)
        for _ in range(20):
            await asyncio.sleep(0)
        slow.resume()
        closed = await slow.closed()
    assert closed.code == 4429
    goodbye = slow.transcript[-2]
    assert goodbye.startswith('{"success":false,"reason":"Slow consumer: reconnect with your')
    cursor = json.loads(goodbye)["cursor"]
    assert_golden_lines("sock_slow_consumer", slow.transcript[-2:])
    assert cursor == ack["cursor"]  # nothing was written before the pause
    async with SockClient(ccs) as ws:
        await ws.connect(token, cursor=cursor)
        frames = await ws.drain()
    assert frames and frames[0]["cursor"] == str(int(ack["cursor"]) + 1)


async def test_a_frame_stuck_too_long_is_a_slow_consumer(
    ccs: CcsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sock, "LIMITS", sock.SockLimits(send_timeout_s=30, close_timeout_s=0.05))
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["tenant_admin"])
        ws.pause()
        await agent_goes_away(ccs)
        for _ in range(20):
            await asyncio.sleep(0)
        assert ws.task is not None and not ws.task.done()
        ccs.clock.advance(29)
        for _ in range(20):
            await asyncio.sleep(0)
        assert not ws.task.done()
        ccs.clock.advance(1)
        await asyncio.wait_for(ws.task, 2)  # given up: the goodbye could not be written either
    assert ws.from_app.empty()


# ----------------------------------------------------------------- lifecycle


async def test_server_shutdown_closes_with_1001_and_the_cursor(ccs: CcsWorld) -> None:
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["tenant_admin"])
        await agent_goes_away(ccs)
        await ws.drain()
        await ccs.c.core.bus.stop()
        closed = await ws.closed()
    assert closed.code == 1001
    assert_golden_lines("sock_shutdown", ws.transcript[-2:])


async def test_a_closed_connection_leaves_no_subscription_and_no_task(ccs: CcsWorld) -> None:
    bus = ccs.c.core.bus
    assert isinstance(bus, MemoryEventBus)
    before = bus.subscriber_count
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["tenant_admin"])
        await agent_goes_away(ccs)
        await ws.drain()
        assert bus.subscriber_count == before + 1
    assert bus.subscriber_count == before
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not {n for n in names if n.startswith("ccs-sock-")}


async def test_a_frame_after_close_is_not_attempted(ccs: CcsWorld) -> None:
    """The client disconnects; events afterwards do not reach (or break) the handler."""
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["tenant_admin"])
    await agent_goes_away(ccs)
    await ccs.settle()
    with pytest.raises(asyncio.QueueEmpty):
        ws.from_app.get_nowait()


async def test_an_unexpected_error_closes_with_1011_and_the_cursor(
    ccs: CcsWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(sock, "render", broken)
    async with SockClient(ccs) as ws:
        ack = await ws.connect(ccs.tokens["tenant_admin"])
        await agent_goes_away(ccs)
        closed = await ws.closed()
    assert closed.code == 1011
    assert json.loads(ws.transcript[-2]) == {
        "success": False,
        "reason": "Internal Server Error: reconnect with your cursor",
        "cursor": ack["cursor"],
    }
    assert_golden_lines("sock_internal_error", ws.transcript[-2:])
    assert "connection of" in caplog.text and ccs.tokens["tenant_admin"] not in caplog.text


async def test_a_token_revoked_while_connected_closes_at_the_next_event(ccs: CcsWorld) -> None:
    d = ccs.c.directory
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["agent"])
        await d.revoke_token(d.tokens[hash_secret(ccs.tokens["agent"])].id)
        await agent_goes_away(ccs)
        closed = await ws.closed()
    assert closed.code == 4401
    assert ws.transcript[1:] == [
        '{"status":401,"reason":"Unauthorized"}',
        "CLOSE 4401 Unauthorized",
    ]
    assert_golden_lines("sock_token_revoked", ws.transcript[1:])


async def test_a_role_losing_a_permission_stops_that_category_at_once(ccs: CcsWorld) -> None:
    token = await user_with(ccs, AGENTS, CALLS)
    d = ccs.c.directory
    principal = d.tokens[hash_secret(token)].principal_id
    role = d.roles[d.principals[principal].role_ids[0]]
    async with SockClient(ccs) as ws:
        await ws.connect(token)
        await agent_goes_away(ccs)
        assert categories(await ws.drain()) == {"agent"}
        await d.create_role(role.name, [CALLS], OWN_TENANT, role_id=role.id)  # replaces it
        await ccs.c.agents.set_state(SYSTEM, OWN_TENANT, EXT["112"], "Ready")
        await queue_call(ccs)
        assert categories(await ws.drain()) == {"call"}


async def test_call_frames_carry_the_numbers_also_after_a_resume_mid_call(ccs: CcsWorld) -> None:
    """The numbers come from call.created, else from the live call, else from its record."""
    token = ccs.tokens["tenant_admin"]
    call = await ccs.c.calls.originate(SYSTEM, OWN_TENANT, EXT["112"], "19735552106")
    await ccs.settle(1)
    log = await ccs.c.core.storage.events(OWN_TENANT, 0, 1000)
    created = next(e.seq for e in log if e.type == "call.created")
    numbers = {"calling_number": "112", "called_number": "19735552106"}
    async with SockClient(ccs) as ws:  # resumes after call.created: the call is live
        await ws.connect(token, cursor=str(created))
        live = [f for f in await ws.drain() if f["event"] == "call"]
    await ccs.c.calls.kill(SYSTEM, OWN_TENANT, call.id)
    await ccs.settle(1)
    async with SockClient(ccs) as ws:  # the call has ended: its call record has the numbers
        await ws.connect(token, cursor=str(created))
        ended = [f for f in await ws.drain() if f["event"] == "call"]
    assert live and ended[-1]["type"] == "ended"
    for frame in live + ended:
        assert frame["call_id"] == call.id
        assert {k: frame[k] for k in numbers} == numbers, frame


async def test_live_events_overflowing_during_a_stalled_replay_close_and_resume(
    ccs: CcsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bus drops a subscriber whose replay is stalled by the client while live events pile
    up; the client gets 4429 with the cursor it reached and loses nothing on resume."""
    monkeypatch.setattr(sock, "LIMITS", sock.SockLimits(queue_size=2, close_timeout_s=1.0))
    monkeypatch.setattr(ccs.c.streams, "queue_size", 2)
    token = ccs.tokens["tenant_admin"]
    async with SockClient(ccs) as ws:
        await ws.connect(token, cursor="0")
        ws.pause()
        for _ in range(3):
            await agent_goes_away(ccs)
            await ccs.c.agents.set_state(SYSTEM, OWN_TENANT, EXT["112"], "Ready")
        await ccs.settle()
        ws.resume()
        closed = await ws.closed()
    assert closed.code == 4429
    frames = [json.loads(line) for line in ws.transcript[1:-2]]
    goodbye = json.loads(ws.transcript[-2])
    assert goodbye["cursor"] == frames[-1]["cursor"]
    async with SockClient(ccs) as again:
        await again.connect(token, cursor=goodbye["cursor"])
        rest = await again.drain()
    log = await ccs.c.core.storage.events(OWN_TENANT, 0, 1000)
    expected = [str(e.seq) for e in log if e.category is not EventCategory.CONFIG]
    assert [f["cursor"] for f in frames + rest] == expected
