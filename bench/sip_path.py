"""CPU time of the SIP message path per bench call, in-process: no sockets, media or storage.

What ``bench/sip.py`` makes the server do for one call, minus SQLite, the call core and the
media engine: SipEndpoint + SipClient + SipSwitch take the UAC's INVITE, answer 100/180, INVITE
the registered phone (a fake UAS answering 180 then 200 with SDP), ACK it, answer the UAC with
200 + SDP, take its ACK, then its BYE (200) and BYE the phone (its 200 ends the call). The peers
are byte templates fed to ``SipEndpoint._on_message``; what the endpoint sends is caught by a
fake UDP socket. The call-control side is a listener that accepts, dials and answers as the
core would. Prints the median CPU time per call over repeats, and the per-message parse/build
figures. The machine is shared, so the minimum over the repeats is the figure to compare
(the median is printed too); compare two trees interleaved, e.g. the old one with
``PYTHONPATH=<old tree>/src``.

    .venv/bin/python bench/sip_path.py [--calls 2000] [--repeats 5] [--profile]
    .venv/bin/python bench/sip_path.py --gc    # what finished calls leave to the GC, timers

``--gc`` reports instead: the GC-tracked objects a finished call leaves behind while its
transactions linger (64*T1), the garbage collector's time per call and longest pauses with the
server's settings (``callbridge.runtime``: freeze, ``GC_THRESHOLDS_SIP``) and ~10,000 calls
lingering (300 calls/s x 32 s), and the timers armed per call (``SystemClock.call_later``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import itertools
import pstats
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import uvloop

from callbridge.adapters.clock import SystemClock
from callbridge.adapters.sipswitch import SipSwitch
from callbridge.domain.calls import HangupCause
from callbridge.ports.switch import DialRequest, SwitchEvent, SwitchEventKind
from callbridge.sip.client import SipClient
from callbridge.sip.endpoint import SipEndpoint
from callbridge.sip.parse import ParsedRequest, ParsedResponse, parse_datagram
from callbridge.sip.responses import make_response
from callbridge.sip.source import Source

UAC = Source("UDP", "127.0.0.1", 5071)
UAS = Source("UDP", "127.0.0.1", 5072)

SDP = (
    "v=0\r\no=- 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)

INVITE = (
    "INVITE sip:112@127.0.0.1:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-{n}-1-0\r\n"
    "From: <sip:15550000000@127.0.0.1:5071>;tag={n}uac1\r\n"
    "To: <sip:112@127.0.0.1:{port}>\r\n"
    "Call-ID: {n}-uac@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:15550000000@127.0.0.1:5071>\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n\r\n{SDP}"
)
ACK = (
    "ACK {target} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-{n}-1-5\r\n"
    "From: <sip:15550000000@127.0.0.1:5071>;tag={n}uac1\r\n"
    "To: <sip:112@127.0.0.1:{port}>;tag={tag}\r\n"
    "Call-ID: {n}-uac@127.0.0.1\r\n"
    "CSeq: 1 ACK\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)
BYE = (
    "BYE {target} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-{n}-1-7\r\n"
    "From: <sip:15550000000@127.0.0.1:5071>;tag={n}uac1\r\n"
    "To: <sip:112@127.0.0.1:{port}>;tag={tag}\r\n"
    "Call-ID: {n}-uac@127.0.0.1\r\n"
    "CSeq: 2 BYE\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)
UAS_RINGING = (
    "SIP/2.0 180 Ringing\r\n{via}\r\n{from_}\r\n{to};tag={n}uas1\r\n{call_id}\r\n{cseq}\r\n"
    "Contact: <sip:127.0.0.1:5072>\r\nContent-Length: 0\r\n\r\n"
)
UAS_OK = (
    "SIP/2.0 200 OK\r\n{via}\r\n{from_}\r\n{to};tag={n}uas1\r\n{call_id}\r\n{cseq}\r\n"
    "Contact: <sip:127.0.0.1:5072>\r\nContent-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n\r\n{SDP}"
)
UAS_BYE_OK = (
    "SIP/2.0 200 OK\r\n{via}\r\n{from_}\r\n{to}\r\n{call_id}\r\n{cseq}\r\nContent-Length: 0\r\n\r\n"
)

_LINE = re.compile(rb"^(Via|From|To|Call-ID|CSeq|Contact): ?(.*?)\r$", re.M)


def _headers(data: bytes) -> dict[str, str]:
    return {m.group(1).decode(): m.group(2).decode() for m in _LINE.finditer(data)}


@dataclass
class _Address:
    host: str
    port: int


class FakeMedia:
    """Enough of a MediaEngine for the switch: an address per leg, nothing else."""

    on_dtmf: Any = None

    def __init__(self) -> None:
        self._ports = itertools.count(20000, 2)

    async def allocate(self, leg_id: str) -> Any:
        from callbridge.media.port import MediaAddress

        return MediaAddress("127.0.0.1", next(self._ports))

    async def set_remote(self, *args: Any, **kw: Any) -> None:
        return None

    async def release(self, leg_id: str) -> None:
        return None

    async def connect(self, bridge_id: str, leg_ids: Sequence[str]) -> None:
        return None


@dataclass
class _Binding:
    contact: str
    source: Source


class FakeRegistrar:
    def contacts(self, username: str) -> list[_Binding]:
        return [_Binding("sip:112@127.0.0.1:5072", UAS)]


class FakeSocket:
    """Where the endpoint's UDP sends go: straight to the peers."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def sendto(self, payload: bytes, address: tuple[str, int]) -> int:
        self.bench.sent.append((payload, address[1]))
        return len(payload)


