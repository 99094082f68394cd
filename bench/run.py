"""The foundation benchmark: durable call control, call throughput and event fan-out.

Run by hand (not in CI)::

    .venv/bin/python bench/run.py            # about 2.5 minutes
    .venv/bin/python bench/run.py --quick    # 3 s per phase, about 1 minute

It starts its own server (``bench/_server.py``: SQLite in a temporary directory, WAL, the simulated
switch answering at once, uvicorn on uvloop + httptools) pinned to CPU 0, pins itself (the load
generator) to CPU 1, and measures:

(a) a durable mutation -- hold/unhold of a leg of a live answered call, each committed to SQLite
    and published -- at maximum throughput (closed loop) and its latency at a fixed open-loop
    rate, next to GET /healthz in the same process;
(b) originate -> answered -> killed calls per second, over HTTP and in-process at the service
    layer (``bench/_inproc.py``, also pinned to CPU 0, while the server idles);
(c) event fan-out to 100 and 1,000 WebSocket subscribers of the tenant: per-event latency from
    the send time of the HTTP request that caused it to its receipt by each subscriber, and every
    subscriber's stream checked for gaps.

The figures are printed as a table, then as one JSON line (the last line of the output). A figure
that misses its target is marked MISSED. The server is always killed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import uvloop
import websockets
from websockets.asyncio.client import ClientConnection, connect

BENCH = Path(__file__).resolve().parent
SERVER_CPU = 0
LOAD_CPU = 1
HOST = "127.0.0.1"
IDLE_REOPEN_S = 3.0  # reopen a client connection idle for longer than this

# targets
MUTATIONS_PER_S = 1000.0
MUTATION_P99_MS = 20.0
OPEN_RATE = 200.0
CALLS_PER_S = 2000.0
FANOUT_P99_MS = {100: 10.0, 1000: 75.0}


# ---------------------------------------------------------------------- statistics


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Stats:
    """Completed operations and their latencies (seconds) over a measured interval."""

    name: str
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    load_cpu: float = 0.0  # load-generator CPU utilisation over the interval (1.0 = one core)
    server_cpu: float = 0.0  # the server's, likewise
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def ms(self, q: float) -> float:
        return pct(self.latencies, q) * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "ops": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "ops_per_s": round(self.rate, 1),
            "p50_ms": round(self.ms(0.50), 2),
            "p90_ms": round(self.ms(0.90), 2),
            "p99_ms": round(self.ms(0.99), 2),
            "max_ms": round(self.ms(1.0), 2),
            "load_cpu": round(self.load_cpu, 2),
            "server_cpu": round(self.server_cpu, 2),
            **self.extra,
        }


SERVER_PID: int | None = None  # set once the server runs


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by ``pid`` (0.0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time of this process (the load) and of the server over a wall-clock interval."""

    def __init__(self) -> None:
        self.cpu0 = time.process_time()
        self.server0 = process_cpu(SERVER_PID)
        self.t0 = time.monotonic()

    def utilisation(self) -> float:
        wall = time.monotonic() - self.t0
        return (time.process_time() - self.cpu0) / wall if wall > 0 else 0.0

    def server(self) -> float:
        wall = time.monotonic() - self.t0
        return (process_cpu(SERVER_PID) - self.server0) / wall if wall > 0 else 0.0

    def stop(self, stats: Stats) -> None:
        stats.load_cpu = self.utilisation()
        stats.server_cpu = self.server()


# ---------------------------------------------------------------------- a raw HTTP/1.1 client


class HttpError(Exception):
    pass


