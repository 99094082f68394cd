"""The call service's CPU time per call for the SIP bench's call flow, without SIP or SQLite.

Run by hand (not in CI)::

    .venv/bin/python bench/core_calls.py                  # 3,000 calls, 5 repeats, ~15 s
    .venv/bin/python bench/core_calls.py --profile out.prof   # cProfile of one repeat

The real call service (agents, ACD, the demo tenant) on memory storage and a no-op switch is fed
the switch events the SIP switch emits for one call of ``bench/sip.py``: ``INCOMING`` from the
caller to 112, ``RINGING`` and ``ANSWERED`` of the leg the core dials to 112, and the caller's
``HUNGUP``. Each pump batch holds the next calls' events of every stage (``--per-batch`` new calls,
so 4 x that many events), and ``--window`` batches of calls stay answered before they hang up
(about 240 live calls, all on phone 112, as at 250 calls/s with 1 s calls). The figure is the
process's CPU time (``time.process_time``) per call over the calls after the warm-up (the window
filled), median and minimum of the repeats. It measures the call path of the core only: switch
commands cost nothing and the memory storage stands in for SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from callbridge.adapters.bus_memory import MemoryEventBus
from callbridge.adapters.clock import SystemClock
from callbridge.adapters.storage_memory import MemoryStorage
from callbridge.bootstrap import Container, build
from callbridge.demo import seed_demo
from callbridge.domain.calls import HangupCause
from callbridge.ports.switch import DialRequest, SwitchEvent, SwitchEventKind, SwitchListener
from callbridge.settings import Settings


class NullSwitch:
    """A switch that carries out every command at once and remembers the legs dialled."""

    def __init__(self) -> None:
        self.listener: SwitchListener | None = None
        self.dialled: dict[str, str] = {}  # call id -> the leg dialled in it

    def set_listener(self, listener: SwitchListener) -> None:
        self.listener = listener

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def dial(self, request: DialRequest) -> None:
        self.dialled[request.call_id] = request.leg_id

    async def accept(self, leg_id: str, call_id: str, tenant_id: str) -> None: ...

    async def answer(self, leg_id: str) -> None: ...

    async def hangup(self, leg_id: str, cause: HangupCause) -> None: ...

    async def bridge(self, bridge_id: str, leg_ids: Sequence[str], mixing: bool) -> None: ...

    async def unbridge(self, bridge_id: str, leg_id: str) -> None: ...

    async def hold(self, leg_id: str) -> None: ...

    async def unhold(self, leg_id: str) -> None: ...

    async def mute(self, leg_id: str) -> None: ...

    async def unmute(self, leg_id: str) -> None: ...

    async def set_audibility(self, leg_id: str, heard_by: Sequence[str] | None) -> None: ...

    async def start_music(self, leg_id: str) -> None: ...

    async def stop_music(self, leg_id: str) -> None: ...

    async def record_start(self, recording_id: str, call_id: str) -> None: ...

    async def record_pause(self, recording_id: str) -> None: ...

    async def record_resume(self, recording_id: str) -> None: ...

    async def record_stop(self, recording_id: str) -> None: ...

    async def send_dtmf(self, leg_id: str, digits: str) -> None: ...

    async def refuse_transfer(self, leg_id: str, code: str) -> None: ...


async def _settle(c: Container) -> None:
    await c.calls.settle()
    await c.agents.settle()
    await c.acd.settle()


async def run_once(calls: int, per_batch: int, window: int, profile: str | None) -> float:
    """CPU milliseconds per call over ``calls`` calls after the warm-up."""
    switch = NullSwitch()
    c = build(
        Settings(storage="memory"),
        clock=SystemClock(),
        storage=MemoryStorage(),
        bus=MemoryEventBus(),
        switch=switch,
    )
    await c.start()
    with tempfile.TemporaryDirectory() as tmp:
        await seed_demo(c, "http://127.0.0.1:1", Path(tmp) / "credentials.json")
    emit = switch.listener
    assert emit is not None
    warm_up = window + 10  # batches before the window is full
    batches = warm_up + -(-calls // per_batch)
    total = batches * per_batch

    def dialled(i: int) -> str:
        return switch.dialled[c.calls.leg_call[f"in-{i}"]]

    profiler = cProfile.Profile() if profile else None
    started = 0.0
    for b in range(batches + window + 2):
        if b == warm_up:
            gc.collect()
            if profiler is not None:
                profiler.enable()
            started = time.process_time()
        for k in range(per_batch):
            if (i := b * per_batch + k) < total:
                emit(SwitchEvent(SwitchEventKind.INCOMING, f"in-{i}", None, None, "sipp", "112"))
            if 0 <= (i := (b - 1) * per_batch + k) < total:
                emit(SwitchEvent(SwitchEventKind.RINGING, dialled(i)))
            if 0 <= (i := (b - 2) * per_batch + k) < total:
                emit(SwitchEvent(SwitchEventKind.ANSWERED, dialled(i)))
            if 0 <= (i := (b - 2 - window) * per_batch + k) < total:
                emit(SwitchEvent(SwitchEventKind.HUNGUP, f"in-{i}", HangupCause.NORMAL))
        await _settle(c)
    elapsed = time.process_time() - started
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    if c.calls.calls:
        raise SystemExit(f"{len(c.calls.calls)} calls did not end: the flow is broken")
    await c.stop()
    # every call after the warm-up, and the hangups of the warm-up's calls instead of their setup
    return elapsed * 1000 / (total - warm_up * per_batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls measured per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-batch", type=int, default=3, help="new calls per pump batch")
    parser.add_argument("--window", type=int, default=80, help="batches a call stays answered")
    parser.add_argument("--profile", help="write a cProfile of the first repeat to this file")
    args = parser.parse_args()
    figures = []
    for n in range(args.repeats):
        profile = args.profile if n == 0 else None
        figures.append(asyncio.run(run_once(args.calls, args.per_batch, args.window, profile)))
        print(f"repeat {n + 1}: {figures[-1]:.3f} ms CPU per call", file=sys.stderr)
    median, best = statistics.median(figures), min(figures)
    print(f"core CPU per call: median {median:.3f} ms, min {best:.3f} ms ({args.repeats} repeats)")
    print(json.dumps({"ms_per_call_median": median, "ms_per_call_min": best, "runs": figures}))


if __name__ == "__main__":
    main()
