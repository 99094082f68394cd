"""SIP client transactions (RFC 3261 §17.1, RFC 6026) on top of :class:`SipEndpoint`.

:class:`SipClient` sends requests the B2BUA built and turns the responses that come back into
per-transaction streams; time comes only from a :class:`~callbridge.ports.clock.Clock`.

Theory of operation
-------------------
The client owns the top ``Via``: :meth:`SipClient.request` / :meth:`SipClient.invite` replace
any ``Via`` with exactly one, ``SIP/2.0/<transport> <endpoint host>:<port>;branch=z9hG4bK…;rport``.
Responses arrive through ``endpoint.on_response`` (any previous hook is chained, i.e. still
called for every response) and are matched to a transaction by top-Via ``branch`` + ``CSeq``
method (§17.1.3); anything unmatched (strays, late retransmissions) is dropped.

Each transaction moves through this table; ``UDP`` timers only run over unreliable transports
(over TCP only the timeout B/F runs and the linger timers D/K are zero; M stays 64*T1 because
a UAS retransmits its 2xx until the ACK over any transport, §13.3.1.4):

====================  ====================  ===================  ==================================
kind                  state                 event                action -> new state
====================  ====================  ===================  ==================================
INVITE                CALLING               timer A (UDP)        resend, A *= 2 -> CALLING
INVITE                CALLING/PROCEEDING    1xx                  deliver, stop A+B -> PROCEEDING
INVITE                CALLING/PROCEEDING    2xx                  deliver final -> ACCEPTED (M)
INVITE                CALLING/PROCEEDING    300-699              ACK, deliver final -> COMPLETED (D)
INVITE                CALLING               timer B / send fail  synthetic 408 / 503 -> TERMINATED
INVITE                PROCEEDING            64*T1 after CANCEL   synthetic 408 -> TERMINATED (§9.1)
INVITE                COMPLETED             300-699 again        re-send the same ACK -> COMPLETED
INVITE                ACCEPTED              2xx again            re-send the TU's ACK -> ACCEPTED
INVITE                COMPLETED/ACCEPTED    timer D / timer M    forget -> TERMINATED
non-INVITE            TRYING                timer E (UDP)        resend, E = min(2E, T2) -> TRYING
non-INVITE            TRYING/PROCEEDING     1xx                  deliver -> PROCEEDING (E = T2)
non-INVITE            TRYING/PROCEEDING     final                deliver -> COMPLETED (K)
non-INVITE            TRYING/PROCEEDING     timer F / send fail  synthetic 408 / 503 -> TERMINATED
non-INVITE            COMPLETED             final again          absorb -> COMPLETED
non-INVITE            COMPLETED             timer K              forget -> TERMINATED
====================  ====================  ===================  ==================================

A ringing INVITE (PROCEEDING) has no timeout here: the caller decides how long to ring and
then cancels. Timer A doubles without a cap (0.5, 1, 2, 4, 8, 16 s with T1 = 0.5, §17.1.1.2);
timer E is capped at T2 (0.5, 1, 2, 4, 4, … s, §17.1.2.2); B = F = M = D = 64*T1; K = T4.
Once final, a transaction lingers (D/K/M) as a small record of what absorbing retransmissions
needs, in a queue per linger time swept by one timer (ending none early, some up to
``LINGER_SWEEP_S`` late).

2xx and ACK: the ACK to a 2xx belongs to the dialog, not to the transaction (§13.2.2.4). The
caller builds it (:func:`build_ack_for_2xx`) and sends it with :meth:`SipClient.ack`, which also
*stores* it, keyed by the 2xx's ``To`` tag: while the INVITE transaction is ACCEPTED (64*T1, RFC
6026 Timer M) each retransmitted 2xx with that tag gets the stored ACK again, so the B2BUA never
sees retransmissions. A 2xx with a tag nobody ACKed yet is dropped (the UAS will send it again),
except that a 2xx with a tag other than the final's (another branch of a fork) goes to
``transaction.on_forked_2xx`` when set.

CANCEL (§9.1): :meth:`SipClient.cancel` builds the CANCEL from the INVITE and sends it as its own
non-INVITE transaction with the INVITE's branch, but only once a provisional response arrived;
before that it is queued and sent on the first 1xx (dropped if a final arrives first). The 487
that follows completes the INVITE transaction, which ACKs it like any non-2xx final.

Delivery: ``async for response in transaction`` yields the provisionals then the final; ``await
transaction.final()`` gives the final alone (both may be used on the same transaction);
``transaction.on_provisional`` is called synchronously for each 1xx.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Final, Protocol

from aiosipua.message import SipRequest, SipResponse

from callbridge.ports.clock import Clock, TimerHandle
from callbridge.sip.endpoint import ResponseHook, Source
from callbridge.sip.parse import split_header_values
from callbridge.sip.responses import header_tag, make_response

__all__ = [
    "LINGER_SWEEP_S",
    "MAGIC_COOKIE",
    "ClientEndpoint",
    "ClientTransaction",
    "SipClient",
    "TransactionState",
    "build_ack_for_2xx",
    "new_branch",
    "top_via_branch",
]

logger = logging.getLogger(__name__)

#: RFC 3261 §8.1.1.7: every branch this client generates starts with it.
MAGIC_COOKIE: Final = "z9hG4bK"
#: Least time between two sweeps of a linger queue (see :meth:`SipClient._end_lingering`).
LINGER_SWEEP_S: Final = 0.02


class ClientEndpoint(Protocol):
    """What the client needs from :class:`~callbridge.sip.endpoint.SipEndpoint`."""

    host: str
    on_response: ResponseHook | None

    @property
    def port(self) -> int: ...

    async def send(self, message: SipRequest | SipResponse, destination: Source) -> None: ...


class TransactionState(StrEnum):
    CALLING = "calling"  # INVITE sent, nothing back yet
    TRYING = "trying"  # non-INVITE sent, nothing back yet
    PROCEEDING = "proceeding"
    COMPLETED = "completed"  # non-2xx final (INVITE) or any final (non-INVITE) received
    ACCEPTED = "accepted"  # 2xx final to an INVITE received (RFC 6026)
    TERMINATED = "terminated"


def new_branch() -> str:
    """A fresh RFC 3261 branch: the magic cookie plus 96 random bits."""
    return MAGIC_COOKIE + os.urandom(12).hex()


def top_via_branch(message: SipRequest | SipResponse) -> str | None:
    """The ``branch`` parameter of the first ``Via`` value, or None."""
    vias = message.headers.get("via")
    if not vias:
        return None
    top = split_header_values(vias[0])[0]
    for param in top.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip(" \t").lower() == "branch":
            return value.strip(" \t") or None
    return None


def _cseq(message: SipRequest | SipResponse) -> tuple[int, str] | None:
    value = message.headers.get_first("cseq")
    if value is None:
        return None
    number, _, method = value.strip().partition(" ")
    if not number.isdigit() or not method.strip():
        return None
    return int(number), method.strip().upper()


def _copy(source: SipRequest | SipResponse, target: SipRequest, *names: str) -> None:
    for name in names:
        for value in source.headers.get(name):
            target.headers.append(name, value)


def _contact_uri(response: SipResponse) -> str | None:
    value = response.headers.get_first("contact")
    if value is None:
        return None
    first = split_header_values(value)[0].strip()
    if "<" in first:
        return first[first.find("<") + 1 : first.find(">")].strip() or None
    return first.split(";")[0].strip() or None


def build_ack_for_2xx(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK to a 2xx for ``invite`` (RFC 3261 §13.2.2.4), without a Via.

    Request-URI = the 2xx's ``Contact`` (the remote target); ``Route`` = the 2xx's
    ``Record-Route`` reversed; ``From``/``Call-ID`` from the INVITE, ``To`` (with the tag) from
    the 2xx; ``CSeq`` = the INVITE's number with method ACK. :meth:`SipClient.ack` adds a Via
    with a new branch when sending it.
    """
    cseq = _cseq(invite)
    if cseq is None:
        raise ValueError("INVITE without a valid CSeq")
    ack = SipRequest(method="ACK", uri=_contact_uri(response) or invite.uri)
    record_route = [
        value
        for header in response.headers.get("record-route")
        for value in split_header_values(header)
    ]
    for value in reversed(record_route):
        ack.headers.append("Route", value.strip())
    ack.headers.append("Max-Forwards", "70")
    _copy(invite, ack, "From")
    _copy(response, ack, "To")
    _copy(invite, ack, "Call-ID")
    ack.headers.append("CSeq", f"{cseq[0]} ACK")
    return ack


