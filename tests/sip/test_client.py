"""SIP client transactions: timers on a FakeClock with an in-memory endpoint, then real sockets."""

from __future__ import annotations

import asyncio
import itertools
import socket
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosipua.message import SipRequest, SipResponse
from tests.sip.test_endpoint_sipp import error_logs, free_port, free_port_both, sipp_binary

from callbridge.adapters.clock import FakeClock, SystemClock
from callbridge.sip.client import (
    LINGER_SWEEP_S,
    MAGIC_COOKIE,
    ClientTransaction,
    SipClient,
    TransactionState,
    build_ack_for_2xx,
    top_via_branch,
)
from callbridge.sip.endpoint import ResponseHook, SipEndpoint, Source
from callbridge.sip.responses import header_tag, make_response

PEER = Source("UDP", "192.0.2.10", 5060)
PEER_TCP = Source("TCP", "192.0.2.10", 5060)
_counter = itertools.count(1)


class FakeEndpoint:
    """Records what is sent (with the fake time it was sent at); responses are fed by hand."""

    host = "192.0.2.1"
    port = 5070

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.on_response: ResponseHook | None = None
        self.sent: list[tuple[float, SipRequest | SipResponse, Source]] = []
        self.fail = False

    async def send(self, message: SipRequest | SipResponse, destination: Source) -> None:
        if self.fail:
            raise OSError("network is unreachable")
        self.sent.append((self.clock.monotonic(), message, destination))

    def feed(self, response: SipResponse, source: Source = PEER) -> None:
        assert self.on_response is not None
        self.on_response(response, source)

    def requests(self, method: str) -> list[SipRequest]:
        return [m for _, m, _ in self.sent if isinstance(m, SipRequest) and m.method == method]

    def times(self, method: str) -> list[float]:
        return [t for t, m, _ in self.sent if isinstance(m, SipRequest) and m.method == method]


def build_request(method: str = "INVITE", *, uri: str = "sip:201@192.0.2.10") -> SipRequest:
    n = next(_counter)
    request = SipRequest(method=method, uri=uri)
    request.headers.append("Max-Forwards", "70")
    request.headers.append("From", f"<sip:100@192.0.2.1>;tag=from{n}")
    request.headers.append("To", "<sip:201@192.0.2.10>")
    request.headers.append("Call-ID", f"call-{n}@test")
    request.headers.append("CSeq", f"{n} {method}")
    request.headers.append("Contact", "<sip:100@192.0.2.1:5070>")
    request.headers.append("Route", "<sip:proxy.example;lr>")
    return request


def reply(request: SipRequest, status: int, **headers: str) -> SipResponse:
    return make_response(request, status, to_tag="callee", headers=headers)


def state_of(tx: ClientTransaction) -> TransactionState:
    """The state, read through a call so that mypy does not narrow it across awaits."""
    return tx.state


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def advance(clock: FakeClock, seconds: float, step: float = 0.5) -> None:
    """Advance in steps (all timers here fall on multiples of 0.5 s) letting sends run."""
    steps = round(seconds / step)
    for _ in range(steps):
        clock.advance(step)
        await settle()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def endpoint(clock: FakeClock) -> FakeEndpoint:
    return FakeEndpoint(clock)


@pytest.fixture
async def client(endpoint: FakeEndpoint, clock: FakeClock) -> AsyncIterator[SipClient]:
    sip = SipClient(endpoint, clock)
    yield sip
    await sip.close()


# --- Via and branch ------------------------------------------------------------------------------


