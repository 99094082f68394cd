"""A SIP endpoint on UDP and TCP: receives, guards, dispatches, answers; the B2BUA builds on it.

:class:`SipEndpoint` owns the sockets and every task it starts. For each received message:

1. :func:`callbridge.sip.parse.parse_datagram` judges it (UDP datagrams as they come, TCP
   messages framed by ``Content-Length``); a malformed one is answered with the guard's ready
   ``400``/``505`` or dropped, and never reaches a handler.
2. A response goes to :attr:`SipEndpoint.on_response` (the B2BUA's client side).
3. A request is first matched against the recently answered ones (a minimal server-transaction
   layer, RFC 3261 §17.2.3: top Via ``branch`` + sent-by + method): a retransmission gets the
   last response again (or nothing while its handler is still working) and an ``ACK`` to a
   non-2xx final response is absorbed. Otherwise it goes to the handler registered for its
   method, run as a task; the handler's response (or a 500 if it raised) is sent back to the
   address RFC 3261 §18.2.2 / RFC 3581 say (``received``/``rport`` are stamped on arrival).
   Without a handler: ``OPTIONS`` gets ``200 OK`` (Allow, Accept, Supported), ``ACK`` is
   ignored and anything else gets ``405`` with ``Allow``. A Request-URI scheme other than
   sip/sips/tel gets ``416`` and a ``Require`` naming an unsupported extension ``420``.

Why not aiosipua's ``UdpSipTransport``/``TcpSipTransport``: they bind their own sockets (no way to
raise ``SO_RCVBUF``/``SO_SNDBUF`` before traffic arrives, nor to share one port number between
UDP and TCP), parse with the lenient library parser and log-and-drop failures (no hook to answer
400), read one datagram per event-loop iteration (asyncio's datagram transport; a flood then
overflows the kernel queue and genuine requests are lost with the junk), and their TCP server
does not track the connection tasks it spawns. The small transports here take over those jobs
(UDP: a non-blocking socket drained in bursts from ``loop.add_reader``; TCP: ``asyncio``
streams framed by ``Content-Length``); message objects, header codecs and serialisation stay
aiosipua's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiosipua.message import SipRequest, SipResponse

from callbridge.memo import SHORT_HEADER_CHARS, short_text_cache
from callbridge.sip.parse import (
    MAX_MESSAGE_BYTES,
    Parsed,
    ParsedRequest,
    ParsedResponse,
    parse_datagram,
    response_destination,
    split_header_values,
)
from callbridge.sip.responses import make_response
from callbridge.sip.source import Source
from callbridge.sip.wire import to_bytes

__all__ = [
    "EndpointStats",
    "RequestHandler",
    "ResponseHook",
    "SipEndpoint",
    "Source",
    "start_task",
]

logger = logging.getLogger(__name__)

DEFAULT_BUFFER_BYTES: Final = 4 * 1024 * 1024
#: Largest TCP header section accepted before the connection is dropped.
MAX_TCP_HEADER_BYTES: Final = 64 * 1024
#: Most unsent bytes queued towards one TCP peer before the connection is dropped.
MAX_TCP_WRITE_BACKLOG: Final = 1024 * 1024
#: How long answered server transactions are remembered (64*T1, RFC 3261 Timer J).
TRANSACTION_LINGER_S: Final = 32.0
#: How long a request whose handler has not answered yet keeps absorbing retransmissions.
TRANSACTION_PENDING_S: Final = 300.0
#: Most datagrams read per readiness callback.
UDP_BURST: Final = 64
_SO_SNDBUFFORCE: Final = 32  # Linux <asm-generic/socket.h>; Python does not export these
_SO_RCVBUFFORCE: Final = 33
_SCHEMES: Final = frozenset({"sip", "sips", "tel"})
_CONTENT_LENGTH_RE: Final = re.compile(
    rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$"
)


def start_task(awaitable: Awaitable[Any]) -> asyncio.Task[Any]:
    """``asyncio.ensure_future`` for the coroutines the SIP layer runs as tasks (several per
    call): the running loop's ``create_task`` directly, without the type checks and the loop
    lookup; anything other than a coroutine still goes through ``ensure_future``."""
    if asyncio.iscoroutine(awaitable):
        return asyncio.get_running_loop().create_task(awaitable)
    return asyncio.ensure_future(awaitable)


@short_text_cache(maxsize=4096, max_chars=SHORT_HEADER_CHARS)
def _branch_and_sent_by(via: str) -> tuple[str, str] | None:
    """The RFC 3261 ``branch`` and the normalised sent-by of the top value of a ``Via`` header
    (None without a magic-cookie branch). Remembered (bounded): a request's transaction key is
    needed on arrival and again for each response to it."""
    top = split_header_values(via)[0]
    head, _, params = top.partition(";")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip(" \t").lower() == "branch":
            branch = value.strip(" \t")
            if branch.startswith("z9hG4bK") and len(branch) > 7:
                return branch, " ".join(head.split()).upper()
    return None


RequestHandler = Callable[[SipRequest, Source], Awaitable[SipResponse | None]]
ResponseHook = Callable[[SipResponse, Source], None]


@dataclass(slots=True)
class EndpointStats:
    """Counters since :meth:`SipEndpoint.start` (for tests, logs and health checks)."""

    received: int = 0
    requests: int = 0
    responses: int = 0
    malformed_answered: int = 0
    malformed_dropped: int = 0
    retransmissions: int = 0
    handler_errors: int = 0
    overloaded: int = 0


@dataclass(slots=True)
class _Transaction:
    response: bytes | None
    status: int
    destination: Source
    expires: float


class SipEndpoint:
    """Listens on ``host:port`` over UDP and/or TCP (same port number) and dispatches SIP.

    ``port=0`` lets the system choose; :attr:`port` is the chosen one after :meth:`start`.
    ``buffer_bytes`` is the minimum ``SO_RCVBUF``/``SO_SNDBUF`` asked for on the UDP socket;
    the effective values are in :attr:`buffer_sizes` (see :meth:`start`).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        udp: bool = True,
        tcp: bool = True,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_inflight: int = 1000,
        max_connections: int = 1024,
        tcp_idle_timeout: float = 300.0,
        supported: tuple[str, ...] = (),
        server_name: str = "callbridge",
    ) -> None:
        if not udp and not tcp:
            raise ValueError("a SIP endpoint needs UDP, TCP or both")
        self.host = host
        self._requested_port = port
        self._udp_enabled = udp
        self._tcp_enabled = tcp
        self._buffer_bytes = buffer_bytes
        self._max_message_bytes = max_message_bytes
        self._max_inflight = max_inflight
        self._max_connections = max_connections
        self._tcp_idle_timeout = tcp_idle_timeout
        self.supported = supported
        self.server_name = server_name
        #: Called with every well-formed response received (the B2BUA's client transactions).
        self.on_response: ResponseHook | None = None
        self.stats = EndpointStats()
        self._handlers: dict[str, RequestHandler] = {}
        self._port = 0
        self._buffers = (0, 0)
        self._udp: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inflight = 0
        self._transactions: OrderedDict[tuple[str, str, str], _Transaction] = OrderedDict()
        self._last_purge = 0.0
        self._last_malformed_log = 0.0
        self._malformed_since_log = 0
        self._running = False

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when constructed with 0); 0 before start."""
        return self._port

    @property
    def running(self) -> bool:
        """Started, not stopped, and its sockets open."""
        return (
            self._running
            and (self._udp is None or self._udp.fileno() != -1)
            and (self._server is None or self._server.is_serving())
        )

    @property
    def udp_socket(self) -> socket.socket | None:
        """The UDP socket (for inspection, e.g. ``getsockopt``); None without UDP or stopped."""
        return self._udp

    @property
    def buffer_sizes(self) -> tuple[int, int]:
        """Effective ``(SO_RCVBUF, SO_SNDBUF)`` of the UDP socket as ``getsockopt`` reports them.

        Linux reports twice the value set (the kernel counts its bookkeeping); when
        ``net.core.rmem_max``/``wmem_max`` are lower than asked and ``SO_*BUFFORCE`` is not
        permitted (not root / no CAP_NET_ADMIN), the values are capped and a warning was logged.
        """
        return self._buffers

    async def start(self) -> None:
        """Bind the sockets (UDP first, then TCP on the same port number) and start serving."""
        if self._running:
            raise RuntimeError("SIP endpoint already started")
        loop = asyncio.get_running_loop()
        udp_sock, tcp_sock = self._bind()
        try:
            if udp_sock is not None:
                self._buffers = self._raise_buffers(udp_sock)
                udp_sock.setblocking(False)
                loop.add_reader(udp_sock.fileno(), self._on_udp_readable, udp_sock)
                self._udp = udp_sock
                udp_sock = None
            if tcp_sock is not None:
                self._server = await asyncio.start_server(
                    self._on_connection, sock=tcp_sock, limit=MAX_TCP_HEADER_BYTES
                )
                tcp_sock = None
        except BaseException:
            for sock in (udp_sock, tcp_sock):
                if sock is not None:
                    sock.close()
            await self._close_transports()
            raise
        self.stats = EndpointStats()
        self._running = True
        logger.info(
            "SIP endpoint listening on %s port %d (%s)",
            self.host,
            self._port,
            "+".join(t for t, on in (("UDP", self._udp), ("TCP", self._server)) if on),
        )

    async def stop(self) -> None:
        """Stop listening, cancel and await every task, close every connection."""
        self._running = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        await self._close_transports()
        self._transactions.clear()
        self._inflight = 0

    async def _close_transports(self) -> None:
        if self._udp is not None:
            asyncio.get_running_loop().remove_reader(self._udp.fileno())
            self._udp.close()
            self._udp = None
        writers = list(self._connections.values())
        self._connections.clear()
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await writer.wait_closed()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _bind(self) -> tuple[socket.socket | None, socket.socket | None]:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        attempts = 1 if self._requested_port else 50
        for _ in range(attempts):
            udp_sock = tcp_sock = None
            try:
                port = self._requested_port
                if self._udp_enabled:
                    udp_sock = socket.socket(family, socket.SOCK_DGRAM)
                    udp_sock.bind((self.host, port))
                    port = udp_sock.getsockname()[1]
                if self._tcp_enabled:
                    tcp_sock = socket.socket(family, socket.SOCK_STREAM)
                    tcp_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    tcp_sock.bind((self.host, port))
                    port = tcp_sock.getsockname()[1]
            except OSError as exc:
                for sock in (udp_sock, tcp_sock):
                    if sock is not None:
                        sock.close()
                if exc.errno == errno.EADDRINUSE and not self._requested_port:
                    continue  # the UDP port chosen for us is taken on TCP: try another
                raise
            self._port = port
            return udp_sock, tcp_sock
        raise OSError(errno.EADDRINUSE, "no port free on both UDP and TCP")

    def _raise_buffers(self, sock: socket.socket) -> tuple[int, int]:
        wanted = self._buffer_bytes
        sizes = []
        for option, force, sysctl in (
            (socket.SO_RCVBUF, _SO_RCVBUFFORCE, "net.core.rmem_max"),
            (socket.SO_SNDBUF, _SO_SNDBUFFORCE, "net.core.wmem_max"),
        ):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, wanted)
            effective = sock.getsockopt(socket.SOL_SOCKET, option)
            if effective < wanted and sys.platform.startswith("linux"):
                # Above the sysctl cap only a privileged process may go (CAP_NET_ADMIN).
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, force, wanted)
                effective = sock.getsockopt(socket.SOL_SOCKET, option)
            if effective < wanted:
                logger.warning(
                    "SIP UDP socket buffer capped at %d bytes (asked %d): raise %s or run with "
                    "CAP_NET_ADMIN",
                    effective,
                    wanted,
                    sysctl,
                )
            sizes.append(effective)
        logger.info("SIP UDP socket buffers: receive %d, send %d bytes", sizes[0], sizes[1])
        return sizes[0], sizes[1]

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = start_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- handlers --------------------------------------------------------------------------------

    def register(self, method: str, handler: RequestHandler) -> None:
        """Handle requests of ``method`` (case-sensitive) with ``handler``.

        The handler runs as a task owned by the endpoint; it returns the response to send (the
        endpoint routes it and remembers it for retransmissions), or None when it answers later
        with :meth:`reply` (or, for ACK, never). If it raises, the request gets a 500.
        """
        self._handlers[method] = handler

    def unregister(self, method: str) -> None:
        self._handlers.pop(method, None)

    @property
    def allowed_methods(self) -> list[str]:
        """What ``Allow`` lists: the registered methods plus OPTIONS."""
        return sorted({*self._handlers, "OPTIONS"})

    # --- receiving -------------------------------------------------------------------------------

    def _on_udp_readable(self, sock: socket.socket) -> None:
        """Drain up to :data:`UDP_BURST` datagrams per wake-up.

        asyncio's own datagram transport reads one datagram per event-loop iteration; under a
        flood that lets the kernel queue overflow (and drop the genuine requests with the junk)
        while the loop spins. Reading a bounded burst keeps up without starving other tasks.
        """
        for _ in range(UDP_BURST):
            try:
                data, addr = sock.recvfrom(65_536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                logger.debug("UDP receive error: %s", exc)
                return
            self._on_message(data, Source("UDP", str(addr[0]), int(addr[1])))

    def _on_message(self, data: bytes, source: Source) -> None:
        """Judge and dispatch one received message; never raises into the transport."""
        self.stats.received += 1
        parsed = parse_datagram(data, self._max_message_bytes, source=(source.host, source.port))
        try:
            self._dispatch(parsed, source)
        except Exception:
            call_id = parsed.request.call_id if isinstance(parsed, ParsedRequest) else None
            logger.exception(
                "SIP dispatch failed for a message from %s:%d (call-id %s)",
                source.host,
                source.port,
                call_id,
            )

    def _dispatch(self, parsed: Parsed, source: Source) -> None:
        if isinstance(parsed, ParsedRequest):
            self.stats.requests += 1
            self._on_request(parsed.request, source)
        elif isinstance(parsed, ParsedResponse):
            self.stats.responses += 1
            hook = self.on_response
            if hook is not None:
                try:
                    hook(parsed.response, source)
                except Exception:
                    logger.exception(
                        "SIP response hook failed (call-id %s)", parsed.response.call_id
                    )
        elif parsed.reason != "keep-alive":
            if parsed.reply is not None:
                self.stats.malformed_answered += 1
                self._send_response(parsed.reply, source)
            else:
                self.stats.malformed_dropped += 1
            self._log_malformed(parsed.reason, parsed.action, source, parsed.call_id)

    def _log_malformed(self, reason: str, action: str, source: Source, call_id: str | None) -> None:
        """One line per malformed message at DEBUG; at most one WARNING per 10 s (floods)."""
        logger.debug(
            "malformed SIP from %s:%d (%s, call-id %s): %s",
            source.host,
            source.port,
            action,
            call_id,
            reason,
        )
        self._malformed_since_log += 1
        now = time.monotonic()
        if now - self._last_malformed_log >= 10.0:
            logger.warning(
                "%d malformed SIP message(s) since last report; latest from %s:%d "
                "(%s, call-id %s): %s",
                self._malformed_since_log,
                source.host,
                source.port,
                action,
                call_id,
                reason,
            )
            self._last_malformed_log = now
            self._malformed_since_log = 0

    def _transaction_key(self, request: SipRequest) -> tuple[str, str, str] | None:
        vias = request.headers.get("via")
        if not vias:
            return None
        branch_and_sent_by = _branch_and_sent_by(vias[0])
        if branch_and_sent_by is None:
            return None
        method = "INVITE" if request.method == "ACK" else request.method
        return branch_and_sent_by[0], branch_and_sent_by[1], method

    def _on_request(self, request: SipRequest, source: Source) -> None:
        key = self._transaction_key(request)
        now = time.monotonic()
        if key is not None:
            known = self._transactions.get(key)
            if known is not None and known.expires > now:
                if request.method == "ACK":
                    if known.status >= 300:
                        return  # ACK to our non-2xx final response ends the transaction
                else:
                    self.stats.retransmissions += 1
                    if known.response is not None:
                        self._send_bytes(known.response, known.destination)
                    return
        if request.method == "ACK":
            handler = self._handlers.get("ACK")
            if handler is not None and self._running:
                self._spawn(self._run_handler(handler, request, source))
            return
        early = self._screen(request)
        if early is not None:
            self.reply(request, early, source)
            return
        handler = self._handlers.get(request.method)
        if handler is None:
            if request.method == "OPTIONS":
                self.reply(request, self.options_response(request), source)
            else:
                self.reply(request, make_response(request, 405, headers=self._allow()), source)
            return
        if self._inflight >= self._max_inflight or not self._running:
            self.stats.overloaded += 1
            self.reply(request, make_response(request, 503, headers={"Retry-After": "5"}), source)
            return
        if key is not None:
            self._remember(key, None, 0, source, now + TRANSACTION_PENDING_S)
        self._inflight += 1
        self._spawn(self._run_handler(handler, request, source))

    def _screen(self, request: SipRequest) -> SipResponse | None:
        """416 for an unknown URI scheme, 420 for a required extension we lack."""
        scheme = request.uri.partition(":")[0].lower()
        if scheme not in _SCHEMES:
            return make_response(request, 416)
        if request.method != "CANCEL":
            required = [
                tag
                for value in request.headers.get("require")
                for tag in split_header_values(value)
                if tag
            ]
            unsupported = [tag for tag in required if tag not in self.supported]
            if unsupported:
                return make_response(request, 420, headers={"Unsupported": ", ".join(unsupported)})
        return None

    def _allow(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed_methods)}

    def options_response(self, request: SipRequest) -> SipResponse:
        """The default answer to OPTIONS: 200 with Allow, Accept, Supported."""
        return make_response(
            request,
            200,
            headers={
                **self._allow(),
                "Accept": "application/sdp",
                "Supported": ", ".join(self.supported),
                "Server": self.server_name,
            },
        )

    async def _run_handler(
        self,
        handler: RequestHandler,
        request: SipRequest,
        source: Source,
    ) -> None:
        try:
            try:
                response = await handler(request, source)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.handler_errors += 1
                logger.exception(
                    "SIP %s handler failed (call-id %s)", request.method, request.call_id
                )
                response = None if request.method == "ACK" else make_response(request, 500)
            if response is not None and request.method != "ACK":
                self.reply(request, response, source)
        finally:
            if request.method != "ACK":
                self._inflight -= 1

    # --- sending ---------------------------------------------------------------------------------

    def reply(self, request: SipRequest, response: SipResponse, source: Source) -> None:
        """Send ``response`` to ``request`` (received from ``source``) and remember it.

        Use this, rather than :meth:`send`, for a response produced after the handler returned
        None, so that retransmissions of the request get it again.
        """
        sent = self._send_response(response, source)
        key = self._transaction_key(request)
        if sent is not None and key is not None and request.method != "ACK":
            payload, destination = sent
            linger = TRANSACTION_LINGER_S if response.status_code >= 200 else TRANSACTION_PENDING_S
            self._remember(
                key, payload, response.status_code, destination, time.monotonic() + linger
            )

    def _remember(
        self,
        key: tuple[str, str, str],
        payload: bytes | None,
        status: int,
        destination: Source,
        expires: float,
    ) -> None:
        self._transactions[key] = _Transaction(payload, status, destination, expires)
        self._transactions.move_to_end(key)
        now = time.monotonic()
        if now - self._last_purge > 1.0:
            self._last_purge = now
            self._purge(now)
        while len(self._transactions) > 65_536:
            self._transactions.popitem(last=False)

    def _purge(self, now: float) -> None:
        """Forget every transaction expired by ``now``, walking from the least recently updated.

        Each entry expires a fixed time after its last update (``TRANSACTION_LINGER_S`` once
        answered finally, the longer ``TRANSACTION_PENDING_S`` before) and the dictionary is in
        update order, so behind an answered entry that has not expired no entry has expired
        either: the walk stops there instead of testing every remembered transaction (tens of
        thousands at a few hundred calls per second) every second. Pending entries in front of
        it are stepped over.
        """
        stale: list[tuple[str, str, str]] = []
        for key, transaction in self._transactions.items():
            if transaction.expires <= now:
                stale.append(key)
            elif transaction.status >= 200:
                break
        for key in stale:
            del self._transactions[key]

    def _destination(self, response: SipResponse, source: Source) -> Source | None:
        if source.transport == "TCP":
            return source  # RFC 3261 §18.2.2: back over the connection the request came on
        routed = response_destination(response)
        if routed is None:
            return None
        return Source(source.transport, routed[1], routed[2])

    def _send_response(self, response: SipResponse, source: Source) -> tuple[bytes, Source] | None:
        """Route and send a response; what was sent and where (None: no route)."""
        destination = self._destination(response, source)
        if destination is None:
            logger.debug("no route for SIP response (call-id %s)", response.call_id)
            return None
        payload = to_bytes(response)
        self._send_bytes(payload, destination)
        return payload, destination

    def _send_bytes(self, payload: bytes, destination: Source) -> bool:
        try:
            if destination.transport == "UDP":
                if self._udp is None:
                    return False
                self._udp.sendto(payload, (destination.host, destination.port))
                return True
            writer = self._connections.get((destination.host, destination.port))
            if writer is None or writer.is_closing():
                logger.debug("no TCP connection to %s:%d", destination.host, destination.port)
                return False
            if writer.transport.get_write_buffer_size() > MAX_TCP_WRITE_BACKLOG:
                # The peer sends but does not read: drop it rather than buffer without bound.
                logger.warning(
                    "closing SIP TCP connection from %s:%d: %d bytes unread",
                    destination.host,
                    destination.port,
                    writer.transport.get_write_buffer_size(),
                )
                writer.close()
                return False
            writer.write(payload)
            return True
        except OSError as exc:
            logger.debug("SIP send to %s:%d failed: %s", destination.host, destination.port, exc)
            return False

    async def send(self, message: SipRequest | SipResponse, destination: Source) -> None:
        """Send a message the B2BUA built (complete with Via etc.) to ``destination``.

        Over TCP an existing connection to ``host:port`` is reused, else one is opened (and read
        from, like accepted ones). Raises ``OSError`` when it cannot be sent.
        """
        payload = to_bytes(message)
        if destination.transport == "UDP":
            if self._udp is None:
                raise OSError(errno.ENOTCONN, "SIP endpoint has no UDP socket")
            # A direct non-blocking sendto: the socket buffer is large, and uvloop has no
            # loop.sock_sendto. A full buffer raises BlockingIOError (an OSError) to the caller.
            self._udp.sendto(payload, (destination.host, destination.port))
            return
        if destination.transport != "TCP":
            raise ValueError(f"unsupported transport {destination.transport!r}")
        writer = self._connections.get((destination.host, destination.port))
        if writer is None or writer.is_closing():
            reader, writer = await asyncio.open_connection(
                destination.host, destination.port, limit=MAX_TCP_HEADER_BYTES
            )
            self._connections[(destination.host, destination.port)] = writer
            self._spawn(self._serve_stream(reader, writer, destination))
        writer.write(payload)
        await writer.drain()

    # --- TCP -------------------------------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        peer = writer.get_extra_info("peername")
        if not self._running or len(self._connections) >= self._max_connections or not peer:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        source = Source("TCP", str(peer[0]), int(peer[1]))
        self._connections[(source.host, source.port)] = writer
        await self._serve_stream(reader, writer, source)

    async def _serve_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: Source
    ) -> None:
        """Frame messages off a TCP stream by Content-Length (RFC 3261 §18.3) until EOF."""
        try:
            while True:
                async with asyncio.timeout(self._tcp_idle_timeout):
                    head = await reader.readuntil(b"\r\n\r\n")
                if not head.strip(b"\r\n"):
                    if head == b"\r\n\r\n":
                        writer.write(b"\r\n")  # RFC 5626 §4.4.1 keep-alive pong
                    continue
                lengths = {m.group(1) for m in _CONTENT_LENGTH_RE.finditer(head)}
                length = lengths.pop() if len(lengths) == 1 else b"0" if not lengths else b""
                if not length.isdigit() or len(head) + int(length) > self._max_message_bytes:
                    # Unframeable: answer what can be answered, then drop the connection.
                    self._on_message(head, source)
                    break
                body = b""
                if int(length):
                    async with asyncio.timeout(self._tcp_idle_timeout):
                        body = await reader.readexactly(int(length))
                self._on_message(head + body, source)
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            pass
        finally:
            if self._connections.get((source.host, source.port)) is writer:
                del self._connections[(source.host, source.port)]
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await writer.wait_closed()
