"""An in-process WebSocket client for ``/6/v2/sock``: it speaks ASGI to the app directly.

No server, no thread: the test, the app and the core share one event loop, so the fake clock and
``ccs.settle`` work as everywhere else. :meth:`SockClient.pause` makes the app's ``send`` block,
which is what a client that stops reading looks like to the server (uvicorn's ``send`` waits for
the transport to drain).

Golden files of a conversation (``tests/ccs/golden/sock_*.txt`` / ``event_*.txt``) hold one line
per frame the server sent, then ``CLOSE <code> <reason>`` if it closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

from tests.ccs.golden import GOLDEN_DIR, UPDATE
from tests.ccs.world import CcsWorld

PATH = "/6/v2/sock"
WAIT_S = 2.0

Message = MutableMapping[str, Any]


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


class SockClient:
    def __init__(self, ccs: CcsWorld, path: str = PATH) -> None:
        self.ccs = ccs
        self.path = path
        self.to_app: asyncio.Queue[Message] = asyncio.Queue()
        self.from_app: asyncio.Queue[Message] = asyncio.Queue()
        self.writable = asyncio.Event()
        self.writable.set()
        self.task: asyncio.Task[None] | None = None
        self.transcript: list[str] = []

    async def __aenter__(self) -> SockClient:
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": ("ccs", 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"ccs")],
            "subprotocols": [],
            "state": {},
        }
        self.to_app.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(self.ccs.app(scope, self._receive, self._send))
        accepted = await asyncio.wait_for(self.from_app.get(), WAIT_S)
        assert accepted["type"] == "websocket.accept", accepted
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.writable.set()
        if not self.task.done():
            self.to_app.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, WAIT_S)

    async def _receive(self) -> Message:
        return await self.to_app.get()

    async def _send(self, message: Message) -> None:
        await self.writable.wait()
        self.from_app.put_nowait(message)

    # -------------------------------------------------------------------- the client's side

    def send_text(self, text: str) -> None:
        self.to_app.put_nowait({"type": "websocket.receive", "text": text})

    def send_bytes(self, data: bytes) -> None:
        self.to_app.put_nowait({"type": "websocket.receive", "bytes": data})

    def send_json(self, value: Any) -> None:
        self.send_text(json.dumps(value))

    def pause(self) -> None:
        """Stop reading: the server's sends block."""
        self.writable.clear()

    def resume(self) -> None:
        self.writable.set()

    async def recv_text(self) -> str:
        message = await asyncio.wait_for(self.from_app.get(), WAIT_S)
        if message["type"] == "websocket.close":
            self.transcript.append(f"CLOSE {message.get('code', 1000)} {message.get('reason', '')}")
            raise Closed(int(message.get("code", 1000)), str(message.get("reason", "")))
        text = message["text"]
        assert isinstance(text, str)
        self.transcript.append(text)
        return text

    async def recv(self) -> Any:
        return json.loads(await self.recv_text())

    async def connect(self, token: str | None, **fields: Any) -> Any:
        """Send the connect message and return the acknowledgement."""
        message: dict[str, Any] = {"request": "connect"}
        if token is not None:
            message["token"] = token
        message.update(fields)
        self.send_json(message)
        return await self.recv()

    async def closed(self) -> Closed:
        """Read up to the close; every frame before it goes to the transcript."""
        while True:
            try:
                await self.recv_text()
            except Closed as closed:
                return closed

    async def drain(self) -> list[Any]:
        """Every frame sent so far (after letting the core and the pump run)."""
        await self.ccs.settle()
        for _ in range(20):
            await asyncio.sleep(0)
        frames = []
        while not self.from_app.empty():
            frames.append(await self.recv())
        return frames


def assert_golden_lines(name: str, lines: list[str]) -> None:
    path = GOLDEN_DIR / f"{name}.txt"
    text = "".join(line + "\n" for line in lines)
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path.name}: run with CALLBRIDGE_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{path.name} differs:\n--- expected\n{expected}--- got\n{text}"
