"""Native routes: the event log (page, Server-Sent Events, WebSocket) and call records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from starlette.responses import StreamingResponse

from ...domain.cdr import CallRecord
from ...domain.errors import DomainError, Invalid, NotFound
from ...domain.events import StoredEvent
from ...domain.tenancy import Permission
from ...ports.storage import CdrQuery
from ...service.streams import StreamClosed
from ..json import dumps
from .deps import ActorDep, ContainerDep
from .errors import error_body

log = logging.getLogger(__name__)
router = APIRouter()
KEEPALIVE_S = 15.0


class _EncodedEvents:
    """Each event's JSON, encoded once however many subscribers it goes to."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def __call__(self, event: StoredEvent) -> bytes:
        key = (event.tenant_id, event.seq)
        data = self._cache.get(key)
        if data is None:
            data = self._cache[key] = dumps(event)
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return data


encoded = _EncodedEvents()


class EventPage(BaseModel):
    items: list[StoredEvent]
    next_after: int


@router.get(
    "/tenants/{tenant_id}/events",
    response_model=EventPage,
    tags=["events"],
    summary="A page of the tenant's event log after a cursor",
)
async def events_page(
    tenant_id: str,
    actor: ActorDep,
    c: ContainerDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    items, next_after = await c.streams.page(actor, tenant_id, after, limit)
    return EventPage(items=items, next_after=next_after)


def _cursor(after: int | None, last_event_id: str | None) -> int | None:
    if last_event_id is not None:
        try:
            return int(last_event_id)
        except ValueError:
            raise Invalid("Last-Event-ID must be an event seq", code="cursor_invalid") from None
    return after


@router.get(
    "/tenants/{tenant_id}/events/stream",
    tags=["events"],
    summary="Server-Sent Events; resume with ?after=SEQ or Last-Event-ID",
    response_class=StreamingResponse,
)
async def events_sse(
    tenant_id: str,
    request: Request,
    actor: ActorDep,
    c: ContainerDep,
    after: Annotated[
        int | None,
        Query(ge=0, description="Deliver events with seq > after; omitted: only new ones"),
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    cursor = _cursor(after, last_event_id)
    c.directory.tenant(actor, tenant_id)
    stream = c.streams.follow(actor, tenant_id, cursor)

    async def body() -> AsyncIterator[bytes]:
        it = stream.__aiter__()
        yield b": connected\n\n"
        try:
            while True:
                try:
                    event = await asyncio.wait_for(it.__anext__(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                except StopAsyncIteration:
                    return
                yield b"id: %d\nevent: %s\ndata: %s\n\n" % (
                    event.seq,
                    event.type.encode(),
                    encoded(event),
                )
        except StreamClosed as exc:
            yield b"event: error\ndata: %s\n\n" % dumps(
                error_body(exc.code, exc.message, exc.details)
            )
        finally:
            await stream.aclose()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/tenants/{tenant_id}/events/ws")
async def events_ws(websocket: WebSocket, tenant_id: str, after: int | None = None) -> None:
    """Events as JSON text frames. Authenticate with ``Authorization: Bearer`` or ``?token=``.

    Close codes: 4401 unauthenticated, 4404 unknown tenant, 4408 slow consumer (resume with
    ``after`` = the last seq you received).
    """
    c = websocket.app.state.container
    token = websocket.headers.get("authorization", "").removeprefix("Bearer ").strip()
    token = token or websocket.query_params.get("token", "")
    await websocket.accept()
    try:
        actor = c.directory.authenticate(token)
        c.directory.tenant(actor, tenant_id)
    except DomainError as exc:
        code = 4404 if isinstance(exc, NotFound) else 4401
        await websocket.send_text(dumps(error_body(exc.code, exc.message)).decode())
        await websocket.close(code, exc.code)
        return
    stream = c.streams.follow(actor, tenant_id, after)
    sender = asyncio.create_task(_send_events(websocket, stream))
    reader = asyncio.create_task(_drain_client(websocket))
    try:
        await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, reader):
            task.cancel()
        for task in (sender, reader):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await stream.aclose()


async def _send_events(websocket: WebSocket, stream: AsyncIterator[StoredEvent]) -> None:
    try:
        async for event in stream:
            await websocket.send_text(encoded(event).decode())
    except StreamClosed as exc:
        with contextlib.suppress(Exception):
            await websocket.send_text(
                dumps(error_body(exc.code, exc.message, exc.details)).decode()
            )
            reason = str(exc.details.get("reason", "closed"))
            await websocket.close(1001 if reason == "shutdown" else 4408, reason)
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so its close frame is seen."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()


class CdrPageView(BaseModel):
    items: list[CallRecord]
    total: int
    limit: int
    offset: int


@router.get(
    "/tenants/{tenant_id}/cdrs",
    response_model=CdrPageView,
    tags=["call records"],
    summary="Search finished calls (newest first)",
)
async def search_cdrs(
    tenant_id: str,
    actor: ActorDep,
    c: ContainerDep,
    calling_number: str | None = None,
    called_number: str | None = None,
    extension_id: str | None = None,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CdrPageView:
    actor.require(Permission.CALLS_LISTING_VIEW)
    c.directory.tenant(actor, tenant_id)
    for name, value in (("started_from", started_from), ("started_to", started_to)):
        if value is not None and value.tzinfo is None:
            raise Invalid(
                f"{name} needs a timezone (e.g. 2026-01-01T09:00:00Z)", code="datetime_naive"
            )
    page = await c.core.storage.search_cdrs(
        CdrQuery(
            tenant_id=tenant_id,
            calling_number=calling_number,
            called_number=called_number,
            extension_id=extension_id,
            started_from=started_from,
            started_to=started_to,
            limit=limit,
            offset=offset,
        )
    )
    return CdrPageView(items=page.items, total=page.total, limit=limit, offset=offset)


@router.get("/tenants/{tenant_id}/cdrs/{call_id}", response_model=CallRecord, tags=["call records"])
async def get_cdr(tenant_id: str, call_id: str, actor: ActorDep, c: ContainerDep) -> CallRecord:
    actor.require(Permission.CALLS_VIEW)
    c.directory.tenant(actor, tenant_id)
    record = await c.core.storage.get_cdr(tenant_id, call_id)
    if record is None:
        raise NotFound("call_record", call_id)
    return record