class Bench:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, int]] = []
        self.done = 0
        self.pending: dict[str, str] = {}  # incoming leg -> outgoing leg
        self.by_out: dict[str, str] = {}
        self.ids = itertools.count()
        self.finished: asyncio.Event | None = None
        self.target = 0

    async def open(self) -> None:
        self.clock = SystemClock()
        self.endpoint = SipEndpoint("127.0.0.1", 0, udp=True, tcp=False)
        await self.endpoint.start()
        self._real = self.endpoint._udp
        assert self._real is not None
        asyncio.get_running_loop().remove_reader(self._real.fileno())
        self.endpoint._udp = FakeSocket(self)  # type: ignore[assignment]
        self.client = SipClient(self.endpoint, self.clock)
        self.switch = SipSwitch(
            self.endpoint,
            self.client,
            FakeMedia(),  # type: ignore[arg-type]
            FakeRegistrar(),  # type: ignore[arg-type]
            self.clock,
            trunk=None,
            username_for=lambda tenant, number: number,
        )
        self.switch.set_listener(self._on_event)
        await self.switch.start()

    async def close(self) -> None:
        await self.switch.stop()
        await self.client.close()
        self.endpoint._udp = None
        assert self._real is not None
        self._real.close()
        await self.endpoint.stop()

    # --- the core's part -------------------------------------------------------------------

    def _on_event(self, event: SwitchEvent) -> None:
        asyncio.get_running_loop().create_task(self._handle(event))

    async def _handle(self, event: SwitchEvent) -> None:
        if event.kind is SwitchEventKind.INCOMING:
            n = next(self.ids)
            out = f"out-{n}"
            self.pending[event.leg_id] = out
            self.by_out[out] = event.leg_id
            await self.switch.accept(event.leg_id, f"call-{n}", "t")
            await self.switch.dial(DialRequest(out, f"call-{n}", "t", "112", False, "15550000000"))
        elif event.kind is SwitchEventKind.ANSWERED and event.leg_id in self.by_out:
            await self.switch.answer(self.by_out[event.leg_id])
        elif event.kind is SwitchEventKind.HUNGUP and event.leg_id in self.pending:
            out = self.pending.pop(event.leg_id)
            del self.by_out[out]
            await self.switch.hangup(out, HangupCause.NORMAL)

    # --- the peers ---------------------------------------------------------------------------

    def pump(self) -> None:
        """Deliver what the endpoint sent to the peers, and their answers to the endpoint."""
        while self.sent:
            batch, self.sent = self.sent, []
            for payload, port in batch:
                if port == UAC.port:
                    self._uac(payload)
                else:
                    self._uas(payload)

    def _uac(self, data: bytes) -> None:
        head = data[: data.index(b"\r\n")]
        if not head.startswith(b"SIP/2.0 200"):
            return
        h = _headers(data)
        n = h["Call-ID"].split("-")[0]
        port = self.endpoint.port
        if h["CSeq"].endswith("INVITE"):
            target = h["Contact"].strip("<>")
            tag = h["To"].rpartition("tag=")[2]
            for template in (ACK, BYE):
                self.endpoint._on_message(
                    template.format(n=n, port=port, target=target, tag=tag).encode(), UAC
                )
        elif h["CSeq"].endswith("BYE"):
            pass

    def _uas(self, data: bytes) -> None:
        head = data[: data.index(b"\r\n")]
        if head.startswith(b"ACK"):
            return
        h = _headers(data)
        fields = {
            "via": f"Via: {h['Via']}",
            "from_": f"From: {h['From']}",
            "to": f"To: {h['To']}",
            "call_id": f"Call-ID: {h['Call-ID']}",
            "cseq": f"CSeq: {h['CSeq']}",
            "n": h["Call-ID"][:8],
        }
        if head.startswith(b"INVITE"):
            for template in (UAS_RINGING, UAS_OK):
                self.endpoint._on_message(template.format(**fields).encode(), UAS)
        elif head.startswith(b"BYE"):
            self.endpoint._on_message(UAS_BYE_OK.format(**fields).encode(), UAS)
            self.done += 1

    async def run(self, calls: int, offset: int, batch: int = 50) -> None:
        """Offer ``calls`` calls, ``batch`` at a time, and run until every one has ended."""
        port = self.endpoint.port
        self.done = 0
        for start in range(0, calls, batch):
            for i in range(start, min(calls, start + batch)):
                self.endpoint._on_message(INVITE.format(n=offset + i, port=port).encode(), UAC)
            while self.done < min(calls, start + batch):
                self.pump()
                await asyncio.sleep(0)


