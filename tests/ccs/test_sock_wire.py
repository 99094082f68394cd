"""``/6/v2/sock`` on a real socket (uvicorn and the ``websockets`` client), as clients see it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets
from tests.ccs.world import EXT, OWN_TENANT, CcsWorld, make_ccs_world
from tests.support import served_app

from callbridge.service.auth import system_actor


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[CcsWorld, str]]:
    w = await make_ccs_world(tmp_path)
    try:
        async with served_app(w.app) as addr:
            yield w, f"ws://{addr}/6/v2/sock"
    finally:
        await w.c.stop()


async def test_connect_receive_an_event_and_resume(served: tuple[CcsWorld, str]) -> None:
    w, url = served
    token = w.tokens["agent"]
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"request": "connect", "token": token}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 2))
        assert ack["response"] == "connect" and ack["success"] is True
        await w.c.agents.set_state(system_actor(), OWN_TENANT, EXT["112"], "Lunch Break")
        await w.settle()
        event = json.loads(await asyncio.wait_for(ws.recv(), 2))
    assert event["event"] == "agent" and event["type"] == "agent_state"
    assert event["agent_state"] == {"state": {"type": "away", "name": "Lunch Break"}}
    assert int(event["cursor"]) == int(ack["cursor"]) + 1
    await w.c.agents.set_state(system_actor(), OWN_TENANT, EXT["112"], "Ready")
    await w.settle()
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"request": "connect", "token": token, "cursor": event["cursor"]}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 2))["cursor"] == event["cursor"]
        missed = json.loads(await asyncio.wait_for(ws.recv(), 2))
    assert missed["agent_state"] == {"state": {"type": "ready", "name": "Ready"}}
    assert int(missed["cursor"]) == int(event["cursor"]) + 1


async def test_a_bad_token_is_closed_by_the_server_with_4401(served: tuple[CcsWorld, str]) -> None:
    _, url = served
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"request": "connect", "token": "cb_wrong"}))
        assert await asyncio.wait_for(ws.recv(), 2) == '{"status":401,"reason":"Unauthorized"}'
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "Unauthorized")
