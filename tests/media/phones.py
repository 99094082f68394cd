"""Loopback test peers for the media engine: UDP "phones" that send a tone and keep what they hear,
and a Goertzel detector to tell the tones apart in what they heard."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from callbridge.media import g711
from callbridge.media.dtmf import TelephoneEvent
from callbridge.media.port import Codec
from callbridge.media.rtp import RtpPacket

RATE = 8000
AMPLITUDE = 8000
MUSIC_FREQ = 600.0  # the tests' "music on hold": a plain tone, easy to detect


def random_port_range(size: int = 200) -> tuple[int, int]:
    """A random even-based range in 20000-32767: below the kernel's ephemeral ports (32768+), so
    no other process's ``bind(0)`` lands in it, and apart from the wire tests' 10000-19999.
    Parallel runs rarely overlap, and when they do the engine skips ports another process holds."""
    base = random.randrange(20000, 32768 - size, 2)
    return base, base + size - 1


def tone(freq: float, start_sample: int, samples: int = 160) -> bytes:
    """``samples`` of a sine at ``freq`` as 16-bit PCM, phase-continuous from ``start_sample``."""
    return array(
        "h",
        (
            int(AMPLITUDE * math.sin(2 * math.pi * freq * (start_sample + n) / RATE))
            for n in range(samples)
        ),
    ).tobytes()


def tone_ratio(pcm: bytes, freq: float, block: int = 400) -> float:
    """The share of the signal's energy at ``freq``: ~1 for a pure tone, ~0.5 for each of two
    equal tones, ~0 when absent or silent.

    Goertzel over 50 ms blocks, summed incoherently: mixing, buffering and recording legitimately
    break the tone's phase between frames, which a single long Goertzel would read as absence.
    """
    samples = array("h", pcm)
    coeff = 2 * math.cos(2 * math.pi * freq / RATE)
    total_power = total_energy = 0.0
    for start in range(0, len(samples), block):
        chunk = samples[start : start + block]
        s1 = s2 = 0.0
        for x in chunk:
            s1, s2 = x + coeff * s1 - s2, s1
        total_power += s1 * s1 + s2 * s2 - coeff * s1 * s2
        total_energy += sum(x * x for x in chunk) * len(chunk) / 2
    return total_power / total_energy if total_energy else 0.0


def hears(pcm: bytes, freq: float) -> bool:
    return tone_ratio(pcm, freq) > 0.15


def absent(pcm: bytes, freq: float) -> bool:
    return tone_ratio(pcm, freq) < 0.01


@dataclass
class Received:
    at: float
    packet: RtpPacket


class Phone(asyncio.DatagramProtocol):
    """An RTP endpoint on 127.0.0.1: sends ``freq`` in 20 ms frames at 50 packets/s to ``target``
    (once set) and records every packet it receives."""

    def __init__(self, freq: float | None, codec: Codec = "PCMU") -> None:
        self.freq = freq  # None: send silence
        self.codec = codec
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.target: tuple[str, int] | None = None
        self.received: list[Received] = []
        self.sent = 0
        self.transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._sample = 0

    @classmethod
    async def open(cls, freq: float | None, codec: Codec = "PCMU") -> Phone:
        phone = cls(freq, codec)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: phone, local_addr=("127.0.0.1", 0))
        return phone

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(Received(asyncio.get_running_loop().time(), RtpPacket.parse(data)))

    @property
    def addr(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._send_loop())

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self.send_frame()
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def frame(self) -> bytes:
        if self.freq is None:
            return g711.SILENT_FRAME[self.codec]
        return g711.encode(tone(self.freq, self._sample), self.codec)

    def send_frame(self) -> None:
        payload = self.frame()
        self._sample += 160
        self.send(
            RtpPacket(g711.PAYLOAD_TYPES[self.codec], False, self.seq, self.ts, self.ssrc, payload)
        )
        self.ts = (self.ts + 160) & 0xFFFFFFFF

    def send(self, packet: RtpPacket) -> None:
        assert self.transport is not None
        self.seq = (self.seq + 1) & 0xFFFF
        if self.target is not None:
            self.transport.sendto(bytes(packet), self.target)
            self.sent += 1

    def send_event(self, digit_code: int, ts: int, duration: int, *, end: bool, pt: int) -> None:
        payload = bytes(TelephoneEvent(digit_code, end, 10, duration))
        self.send(RtpPacket(pt, duration == 160, self.seq, ts, self.ssrc, payload))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.transport is not None:
            self.transport.close()
            await asyncio.sleep(0)

    # what was heard

    def mark(self) -> int:
        return len(self.received)

    def packets(self, since: int = 0, pt: int | None = None) -> list[RtpPacket]:
        return [
            r.packet for r in self.received[since:] if pt is None or r.packet.payload_type == pt
        ]

    def audio(self, since: int = 0) -> bytes:
        pt = g711.PAYLOAD_TYPES[self.codec]
        return b"".join(g711.decode(p.payload, self.codec) for p in self.packets(since, pt))


PhoneFactory = Callable[..., Awaitable[Phone]]
"""The ``phone`` fixture: ``await phone(leg_id, freq, codec=..., dtmf_pt=..., start=...)``."""