class Http:
    """One keep-alive HTTP/1.1 connection; far cheaper per request than a full client library,
    so that the single load CPU is not what limits the figures."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.auth = f"Authorization: Bearer {token}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0  # monotonic time of the last request

    async def open(self) -> Http:
        self.close()
        self.used = time.monotonic()
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        now = time.monotonic()
        if self.writer is None or now - self.used > IDLE_REOPEN_S:
            await self.open()  # the server drops connections idle for 5 s (uvicorn's default)
        self.used = now
        assert self.writer is not None and self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        ).encode()
        self.writer.write(head + self.auth + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = -1
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        if length < 0:
            raise HttpError(f"{method} {path}: response without Content-Length")
        return status, await self.reader.readexactly(length)

    async def json(self, method: str, path: str, payload: Any = None) -> Any:
        body = b"" if payload is None else orjson.dumps(payload)
        status, data = await self.request(method, path, body)
        if status >= 300:
            raise HttpError(f"{method} {path}: {status} {data[:300]!r}")
        return orjson.loads(data)


class Pool:
    """Idle connections handed out to open-loop requests; opens more when none is idle."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.idle: list[Http] = []
        self.opened = 0

    async def fill(self, n: int) -> Pool:
        for _ in range(n):
            self.idle.append(await Http(self.port, self.token).open())
            self.opened += 1
        return self

    async def get(self) -> Http:
        if self.idle:
            return self.idle.pop()
        self.opened += 1
        return await Http(self.port, self.token).open()

    def put(self, conn: Http) -> None:
        self.idle.append(conn)

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


# ---------------------------------------------------------------------- the server


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    info: dict[str, Any]
    log: Path

    @property
    def tenant(self) -> str:
        return str(self.info["tenant"])

    @property
    def token(self) -> str:
        return str(self.info["token"])

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int) -> Server:
    info_file = data_dir / "info.json"
    log = data_dir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "_server.py"),
                "--port",
                str(port),
                "--data-dir",
                str(data_dir / "db"),
                "--info",
                str(info_file),
                "--cpu",
                str(SERVER_CPU),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc, port, {}, log)
    global SERVER_PID
    SERVER_PID = proc.pid
    try:
        deadline = time.monotonic() + 60
        while not info_file.exists():
            server.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start in 60 s:\n{server.tail()}")
            time.sleep(0.05)
        server.info = json.loads(info_file.read_text())
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server | None) -> None:
    if server is None or server.proc.poll() is not None:
        return
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(10)


# ---------------------------------------------------------------------- load patterns

Op = Callable[[Http], Awaitable[bool]]


async def closed_loop(name: str, op: Op, conns: Sequence[Http], seconds: float) -> Stats:
    """Every connection issues its next request as soon as the previous one is answered."""
    stats = Stats(name, extra={"connections": len(conns)})
    deadline = 0.0

    async def worker(conn: Http) -> None:
        while (t0 := time.monotonic()) < deadline:
            try:
                ok = await op(conn)
            except Exception:
                ok = False
                conn.close()
            if ok:
                stats.ok += 1
                stats.latencies.append(time.monotonic() - t0)
            else:
                stats.errors += 1

    # a short warm-up, not counted
    deadline = time.monotonic() + min(1.0, seconds / 4)
    await asyncio.gather(*(worker(c) for c in conns))
    stats.ok, stats.errors, stats.latencies = 0, 0, []
    meter = CpuMeter()
    t0 = time.monotonic()
    deadline = t0 + seconds
    await asyncio.gather(*(worker(c) for c in conns))
    stats.seconds = time.monotonic() - t0
    meter.stop(stats)
    return stats


async def open_loop(name: str, op: Op, pool: Pool, rate: float, seconds: float) -> Stats:
    """Requests start on a fixed schedule whatever the response times; latency is measured from
    the scheduled start (so queueing in the server counts), each on an idle connection."""
    stats = Stats(name, extra={"rate": rate})
    tasks: list[asyncio.Task[None]] = []

    async def one(scheduled: float) -> None:
        conn = await pool.get()
        try:
            ok = await op(conn)
        except Exception:
            ok = False
            conn.close()
        else:
            pool.put(conn)
        if ok:
            stats.ok += 1
            stats.latencies.append(time.monotonic() - scheduled)
        else:
            stats.errors += 1

    meter = CpuMeter()
    start = time.monotonic() + 0.05
    n = int(rate * seconds)
    for i in range(n):
        at = start + i / rate
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(at)))
    await asyncio.gather(*tasks)
    stats.seconds = seconds
    meter.stop(stats)
    stats.extra["connections"] = pool.opened
    return stats


