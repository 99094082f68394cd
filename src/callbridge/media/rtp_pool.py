"""The embedded engine's RTP sockets, and the pool that keeps released ones bound for reuse.

Binding an RTP port is the costly part of a leg that carries no media (a socket, three
``setsockopt``, ``bind``, an event-loop transport, and closing all of it again at the end): at a few
hundred calls per second it was about a twelfth of the server's CPU. So a released leg's socket is
not closed but parked here, still bound and still read, and a later leg takes it over.

What keeps a recycled port from mixing two calls:

* **No leg, no delivery.** A parked socket keeps reading (the kernel buffer never fills with old
  packets) and throws everything away.
* **Quarantine.** Parked sockets are reused least recently released first, and only once they have
  been parked ``reuse_delay`` seconds; until then a new leg binds a fresh port from the range, like
  before. Only when the range has no other port left (or no more file descriptors) is a port taken
  out of quarantine early: exhaustion fails exactly when it did without the pool.
* **The previous call's stream never latches.** A socket remembers the source address and SSRC of
  the last stream its leg latched to; the next leg on it refuses that stream for its whole life
  (:attr:`~callbridge.media.legs.Leg.stale`). A new stream from the same phone (a new call, so a new
  SSRC) is accepted as usual.
* **Bounded.** At most ``max_idle`` sockets are parked (a release beyond that closes its socket),
  and never more than a quarter of the process's file descriptor limit (:func:`fd_share`: parked
  sockets must not starve the rest of the server of descriptors); one parked longer than
  ``idle_timeout`` is closed, so an idle server holds no sockets.

The pool never binds with ``SO_REUSEADDR``/``SO_REUSEPORT``: a parked port is as taken to every
other process (and to a restarted server) as a live one, and the kernel frees it with the process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..ports.clock import TimerHandle

if TYPE_CHECKING:
    from .legs import Leg

log = logging.getLogger(__name__)

PacketHandler = Callable[["Leg", bytes, Any], None]
Scheduler = Callable[[float, Callable[[], None]], TimerHandle]


def fd_share() -> int:
    """How many sockets the pool may keep parked: a quarter of the soft ``RLIMIT_NOFILE``."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 30 if soft == resource.RLIM_INFINITY else soft // 4


class RtpSocket(asyncio.DatagramProtocol):
    """One bound RTP port: its transport, and the leg it delivers to (``None`` while parked)."""

    def __init__(self, port: int, deliver: PacketHandler, on_closed: Callable[[int], None]) -> None:
        self.port = port
        self.leg: Leg | None = None
        self.transport: asyncio.DatagramTransport | None = None  # set by the engine once made
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.released_at = 0.0
        # (host, port, ssrc) of the stream the last leg latched to: refused by the next leg
        self.stale: tuple[Any, Any, int] | None = None
        self._deliver = deliver
        self._on_closed = on_closed

    def datagram_received(self, data: bytes, addr: Any) -> None:
        leg = self.leg
        if leg is None:  # parked: the previous call's leftovers, or a stray
            return
        try:
            self._deliver(leg, data, addr)
        except Exception:  # a packet must never take the socket (or the loop) down
            leg.dropped += 1
            log.exception("media: packet on leg %s dropped", leg.id)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a phone that went away, and the like: the B2BUA's RTP
        # timeout (LegStats.last_seen) deals with dead peers.
        leg = self.leg
        log.debug("media: port %d (leg %s) socket error: %s", self.port, leg and leg.id, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.leg = None
        if not self.closed.done():
            self.closed.set_result(None)
            self._on_closed(self.port)

    def close(self) -> None:
        """Start closing the socket; :attr:`closed` completes when it is closed."""
        self.leg = None
        if self.transport is not None:
            self.transport.close()


class PortPool:
    """Released :class:`RtpSocket` objects, least recently released first."""

    def __init__(
        self,
        *,
        max_idle: int,
        reuse_delay: float,
        idle_timeout: float,
        now: Callable[[], float],
        call_later: Scheduler,
    ) -> None:
        self.max_idle = max_idle
        self.reuse_delay = reuse_delay
        self.idle_timeout = idle_timeout
        self._now = now
        self._call_later = call_later
        self._parked: deque[RtpSocket] = deque()
        self._closing: set[RtpSocket] = set()  # trimmed, not closed yet: close() waits for them
        self._timer: TimerHandle | None = None

    def take(self, *, early: bool = False) -> RtpSocket | None:
        """The least recently released socket if its quarantine is over (``early``: even if not,
        for when the range has nothing else); ``None`` if there is none."""
        parked = self._parked
        while parked:
            sock = parked[0]
            if sock.closed.done():  # the loop closed its transport (a fatal socket error)
                parked.popleft()
                continue
            if not early and self._now() - sock.released_at < self.reuse_delay:
                return None
            return parked.popleft()
        return None

    def park(self, sock: RtpSocket, leg: Leg) -> bool:
        """Keep ``sock``, just released by ``leg``, for a later leg; ``False`` if the pool is full
        (the caller closes the socket)."""
        if len(self._parked) >= self.max_idle:
            return False
        sock.leg = None
        latched = leg.latched_addr
        sock.stale = None if latched is None else (latched[0], latched[1], leg.latched_ssrc)
        sock.released_at = self._now()
        self._parked.append(sock)
        if self._timer is None:
            self._timer = self._call_later(self.idle_timeout, self._trim)
        return True

    def _trim(self) -> None:
        """Close the sockets parked longer than ``idle_timeout``; run again while any is left."""
        self._timer = None
        parked = self._parked
        cutoff = self._now() - self.idle_timeout
        while parked and parked[0].released_at <= cutoff:
            sock = parked.popleft()
            sock.close()
            if not sock.closed.done():
                self._closing.add(sock)
                sock.closed.add_done_callback(functools.partial(self._closed, sock))
        if parked:
            delay = max(parked[0].released_at - cutoff, 0.001)
            self._timer = self._call_later(delay, self._trim)

    def _closed(self, sock: RtpSocket, _: asyncio.Future[None]) -> None:
        self._closing.discard(sock)

    async def close(self) -> None:
        """Close every parked socket; return when all of them are closed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        socks = [*self._parked, *self._closing]
        self._parked.clear()
        for sock in socks:
            sock.close()
        for sock in socks:
            await sock.closed
