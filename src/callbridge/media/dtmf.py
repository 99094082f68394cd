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