async def test_via_is_ours_with_a_fresh_branch_and_rport(
    client: SipClient, endpoint: FakeEndpoint
) -> None:
    request = build_request()
    request.headers.append("Via", "SIP/2.0/UDP stale.example;branch=z9hG4bKold")
    one = await client.invite(request, PEER)
    two = await client.invite(build_request(), PEER_TCP)
    vias = [m.headers.get("via") for _, m, _ in endpoint.sent]
    assert len(vias[0]) == 1 and len(vias[1]) == 1
    assert vias[0][0].startswith("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK")
    assert vias[0][0].endswith(";rport")
    assert vias[1][0].startswith("SIP/2.0/TCP 192.0.2.1:5070;branch=z9hG4bK")
    assert one.branch.startswith(MAGIC_COOKIE) and len(one.branch) > 20
    assert one.branch != two.branch
    assert top_via_branch(endpoint.sent[0][1]) == one.branch


async def test_wrong_methods_are_refused(client: SipClient) -> None:
    with pytest.raises(ValueError):
        await client.request(build_request("INVITE"), PEER)
    with pytest.raises(ValueError):
        await client.invite(build_request("OPTIONS"), PEER)
    options = await client.request(build_request("OPTIONS"), PEER)
    with pytest.raises(ValueError):
        await client.cancel(options)


# --- timers --------------------------------------------------------------------------------------


