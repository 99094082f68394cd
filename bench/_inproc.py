"""In-process call throughput: originate -> answered -> killed at the service layer, no HTTP.

Started by ``bench/run.py``; prints one JSON line with the result::

    python bench/_inproc.py --storage sqlite --duration 10 --concurrency 64 --cpu 0

A container is built like the server's (``--storage sqlite``: a WAL file in a temporary
directory, durable; ``--storage memory``: MemoryStorage) with the simulated switch on the real
SystemClock answering at once. ``--concurrency`` workers each loop: ``CallService.originate``,
wait until the call is answered, ``CallService.kill``. "Answered" is the ``call.state_changed``
event with state ``answered`` seen on the in-process bus; ``CallService.settle()`` (wait for the
switch inbox to drain) is not used for that: it is global, so with concurrent workers the inbox
seldom drains and every worker would wait for all the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from _server import seed

from callbridge.adapters.clock import SystemClock
from callbridge.adapters.simswitch import SimulatedSwitch
from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.bootstrap import build
from callbridge.settings import Settings


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(storage: str, duration: float, concurrency: int, data_dir: str) -> dict[str, Any]:
    clock = SystemClock()
    settings = Settings(storage="sqlite", data_dir=Path(data_dir), sim_answer_after=0.0)
    container = build(
        settings,
        clock=clock,
        storage=MemoryStorage() if storage == "memory" else None,
        switch=SimulatedSwitch(clock, default_answer_after=0.0),
    )
    await container.start()
    try:
        info = await seed(container)
        d = container.directory
        actor = d.actor_for(d.principals["bench-admin"])
        tenant: str = info["tenant"]
        extensions: list[str] = info["extensions"]
        calls = container.calls
        answered: dict[str, asyncio.Future[None]] = {}
        loop = asyncio.get_running_loop()

        def waiter(call_id: str) -> asyncio.Future[None]:
            fut = answered.get(call_id)
            if fut is None:
                fut = answered[call_id] = loop.create_future()
            return fut

        sub = container.core.bus.subscribe(frozenset({tenant}), maxsize=1_000_000)

        async def dispatch() -> None:
            async for event in sub:
                if (
                    event.type == "call.state_changed"
                    and event.data.get("state") == "answered"
                    and event.call_id is not None
                ):
                    fut = waiter(event.call_id)
                    if not fut.done():
                        fut.set_result(None)

        dispatcher = asyncio.create_task(dispatch())
        done = 0
        failed = 0
        latencies: list[float] = []
        stop_at = 0.0

        async def worker(w: int) -> None:
            nonlocal done, failed
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                ext = extensions[(w + i) % len(extensions)]
                target = f"1555{w:03d}{i % 10000:04d}"
                t0 = time.monotonic()
                try:
                    call = await calls.originate(actor, tenant, ext, target)
                    await asyncio.wait_for(waiter(call.id), 5.0)
                    answered.pop(call.id, None)
                    await calls.kill(actor, tenant, call.id)
                except Exception:
                    failed += 1
                    continue
                latencies.append(time.monotonic() - t0)
                done += 1

        # warm-up, then the measured run
        stop_at = time.monotonic() + min(1.0, duration / 3)
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        done, failed, latencies = 0, 0, []
        cpu0 = time.process_time()
        t0 = time.monotonic()
        stop_at = t0 + duration
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        dispatcher.cancel()
        sub.close()
        await calls.settle()
        return {
            "storage": storage,
            "concurrency": concurrency,
            "calls": done,
            "failed": failed,
            "seconds": round(elapsed, 3),
            "calls_per_s": round(done / elapsed, 1),
            "p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
            "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
            "latencies": [round(x, 6) for x in latencies],
            "cpu_util": round(cpu / elapsed, 3),
            "live_calls_left": len(calls.calls),
        }
    finally:
        await container.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--storage", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: do not pin)")
    args = parser.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    with tempfile.TemporaryDirectory(prefix="callbridge-bench-") as data_dir:
        result = uvloop.run(run(args.storage, args.duration, args.concurrency, data_dir))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
