"""CPU time of the embedded media engine's per-leg set-up and teardown, without RTP (not run in CI).

    .venv/bin/python bench/media_legs.py                  # uvloop, 3,000 calls per repeat
    PYTHONPATH=<old tree>/src .venv/bin/python bench/media_legs.py   # the same for another tree

What ``bench/sip.py`` makes the engine do for every call, in this process on uvloop: two legs
allocated, their remotes set, bridged, and released 1 s later (300 calls live), one loop iteration
between the steps as in the server. An injected clock advances 1/300 s per call, so the pool of
released RTP sockets sees the steady state of 300 calls/s (a port comes out of quarantine 2 s after
its call) however fast the loop runs. The first round fills the pool and is not counted.
``pair`` is a bare ``allocate`` + ``release`` of one leg with nothing else going on, the clock
advancing 1/600 s per pair. Figures are CPU time (``time.process_time``) per leg, the median of the
repeats; ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections import deque

import uvloop

from callbridge.adapters.clock import FakeClock
from callbridge.media import EmbeddedMediaEngine

RATE = 300  # calls per second the clock advances by
LIVE = 300  # calls held at once (1 s each)


async def bridged_calls(calls: int, repeats: int) -> list[float]:
    base = random.randrange(20000, 30000, 2)
    clock = FakeClock()
    engine = EmbeddedMediaEngine("127.0.0.1", base, base + 8999, clock=clock)
    await engine.start()
    results: list[float] = []
    live: deque[tuple[str, str]] = deque()
    try:
        for r in range(repeats + 1):
            start = time.process_time()
            for i in range(calls):
                a, b = f"{r}.{i}a", f"{r}.{i}b"
                await engine.allocate(a)
                await engine.allocate(b)
                await asyncio.sleep(0)
                await engine.set_remote(a, "127.0.0.1", 9, "PCMU", 101)
                await engine.set_remote(b, "127.0.0.1", 9, "PCMU", 101)
                await engine.connect(f"{r}.{i}", [a, b])
                await asyncio.sleep(0)
                live.append((a, b))
                if len(live) > LIVE:
                    x, y = live.popleft()
                    await engine.release(x)
                    await engine.release(y)
                    await asyncio.sleep(0)
                clock.advance(1 / RATE)
            if r:
                results.append((time.process_time() - start) / calls / 2 * 1e6)
    finally:
        await engine.stop()
    return results


async def pairs(count: int, repeats: int) -> list[float]:
    base = random.randrange(20000, 30000, 2)
    clock = FakeClock()
    engine = EmbeddedMediaEngine("127.0.0.1", base, base + 8999, clock=clock)
    await engine.start()
    results: list[float] = []
    try:
        for r in range(repeats + 1):
            start = time.process_time()
            for i in range(count):
                await engine.allocate(f"{r}.{i}")
                await engine.release(f"{r}.{i}")
                clock.advance(1 / (2 * RATE))
            if r:
                results.append((time.process_time() - start) / count * 1e6)
    finally:
        await engine.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    call = uvloop.run(bridged_calls(args.calls, args.repeats))
    pair = uvloop.run(pairs(args.calls, args.repeats))
    figures = {
        "bridged_leg_us": round(statistics.median(call), 1),
        "pair_us": round(statistics.median(pair), 1),
    }
    print(f"per leg of a bridged call: {figures['bridged_leg_us']} µs CPU (median)")
    print(f"bare allocate+release:     {figures['pair_us']} µs CPU (median)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