async def test_invite_timer_a_doubles_and_timer_b_gives_408(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    tx = await client.invite(build_request(), PEER)
    await advance(clock, 31.5)
    assert endpoint.times("INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert tx.final_response is None
    await advance(clock, 0.5)
    final = await tx.final()
    assert final.status_code == 408
    assert final.call_id == tx.request.call_id
    assert state_of(tx) is TransactionState.TERMINATED
    assert client.active == 0
    await advance(clock, 60)
    assert len(endpoint.requests("INVITE")) == 7
    assert endpoint.requests("ACK") == []
    assert clock.pending == 0


async def test_non_invite_timer_e_caps_at_t2_and_timer_f_gives_408(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    tx = await client.request(build_request("OPTIONS"), PEER)
    await advance(clock, 32)
    assert endpoint.times("OPTIONS") == [
        0.0,
        0.5,
        1.5,
        3.5,
        7.5,
        11.5,
        15.5,
        19.5,
        23.5,
        27.5,
        31.5,
    ]
    assert (await tx.final()).status_code == 408
    assert client.active == 0
    assert clock.pending == 0


async def test_non_invite_provisional_retransmits_at_t2_then_final_absorbs(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    request = build_request("BYE")
    tx = await client.request(request, PEER)
    await advance(clock, 0.5)  # one retransmission (E = 0.5)
    endpoint.feed(reply(request, 100))
    assert state_of(tx) is TransactionState.PROCEEDING
    await advance(clock, 9.5)
    # E had been reset to 1 s when it fired at 0.5 s; after that, T2 in Proceeding
    assert endpoint.times("BYE") == [0.0, 0.5, 1.5, 5.5, 9.5]
    endpoint.feed(reply(request, 200))
    assert (await tx.final()).status_code == 200
    assert state_of(tx) is TransactionState.COMPLETED
    endpoint.feed(reply(request, 200))  # retransmission: absorbed
    await advance(clock, 4.5)
    assert len(endpoint.requests("BYE")) == 5
    assert state_of(tx) is TransactionState.COMPLETED
    await advance(clock, 0.5)  # Timer K = T4 = 5 s
    assert state_of(tx) is TransactionState.TERMINATED
    assert client.active == 0
    assert clock.pending == 0


async def test_provisional_stops_timer_a_and_ringing_has_no_timeout(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER)
    await advance(clock, 1.5)
    endpoint.feed(reply(request, 180))
    await advance(clock, 120)
    assert endpoint.times("INVITE") == [0.0, 0.5, 1.5]
    assert state_of(tx) is TransactionState.PROCEEDING
    assert tx.final_response is None
    endpoint.feed(reply(request, 200))
    assert (await tx.final()).status_code == 200


async def test_timer_b_is_armed_with_the_first_retransmission_for_the_same_due_time(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    """Over UDP an answer before T1 costs one timer; B/F still fall due 64*T1 after the send."""
    request = build_request()
    await client.invite(request, PEER)
    assert clock.pending == 1  # timer A only
    endpoint.feed(reply(request, 100))
    assert clock.pending == 0
    bye = await client.request(build_request("BYE"), PEER)
    clock.advance(0.25)
    invite = await client.invite(build_request(), PEER)  # sent at 0.25 s
    assert clock.pending == 2
    clock.advance(0.5)  # E fired at 0.5 s, A at 0.75 s: each armed its B/F
    assert clock.pending == 4
    await advance(clock, 31.0, step=0.25)  # 31.75 s
    assert bye.final_response is None and invite.final_response is None
    clock.advance(0.25)  # 32 s
    assert bye.final_response is not None and bye.final_response.status_code == 408
    assert invite.final_response is None
    clock.advance(0.25)  # 32.25 s
    assert invite.final_response is not None and invite.final_response.status_code == 408
    await settle()
    assert client.active == 1  # the first INVITE rings: no timeout (see above)
    assert clock.pending == 0


async def test_tcp_has_no_retransmissions_only_the_timeout(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    invite = await client.invite(build_request(), PEER_TCP)
    options = await client.request(build_request("OPTIONS"), PEER_TCP)
    await advance(clock, 31.5)
    assert endpoint.times("INVITE") == [0.0]
    assert endpoint.times("OPTIONS") == [0.0]
    await advance(clock, 0.5)
    assert (await invite.final()).status_code == 408
    assert (await options.final()).status_code == 408


async def test_tcp_final_needs_no_linger(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER_TCP)
    endpoint.feed(reply(request, 486), PEER_TCP)
    await settle()
    assert len(endpoint.requests("ACK")) == 1
    clock.advance(0)
    assert state_of(tx) is TransactionState.TERMINATED
    assert client.active == 0


async def test_send_failure_is_a_503(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    endpoint.fail = True
    tx = await client.invite(build_request(), PEER)
    assert (await tx.final()).status_code == 503
    assert client.active == 0
    assert clock.pending == 0


# --- INVITE finals -------------------------------------------------------------------------------


async def test_non_2xx_final_is_acked_with_the_invite_branch_and_re_acked(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER)
    endpoint.feed(reply(request, 100))
    busy = reply(request, 486)
    endpoint.feed(busy)
    await settle()
    assert (await tx.final()).status_code == 486
    [ack] = endpoint.requests("ACK")
    assert ack.uri == request.uri
    assert ack.headers.get("via") == request.headers.get("via")
    assert top_via_branch(ack) == tx.branch
    assert ack.headers.get_first("cseq") == request.headers.get_first("cseq").replace(  # type: ignore[union-attr]
        "INVITE", "ACK"
    )
    assert header_tag(ack.headers.get_first("to") or "") == "callee"
    assert ack.headers.get_first("from") == request.headers.get_first("from")
    assert ack.headers.get_first("call-id") == request.call_id
    assert ack.headers.get("route") == ["<sip:proxy.example;lr>"]
    # the UAS did not get the ACK and resends its 486: ACKed again, not delivered again
    endpoint.feed(busy)
    endpoint.feed(busy)
    await settle()
    assert len(endpoint.requests("ACK")) == 3
    assert len(tx._delivered) == 2  # 100 and the one 486
    await advance(clock, 32)  # Timer D
    assert state_of(tx) is TransactionState.TERMINATED
    endpoint.feed(busy)  # now a stray
    await settle()
    assert len(endpoint.requests("ACK")) == 3
    assert endpoint.times("INVITE") == [0.0]


async def test_2xx_is_delivered_and_retransmissions_get_the_stored_ack(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER)
    ok = reply(
        request,
        200,
        Contact="<sip:201@198.51.100.7:5062;transport=udp>;expires=60",
    )
    ok.headers.append("Record-Route", "<sip:p1.example;lr>, <sip:p2.example;lr>")
    ok.headers.append("Record-Route", "<sip:p3.example;lr>")
    endpoint.feed(ok)
    await settle()
    assert (await tx.final()) is ok
    assert state_of(tx) is TransactionState.ACCEPTED
    assert endpoint.requests("ACK") == []  # the 2xx ACK is the dialog's, not the transaction's
    endpoint.feed(ok)  # retransmitted before the caller ACKed: dropped, the UAS sends it again
    await settle()
    assert endpoint.requests("ACK") == []

    ack = build_ack_for_2xx(request, ok)
    assert ack.method == "ACK"
    assert ack.uri == "sip:201@198.51.100.7:5062;transport=udp"
    assert ack.headers.get("route") == [
        "<sip:p3.example;lr>",
        "<sip:p2.example;lr>",
        "<sip:p1.example;lr>",
    ]
    assert header_tag(ack.headers.get_first("to") or "") == "callee"
    assert ack.headers.get_first("from") == request.headers.get_first("from")
    assert ack.headers.get_first("call-id") == request.call_id
    cseq = request.headers.get_first("cseq") or ""
    assert ack.headers.get_first("cseq") == cseq.replace("INVITE", "ACK")
    await client.ack(tx, ack)
    [sent] = endpoint.requests("ACK")
    branch = top_via_branch(sent)
    assert branch is not None and branch.startswith(MAGIC_COOKIE) and branch != tx.branch
    assert endpoint.sent[-1][2] == PEER

    endpoint.feed(ok)
    endpoint.feed(ok)
    await settle()
    assert endpoint.requests("ACK") == [ack, ack, ack]
    assert len(tx._delivered) == 1  # delivered once
    await advance(clock, 32)  # Timer M
    assert state_of(tx) is TransactionState.TERMINATED
    endpoint.feed(ok)
    await settle()
    assert len(endpoint.requests("ACK")) == 3
    assert endpoint.times("INVITE") == [0.0]


async def test_a_forked_2xx_goes_to_its_callback_and_gets_its_own_ack(
    client: SipClient, endpoint: FakeEndpoint
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER)
    forks: list[SipResponse] = []
    tx.on_forked_2xx = forks.append
    first = make_response(request, 200, to_tag="one")
    second = make_response(request, 200, to_tag="two")
    endpoint.feed(first)
    endpoint.feed(first)  # retransmission before the ACK: not a fork
    endpoint.feed(second)
    assert forks == [second]
    assert (await tx.final()) is first
    await client.ack(tx, build_ack_for_2xx(request, first))
    await client.ack(tx, build_ack_for_2xx(request, second))
    endpoint.feed(second)
    endpoint.feed(first)
    await settle()
    tags = [header_tag(a.headers.get_first("to") or "") for a in endpoint.requests("ACK")]
    assert tags == ["one", "two", "two", "one"]
    assert forks == [second]


async def test_synthetic_408_ends_async_iteration(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    tx = await client.request(build_request("OPTIONS"), PEER)
    await advance(clock, 32)
    assert [r.status_code async for r in tx] == [408]


async def test_async_iteration_yields_provisionals_then_the_final(
    client: SipClient, endpoint: FakeEndpoint
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER)
    seen: list[int] = []
    tx.on_provisional = lambda r: seen.append(r.status_code)
    for status in (100, 180, 183, 200):
        endpoint.feed(reply(request, status))
    got = [response.status_code async for response in tx]
    assert got == [100, 180, 183, 200]
    assert seen == [100, 180, 183]
    assert (await tx.final()).status_code == 200
    # the TU's callback is let go with the final (the transaction lingers 64*T1 after a 2xx)
    assert tx.on_provisional is None
    # a second iteration, started late, still sees every response
    assert [response.status_code async for response in tx] == [100, 180, 183, 200]


async def test_a_cancelled_final_waiter_leaves_the_final_to_the_others(
    client: SipClient, endpoint: FakeEndpoint
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER)
    first = asyncio.get_running_loop().create_task(tx.final())
    second = asyncio.get_running_loop().create_task(tx.final())
    await settle()
    first.cancel()
    await settle()
    assert first.cancelled()
    ok = reply(request, 200)
    endpoint.feed(ok)
    assert not tx.final_future.cancelled()
    assert (await second) is ok
    assert (await tx.final()) is ok


async def test_a_finished_transaction_lingers_without_its_messages(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    """Once the TU drops a finished transaction, its request and responses are freed at once;
    what absorbs retransmissions until timer M / D / K is kept apart."""
    request = build_request()
    tx = await client.invite(request, PEER)
    ok = reply(request, 200)
    endpoint.feed(ok)
    await client.ack(tx, build_ack_for_2xx(request, ok))
    busy_request = build_request()
    busy_tx = await client.invite(busy_request, PEER)
    busy = reply(busy_request, 486)
    endpoint.feed(busy)
    bye_request = build_request("BYE")
    bye_tx = await client.request(bye_request, PEER)
    endpoint.feed(reply(bye_request, 200))
    await settle()
    gone = [weakref.ref(tx), weakref.ref(busy_tx), weakref.ref(bye_tx)]
    del tx, busy_tx, bye_tx
    # no cycle: freed (with the responses and futures they hold) without waiting for the GC
    assert [ref() for ref in gone] == [None] * 3
    assert client.active == 3
    endpoint.feed(ok)  # the 2xx again: our stored ACK again
    endpoint.feed(busy)  # the 486 again: the transaction's ACK again
    await settle()
    assert len(endpoint.requests("ACK")) == 4
    await advance(clock, 5)  # timer K
    assert client.active == 2
    await advance(clock, 27)  # timers M and D
    assert client.active == 0
    assert clock.pending == 0
    endpoint.feed(ok)
    endpoint.feed(busy)
    await settle()
    assert len(endpoint.requests("ACK")) == 4


async def test_lingering_transactions_end_in_sweeps_never_early(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    """Timer K of transactions finished 1 ms apart: the first ends on time, the rest together at
    most LINGER_SWEEP_S later, none before its own expiry."""
    transactions = []
    for _ in range(10):  # finished at 0, 1, ..., 9 ms
        request = build_request("BYE")
        tx = await client.request(request, PEER)
        endpoint.feed(reply(request, 200))
        transactions.append(tx)
        clock.advance(0.001)
    await settle()
    clock.advance(4.9895)  # 4.9995 s
    assert client.active == 10
    assert clock.advance(0.001) == 1  # 5.0005 s: one sweep
    assert [state_of(tx) for tx in transactions].count(TransactionState.TERMINATED) == 1
    assert clock.advance(0.019) == 0  # 5.0195 s
    assert client.active == 9
    assert clock.advance(0.001) == 1  # 5.0205 s: the next sweep ends the other nine
    assert client.active == 0
    assert all(state_of(tx) is TransactionState.TERMINATED for tx in transactions)
    assert clock.pending == 0
    assert LINGER_SWEEP_S == 0.02


async def test_a_forked_2xx_reaches_the_callback_of_a_dropped_transaction(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    request = build_request()
    forks: list[SipResponse] = []
    tx = await client.invite(request, PEER)
    endpoint.feed(make_response(request, 200, to_tag="one"))
    tx.on_forked_2xx = forks.append  # set after the final
    del tx
    second = make_response(request, 200, to_tag="two")
    endpoint.feed(second)
    assert forks == [second]
    await advance(clock, 32)
    assert client.active == 0
    endpoint.feed(second)
    assert forks == [second]


# --- CANCEL --------------------------------------------------------------------------------------


async def test_cancel_waits_for_a_provisional_and_the_487_is_acked(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    request = build_request()
    tx: ClientTransaction = await client.invite(request, PEER)
    await client.cancel(tx)
    await client.cancel(tx)  # asked twice: still one CANCEL
    await settle()
    assert endpoint.requests("CANCEL") == []
    endpoint.feed(reply(request, 180))
    await settle()
    [cancel] = endpoint.requests("CANCEL")
    assert cancel.uri == request.uri
    assert cancel.headers.get("via") == request.headers.get("via")
    for name in ("from", "to", "call-id", "route"):
        assert cancel.headers.get(name) == request.headers.get(name), name
    number = (request.headers.get_first("cseq") or "").split()[0]
    assert cancel.headers.get_first("cseq") == f"{number} CANCEL"
    assert tx.cancel_transaction is not None
    assert tx.cancel_transaction.key == (tx.branch, "CANCEL")

    # CANCEL is its own non-INVITE transaction: retransmitted until answered
    await advance(clock, 0.5)
    assert len(endpoint.requests("CANCEL")) == 2
    endpoint.feed(reply(cancel, 200))
    assert (await tx.cancel_transaction.final()).status_code == 200
    assert state_of(tx) is TransactionState.PROCEEDING

    endpoint.feed(reply(request, 487))
    await settle()
    assert (await tx.final()).status_code == 487
    [ack] = endpoint.requests("ACK")
    assert top_via_branch(ack) == tx.branch
    await advance(clock, 40)
    assert client.active == 0
    assert len(endpoint.requests("CANCEL")) == 2
    await client.cancel(tx)  # after the final: nothing
    await settle()
    assert len(endpoint.requests("CANCEL")) == 2


async def test_cancel_after_provisional_is_sent_at_once(
    client: SipClient, endpoint: FakeEndpoint
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER)
    endpoint.feed(reply(request, 100))
    await client.cancel(tx)
    assert len(endpoint.requests("CANCEL")) == 1


async def test_queued_cancel_is_dropped_when_a_final_comes_first(
    client: SipClient, endpoint: FakeEndpoint
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER)
    await client.cancel(tx)
    endpoint.feed(reply(request, 603))
    await settle()
    assert (await tx.final()).status_code == 603
    endpoint.feed(reply(request, 180))  # late, after the final: ignored
    await settle()
    assert endpoint.requests("CANCEL") == []
    assert tx.cancel_transaction is None


# --- matching ------------------------------------------------------------------------------------


async def test_stray_responses_are_ignored_and_the_previous_hook_still_runs(
    clock: FakeClock, endpoint: FakeEndpoint
) -> None:
    chained: list[int] = []
    endpoint.on_response = lambda response, source: chained.append(response.status_code)
    client = SipClient(endpoint, clock)
    request = build_request()
    tx = await client.invite(request, PEER)

    other = build_request()
    other.headers.append("Via", "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKnotours")
    endpoint.feed(reply(other, 200))  # unknown branch
    wrong_method = reply(request, 200)
    wrong_method.headers.set_single("CSeq", "1 OPTIONS")  # same branch, other method
    endpoint.feed(wrong_method)
    no_via = reply(request, 200)
    no_via.headers.remove("via")
    endpoint.feed(no_via)
    bad_cseq = reply(request, 200)
    bad_cseq.headers.set_single("CSeq", "x")
    endpoint.feed(bad_cseq)
    await settle()
    assert state_of(tx) is TransactionState.CALLING
    assert tx.final_response is None
    assert chained == [200, 200, 200, 200]
    await client.close()
    assert endpoint.on_response is not None and endpoint.on_response is not client._on_response
    assert clock.pending == 0


# --- real sockets --------------------------------------------------------------------------------


@pytest.fixture
async def uas() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


@pytest.fixture
async def uac() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


def loopback_invite(uas: SipEndpoint, uac: SipEndpoint, user: str) -> SipRequest:
    n = next(_counter)
    request = SipRequest(method="INVITE", uri=f"sip:{user}@127.0.0.1:{uas.port}")
    request.headers.append("Max-Forwards", "70")
    request.headers.append("From", f"<sip:100@127.0.0.1>;tag=from{n}")
    request.headers.append("To", f"<sip:{user}@127.0.0.1>")
    request.headers.append("Call-ID", f"loop-{n}@test")
    request.headers.append("CSeq", "1 INVITE")
    request.headers.append("Contact", f"<sip:100@127.0.0.1:{uac.port}>")
    return request


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_real_endpoints_call_answer_ack_bye_and_busy(
    uas: SipEndpoint, uac: SipEndpoint, transport: str
) -> None:
    acks: list[SipRequest] = []
    byes: list[SipRequest] = []

    answered: list[tuple[SipRequest, SipResponse, Source]] = []

    async def on_invite(request: SipRequest, source: Source) -> SipResponse:
        if request.uri.startswith("sip:busy@"):
            return make_response(request, 486, to_tag="b")
        uas.reply(request, make_response(request, 180, to_tag="r"), source)
        ok = make_response(request, 200, to_tag="r")
        ok.headers.append("Contact", f"<sip:201@127.0.0.1:{uas.port}>")
        answered.append((request, ok, source))
        return ok

    acked = asyncio.Event()

    async def on_ack(request: SipRequest, source: Source) -> None:
        acks.append(request)
        acked.set()

    async def on_bye(request: SipRequest, source: Source) -> SipResponse:
        byes.append(request)
        return make_response(request, 200)

    uas.register("INVITE", on_invite)
    uas.register("ACK", on_ack)
    uas.register("BYE", on_bye)
    client = SipClient(uac, SystemClock(), t1=0.05)
    target = Source(transport, "127.0.0.1", uas.port)
    try:
        invite = loopback_invite(uas, uac, "201")
        tx = await client.invite(invite, target)
        async with asyncio.timeout(5):
            statuses = [r.status_code async for r in tx]
        assert statuses[-2:] == [180, 200]
        ok = await tx.final()
        await client.ack(tx, build_ack_for_2xx(invite, ok))
        bye = SipRequest(method="BYE", uri=f"sip:201@127.0.0.1:{uas.port}")
        for name in ("From", "To", "Call-ID"):
            bye.headers.append(name, (ok if name == "To" else invite).headers.get_first(name) or "")
        bye.headers.append("CSeq", "2 BYE")
        bye.headers.append("Max-Forwards", "70")
        bye_tx = await client.request(bye, target)
        async with asyncio.timeout(5):
            assert (await bye_tx.final()).status_code == 200
        assert len(acks) == 1 and acks[0].headers.get_first("cseq") == "1 ACK"
        assert len(byes) == 1

        # the UAS did not see the ACK and resends its 200: the client ACKs again by itself
        acked.clear()
        uas.reply(*answered[0])
        async with asyncio.timeout(5):
            await acked.wait()
        assert len(acks) == 2
        assert acks[1].headers.get("via") == acks[0].headers.get("via")

        # busy: our ACK carries the INVITE's branch, so the UAS absorbs it (no ACK handler call)
        busy = await client.invite(loopback_invite(uas, uac, "busy"), target)
        async with asyncio.timeout(5):
            assert (await busy.final()).status_code == 486
        await asyncio.sleep(0.1)
        assert len(acks) == 2
    finally:
        await client.close()


# --- a real UAS: SIPp's built-in "uas" scenario --------------------------------------------------


async def invite_sipp(client: SipClient, invite: SipRequest, target: Source) -> ClientTransaction:
    """INVITE SIPp while it may still be starting: UDP retransmits by itself, TCP is retried."""
    for _ in range(50):
        tx = await client.invite(invite, target)
        if tx.final_response is None or tx.final_response.status_code != 503:
            return tx
        await asyncio.sleep(0.1)
    raise AssertionError("SIPp never accepted the TCP connection")


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
async def test_sipp_uas_answers_our_invite_ack_and_bye(
    uac: SipEndpoint, transport: str, tmp_path: Path
) -> None:
    sipp = sipp_binary()
    port = free_port_both()
    process = await asyncio.create_subprocess_exec(
        *[sipp, "-sn", "uas", "-t", transport, "-i", "127.0.0.1", "-p", str(port)],
        *["-mi", "127.0.0.1", "-mp", str(free_port(socket.SOCK_DGRAM))],
        *["-ci", "127.0.0.1", "-cp", str(free_port(socket.SOCK_DGRAM))],
        *["-m", "1", "-timeout", "10s", "-timeout_error", "-nostdin", "-trace_err"],
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    client = SipClient(uac, SystemClock(), t1=0.1)
    target = Source("UDP" if transport == "u1" else "TCP", "127.0.0.1", port)
    try:
        invite = SipRequest(method="INVITE", uri=f"sip:service@127.0.0.1:{port}")
        invite.headers.append("Max-Forwards", "70")
        invite.headers.append("From", "<sip:100@127.0.0.1>;tag=caller")
        invite.headers.append("To", "<sip:service@127.0.0.1>")
        invite.headers.append("Call-ID", f"sipp-{next(_counter)}@test")
        invite.headers.append("CSeq", "1 INVITE")
        invite.headers.append("Contact", f"<sip:100@127.0.0.1:{uac.port}>")
        tx = await invite_sipp(client, invite, target)
        async with asyncio.timeout(10):
            statuses = [r.status_code async for r in tx]
        assert statuses == [180, 200]
        ok = await tx.final()
        ack = build_ack_for_2xx(invite, ok)
        assert ack.uri.startswith(f"sip:127.0.0.1:{port}")
        await client.ack(tx, ack)
        bye = SipRequest(method="BYE", uri=ack.uri)
        for name in ("From", "To", "Call-ID"):
            bye.headers.append(name, (ok if name == "To" else invite).headers.get_first(name) or "")
        bye.headers.append("CSeq", "2 BYE")
        bye.headers.append("Max-Forwards", "70")
        bye_tx = await client.request(bye, target)
        async with asyncio.timeout(10):
            assert (await bye_tx.final()).status_code == 200
        async with asyncio.timeout(20):
            output, _ = await process.communicate()
        text = output.decode(errors="replace")
        assert process.returncode == 0, (
            f"sipp exited {process.returncode}\n{text[-3000:]}\n{error_logs(tmp_path)}"
        )
    finally:
        await client.close()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_provisional_during_a_slow_send_still_stops_timer_b(clock: FakeClock) -> None:
    class SlowEndpoint(FakeEndpoint):
        """Answers 180 while send() is still awaiting (as a TCP connect may)."""

        async def send(self, message: SipRequest | SipResponse, destination: Source) -> None:
            await super().send(message, destination)
            if isinstance(message, SipRequest) and message.method == "INVITE":
                self.feed(reply(message, 180), destination)
            await asyncio.sleep(0)

    endpoint = SlowEndpoint(clock)
    client = SipClient(endpoint, clock)
    tx = await client.invite(build_request(), PEER_TCP)
    assert state_of(tx) is TransactionState.PROCEEDING
    await advance(clock, 64)
    assert tx.final_response is None
    assert clock.pending == 0
    await client.close()


async def test_no_final_64_t1_after_cancel_gives_408(
    client: SipClient, endpoint: FakeEndpoint, clock: FakeClock
) -> None:
    request = build_request()
    tx = await client.invite(request, PEER)
    await advance(clock, 10)
    endpoint.feed(reply(request, 180))
    await advance(clock, 60)  # ringing: no timeout
    await client.cancel(tx)
    cancel = endpoint.requests("CANCEL")[0]
    endpoint.feed(reply(cancel, 200))
    await advance(clock, 31.5)
    assert tx.final_response is None
    await advance(clock, 0.5)
    assert (await tx.final()).status_code == 408
    assert endpoint.requests("ACK") == []
    assert client.active == 0
    await advance(clock, 10)
    assert clock.pending == 0