def _ack_for_non_2xx(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The transaction's own ACK to a 300-699 final (§17.1.1.3): same branch and Request-URI."""
    cseq = _cseq(invite)
    assert cseq is not None
    ack = SipRequest(method="ACK", uri=invite.uri)
    ack.headers.append("Via", invite.headers.get("via")[0])
    _copy(invite, ack, "Route")
    ack.headers.append("Max-Forwards", "70")
    _copy(invite, ack, "From")
    _copy(response, ack, "To")
    _copy(invite, ack, "Call-ID")
    ack.headers.append("CSeq", f"{cseq[0]} ACK")
    return ack


def _cancel_for(invite: SipRequest) -> SipRequest:
    """CANCEL for ``invite`` (§9.1): same Request-URI, Call-ID, To, From, CSeq number, top Via."""
    cseq = _cseq(invite)
    assert cseq is not None
    cancel = SipRequest(method="CANCEL", uri=invite.uri)
    cancel.headers.append("Via", invite.headers.get("via")[0])
    _copy(invite, cancel, "Route")
    cancel.headers.append("Max-Forwards", "70")
    _copy(invite, cancel, "From", "To", "Call-ID")
    cancel.headers.append("CSeq", f"{cseq[0]} CANCEL")
    return cancel


class ClientTransaction:
    """One client transaction; responses come out with ``async for`` or :meth:`final`."""

    def __init__(self, client: SipClient, request: SipRequest, destination: Source) -> None:
        cseq = _cseq(request)
        branch = top_via_branch(request)
        if cseq is None or branch is None:
            raise ValueError("request needs a CSeq and a Via branch")
        self.request = request
        self.destination = destination
        self.branch = branch
        self.method = cseq[1]
        self.is_invite = self.method == "INVITE"
        self.reliable = destination.transport != "UDP"
        self.state = TransactionState.CALLING if self.is_invite else TransactionState.TRYING
        #: Called synchronously with each provisional response, before it is queued.
        self.on_provisional: Callable[[SipResponse], None] | None = None
        self._on_forked_2xx: Callable[[SipResponse], None] | None = None
        #: The CANCEL transaction once sent (INVITE only).
        self.cancel_transaction: ClientTransaction | None = None
        self._client = client
        # What ``async for`` yields: every response delivered so far, and a future that an
        # iteration waiting for the next one parks on (made only when someone waits).
        self._delivered: list[SipResponse] = []
        self._more: asyncio.Future[None] | None = None
        self._final: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        # What :meth:`final` callers wait on while there is no final yet (see there).
        self._waiters: list[asyncio.Future[SipResponse]] = []
        self._retransmit: TimerHandle | None = None
        self._timeout: TimerHandle | None = None
        # When timer B/F falls due while it is not armed yet (UDP: see _start_timers).
        self._deadline: float | None = None
        self._interval = client.t1
        self._acks_2xx: dict[str | None, tuple[SipRequest, Source]] = {}
        self._cancel_wanted = False
        # Once final: what absorbs retransmissions meanwhile (the client's entry for the key).
        self._lingering: _Lingering | None = None

    @property
    def on_forked_2xx(self) -> Callable[[SipResponse], None] | None:
        """Called with a 2xx from another UAS (a ``To`` tag other than the final's) that a fork
        produced (§13.2.2.4: ACK it with :meth:`SipClient.ack`, then BYE it if unwanted);
        without a callback such 2xx are dropped."""
        return self._on_forked_2xx

    @on_forked_2xx.setter
    def on_forked_2xx(self, callback: Callable[[SipResponse], None] | None) -> None:
        self._on_forked_2xx = callback
        if self._lingering is not None:
            self._lingering.pin(self)

    @property
    def key(self) -> tuple[str, str]:
        return self.branch, self.method

    @property
    def final_response(self) -> SipResponse | None:
        """The final response once it arrived (or was synthesised), else None."""
        return self._final.result() if self._final.done() else None

    @property
    def final_future(self) -> asyncio.Future[SipResponse]:
        """The future :meth:`final` awaits (to wait on it together with others; do not set it)."""
        return self._final

    async def final(self) -> SipResponse:
        """Wait for the final response (a synthetic 408 on timeout, 503 if it could not be sent).

        Cancelling the caller does not cancel the final future (as ``asyncio.shield`` would not):
        each caller waits on its own future, resolved from one done callback on the final one,
        which wakes them exactly when shield's callback would, without shield's outer future and
        two closures per call.
        """
        final = self._final
        if final.done():
            return final.result()
        waiter: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        if not self._waiters:
            final.add_done_callback(self._wake_waiters)
        self._waiters.append(waiter)
        return await waiter

    def _wake_waiters(self, final: asyncio.Future[SipResponse]) -> None:
        waiters, self._waiters = self._waiters, []
        response = final.result()
        for waiter in waiters:
            if not waiter.done():  # its caller was cancelled meanwhile
                waiter.set_result(response)

    def __aiter__(self) -> AsyncIterator[SipResponse]:
        return self._responses()

    async def _responses(self) -> AsyncIterator[SipResponse]:
        index = 0
        while True:
            while index >= len(self._delivered):
                if self._more is None or self._more.done():
                    self._more = asyncio.get_running_loop().create_future()
                await self._more
            response = self._delivered[index]
            index += 1
            yield response
            if response.status_code >= 200:
                return

    def _deliver(self, response: SipResponse) -> None:
        self._delivered.append(response)
        more, self._more = self._more, None
        if more is not None and not more.done():
            more.set_result(None)

    # --- driven by SipClient ---------------------------------------------------------------------

    def _start_timers(self) -> None:
        """Timer A/E over UDP, with B/F armed only when A/E first fires (at T1, long before B/F
        is due): nearly every transaction has its answer by then, and then costs one timer
        instead of two. Over a reliable transport, B/F alone."""
        clock = self._client.clock
        if self.reliable:
            self._timeout = clock.call_later(64 * self._client.t1, self._on_timeout)
        else:
            self._deadline = clock.monotonic() + 64 * self._client.t1
            self._retransmit = clock.call_later(self._interval, self._on_retransmit_timer)

    def _on_retransmit_timer(self) -> None:
        if self.state not in (
            TransactionState.CALLING,
            TransactionState.TRYING,
            TransactionState.PROCEEDING,
        ):
            return
        clock = self._client.clock
        if self._deadline is not None:  # the first retransmission: arm B/F now
            self._timeout = clock.call_later(self._deadline - clock.monotonic(), self._on_timeout)
            self._deadline = None
        self._client._spawn_send(self.request, self.destination)
        t2 = self._client.t2
        if self.is_invite:
            self._interval *= 2
        elif self.state is TransactionState.PROCEEDING:
            self._interval = t2
        else:
            self._interval = min(self._interval * 2, t2)
        self._retransmit = clock.call_later(self._interval, self._on_retransmit_timer)

    def _on_timeout(self) -> None:
        if self.state in (TransactionState.COMPLETED, TransactionState.ACCEPTED):
            return
        self._fail(408)

    def _cancel_sent(self) -> None:
        """§9.1: without a final response 64*T1 after the CANCEL, give up (synthetic 408)."""
        self._deadline = None
        if self._timeout is not None:
            self._timeout.cancel()
        self._timeout = self._client.clock.call_later(64 * self._client.t1, self._on_timeout)

    def _fail(self, status: int) -> None:
        """Timeout or transport error: a synthetic final response, then forget."""
        if self.state is TransactionState.TERMINATED or self._final.done():
            return
        logger.debug("SIP %s %s: synthetic %d", self.method, self.request.call_id, status)
        self._deliver_final(make_response(self.request, status))
        self._terminate()

    def _on_response(self, response: SipResponse, source: Source) -> None:
        status = response.status_code
        if status < 200:
            if self.state in (TransactionState.CALLING, TransactionState.TRYING):
                self.state = TransactionState.PROCEEDING
                if self.is_invite:  # §17.1.1.2: no more A, and no B while it rings
                    self._stop_timers()
            if self.state is not TransactionState.PROCEEDING:
                return
            if self._cancel_wanted:
                self._cancel_wanted = False
                self._client._send_cancel(self)
            if self.on_provisional is not None:
                self.on_provisional(response)
            self._deliver(response)
            return
        if self.state is not TransactionState.PROCEEDING and self.state not in (
            TransactionState.CALLING,
            TransactionState.TRYING,
        ):
            return  # terminated (once final, :class:`_Lingering` gets the responses)
        self._stop_timers()
        self._cancel_wanted = False
        lingering = _Lingering(self)
        if self.is_invite and status < 300:
            self.state = TransactionState.ACCEPTED
            lingering.acks_2xx = self._acks_2xx
            lingering.final_tag = header_tag(response.headers.get_first("to") or "")
            linger = 64 * self._client.t1
        else:
            self.state = TransactionState.COMPLETED
            if self.is_invite:
                lingering.ack = _ack_for_non_2xx(self.request, response)
                self._client._spawn_send(lingering.ack, self.destination)
                linger = 0.0 if self.reliable else 64 * self._client.t1
            else:
                linger = 0.0 if self.reliable else self._client.t4
        if self._on_forked_2xx is not None:
            lingering.pin(self)
        self._lingering = lingering
        self._deliver_final(response)
        self._client._linger(lingering, linger)

    def _deliver_final(self, response: SipResponse) -> None:
        self._deliver(response)
        if not self._final.done():
            self._final.set_result(response)
        # No provisional is delivered after a final: drop the TU's callback now rather than
        # keep what it refers to (a B2BUA's leg, its dialog...) alive while the transaction
        # lingers for retransmissions (64*T1 after a 2xx).
        self.on_provisional = None

    def _stop_timers(self) -> None:
        for timer in (self._retransmit, self._timeout):
            if timer is not None:
                timer.cancel()
        self._retransmit = self._timeout = None
        self._deadline = None

    def _terminate(self) -> None:
        self._stop_timers()
        self.state = TransactionState.TERMINATED
        self._client._forget(self)


class _Lingering:
    """A transaction after its final response, absorbing retransmissions until timer D/K/M.

    It holds only what that takes: the key and destination, our ACK to a non-2xx final
    or the TU's ACKs to 2xx (the transaction's own dict), the final's ``To`` tag. Not the
    request, the responses, the futures nor the TU's callbacks: those go when the TU drops the
    :class:`ClientTransaction` (a B2BUA leg ends a second after its answer) instead of 32 s
    later, and the garbage collector no longer walks every finished call's messages (about 80
    objects per call). The transaction is reached through a weak reference, to end it
    (``TERMINATED``) with its linger when someone still holds it; it is held strongly only
    while it has an ``on_forked_2xx`` callback, which a 2xx from another fork must still reach.
    """

    __slots__ = (
        "ack",
        "acks_2xx",
        "destination",
        "expires",
        "final_tag",
        "key",
        "pinned",
        "transaction",
    )

    def __init__(self, transaction: ClientTransaction) -> None:
        self.key = transaction.key
        self.destination = transaction.destination
        self.transaction = weakref.ref(transaction)
        self.pinned: ClientTransaction | None = None
        self.ack: SipRequest | None = None
        self.acks_2xx: dict[str | None, tuple[SipRequest, Source]] | None = None
        self.final_tag: str | None = None
        self.expires = 0.0

    def pin(self, transaction: ClientTransaction) -> None:
        self.pinned = transaction if transaction.on_forked_2xx is not None else None

    def on_response(self, client: SipClient, response: SipResponse) -> None:
        status = response.status_code
        if status < 200:
            return  # no provisional after a final
        if self.acks_2xx is None:  # COMPLETED
            if self.ack is not None:  # retransmitted non-2xx final: ACK it again
                client._spawn_send(self.ack, self.destination)
            return
        if status < 300:  # ACCEPTED
            tag = header_tag(response.headers.get_first("to") or "")
            stored = self.acks_2xx.get(tag)
            if stored is not None:
                client._spawn_send(*stored)
            elif tag != self.final_tag:
                transaction = self.transaction()
                if transaction is not None and transaction.on_forked_2xx is not None:
                    transaction.on_forked_2xx(response)

    def end(self, client: SipClient) -> None:
        """Timer D/K/M (or the client closing): forget it, and end the transaction."""
        self.pinned = None
        transaction = self.transaction()
        if transaction is not None:
            transaction._terminate()
        elif client._transactions.get(self.key) is self:
            del client._transactions[self.key]


class SipClient:
    """The client transaction layer: send requests, match responses, run timers A/B/D/E/F/K/M."""

    def __init__(
        self,
        endpoint: ClientEndpoint,
        clock: Clock,
        *,
        t1: float = 0.5,
        t2: float = 4.0,
        t4: float = 5.0,
        public_host: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        #: the host our Via names (default: the endpoint's; set it when bound to 0.0.0.0)
        self.public_host = public_host
        self.clock = clock
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self._transactions: dict[tuple[str, str], ClientTransaction | _Lingering] = {}
        # Finished transactions by linger time (64*T1, T4 or 0), each in expiry order, with one
        # timer per queue for its head (not one per transaction: see :meth:`_linger`).
        self._lingering: dict[float, deque[_Lingering]] = {}
        self._linger_timers: dict[float, TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._previous_hook = endpoint.on_response
        endpoint.on_response = self._on_response

    @property
    def active(self) -> int:
        """How many transactions are not terminated yet."""
        return len(self._transactions)

    def via(self, transport: str, branch: str) -> str:
        """Our Via value for ``transport`` with ``branch`` (and ``rport``, RFC 3581)."""
        host = self.public_host or self.endpoint.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"SIP/2.0/{transport} {host}:{self.endpoint.port};branch={branch};rport"

    async def request(self, message: SipRequest, destination: Source) -> ClientTransaction:
        """Start a non-INVITE client transaction (Timers E/F); ``message`` gets our Via."""
        if message.method in ("INVITE", "ACK"):
            raise ValueError(f"use invite()/ack() for {message.method}")
        return await self._start(message, destination, stamp_via=True)

    async def invite(self, message: SipRequest, destination: Source) -> ClientTransaction:
        """Start an INVITE client transaction (Timers A/B); ``message`` gets our Via."""
        if message.method != "INVITE":
            raise ValueError("invite() needs an INVITE")
        return await self._start(message, destination, stamp_via=True)

    async def ack(
        self,
        transaction: ClientTransaction,
        ack: SipRequest,
        destination: Source | None = None,
    ) -> None:
        """Send the dialog's ACK to a 2xx (see :func:`build_ack_for_2xx`) and remember it.

        The ACK gets our Via with a new branch; it goes to ``destination`` (default: where the
        INVITE went, which is right for NATed phones and a fixed trunk). Retransmissions of the
        2xx with the same ``To`` tag are answered with this ACK until the transaction ends.
        Raises ``OSError`` when it cannot be sent.
        """
        target = destination or transaction.destination
        ack.headers.set_single("Via", self.via(target.transport, new_branch()))
        tag = header_tag(ack.headers.get_first("to") or "")
        transaction._acks_2xx[tag] = (ack, target)
        await self.endpoint.send(ack, target)

    async def cancel(self, transaction: ClientTransaction) -> None:
        """Cancel a pending INVITE (§9.1): now if a provisional came, else on the first one.

        Does nothing once the INVITE has a final response (or a CANCEL was already asked for).
        """
        if not transaction.is_invite:
            raise ValueError("only an INVITE can be cancelled")
        if transaction._cancel_wanted or transaction.cancel_transaction is not None:
            return
        if transaction.state is TransactionState.PROCEEDING:
            transaction._cancel_sent()
            transaction.cancel_transaction = await self._start(
                _cancel_for(transaction.request), transaction.destination
            )
        elif transaction.state is TransactionState.CALLING:
            transaction._cancel_wanted = True

    # --- internals -------------------------------------------------------------------------------

    async def _start(
        self, message: SipRequest, destination: Source, *, stamp_via: bool = False
    ) -> ClientTransaction:
        if stamp_via:
            message.headers.set_single("Via", self.via(destination.transport, new_branch()))
        transaction = ClientTransaction(self, message, destination)
        self._transactions[transaction.key] = transaction
        # Timers first: a response may arrive while send() awaits (a TCP connect), and a 1xx
        # must find timer B running so that it can stop it.
        transaction._start_timers()
        try:
            await self.endpoint.send(message, destination)
        except OSError as exc:
            logger.debug("SIP %s to %s failed: %s", message.method, destination, exc)
            transaction._fail(503)  # §8.1.3.1: a transport error counts as 503
        return transaction

    def _send_cancel(self, invite: ClientTransaction) -> None:
        """Send the queued CANCEL (from a sync context: the first provisional)."""

        invite._cancel_sent()

        async def send() -> None:
            invite.cancel_transaction = await self._start(
                _cancel_for(invite.request), invite.destination
            )

        self._track(asyncio.get_running_loop().create_task(send()))

    def _spawn_send(self, message: SipRequest, destination: Source) -> None:
        """Retransmissions and ACKs from timer/response callbacks; errors only logged."""

        async def send() -> None:
            try:
                await self.endpoint.send(message, destination)
            except OSError as exc:
                logger.debug("SIP %s resend to %s failed: %s", message.method, destination, exc)

        self._track(asyncio.get_running_loop().create_task(send()))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, transaction: ClientTransaction) -> None:
        entry = self._transactions.get(transaction.key)
        if entry is not None and (entry is transaction or entry is transaction._lingering):
            del self._transactions[transaction.key]

    def _linger(self, lingering: _Lingering, delay: float) -> None:
        """Let a finished transaction absorb retransmissions for ``delay`` s (timer D/K/M).

        The linger times are fixed per queue, so each queue is in expiry order and only its
        head needs a timer: a transaction costs an append instead of a timer handle (with its
        bound method and context) kept for 32 s and later cancelled or fired one by one.
        """
        self._transactions[lingering.key] = lingering
        lingering.expires = self.clock.monotonic() + delay
        queue = self._lingering.get(delay)
        if queue is None:
            queue = self._lingering[delay] = deque()
        queue.append(lingering)
        if len(queue) == 1:
            self._linger_timers[delay] = self.clock.call_later(
                delay, functools.partial(self._end_lingering, delay)
            )

    def _end_lingering(self, delay: float) -> None:
        """The head of a linger queue is due: end every transaction due, re-arm for the next.

        The next sweep comes at the new head's expiry but at least ``LINGER_SWEEP_S`` later: at
        a few hundred calls per second the expiries are milliseconds apart, and one timer then
        ends several transactions. None ends early; one may end up to 20 ms late (less than the
        event loop's own lateness under that load), which only means that a retransmission
        arriving in those 20 ms is still absorbed (ACKed again) instead of dropped as a stray.
        A queue that was empty arms its timer for the exact expiry.
        """
        queue = self._lingering[delay]
        now = self.clock.monotonic()
        # A microsecond of slack: a re-armed timer's due time is computed in floating point.
        while queue and queue[0].expires <= now + 1e-6:
            queue.popleft().end(self)
        if queue:
            self._linger_timers[delay] = self.clock.call_later(
                max(queue[0].expires - now, LINGER_SWEEP_S),
                functools.partial(self._end_lingering, delay),
            )
        else:
            del self._linger_timers[delay]

    def _on_response(self, response: SipResponse, source: Source) -> None:
        if self._previous_hook is not None:
            try:
                self._previous_hook(response, source)
            except Exception:
                logger.exception("chained SIP response hook failed")
        branch = top_via_branch(response)
        cseq = _cseq(response)
        if branch is None or cseq is None:
            return
        transaction = self._transactions.get((branch, cseq[1]))
        if transaction is None:
            logger.debug("stray SIP %d (call-id %s)", response.status_code, response.call_id)
            return
        if isinstance(transaction, _Lingering):
            transaction.on_response(self, response)
        else:
            transaction._on_response(response, source)

    async def close(self) -> None:
        """Stop every transaction's timers and wait for pending sends; restore the hook."""
        for timer in self._linger_timers.values():
            timer.cancel()
        self._linger_timers.clear()
        self._lingering.clear()
        for transaction in list(self._transactions.values()):
            if isinstance(transaction, _Lingering):
                transaction.end(self)
            else:
                transaction._terminate()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.endpoint.on_response = self._previous_hook
