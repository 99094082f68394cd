"""The clock port. Nothing in the core reads the time or sleeps except through a Clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` (synchronously, on the event loop) after ``delay`` seconds."""
        ...
