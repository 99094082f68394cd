"""CCS section 5: the event WebSocket ``/6/v2/sock``.

Theory of operation (the protocol is documented in docs/ccs.md, "Events"):

1. The server accepts the WebSocket and waits up to :attr:`SockLimits.connect_timeout_s` for the
   first message, which must be ``{"request": "connect", "token": <Token>}`` (spec 2.1.2), plus
   the project-defined ``tenant_uuid`` (required for telco-level users) and ``cursor`` (resume).
2. A refused connect gets one error frame in the spec's shapes, then a close with a 44xx code
   (:class:`Refusal`). An accepted one gets the acknowledgement
   ``{"response": "connect", "success": true, "tenant_uuid": …, "cursor": "<n>", "events": [...]}``.
3. Then the tenant's event log after the cursor is replayed and live events follow
   (:meth:`EventStreams.follow` guarantees no gap and no duplicate), rendered by
   :mod:`.events`, each only if the user's permissions allow its category.

Each connection owns three tasks (pump: log/bus -> frames; sender: frames -> socket; reader:
socket -> ignored, to see the client's close) and cancels them all when any ends. The token is
checked again for every event: revoked, the connection is closed with 4401; a role that lost an
event permission stops that category at once. A client that cannot keep up (its frame queue is
full, the bus dropped it, or one frame waits longer than :attr:`SockLimits.send_timeout_s` to be
written) is closed with 4429 and its cursor to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ...bootstrap import Container
from ...domain.errors import DomainError
from ...domain.events import EventCategory, StoredEvent
from ...service.auth import EVENT_PERMISSION, Actor
from ...service.directory import Directory
from ...service.streams import StreamClosed
from .call_numbers import CallNumbers
from .events import CATEGORY_NAME, cursor_of, render
from .wire import UNAUTHORIZED, dumps

log = logging.getLogger(__name__)
router = APIRouter()

#: close codes (RFC 6455 private range 4000-4999), each with the frame sent before it
CLOSE_INVALID = 4400  # not a connect message, bad field, bad cursor, telco without tenant_uuid
CLOSE_UNAUTHORIZED = 4401  # token missing, unknown or revoked
CLOSE_NOT_FOUND = 4404  # tenant_uuid of a tenant the user cannot reach
CLOSE_TIMEOUT = 4408  # no connect message in time
CLOSE_SLOW = 4429  # the client does not read fast enough; reconnect with the cursor
CLOSE_SHUTDOWN = 1001  # the server is going away; reconnect with the cursor
CLOSE_INTERNAL = 1011  # an unexpected error (logged); reconnect with the cursor

#: the permission that gates each delivered category, in the order the ack lists them
DELIVERED = (EventCategory.CALL, EventCategory.AGENT, EventCategory.QUEUE)


@dataclass(slots=True)
class SockLimits:
    connect_timeout_s: float = 10.0
    queue_size: int = 1000  # frames buffered per connection for a live client
    send_timeout_s: float = 30.0  # one frame not written in this time: slow consumer
    close_timeout_s: float = 2.0  # best effort to say goodbye to a client that does not read


LIMITS = SockLimits()


class Refusal(Exception):
    """Why a connect is refused: the frame to send and the close code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def frame(self) -> bytes:
        if self.code == CLOSE_UNAUTHORIZED:
            return UNAUTHORIZED
        return dumps({"success": False, "reason": self.reason})


@dataclass(frozen=True, slots=True)
class Session:
    actor: Actor
    tenant_id: str
    after: int
    categories: tuple[EventCategory, ...]
    token: str = field(repr=False, default="")  # a secret: never in a log line

    def current_actor(self, directory: Directory) -> Actor:
        """The user as of now (roles may have changed); :class:`Revoked` if the token is not
        valid any more."""
        try:
            return directory.authenticate(self.token)
        except DomainError:
            raise Revoked from None


class Revoked(Exception):
    """The token was revoked (or its user deleted) while connected."""


# ------------------------------------------------------------------------- the connect message


