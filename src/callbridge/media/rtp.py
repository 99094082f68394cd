"""RTP packets (RFC 3550): parse and serialise, in the style of aiortc's ``RtpPacket``.

The relay's hot path does not build :class:`RtpPacket` objects; it reads the fixed header with
:data:`HEADER` and takes the payload with :func:`payload_of`. The class is for everything else
(generated packets, tests, tools).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")
"""The fixed 12-byte header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC."""

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32


@dataclass(slots=True)
class RtpPacket:
    payload_type: int = 0
    marker: bool = False
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    payload: bytes = b""
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None  # None: no header extension
    extension: bytes = b""  # a multiple of 4 bytes
    padding: int = 0  # bytes of padding to add when serialised (0: none)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; raises :class:`ValueError` if it is not a well-formed one."""
        if len(data) < HEADER.size:
            raise ValueError(f"RTP packet too short: {len(data)} bytes")
        first, second, seq, ts, ssrc = HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise ValueError(f"not RTP version 2: {first >> 6}")
        pos = HEADER.size
        cc = first & 0x0F
        end = len(data)
        if pos + 4 * cc > end:
            raise ValueError("CSRC list truncated")
        csrc = list(struct.unpack_from(f"!{cc}I", data, pos))
        pos += 4 * cc
        profile: int | None = None
        extension = b""
        if first & 0x10:
            if pos + 4 > end:
                raise ValueError("header extension truncated")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if pos + 4 * words > end:
                raise ValueError("header extension truncated")
            extension = bytes(data[pos : pos + 4 * words])
            pos += 4 * words
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or pos + padding > end:
                raise ValueError("bad padding length")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            marker=bool(second & 0x80),
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            csrc=csrc,
            extension_profile=profile,
            extension=extension,
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        return self.serialize()

    def serialize(self) -> bytes:
        """The packet on the wire; raises :class:`ValueError` for fields that cannot be sent."""
        if len(self.extension) % 4:
            raise ValueError("header extension must be a multiple of 4 bytes")
        if not 0 <= self.padding < 256 or len(self.csrc) > 15:
            raise ValueError("bad padding or CSRC count")
        first = RTP_VERSION << 6 | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        parts = [
            HEADER.pack(
                first,
                (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                self.sequence_number % SEQ_MOD,
                self.timestamp % TS_MOD,
                self.ssrc,
            ),
            struct.pack(f"!{len(self.csrc)}I", *self.csrc),
        ]
        if self.extension_profile is not None:
            parts.append(struct.pack("!HH", self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def payload_of(data: bytes) -> bytes | None:
    """The payload of a packet whose first byte says version 2, or ``None`` if malformed.

    Skips CSRCs and a header extension and strips padding without building an object.
    """
    first = data[0]
    if first == 0x80:  # the overwhelmingly common case: no padding, extension or CSRC
        return data[12:]
    pos = 12 + 4 * (first & 0x0F)
    end = len(data)
    if first & 0x10:
        if pos + 4 > end:
            return None
        pos += 4 + 4 * int.from_bytes(data[pos + 2 : pos + 4], "big")
    if first & 0x20:
        if data[-1] == 0:
            return None
        end -= data[-1]
    if pos > end:
        return None
    return data[pos:end]