# ---------------------------------------------------------------------- (a) durable mutations


@dataclass
class LiveLeg:
    call_id: str
    leg_id: str
    held: bool = False


class Legs:
    """Answered legs of live calls, toggled hold <-> unhold; a leg is used by one request at a
    time (a second hold on a held leg would be refused)."""

    def __init__(self, server: Server, legs: list[LiveLeg]) -> None:
        self.prefix = f"/api/v1/tenants/{server.tenant}/calls/"
        self.all = legs
        self.idle: asyncio.Queue[LiveLeg] = asyncio.Queue()
        for leg in legs:
            self.idle.put_nowait(leg)

    async def toggle(self, conn: Http, leg: LiveLeg) -> int:
        """Hold or unhold ``leg``; the tenant seq of the event it caused (0: refused)."""
        verb = "unhold" if leg.held else "hold"
        status, body = await conn.request(
            "POST", f"{self.prefix}{leg.call_id}/legs/{leg.leg_id}/{verb}"
        )
        if status != 200:
            return 0
        leg.held = not leg.held
        return int(orjson.loads(body)["seq"])

    async def toggle_any(self, conn: Http) -> int:
        """Toggle the next idle leg (for requests started on a schedule, not by one worker)."""
        leg = await self.idle.get()
        try:
            return await self.toggle(conn, leg)
        finally:
            self.idle.put_nowait(leg)


async def set_up_calls(server: Server, n: int) -> list[LiveLeg]:
    """Originate ``n`` calls over HTTP and wait until every one is answered."""
    exts: list[str] = server.info["extensions"]
    base = f"/api/v1/tenants/{server.tenant}/calls"
    ids: list[str] = []

    async def originate(w: int, conn: Http) -> None:
        for i in range(w, n, 16):
            body = {"extension_id": exts[i % len(exts)], "target": f"1555010{i:04d}"}
            call = await conn.json("POST", base, body)
            ids.append(call["id"])

    conns = [await Http(server.port, server.token).open() for _ in range(16)]
    await asyncio.gather(*(originate(w, c) for w, c in enumerate(conns)))
    wanted = set(ids)
    deadline = time.monotonic() + 30
    while True:
        calls = await conns[0].json("GET", base)
        answered = {c["id"]: c for c in calls if c["id"] in wanted and c["state"] == "answered"}
        if len(answered) == len(wanted):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(answered)} of {n} calls were answered in 30 s")
        await asyncio.sleep(0.1)
    for conn in conns:
        conn.close()
    legs = []
    for call_id in ids:
        call = answered[call_id]
        originator = next(leg for leg in call["legs"].values() if leg["role"] == "originator")
        legs.append(LiveLeg(call_id, originator["id"]))
    return legs


async def healthz(conn: Http) -> bool:
    status, _ = await conn.request("GET", "/healthz")
    return status == 200


async def phase_mutations(
    server: Server, legs: Legs, seconds: float, connections: int
) -> dict[str, Stats]:
    out: dict[str, Stats] = {}
    # closed loop: each connection toggles its own legs, so requests never queue on a call lock
    conns = [await Http(server.port, server.token).open() for _ in range(connections)]
    mine = [legs.all[i :: len(conns)] for i in range(len(conns))]
    turn = [0] * len(conns)
    index = {id(c): i for i, c in enumerate(conns)}

    async def own_toggle(conn: Http) -> bool:
        i = index[id(conn)]
        own = mine[i]
        turn[i] += 1
        leg = own[turn[i] % len(own)]
        return await legs.toggle(conn, leg) > 0

    out["mutation_closed"] = await closed_loop("hold/unhold", own_toggle, conns, seconds)
    server.check()
    out["healthz_closed"] = await closed_loop("GET /healthz", healthz, conns, seconds)
    for conn in conns:
        conn.close()
    server.check()

    async def queued_toggle(conn: Http) -> bool:
        return await legs.toggle_any(conn) > 0

    pool = await Pool(server.port, server.token).fill(32)
    out["mutation_open"] = await open_loop("hold/unhold", queued_toggle, pool, OPEN_RATE, seconds)
    server.check()
    out["healthz_open"] = await open_loop("GET /healthz", healthz, pool, OPEN_RATE, seconds)
    pool.close()
    server.check()
    return out