def _parse_connect(text: str | None) -> dict[str, Any]:
    if text is None:
        raise Refusal(CLOSE_INVALID, "The first message must be a JSON text message")
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Refusal(CLOSE_INVALID, "The first message is not valid JSON") from None
    if not isinstance(message, dict):
        raise Refusal(CLOSE_INVALID, "The first message must be a JSON object")
    if message.get("request") != "connect":
        raise Refusal(CLOSE_INVALID, 'The first message must be {"request":"connect",...}')
    return message


def _parse_cursor(value: object) -> int | None:
    if value is None:
        return None
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or len(text) > 18:
        raise Refusal(CLOSE_INVALID, "Invalid cursor: use the cursor of the last event received")
    return int(text)


async def open_session(c: Container, text: str | None) -> Session:
    """Check a connect message; raise :class:`Refusal` with the reason when it is refused."""
    message = _parse_connect(text)
    token = message.get("token")
    if not isinstance(token, str) or not token:
        raise Refusal(CLOSE_UNAUTHORIZED, "Unauthorized")
    try:
        actor = c.directory.authenticate(token)
    except DomainError:
        raise Refusal(CLOSE_UNAUTHORIZED, "Unauthorized") from None
    tenant_id = message.get("tenant_uuid")
    if tenant_id is not None and (not isinstance(tenant_id, str) or not tenant_id):
        raise Refusal(CLOSE_INVALID, "tenant_uuid must be a tenant uuid string")
    if tenant_id is None:
        tenant_id = None if actor.is_telco else actor.principal.tenant_id
        if tenant_id is None:
            raise Refusal(CLOSE_INVALID, "tenant_uuid is required for telco level users")
    try:
        c.directory.tenant(actor, tenant_id)
    except DomainError:
        raise Refusal(CLOSE_NOT_FOUND, "Tenant not found") from None
    after = _parse_cursor(message.get("cursor"))
    head = await c.core.storage.last_seq(tenant_id)
    if after is None:
        after = head
    elif after > head:
        raise Refusal(CLOSE_INVALID, "Invalid cursor: it is ahead of the tenant's events")
    categories = tuple(k for k in DELIVERED if actor.has(EVENT_PERMISSION[k]))
    return Session(actor, tenant_id, after, categories, token)


def acknowledgement(session: Session) -> bytes:
    return dumps(
        {
            "response": "connect",
            "success": True,
            "tenant_uuid": session.tenant_id,
            "cursor": str(session.after),
            "events": [CATEGORY_NAME[k] for k in session.categories],
        }
    )


# ------------------------------------------------------------------------------ the endpoint