def per_message(repeats: int) -> None:
    """µs per parse of the bench's messages, and per make_response + bytes of a 200."""
    invite = INVITE.format(n=1, port=5060).encode()
    ack = ACK.format(n=1, port=5060, target="sip:callbridge@127.0.0.1:5060", tag="x").encode()
    bye = BYE.format(n=1, port=5060, target="sip:callbridge@127.0.0.1:5060", tag="x").encode()
    fields = {
        "via": "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabcdef0123456789abcdef;rport",
        "from_": "From: <sip:15550000000@127.0.0.1>;tag=0123456789abcdef",
        "to": "To: <sip:112@127.0.0.1>",
        "call_id": "Call-ID: 0123456789abcdef0123@127.0.0.1",
        "cseq": "CSeq: 1 INVITE",
        "n": "1",
    }
    ok = UAS_OK.format(**fields).encode()
    parsed = parse_datagram(invite, source=("127.0.0.1", 5071))
    assert isinstance(parsed, ParsedRequest)
    request = parsed.request
    assert isinstance(parse_datagram(ok), ParsedResponse)
    n = 5000
    for name, fn in (
        ("parse INVITE", lambda: parse_datagram(invite, source=("127.0.0.1", 5071))),
        ("parse 200+SDP", lambda: parse_datagram(ok)),
        ("parse ACK", lambda: parse_datagram(ack, source=("127.0.0.1", 5071))),
        ("parse BYE", lambda: parse_datagram(bye, source=("127.0.0.1", 5071))),
        ("build 180", lambda: bytes(make_response(request, 180))),
        ("build 200+SDP", lambda: bytes(make_response(request, 200, body=SDP.encode()))),
    ):
        samples = []
        for _ in range(repeats):
            t0 = time.process_time()
            for _ in range(n):
                fn()
            samples.append((time.process_time() - t0) / n * 1e6)
        print(f"{name:16s} {min(samples):7.1f} µs (median {statistics.median(samples):.1f})")


async def whole(calls: int, repeats: int, profile: bool) -> None:
    bench = Bench()
    await bench.open()
    try:
        await bench.run(200, 10_000_000)  # warm-up
        samples = []
        prof = cProfile.Profile() if profile else None
        for r in range(repeats):
            gc.collect()
            t0 = time.process_time()
            if prof is not None:
                prof.enable()
            await bench.run(calls, 20_000_000 + r * 1_000_000)
            if prof is not None:
                prof.disable()
            samples.append((time.process_time() - t0) / calls * 1e3)
        print(
            f"whole call       {min(samples):7.3f} ms CPU "
            f"(median {statistics.median(samples):.3f}, {repeats} x {calls} calls)"
        )
        if prof is not None:
            pstats.Stats(prof).sort_stats("tottime").print_stats(45)
    finally:
        await bench.close()


async def gc_figures() -> None:
    from callbridge.runtime import GC_THRESHOLDS_SIP

    armed = [0]
    call_later = SystemClock.call_later

    def counting(self: SystemClock, delay: float, callback: Any) -> Any:
        armed[0] += 1
        return call_later(self, delay, callback)

    SystemClock.call_later = counting  # type: ignore[method-assign]
    bench = Bench()
    await bench.open()
    bench.switch.media._ports = itertools.cycle(range(20000, 60000, 2))  # type: ignore[attr-defined]
    try:
        await bench.run(500, 10_000_000)
        gc.collect()
        before = len(gc.get_objects())
        armed[0] = 0
        await bench.run(2000, 11_000_000)
        timers = armed[0] / 2000
        gc.collect()
        kept = (len(gc.get_objects()) - before) / 2000
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS_SIP)
        await bench.run(7600, 12_000_000)  # ~10,000 calls lingering
        pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        started = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses[info["generation"]].append(time.perf_counter() - started[0])

        gc.callbacks.append(on_gc)
        calls = 6000
        t0 = time.process_time()
        await bench.run(calls, 13_000_000)
        cpu = time.process_time() - t0
        gc.callbacks.remove(on_gc)
        spent = sum(sum(p) for p in pauses.values())
        print(f"objects kept per finished call {kept:6.1f}")
        print(f"timers armed per call          {timers:6.2f}")
        print(
            f"GC time per call               {spent / calls * 1e3:6.3f} ms "
            f"({spent / cpu * 100:.1f} % of {cpu / calls * 1e3:.3f} ms CPU); "
            + ", ".join(
                f"gen{g} {len(p)} x, longest {max(p, default=0) * 1e3:.1f} ms"
                for g, p in pauses.items()
            )
        )
        print(f"GC-tracked objects             {len(gc.get_objects()):,}")
    finally:
        gc.unfreeze()
        SystemClock.call_later = call_later  # type: ignore[method-assign]
        await bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-messages", action="store_true")
    parser.add_argument("--gc", action="store_true", help="GC and timer figures only")
    args = parser.parse_args()
    if args.gc:
        uvloop.run(gc_figures())
        return
    if not args.no_messages:
        per_message(args.repeats)
    uvloop.run(whole(args.calls, args.repeats, args.profile))


if __name__ == "__main__":
    main()
