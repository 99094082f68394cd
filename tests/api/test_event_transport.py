"""Events over real sockets: WebSocket and Server-Sent Events against a running uvicorn server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from tests.support import World, make_world, served_app

from callbridge.api.native.app import create_app


@pytest.fixture
async def served() -> AsyncIterator[tuple[World, str]]:
    w = await make_world()
    app = create_app(w.c, manage_lifecycle=False)
    try:
        async with served_app(app) as addr:
            yield w, addr
    finally:
        await w.c.stop()


async def test_websocket_delivers_in_order_and_resumes(served: tuple[World, str]) -> None:
    w, addr = served
    url = f"ws://{addr}/api/v1/tenants/{w.tenant}/events/ws"
    headers = {"Authorization": f"Bearer {w.tokens['alpha']}"}
    async with websockets.connect(url + "?after=0", additional_headers=headers) as ws:
        first = [json.loads(await asyncio.wait_for(ws.recv(), 2)) for _ in range(3)]
    assert [e["seq"] for e in first] == [1, 2, 3]
    await w.c.calls.originate(w.admin, w.tenant, w.ext["101"], "102")
    await w.settle()
    total = await w.c.core.storage.last_seq(w.tenant)
    async with websockets.connect(url + "?after=3", additional_headers=headers) as ws:
        rest = [json.loads(await asyncio.wait_for(ws.recv(), 2)) for _ in range(total - 3)]
        assert [e["seq"] for e in rest] == list(range(4, total + 1))
        await w.c.agents.set_state(w.admin, w.tenant, w.ext["103"], "Ready")
        live = json.loads(await asyncio.wait_for(ws.recv(), 2))
        assert live["seq"] == total + 1 and live["type"] == "agent.presence_changed"


async def test_websocket_refuses_bad_token_and_other_tenant(served: tuple[World, str]) -> None:
    w, addr = served
    async with websockets.connect(
        f"ws://{addr}/api/v1/tenants/{w.tenant}/events/ws?token=cb_bad"
    ) as ws:
        body = json.loads(await ws.recv())
        assert body["error"]["code"] == "unauthenticated"
        with pytest.raises(websockets.ConnectionClosed) as exc:
            await ws.recv()
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 4401
    url = f"ws://{addr}/api/v1/tenants/{w.tenant}/events/ws?token={w.tokens['beta']}"
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["error"]["code"] == "tenant_not_found"
        with pytest.raises(websockets.ConnectionClosed) as exc:
            await ws.recv()
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 4404


async def test_sse_stream_with_last_event_id(served: tuple[World, str]) -> None:
    w, addr = served
    headers = {"Authorization": f"Bearer {w.tokens['alpha']}", "Last-Event-ID": "2"}
    async with (
        httpx.AsyncClient(base_url=f"http://{addr}", timeout=5) as client,
        client.stream("GET", f"/api/v1/tenants/{w.tenant}/events/stream", headers=headers) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        ids: list[int] = []
        async for line in r.aiter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            if len(ids) == 3:
                break
    assert ids == [3, 4, 5]


async def test_sse_requires_auth(served: tuple[World, str]) -> None:
    w, addr = served
    async with httpx.AsyncClient(base_url=f"http://{addr}", timeout=5) as client:
        r = await client.get(f"/api/v1/tenants/{w.tenant}/events/stream")
        assert r.status_code == 401
