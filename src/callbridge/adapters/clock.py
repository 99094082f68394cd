"""Clocks: the real one (asyncio loop time) and a fake one that tests advance by hand."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SystemClock:
    """Wall time from the OS; timers on the running asyncio loop."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback)


class _FakeTimer:
    """A pending fake timer. Cancelling it lets go of its callback at once (as asyncio's and
    uvloop's handles do), so that what the callback refers to is not kept alive until the
    cancelled timer's due time."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.cancelled = False
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self.cancelled = True
        self.callback = None


class FakeClock:
    """A clock that only moves when told to.

    Timers fire, in due-time order (ties in scheduling order), during :meth:`advance`. A timer
    scheduled with delay 0 fires at the next ``advance`` (even ``advance(0)``), never on its own:
    a test decides exactly when things happen.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
        self._elapsed = 0.0
        self._seq = itertools.count()
        self._timers: list[tuple[float, int, _FakeTimer]] = []

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def call_later(self, delay: float, callback: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer(callback)
        due = self._elapsed + max(delay, 0.0)
        heapq.heappush(self._timers, (due, next(self._seq), timer))
        return timer

    @property
    def pending(self) -> int:
        return sum(1 for _, _, t in self._timers if not t.cancelled)

    def advance(self, seconds: float = 0.0) -> int:
        """Move time forward by ``seconds`` firing every timer that falls due; return how many."""
        target = self._elapsed + seconds
        fired = 0
        while self._timers and self._timers[0][0] <= target:
            due, _, timer = heapq.heappop(self._timers)
            self._elapsed = max(self._elapsed, due)
            callback = timer.callback
            if callback is not None:
                timer.callback = None
                fired += 1
                callback()
        self._elapsed = target
        return fired
