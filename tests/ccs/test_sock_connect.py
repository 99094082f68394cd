"""``/6/v2/sock``: the connect message, its acknowledgement and every refusal (frame + close)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.ccs.sock_harness import SockClient, assert_golden_lines
from tests.ccs.world import OTHER_TENANT, OWN_TENANT, CcsWorld

from callbridge.api.ccs import sock
from callbridge.service.auth import hash_secret

UNAUTHORIZED = '{"status":401,"reason":"Unauthorized"}'


async def test_a_tenant_admin_gets_its_own_tenant_and_every_category(ccs: CcsWorld) -> None:
    head = await ccs.c.core.storage.last_seq(OWN_TENANT)
    async with SockClient(ccs) as ws:
        ack = await ws.connect(ccs.tokens["tenant_admin"])
    assert ack == {
        "response": "connect",
        "success": True,
        "tenant_uuid": OWN_TENANT,
        "cursor": str(head),
        "events": ["call", "agent", "inbound_queue"],
    }
    assert_golden_lines("sock_ack_tenant_admin", ws.transcript)


async def test_a_tenant_user_may_name_its_own_tenant(ccs: CcsWorld) -> None:
    async with SockClient(ccs) as ws:
        ack = await ws.connect(ccs.tokens["agent"], tenant_uuid=OWN_TENANT)
    assert ack["success"] is True and ack["tenant_uuid"] == OWN_TENANT


async def test_a_telco_user_names_a_tenant_of_its_telco(ccs: CcsWorld) -> None:
    async with SockClient(ccs) as ws:
        ack = await ws.connect(ccs.tokens["telco"], tenant_uuid=OWN_TENANT)
    assert ack["tenant_uuid"] == OWN_TENANT
    assert_golden_lines("sock_ack_telco", ws.transcript)
    async with SockClient(ccs) as ws:
        ack = await ws.connect(ccs.tokens["other_telco"], tenant_uuid=OTHER_TENANT)
    assert ack["tenant_uuid"] == OTHER_TENANT


async def _refused(ccs: CcsWorld, send: Any) -> SockClient:
    async with SockClient(ccs) as ws:
        send(ws)
        await ws.closed()
    return ws


CONNECT_REFUSALS: list[tuple[str, str | None, dict[str, Any], int]] = [
    # (golden name, user, extra connect fields, close code)
    ("sock_no_token", None, {}, 4401),
    ("sock_bad_token", "bad", {}, 4401),
    ("sock_token_not_string", "number", {}, 4401),
    ("sock_telco_without_tenant", "telco", {}, 4400),
    ("sock_telco_other_tenant", "telco", {"tenant_uuid": OTHER_TENANT}, 4404),
    ("sock_tenant_user_other_tenant", "tenant_admin", {"tenant_uuid": OTHER_TENANT}, 4404),
    ("sock_agent_other_tenant", "agent", {"tenant_uuid": OTHER_TENANT}, 4404),
    ("sock_unknown_tenant", "telco", {"tenant_uuid": "no-such-tenant"}, 4404),
    ("sock_tenant_not_string", "telco", {"tenant_uuid": 7}, 4400),
    ("sock_cursor_not_digits", "tenant_admin", {"cursor": "abc"}, 4400),
    ("sock_cursor_negative", "tenant_admin", {"cursor": -1}, 4400),
    ("sock_cursor_boolean", "tenant_admin", {"cursor": True}, 4400),
    ("sock_cursor_ahead", "tenant_admin", {"cursor": "999999"}, 4400),
]


@pytest.mark.parametrize(("name", "user", "fields", "code"), CONNECT_REFUSALS)
async def test_a_refused_connect_gets_a_frame_then_a_close(
    ccs: CcsWorld, name: str, user: str | None, fields: dict[str, Any], code: int
) -> None:
    token: Any = {"bad": "cb_not-a-token", "number": 42, None: None}.get(user)
    if user in ccs.tokens:
        token = ccs.tokens[user]
    message: dict[str, Any] = {"request": "connect"}
    if token is not None:
        message["token"] = token
    message.update(fields)
    ws = await _refused(ccs, lambda ws: ws.send_json(message))
    assert ws.transcript[-1].startswith(f"CLOSE {code} ")
    if code == 4401:
        assert ws.transcript[0] == UNAUTHORIZED
    else:
        assert ws.transcript[0].startswith('{"success":false,"reason":"')
    assert_golden_lines(name, ws.transcript)


FIRST_MESSAGES: list[tuple[str, str | bytes]] = [
    ("sock_first_not_json", "connect please"),
    ("sock_first_not_object", '["connect"]'),
    ("sock_first_wrong_request", '{"request":"subscribe","token":"x"}'),
    ("sock_first_binary", b'{"request":"connect"}'),
]


@pytest.mark.parametrize(("name", "first"), FIRST_MESSAGES)
async def test_a_wrong_first_message_is_refused(
    ccs: CcsWorld, name: str, first: str | bytes
) -> None:
    def send(ws: SockClient) -> None:
        if isinstance(first, bytes):
            ws.send_bytes(first)
        else:
            ws.send_text(first)

    ws = await _refused(ccs, send)
    assert ws.transcript[-1].startswith("CLOSE 4400 ")
    assert_golden_lines(name, ws.transcript)


async def test_a_revoked_token_is_refused(ccs: CcsWorld) -> None:
    d = ccs.c.directory
    await d.revoke_token(d.tokens[hash_secret(ccs.tokens["tenant_admin"])].id)
    ws = await _refused(
        ccs, lambda ws: ws.send_json({"request": "connect", "token": ccs.tokens["tenant_admin"]})
    )
    assert ws.transcript == [UNAUTHORIZED, "CLOSE 4401 Unauthorized"]


async def test_no_connect_message_in_time_closes(ccs: CcsWorld) -> None:
    async with SockClient(ccs) as ws:
        await ws.drain()
        ccs.clock.advance(sock.LIMITS.connect_timeout_s - 1)
        assert await ws.drain() == []
        ccs.clock.advance(1)
        await ws.closed()
    assert ws.transcript[-1].startswith("CLOSE 4408 ")
    assert_golden_lines("sock_connect_timeout", ws.transcript)


async def test_a_client_leaving_before_connecting_ends_quietly(ccs: CcsWorld) -> None:
    async with SockClient(ccs) as ws:
        ws.to_app.put_nowait({"type": "websocket.disconnect", "code": 1001})
        assert ws.task is not None
        await ws.task
    assert ws.transcript == []


async def test_messages_after_connect_are_ignored(ccs: CcsWorld) -> None:
    async with SockClient(ccs) as ws:
        await ws.connect(ccs.tokens["tenant_admin"])
        ws.send_json({"request": "connect", "token": "again"})
        ws.send_text("noise")
        assert await ws.drain() == []
        assert ws.task is not None and not ws.task.done()


MATRIX: list[tuple[str | None, str, int | None]] = [
    # (user, tenant named in tenant_uuid, close code or None for an acknowledgement)
    ("telco", "own", None),
    ("telco", "other", 4404),
    ("tenant_admin", "own", None),
    ("tenant_admin", "other", 4404),
    ("agent", "own", None),
    ("agent", "other", 4404),
    (None, "own", 4401),
    (None, "other", 4401),
]


@pytest.mark.parametrize(("user", "tenant", "code"), MATRIX, ids=[f"{u}-{t}" for u, t, _ in MATRIX])
async def test_users_by_tenant(
    ccs: CcsWorld, user: str | None, tenant: str, code: int | None
) -> None:
    tenant_id = OWN_TENANT if tenant == "own" else OTHER_TENANT
    async with SockClient(ccs) as ws:
        first = await ws.connect(ccs.tokens[user] if user else None, tenant_uuid=tenant_id)
        if code is None:
            assert first["success"] is True and first["tenant_uuid"] == tenant_id
            assert first["events"] == ["call", "agent", "inbound_queue"]
            return
        closed = await ws.closed()
    assert closed.code == code
    expected = (
        {"status": 401, "reason": "Unauthorized"}
        if code == 4401
        else {"success": False, "reason": "Tenant not found"}
    )
    assert first == expected
