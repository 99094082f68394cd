"""RFC 4733 telephone-events: the 4-byte payload and the digits it carries."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

DIGITS: Final = "0123456789*#ABCD"  # event codes 0-15, in order
_EVENT = struct.Struct("!BBH")

DEFAULT_VOLUME: Final = 10  # -10 dBm0, what most phones send


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int  # 0..63, in -dBm0
    duration: int  # in timestamp units (samples at 8 kHz)

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse the first event of a payload; raises :class:`ValueError` if too short."""
        if len(payload) < _EVENT.size:
            raise ValueError("telephone-event payload too short")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def __bytes__(self) -> bytes:
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return _EVENT.pack(self.event, flags, min(self.duration, 0xFFFF))

    @property
    def digit(self) -> str | None:
        """The DTMF digit, or ``None`` for other events (flash, tones)."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None


def event_code(digit: str) -> int:
    """The event code of a DTMF digit; raises :class:`ValueError` for anything else."""
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return index


TONE_PACKETS: Final = 5  # 100 ms of tone per digit, one update per 20 ms
END_PACKETS: Final = 3  # RFC 4733 2.5.1.4: the final packet is sent three times
GAP_TICKS: Final = 3  # 60 ms without events between digits


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One telephone-event packet to send: all packets of an event share ``timestamp``."""

    payload: bytes
    marker: bool
    timestamp: int
    duration: int


class DtmfSender:
    """Turns a string of digits into RFC 4733 packets, at most one per 20 ms tick.

    Per digit: a start packet (marker set), an update every tick carrying the duration so far up
    to 100 ms, the end packet three times, then 60 ms without events. :attr:`busy` is true while
    an event is on (the engine sends nothing else to the leg then, so a receiver that also
    detects tones in-band cannot see a digit twice).
    """

    def __init__(self, digits: str, frame: int = 160) -> None:
        self._codes = [event_code(digit) for digit in digits]
        self._frame = frame
        self._index = 0
        self._phase = "start" if self._codes else "done"  # start, tone, end, gap, done
        self._count = 0
        self._ts = 0
        self._duration = 0
        self.aborted = False  # stop after the event in progress (the caller gave up)

    @property
    def busy(self) -> bool:
        return self._phase in ("tone", "end")

    @property
    def finished(self) -> bool:
        return self._phase == "done"

    def step(self, ts: int) -> EventPacket | None:
        """Advance one tick; ``ts`` is the tick's timestamp (used as a new event's start)."""
        if self._phase == "gap":
            self._count += 1
            if self._count >= GAP_TICKS:
                self._phase = "start"
            return None
        if self._phase == "start":
            if self.aborted or self._index >= len(self._codes):
                self._phase = "done"
                return None
            self._ts, self._duration = ts, self._frame
            self._phase, self._count = "tone", 1
            return self._packet(end=False, marker=True)
        if self._phase == "tone":
            if self._count < TONE_PACKETS:
                self._duration += self._frame
                self._count += 1
                return self._packet(end=False, marker=False)
            self._phase, self._count = "end", 0
        if self._phase == "end":
            self._count += 1
            packet = self._packet(end=True, marker=False)
            if self._count == END_PACKETS:
                self._index += 1
                done = self.aborted or self._index >= len(self._codes)
                self._phase, self._count = ("done" if done else "gap"), 0
            return packet
        return None

    def _packet(self, *, end: bool, marker: bool) -> EventPacket:
        event = TelephoneEvent(self._codes[self._index], end, DEFAULT_VOLUME, self._duration)
        return EventPacket(bytes(event), marker, self._ts, self._duration)