# ---------------------------------------------------------------------- (b) call throughput


def ws_url(server: Server, after: int | None) -> str:
    url = f"ws://{HOST}:{server.port}/api/v1/tenants/{server.tenant}/events/ws?token={server.token}"
    return url if after is None else f"{url}&after={after}"


async def ws_connect(url: str, compression: str | None) -> ClientConnection:
    return await connect(
        url,
        proxy=None,
        compression=compression,
        ping_interval=None,
        open_timeout=30,
        close_timeout=2,
        max_queue=None,
    )


async def phase_calls_http(
    server: Server, seconds: float, concurrency: int, compression: str | None
) -> Stats:
    """Workers loop originate -> (call.state_changed answered, seen on a WebSocket) -> kill."""
    exts: list[str] = server.info["extensions"]
    base = f"/api/v1/tenants/{server.tenant}/calls"
    loop = asyncio.get_running_loop()
    answered: dict[str, asyncio.Future[None]] = {}

    def waiter(call_id: str) -> asyncio.Future[None]:
        fut = answered.get(call_id)
        if fut is None:
            fut = answered[call_id] = loop.create_future()
        return fut

    ws = await ws_connect(ws_url(server, None), compression)

    async def listen() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for msg in ws:
                ev = orjson.loads(msg)
                if ev.get("type") == "call.state_changed" and ev["data"]["state"] == "answered":
                    fut = waiter(ev["call_id"])
                    if not fut.done():
                        fut.set_result(None)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.2)  # let the server subscribe the socket
    counter = iter(range(10**9))

    async def one_call(conn: Http) -> bool:
        i = next(counter)
        body = {"extension_id": exts[i % len(exts)], "target": f"1666{i % 10**7:07d}"}
        call = await conn.json("POST", base, body)
        await asyncio.wait_for(waiter(call["id"]), 10)
        answered.pop(call["id"], None)
        status, _ = await conn.request("POST", f"{base}/{call['id']}/kill")
        return status == 200

    conns = [await Http(server.port, server.token).open() for _ in range(concurrency)]
    stats = await closed_loop("originate+answer+kill (HTTP)", one_call, conns, seconds)
    for conn in conns:
        conn.close()
    await ws.close()
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    server.check()
    return stats


def phase_calls_inproc(storage: str, seconds: float, concurrency: int) -> Stats:
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH / "_inproc.py"),
            "--storage",
            storage,
            "--duration",
            str(seconds),
            "--concurrency",
            str(concurrency),
            "--cpu",
            str(SERVER_CPU),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"_inproc.py failed:\n{out.stdout}\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return Stats(
        f"originate+answer+kill (in-process, {storage})",
        ok=r["calls"],
        errors=r["failed"],
        seconds=r["seconds"],
        latencies=r["latencies"],
        server_cpu=r["cpu_util"],
        extra={"concurrency": concurrency, "storage": storage},
    )


# ---------------------------------------------------------------------- (c) event fan-out


