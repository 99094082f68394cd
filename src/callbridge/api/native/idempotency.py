"""Idempotency keys for every mutating native request.

A client sends ``Idempotency-Key: <unique string>`` with a POST/PUT/PATCH/DELETE. The first
response (if not a 5xx) is stored with a fingerprint of the request (method, path, query, body).
The same key and the same request again replays that response with ``Idempotent-Replayed: true``;
the same key with another request is refused with 422 ``idempotency_key_reused``; the same key
while the first request is still running gets 409 ``idempotency_request_in_progress``.
Keys are scoped to the principal, so two users cannot collide.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...domain.errors import DomainError
from ...ports.storage import IdempotencyRecord
from .errors import error_response

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
MAX_KEY = 255


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = "/api/v1") -> None:
        self.app = app
        self.prefix = prefix
        self._in_flight: set[tuple[str, str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in MUTATING
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        container = scope["app"].state.container
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        try:
            actor = container.directory.authenticate(token)
        except DomainError:
            await self.app(scope, receive, send)  # let the route answer 401
            return
        if not key or len(key) > MAX_KEY:
            await error_response(
                422, "idempotency_key_invalid", f"Idempotency-Key must be 1-{MAX_KEY} characters"
            )(scope, receive, send)
            return
        body, replay_receive = await _read_body(receive)
        digest = hashlib.sha256()
        for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode(), ""):
            digest.update(part.encode() + b"\0")
        digest.update(body)
        fingerprint = digest.hexdigest()
        storage = container.core.storage
        scope_key = (actor.id, key)
        existing = await storage.get_idempotency(actor.id, key)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                await error_response(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                )(scope, receive, send)
                return
            await _replay(existing, send)
            return
        if scope_key in self._in_flight:
            await error_response(
                409,
                "idempotency_request_in_progress",
                "a request with this Idempotency-Key is still running",
            )(scope, receive, send)
            return
        self._in_flight.add(scope_key)
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        finally:
            self._in_flight.discard(scope_key)
        if captured["status"] < 500:
            await storage.put_idempotency(
                IdempotencyRecord(
                    scope=actor.id,
                    key=key,
                    fingerprint=fingerprint,
                    status=captured["status"],
                    body=captured["body"],
                    created_at=container.core.clock.now(),
                )
            )


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _replay(record: IdempotencyRecord, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": record.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(record.body)).encode()),
                (b"idempotent-replayed", b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": record.body})
