"""The core: ports wired together, the live state cache, and the commit path.

Every change goes through :meth:`Core.commit`: the batch (documents, events, call records) is
written by one storage transaction, which assigns the events their per-tenant ``seq``; only then are
the events published on the bus. A crash between the two loses no event: subscribers resume from the
log with their cursor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from ..domain.events import DomainEvent, StoredEvent
from ..ports.bus import EventBus
from ..ports.clock import Clock
from ..ports.storage import Batch, Delete, Put, Storage
from ..ports.switch import Switch
from .group_commit import GroupCommitter

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


# the bits uuid.UUID(version=4) overwrites: the variant (RFC 4122) and the version (4)
_UUID_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_V4 = (0x8000 << 48) | (4 << 76)


def new_id() -> str:
    """A random (version 4) UUID as text: ``str(uuid.uuid4())``, made the way ``uuid`` makes it
    (16 random bytes, the version and variant bits set), without the ``UUID`` object (a call
    takes several: its legs, its bridge)."""
    n = int.from_bytes(os.urandom(16), "big")
    n = (n & _UUID_KEEP) | _UUID_V4
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


CALL_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CALL_ID_LENGTH = 13
_CALL_ID_SPACE = len(CALL_ID_ALPHABET) ** CALL_ID_LENGTH


def new_call_id() -> str:
    """A call's id: 13 random upper-case alphanumerics (about 67 bits), e.g. ``0BS9DD02LEMUI``.

    The shape is the one the CCS dialect documents for its calls, so that dialect shows the core's
    id as it is (no mapping table to keep across restarts); the native API treats it as opaque.
    """
    # One draw of a uniform number below 36**13 written in base 36: the same distribution as
    # 13 independent ``secrets.choice`` (a bijection onto the strings) at a quarter of the CPU
    # time (each choice read the OS's random source on its own; this is on every call's path).
    n = secrets.randbelow(_CALL_ID_SPACE)
    digits = []
    for _ in range(CALL_ID_LENGTH):
        n, d = divmod(n, len(CALL_ID_ALPHABET))
        digits.append(CALL_ID_ALPHABET[d])
    return "".join(digits)


class Core:
    """Holds the ports; the services share one Core."""

    def __init__(
        self,
        *,
        storage: Storage,
        bus: EventBus,
        switch: Switch,
        clock: Clock,
        ids: Callable[[], str] = new_id,
        call_ids: Callable[[], str] = new_call_id,
    ) -> None:
        self.storage = storage
        self.bus = bus
        self.switch = switch
        self.clock = clock
        self.new_id = ids
        self.new_call_id = call_ids
        self.committer = GroupCommitter(storage)
        #: called soon after every :meth:`save` (configuration changes), once the saving
        #: service has updated its in-memory copy (the ACD follows queues and skills so)
        self.saved_listeners: list[Callable[[], None]] = []

    def batch(self) -> Batch:
        return Batch(occurred_at=self.clock.now())

    async def commit(self, batch: Batch) -> list[StoredEvent]:
        if not batch:
            return []
        stored = await self.committer.commit(batch)
        if stored:
            await self.bus.publish(stored)
        return stored

    async def save(
        self,
        tenant_id: str | None,
        *,
        put: Iterable[tuple[str, str, BaseModel]] = (),
        delete: Iterable[tuple[str, str]] = (),
        events: Iterable[DomainEvent] = (),
    ) -> list[StoredEvent]:
        """Convenience for configuration changes: put documents and log events in one commit."""
        batch = self.batch()
        for kind, ident, model in put:
            batch.puts.append(Put(kind, ident, tenant_id, model.model_dump(mode="json")))
        for kind, ident in delete:
            batch.deletes.append(Delete(kind, ident))
        if tenant_id is not None:
            batch.events.extend((tenant_id, e) for e in events)
        stored = await self.commit(batch)
        if self.saved_listeners:
            loop = asyncio.get_running_loop()
            for listener in self.saved_listeners:
                loop.call_soon(listener)
        return stored

    async def load(self, kind: str, model: type[M], tenant_id: str | None = None) -> list[M]:
        return [model.model_validate(d) for d in await self.storage.list(kind, tenant_id)]


class KeyedLocks:
    """One asyncio.Lock per key (a call id), dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    def __call__(self, key: str) -> _Held:
        return _Held(self, key)


class _Held:
    def __init__(self, owner: KeyedLocks, key: str) -> None:
        self.owner, self.key = owner, key

    async def __aenter__(self) -> None:
        o = self.owner
        lock = o._locks.get(self.key)
        if lock is None:  # (not setdefault: that built a Lock on every acquisition)
            lock = o._locks[self.key] = asyncio.Lock()
        o._users[self.key] = o._users.get(self.key, 0) + 1
        await lock.acquire()

    async def __aexit__(self, *exc: Any) -> None:
        o = self.owner
        o._locks[self.key].release()
        o._users[self.key] -= 1
        if o._users[self.key] == 0:
            del o._users[self.key]
            del o._locks[self.key]