class Subscriber:
    def __init__(self, ws: ClientConnection, keep_occurred: bool = False) -> None:
        self.ws = ws
        self.seqs: list[int] = []
        self.times: list[float] = []
        self.occurred: dict[int, str] = {}  # seq -> occurred_at, kept by one subscriber
        self.keep_occurred = keep_occurred
        self.closing = False  # set when the benchmark closes the socket
        self.closed_early = False
        self.close_code: int | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def last(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                t = time.time()
                ev = orjson.loads(msg)
                seq = ev.get("seq")
                if seq is None:  # an error frame before a close
                    continue
                self.seqs.append(seq)
                self.times.append(t)
                if self.keep_occurred:
                    self.occurred[seq] = ev["occurred_at"]
        except websockets.ConnectionClosed:
            pass
        if not self.closing:
            self.closed_early = True
            self.close_code = self.ws.close_code


async def wait_all(subs: Sequence[Subscriber], seq: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(s.last >= seq or s.closed_early for s in subs):
            return True
        await asyncio.sleep(0.02)
    return False


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def phase_fanout(
    server: Server,
    legs: Legs,
    n_subs: int,
    rate: float,
    seconds: float,
    compression: str | None,
) -> Stats:
    trigger = await Http(server.port, server.token).open()
    cursor = await legs.toggle_any(trigger)  # the log's head: nothing else happens meanwhile
    url = ws_url(server, cursor)
    subs: list[Subscriber] = []
    t_connect = time.monotonic()
    for start in range(0, n_subs, 100):
        batch = await asyncio.gather(
            *(ws_connect(url, compression) for _ in range(start, min(n_subs, start + 100)))
        )
        subs.extend(Subscriber(ws) for ws in batch)
    connect_s = time.monotonic() - t_connect
    subs[0].keep_occurred = True  # occurred_at is the same for everyone: one copy will do
    for s in subs:
        s.task = asyncio.create_task(s.run())
    # warm-up event: once every subscriber has it, every one follows the live bus
    warm = await legs.toggle_any(trigger)
    if not await wait_all(subs, warm, 60):
        raise RuntimeError("the subscribers did not all receive the warm-up event in 60 s")
    first = warm + 1
    sent: dict[int, float] = {}
    pool = await Pool(server.port, server.token).fill(8)
    stats = Stats(f"fan-out to {n_subs} subscribers")
    meter = CpuMeter()

    async def one(conn: Http) -> bool:
        t = time.time()
        seq = await legs.toggle_any(conn)
        if seq:
            sent[seq] = t
        return seq > 0

    triggers = await open_loop("trigger", one, pool, rate, seconds)
    final = max(sent) if sent else warm
    complete = await wait_all(subs, final, 30)
    meter.stop(stats)
    pool.close()
    trigger.close()
    for s in subs:
        s.closing = True
    await asyncio.gather(*(s.ws.close() for s in subs), return_exceptions=True)
    for s in subs:
        assert s.task is not None
        s.task.cancel()
    await asyncio.gather(*(s.task for s in subs if s.task), return_exceptions=True)
    server.check()

    expected = set(range(cursor + 1, final + 1))
    lost = 0
    out_of_order = 0
    duplicates = 0
    per_event: dict[int, list[float]] = {}
    for s in subs:
        got = set(s.seqs)
        lost += len(expected - got)
        duplicates += len(s.seqs) - len(got)
        out_of_order += sum(1 for a, b in zip(s.seqs, s.seqs[1:], strict=False) if b <= a)
        for seq, t in zip(s.seqs, s.times, strict=True):
            if seq >= first and seq in sent:
                stats.latencies.append(t - sent[seq])
                per_event.setdefault(seq, []).append(t - sent[seq])
    # the events whose last delivery came latest: is the tail one slow event or all of them?
    order = sorted(sent)
    worst = sorted(per_event, key=lambda q: -max(per_event[q]))[:3]
    stats.extra["slowest_events"] = [
        {
            "n": order.index(q) + 1,
            "first_ms": round(min(per_event[q]) * 1000, 1),
            "p50_ms": round(pct(per_event[q], 0.5) * 1000, 1),
            "last_ms": round(max(per_event[q]) * 1000, 1),
        }
        for q in worst
    ]
    occurred = subs[0].occurred if subs else {}
    from_commit = [
        t - parse_iso(occurred[seq])
        for s in subs
        for seq, t in zip(s.seqs, s.times, strict=True)
        if seq >= first and seq in sent and seq in occurred
    ]
    stats.ok = len(sent)
    stats.errors = triggers.errors
    stats.seconds = triggers.seconds
    stats.extra.update(
        {
            "subscribers": n_subs,
            "event_rate": rate,
            "events": len(sent),
            "deliveries": len(stats.latencies),
            "lost": lost,
            "duplicates": duplicates,
            "out_of_order": out_of_order,
            "closed_early": sum(1 for s in subs if s.closed_early),
            "close_codes": sorted({s.close_code for s in subs if s.closed_early}, key=str),
            "complete": complete,
            "connect_s": round(connect_s, 2),
            "commit_to_receipt_p50_ms": round(pct(from_commit, 0.5) * 1000, 2),
            "commit_to_receipt_p99_ms": round(pct(from_commit, 0.99) * 1000, 2),
            "ws_compression": compression or "none",
        }
    )
    return stats


# ---------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "uvloop": uvloop.__version__,
        "websockets": websockets.__version__,
        "server_cpu": SERVER_CPU,
        "load_cpu": LOAD_CPU,
    }


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.rjust(w) if i and c[:1].isdigit() else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def f(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def verdict(ok: bool, target: str) -> str:
    return f"ok ({target})" if ok else f"MISSED ({target})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per phase")
    parser.add_argument("--phases", default="abc", help="which phases to run (default: abc)")
    parser.add_argument("--calls", type=int, default=256, help="live calls for (a) and (c)")
    parser.add_argument("--connections", type=int, default=64, help="closed-loop connections")
    parser.add_argument("--fanout-rate", type=float, default=10.0, help="events/s in (c)")
    parser.add_argument(
        "--subscribers", default="100,1000", help="subscriber counts for (c), comma-separated"
    )
    parser.add_argument(
        "--ws-compression",
        choices=["deflate", "none"],
        default="deflate",
        help="what the WebSocket clients offer (deflate: like browsers)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the server's data dir")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs at least 2 CPUs (server on CPU 0, load on CPU 1)")
    os.sched_setaffinity(0, {LOAD_CPU})
    data_dir = Path(tempfile.mkdtemp(prefix="callbridge-bench-"))
    server: Server | None = None
    try:
        server = start_server(data_dir, free_port())
        result = uvloop.run(run(server, args))
    finally:
        stop_server(server)
        if args.keep_data:
            print(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    report(result)


def quiesce() -> None:
    """Collect now, then keep the load generator's own GC pauses out of the measurements."""
    gc.enable()
    gc.collect()
    gc.disable()


async def run(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    seconds = 3.0 if args.quick else 15.0
    compression = None if args.ws_compression == "none" else args.ws_compression
    result: dict[str, Any] = {"machine": machine(), "quick": args.quick, "seconds": seconds}
    print(
        f"callbridge benchmark: server pid {server.proc.pid} on CPU {SERVER_CPU}, "
        f"load pid {os.getpid()} on CPU {LOAD_CPU}, {seconds:g} s per phase",
        flush=True,
    )
    legs: Legs | None = None
    if "a" in args.phases or "c" in args.phases:
        n = 64 if args.quick else args.calls
        legs = Legs(server, await set_up_calls(server, n))
        result["live_calls"] = n
    if "a" in args.phases:
        assert legs is not None
        quiesce()
        print("(a) hold/unhold vs /healthz ...", flush=True)
        result["a"] = await phase_mutations(server, legs, seconds, args.connections)
    if "b" in args.phases:
        quiesce()
        print("(b) calls over HTTP ...", flush=True)
        result["b_http"] = await phase_calls_http(server, seconds, args.connections, compression)
        for storage in ("sqlite", "memory"):
            print(f"(b) calls in-process ({storage}) ...", flush=True)
            result[f"b_inproc_{storage}"] = phase_calls_inproc(
                storage, seconds * 2 / 3, args.connections
            )
    gc.enable()
    if "c" in args.phases:
        assert legs is not None
        result["c"] = {}
        for n_subs in (int(x) for x in args.subscribers.split(",")):
            quiesce()
            print(f"(c) fan-out to {n_subs} subscribers ...", flush=True)
            result["c"][n_subs] = await phase_fanout(
                server, legs, n_subs, args.fanout_rate, seconds, compression
            )
    return result


def report(result: dict[str, Any]) -> None:
    m = result["machine"]
    out: dict[str, Any] = {"machine": m, "quick": result["quick"], "targets": {}}
    print()
    print("=" * 100)
    print(
        f"machine: nproc={m['nproc']}  cpu={m['cpu']}  python={m['python']}  "
        f"uvloop={m['uvloop']}  websockets={m['websockets']}"
    )
    print(f"         {m['platform']}")
    print(
        f"server pinned to CPU {m['server_cpu']} (uvicorn, uvloop, httptools), load generator to "
        f"CPU {m['load_cpu']}; CPU columns: share of one core used during the measurement"
    )
    print(
        "storage: SQLite (WAL, synchronous=NORMAL) in a temp dir; "
        "switch: simulated, answering at once; clients: 127.0.0.1 only"
    )
    missed = 0

    def mark(key: str, ok: bool, target: str) -> str:
        nonlocal missed
        out["targets"][key] = {"ok": ok, "target": target}
        missed += not ok
        return verdict(ok, target)

    def cpu(value: float) -> str:
        return f(value, 2) if value else "-"

    if "a" in result:
        a: dict[str, Stats] = result["a"]
        mc, hc, mo, ho = (
            a[k] for k in ("mutation_closed", "healthz_closed", "mutation_open", "healthz_open")
        )
        print(
            f"\n(a) durable call control on {result['live_calls']} live answered calls: "
            "POST .../legs/{leg}/hold | /unhold (SQLite commit + publish) vs GET /healthz"
        )
        header = ["measurement", "ops/s", "p50 ms", "p99 ms", "max ms", "errors"]
        rows = [[*header, "server CPU", "load CPU", "target"]]
        ratio = mc.rate / hc.rate if hc.rate else math.nan
        closed = f"closed loop, {mc.extra['connections']} conns"
        opened = f"open loop {OPEN_RATE:g}/s"
        for s, label, tgt in (
            (
                mc,
                f"hold/unhold  {closed}",
                mark("mutations_per_s", mc.rate >= MUTATIONS_PER_S, f">= {MUTATIONS_PER_S:,.0f}/s"),
            ),
            (hc, f"GET /healthz {closed}", ""),
            (
                mo,
                f"hold/unhold  {opened}",
                mark(
                    "mutation_p99_ms",
                    mo.ms(0.99) <= MUTATION_P99_MS,
                    f"p99 <= {MUTATION_P99_MS:g} ms",
                ),
            ),
            (ho, f"GET /healthz {opened}", ""),
        ):
            rows.append(
                [
                    label,
                    f(s.rate),
                    f(s.ms(0.5), 2),
                    f(s.ms(0.99), 2),
                    f(s.ms(1.0), 2),
                    str(s.errors),
                    cpu(s.server_cpu),
                    cpu(s.load_cpu),
                    tgt,
                ]
            )
        print(table(rows))
        print(
            f"  max throughput ratio hold/unhold : /healthz = {ratio:.2f} "
            f"(/healthz is {1 / ratio if ratio else math.nan:.1f}x the mutation rate); "
            "open-loop latency counts from each request's scheduled start"
        )
        out["a"] = {k: v.summary() for k, v in a.items()}
        out["a"]["mutation_to_healthz_ratio"] = round(ratio, 3)
    if "b_http" in result:
        print("\n(b) calls per second: originate -> answered -> killed (all legs hung up)")
        rows = [
            [
                "measurement",
                "calls/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "server CPU",
                "load CPU",
                "target",
            ]
        ]
        bh: Stats = result["b_http"]
        rows.append(
            [
                f"over HTTP to the server, {bh.extra['connections']} conns "
                "(answered: seen on a WebSocket)",
                f(bh.rate),
                f(bh.ms(0.5), 2),
                f(bh.ms(0.99), 2),
                str(bh.errors),
                cpu(bh.server_cpu),
                cpu(bh.load_cpu),
                mark("calls_per_s_http", bh.rate >= CALLS_PER_S, f">= {CALLS_PER_S:,.0f}/s"),
            ]
        )
        out["b"] = {"http": bh.summary()}
        for storage in ("sqlite", "memory"):
            s = result[f"b_inproc_{storage}"]
            label = f"in-process, service layer, {s.extra['concurrency']} workers, {storage}"
            label += " (durable)" if storage == "sqlite" else " (reference only)"
            tgt = (
                mark("calls_per_s_inproc", s.rate >= CALLS_PER_S, f">= {CALLS_PER_S:,.0f}/s")
                if storage == "sqlite"
                else ""
            )
            rows.append(
                [
                    label,
                    f(s.rate),
                    f(s.ms(0.5), 2),
                    f(s.ms(0.99), 2),
                    str(s.errors),
                    cpu(s.server_cpu),
                    "-",
                    tgt,
                ]
            )
            out["b"][f"inproc_{storage}"] = s.summary()
        print(table(rows))
        print(
            "  latency: one whole call (originate, answered, killed). In-process: bench/_inproc.py "
            f"on CPU {SERVER_CPU} (the server idles meanwhile) calls CallService directly; "
            "answered = call.state_changed seen on the in-process bus"
        )
    if "c" in result:
        c: dict[int, Stats] = result["c"]
        print(
            "\n(c) event fan-out over WebSocket (every subscriber gets every event of the tenant); "
            "latency: HTTP request sent -> event received, per subscriber"
        )
        rows = [
            [
                "subscribers",
                "events",
                "ev/s",
                "deliveries",
                "p50 ms",
                "p99 ms",
                "max ms",
                "lost",
                "commit->rx p99",
                "server CPU",
                "load CPU",
                "target",
            ]
        ]
        out["c"] = {}
        for n_subs, s in c.items():
            x = s.extra
            limit = FANOUT_P99_MS.get(n_subs, FANOUT_P99_MS[1000])
            ok_p99 = s.ms(0.99) <= limit
            no_loss = (
                x["lost"] == 0
                and x["closed_early"] == 0
                and x["duplicates"] == 0
                and x["out_of_order"] == 0
                and x["complete"]
            )
            tgt = mark(f"fanout_{n_subs}_p99_ms", ok_p99, f"p99 <= {limit:g} ms")
            tgt += "; " + mark(f"fanout_{n_subs}_lost", no_loss, "no event lost")
            rows.append(
                [
                    str(n_subs),
                    str(x["events"]),
                    f(x["event_rate"], 0),
                    f"{x['deliveries']:,}",
                    f(s.ms(0.5), 2),
                    f(s.ms(0.99), 2),
                    f(s.ms(1.0), 2),
                    str(x["lost"]),
                    f(x["commit_to_receipt_p99_ms"], 2),
                    cpu(s.server_cpu),
                    cpu(s.load_cpu),
                    tgt,
                ]
            )
            out["c"][str(n_subs)] = s.summary()
        print(table(rows))
        print(
            "  commit->rx: from the event's occurred_at (stamped when its commit was prepared) "
            f"to receipt; all subscribers run in one load process on CPU {LOAD_CPU}"
        )
        for n_subs, s in c.items():
            x = s.extra
            print(
                f"  {n_subs} subscribers: connected in {x['connect_s']} s; duplicates "
                f"{x['duplicates']}, out of order {x['out_of_order']}, closed early "
                f"{x['closed_early']}{' ' + str(x['close_codes']) if x['close_codes'] else ''}; "
                "ws compression "
                f"{x['ws_compression']}"
            )
            slow = ", ".join(
                f"#{e['n']} first {e['first_ms']} / median {e['p50_ms']} / last {e['last_ms']}"
                for e in x["slowest_events"]
            )
            print(f"    slowest events (of {x['events']}; ms to receipt): {slow}")
    print(f"\n{missed} target(s) MISSED" if missed else "\nall targets met")
    out["missed"] = missed
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
