"""Concurrent bridged calls through the embedded media engine on one core (not run in CI).

    .venv/bin/python bench/media.py                      # step 100, 200, ... until a step fails
    .venv/bin/python bench/media.py --calls 400 --duration 10

The engine runs in its own process pinned to one CPU (``--engine-cpu``, default 0) on uvloop
(``--loop asyncio`` for the stock loop). The "phones" run in this process, pinned to another CPU
(``--phones-cpu``, default 1): one UDP socket that sends, for every call, a 20 ms µ-law packet to
each of the call's two legs 50 times a second (100 packets/s per call into the engine, 100 out),
and counts what the engine relays back. The engine latches every leg to that socket, and the
source port of each packet the socket receives tells which leg it came out of.

Each payload carries the phones' tick number and send time (the engine does not touch payloads
of same-codec relays), so only packets sent inside the measuring window are counted, however late
they arrive, and the one-way latency through the engine is measured. Loss is
``1 - received / sent`` over the window, after draining until the phones' socket has been quiet
for 0.3 s; engine CPU is its user+system time over the window divided by the window. A step
passes with loss < 0.1 % and a one-way p99 latency (phones -> engine -> phones, the phones' own
delays included) under ``--max-p99-ms``: with big socket buffers an overloaded relay loses
nothing, it just falls seconds behind. Figures from a shared machine vary: run it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import resource
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from callbridge.media import EmbeddedMediaEngine

TICK = 0.02
SLICES = 10  # send slots per tick
PAYLOAD = 160
HOST = "127.0.0.1"
_STAMP = struct.Struct("!Id")  # tick number, send time: the first 12 payload bytes
_SEQ_TS = struct.Struct("!HI")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- engine process


def engine_process(conn: Connection, cpu: int, port_min: int, port_max: int, loop: str) -> None:
    os.sched_setaffinity(0, {cpu})
    if loop == "uvloop":
        import uvloop

        uvloop.run(_engine_serve(conn, port_min, port_max))
    else:
        asyncio.run(_engine_serve(conn, port_min, port_max))


async def _engine_serve(conn: Connection, port_min: int, port_max: int) -> None:
    engine = EmbeddedMediaEngine(HOST, port_min, port_max)
    await engine.start()
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[Any] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    legs: list[str] = []
    try:
        while True:
            command, *args = await commands.get()
            try:
                await _engine_command(engine, conn, legs, command, args)
            except Exception as exc:  # tell the phones instead of leaving them waiting
                conn.send(("error", repr(exc)))
            if command == "quit":
                return
    finally:
        loop.remove_reader(conn.fileno())
        await engine.stop()


async def _engine_command(
    engine: EmbeddedMediaEngine, conn: Connection, legs: list[str], command: str, args: list[Any]
) -> None:
    """Carry out one command from the phones and send the answer."""
    if command == "setup":
        calls, phone_host, phone_port = args
        ports = []
        for i in range(calls):
            pair = [f"{i}a", f"{i}b"]
            for leg in pair:
                address = await engine.allocate(leg)
                ports.append(address.port)
                await engine.set_remote(leg, phone_host, phone_port, "PCMU")
            await engine.connect(f"bridge{i}", pair)
            legs += pair
        conn.send(ports)
    elif command == "mark":
        packets_in = packets_out = dropped = 0
        for leg in legs:
            stats = engine.stats(leg)
            packets_in += stats.packets_in
            packets_out += stats.packets_out
            dropped += stats.dropped
        conn.send((_cpu_seconds(), packets_in, packets_out, dropped, engine.late_ticks))
    elif command == "teardown":
        for leg in legs:
            await engine.release(leg)
        legs.clear()
        conn.send("ok")


# --------------------------------------------------------------------------- phones


@dataclass
class StepResult:
    calls: int
    sent: int
    received: int
    engine_in: int
    engine_out: int
    engine_dropped: int
    engine_cpu: float  # fraction of one core
    phones_cpu: float
    send_late_ms: float  # worst lateness of the phones' 20 ms send batches
    p50_ms: float
    p99_ms: float
    duration: float

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 1.0


def _open_phone_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # SO_RCVBUFFORCE (33 on Linux, not exported by Python) lets root go past rmem_max: a large
    # buffer keeps the phones' scheduling hiccups on a shared machine from counting as loss.
    force = 33 if sys.platform == "linux" else None
    for option in (force, socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, 128 << 20)
            break
        except OSError:
            continue
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


def _ask(conn: Connection, *command: Any) -> Any:
    """Send a command to the engine process and wait (bounded) for its answer."""
    conn.send(command)
    if not conn.poll(120):
        raise RuntimeError(f"engine process did not answer {command[0]!r}")
    answer = conn.recv()
    if isinstance(answer, tuple) and answer and answer[0] == "error":
        raise RuntimeError(f"engine process: {command[0]} failed: {answer[1]}")
    return answer


def run_step(conn: Connection, calls: int, duration: float, warmup: float = 1.0) -> StepResult:
    sock = _open_phone_socket()
    try:
        ports: list[int] = _ask(conn, "setup", calls, HOST, sock.getsockname()[1])
        targets = [(HOST, port) for port in ports]
        packets = []
        for _ in ports:
            packet = bytearray(12 + PAYLOAD)
            packet[0] = 0x80  # V=2, PT 0 (PCMU)
            struct.pack_into("!I", packet, 8, random.getrandbits(32))
            packet[24:] = b"\xff" * (PAYLOAD - 12)
            packets.append(packet)

        first_tick = round(warmup / TICK)
        last_tick = first_tick + round(duration / TICK)  # exclusive
        sent = received = 0
        latencies: list[float] = []
        worst_late = 0.0
        buf = bytearray(2048)
        mark0: Any = None
        cpu0 = 0.0

        # Real phones are not synchronised: spread each tick's packets over SLICES slots so
        # the engine sees a steady flow, not one burst of every call's packet per 20 ms.
        slices = [
            list(zip(packets[k::SLICES], targets[k::SLICES], strict=True)) for k in range(SLICES)
        ]
        slot = 0
        start = time.monotonic()
        next_at = start
        drain_until: float | None = None
        drain_started = last_received = start
        while True:
            now = time.monotonic()
            if drain_until is None and now >= next_at:
                tick, part = divmod(slot, SLICES)
                if slot == first_tick * SLICES:
                    mark0 = _ask(conn, "mark")
                    cpu0 = _cpu_seconds()
                if tick == last_tick:
                    drain_started = now
                    drain_until = now + 0.3
                else:
                    worst_late = max(worst_late, now - next_at) if tick >= first_tick else 0
                    seq_ts = (tick & 0xFFFF, (tick * 160) & 0xFFFFFFFF)
                    for packet, target in slices[part]:
                        _SEQ_TS.pack_into(packet, 2, *seq_ts)
                        _STAMP.pack_into(packet, 12, tick, time.monotonic())
                        sock.sendto(packet, target)
                    if tick >= first_tick:
                        sent += len(slices[part])
                    slot += 1
                    next_at += TICK / SLICES
            if drain_until is not None and now >= drain_until:
                # Drain until 0.3 s pass with nothing received (at most 10 s): a backlog in the
                # phones' buffer is latency, not loss.
                if now - last_received > 0.3 or now - drain_started > 10:
                    break
                drain_until = now + 0.05
            wait = (drain_until if drain_until is not None else next_at) - time.monotonic()
            select.select([sock], [], [], max(0.0, wait))
            while True:
                try:
                    size = sock.recv_into(buf)
                except BlockingIOError:
                    break
                if size < 24:
                    continue
                last_received = time.monotonic()
                sent_tick, sent_at = _STAMP.unpack_from(buf, 12)
                if first_tick <= sent_tick < last_tick:
                    received += 1
                    if received % 7 == 0:
                        latencies.append(time.monotonic() - sent_at)
        cpu1 = _cpu_seconds()
        mark1 = _ask(conn, "mark")
        _ask(conn, "teardown")
    finally:
        sock.close()
    latencies.sort()

    def pct(q: float) -> float:
        return (
            1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0
        )

    # The marks span the window and the drain, but packets only flow during the window.
    window = duration
    return StepResult(
        calls=calls,
        sent=sent,
        received=received,
        engine_in=mark1[1] - mark0[1],
        engine_out=mark1[2] - mark0[2],
        engine_dropped=mark1[3] - mark0[3],
        engine_cpu=(mark1[0] - mark0[0]) / window,
        phones_cpu=(cpu1 - cpu0) / window,
        send_late_ms=1000 * worst_late,
        p50_ms=pct(0.5),
        p99_ms=pct(0.99),
        duration=duration,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--calls", type=int, nargs="*", help="call counts to run (default: steps)")
    parser.add_argument("--step", type=int, default=100)
    parser.add_argument("--max-calls", type=int, default=1500)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--engine-cpu", type=int, default=0)
    parser.add_argument("--phones-cpu", type=int, default=1)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--port-min", type=int, default=40000)
    parser.add_argument(
        "--max-p99-ms",
        type=float,
        default=50.0,
        help="a step also fails if the one-way p99 latency exceeds this: a relay that keeps up "
        "only by queueing seconds of audio in its socket buffers loses nothing but is useless",
    )
    args = parser.parse_args()

    os.sched_setaffinity(0, {args.phones_cpu})
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    counts = args.calls or list(range(args.step, args.max_calls + 1, args.step))
    port_max = min(65534, args.port_min + 4 * max(counts) + 200)  # 2 legs a call, even ports
    engine = ctx.Process(
        target=engine_process,
        args=(theirs, args.engine_cpu, args.port_min, port_max, args.loop),
        daemon=True,
    )
    engine.start()
    theirs.close()  # so the engine process's death reads as EOF here, not as a hang
    print(
        f"media bench: engine on CPU {args.engine_cpu} ({args.loop}), phones on CPU "
        f"{args.phones_cpu}, {args.duration:g} s per step, 100 packets/s per call each way",
        flush=True,
    )
    header = (
        f"{'calls':>6} {'pkt/s in':>9} {'pkt/s out':>9} {'loss %':>8} {'engine CPU':>10} "
        f"{'phones CPU':>10} {'lat p50':>8} {'lat p99':>8} {'send late':>9}"
    )
    print(header, flush=True)
    best = 0
    try:
        for calls in counts:
            r = run_step(ours, calls, args.duration)
            ok = r.loss < 0.001 and r.p99_ms < args.max_p99_ms
            print(
                f"{r.calls:>6} {r.engine_in / r.duration:>9.0f} "
                f"{r.engine_out / r.duration:>9.0f} {100 * r.loss:>8.3f} "
                f"{100 * r.engine_cpu:>9.0f}% {100 * r.phones_cpu:>9.0f}% "
                f"{r.p50_ms:>6.2f}ms {r.p99_ms:>6.2f}ms {r.send_late_ms:>7.1f}ms"
                f"{'' if r.loss < 0.001 else '  <- loss >= 0.1 %'}"
                f"{'' if r.p99_ms < args.max_p99_ms else '  <- the relay lags'}"
                f"{'  (phones sent late: machine busy?)' if r.send_late_ms > 40 else ''}",
                flush=True,
            )
            if not ok or r.engine_dropped:
                # where the packets went missing: before the engine (its sockets overflowed),
                # inside it, or after it (the phones' socket overflowed)
                print(
                    f"       sent {r.sent}, engine in {r.engine_in}, engine out {r.engine_out}, "
                    f"received {r.received}, engine dropped {r.engine_dropped}",
                    flush=True,
                )
            if ok:
                best = max(best, calls)
            elif not args.calls:
                break
    finally:
        ours.send(("quit",))
        engine.join(5)
        if engine.is_alive():
            engine.terminate()
    print(
        f"largest call count with < 0.1 % loss and p99 latency < {args.max_p99_ms:g} ms: {best} "
        "(issue target: >= 400 on one core)"
    )


if __name__ == "__main__":
    main()