async def _first_message(websocket: WebSocket, c: Container) -> str | None:
    """The first text message, or :class:`Refusal` on timeout (the clock port times it)."""
    expired = asyncio.Event()
    timer = c.core.clock.call_later(LIMITS.connect_timeout_s, expired.set)
    receive = asyncio.ensure_future(websocket.receive())
    waiter = asyncio.ensure_future(expired.wait())
    try:
        await asyncio.wait({receive, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        waiter.cancel()
        if not receive.done():
            receive.cancel()
    if not receive.done() or receive.cancelled():
        raise Refusal(CLOSE_TIMEOUT, "No connect message received in time")
    message = receive.result()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    return text if isinstance(text, str) else None


@router.websocket("/sock")
async def sock(websocket: WebSocket) -> None:
    c: Container = websocket.app.state.container
    await websocket.accept()
    try:
        session = await open_session(c, await _first_message(websocket, c))
    except Refusal as refusal:
        log.info("ccs sock: connect refused (%d %s)", refusal.code, refusal.reason)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_text(refusal.frame().decode())
            await websocket.close(refusal.code, refusal.reason)
        return
    except WebSocketDisconnect:
        return
    log.info(
        "ccs sock: %s connected to tenant %s after %d",
        session.actor.id,
        session.tenant_id,
        session.after,
    )
    await Connection(websocket, c, session).run()


class SlowConsumer(Exception):
    pass


class Connection:
    """One connected client: replay, then live events, until either side ends it."""

    def __init__(self, websocket: WebSocket, c: Container, session: Session) -> None:
        self.websocket = websocket
        self.c = c
        self.session = session
        self.frames: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(LIMITS.queue_size)
        self.sent = str(session.after)  # the cursor of the last frame written

    async def run(self) -> None:
        s = self.session
        try:
            await self.websocket.send_text(acknowledgement(s).decode())
        except (WebSocketDisconnect, RuntimeError):
            return
        stream = self.c.streams.follow(s.actor, s.tenant_id, s.after)
        head = await self.c.core.storage.last_seq(s.tenant_id)
        tasks = [
            asyncio.create_task(self._pump(stream, head), name="ccs-sock-pump"),
            asyncio.create_task(self._send(), name="ccs-sock-send"),
            asyncio.create_task(self._read(), name="ccs-sock-read"),
        ]
        ending: BaseException | None = None
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    ending = task.exception()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await stream.aclose()
        await self._goodbye(ending)
        log.info(
            "ccs sock: %s left tenant %s at cursor %s",
            s.actor.id,
            s.tenant_id,
            self.sent,
        )

    async def _goodbye(self, ending: BaseException | None) -> None:
        if isinstance(ending, StreamClosed) and ending.details.get("reason") == "shutdown":
            code, reason = CLOSE_SHUTDOWN, "Server shutting down: reconnect with your cursor"
        elif isinstance(ending, Revoked):
            log.info("ccs sock: token of %s no longer valid", self.session.actor.id)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(LIMITS.close_timeout_s):
                    await self.websocket.send_text(UNAUTHORIZED.decode())
                    await self.websocket.close(CLOSE_UNAUTHORIZED, "Unauthorized")
            return
        elif isinstance(ending, (StreamClosed, SlowConsumer)):
            code, reason = CLOSE_SLOW, "Slow consumer: reconnect with your cursor"
        elif ending is None or isinstance(ending, (WebSocketDisconnect, RuntimeError)):
            return  # the client went away
        else:
            log.error("ccs sock: connection of %s failed", self.session.actor.id, exc_info=ending)
            code, reason = CLOSE_INTERNAL, "Internal Server Error: reconnect with your cursor"
        log.info("ccs sock: closing %s (%s) at cursor %s", self.session.actor.id, reason, self.sent)
        body = dumps({"success": False, "reason": reason, "cursor": self.sent}).decode()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(LIMITS.close_timeout_s):
                await self.websocket.send_text(body)
                await self.websocket.close(code, reason.split(":")[0])

    async def _pump(self, stream: AsyncGenerator[StoredEvent, None], head: int) -> None:
        """Render the stream into the frame queue: blocking while replaying the log (it waits),
        never blocking for live events (a full queue means the client is too slow)."""
        directory = self.c.directory
        numbers = CallNumbers(self.c, self.session.tenant_id)
        async for event in stream:
            if event.category not in DELIVERED:
                continue
            actor = self.session.current_actor(directory)
            if not actor.has(EVENT_PERMISSION[event.category]):
                continue
            frame = render(directory, event, await numbers.of(event))
            if frame is None:
                continue
            item = (cursor_of(event), dumps(frame))
            if event.seq <= head:
                await self.frames.put(item)
            else:
                try:
                    self.frames.put_nowait(item)
                except asyncio.QueueFull:
                    raise SlowConsumer(self.sent) from None

    async def _send(self) -> None:
        clock = self.c.core.clock
        while True:
            cursor, data = await self.frames.get()
            stalled = asyncio.Event()
            timer = clock.call_later(LIMITS.send_timeout_s, stalled.set)
            send = asyncio.ensure_future(self.websocket.send_text(data.decode()))
            waiter = asyncio.ensure_future(stalled.wait())
            try:
                await asyncio.wait({send, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Also when this task is cancelled: a frame written counts (the goodbye names
                # its cursor, so a resume does not repeat it), one not written is withdrawn.
                timer.cancel()
                waiter.cancel()
                stuck = not send.done()
                if stuck:
                    send.cancel()
                elif not send.cancelled() and send.exception() is None:
                    self.sent = cursor
            if stuck:
                raise SlowConsumer(self.sent)
            send.result()

    async def _read(self) -> None:
        """Read (and ignore) what the client sends after connecting, to see it close."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
