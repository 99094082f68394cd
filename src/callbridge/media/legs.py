"""The embedded engine's per-leg and per-bridge state (internal to :mod:`.embedded`).

A leg's fields are plain attributes (``__slots__``) because the relay reads several of them per
packet. ``mode``, ``audible``, ``relay_to``, ``relay_table`` and ``decode`` are *derived*: the
engine recomputes them whenever a leg's situation changes, never per packet.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from . import g711
from .dtmf import DtmfSender
from .mixer import FrameBuffer
from .port import Codec
from .recording import Recorder

if TYPE_CHECKING:
    from .rtp_pool import RtpSocket

MASK32: Final = 0xFFFFFFFF


class Mode(Enum):
    """What a leg hears."""

    NONE = "none"  # no packets: not in a bridge (or alone in one), no music
    MUSIC = "music"  # held, or music started
    RELAY = "relay"  # its one peer's packets, forwarded as they arrive
    MIX = "mix"  # the tick's mix-minus of the other audible legs (silence if none)


@dataclass(eq=False)
class DtmfJob:
    """A ``send_dtmf`` call: the packets still to send, and the caller waiting for them."""

    sender: DtmfSender
    done: asyncio.Future[None]

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class Leg:
    """One leg: its socket, where it sends, what it hears, its outgoing stream and counters."""

    __slots__ = (
        "audible",
        "bridge",
        "buffer",
        "bytes_in",
        "bytes_out",
        "codec",
        "decode",
        "dropped",
        "dtmf_busy",
        "dtmf_in_ts",
        "dtmf_jobs",
        "dtmf_pt",
        "frame",
        "frame_arrival",
        "heard_by",
        "held",
        "id",
        "last_seen",
        "latched_addr",
        "latched_ssrc",
        "mode",
        "music",
        "muted",
        "packets_in",
        "packets_out",
        "port",
        "pos_time",
        "pos_ts",
        "pt",
        "recordings",
        "relay_table",
        "relay_to",
        "remote",
        "seq",
        "sock",
        "src_leg",
        "src_ssrc",
        "ssrc",
        "stale",
        "transport",
        "ts_off",
    )

    def __init__(
        self, leg_id: str, sock: RtpSocket, stale: tuple[Any, Any, int] | None = None
    ) -> None:
        self.id = leg_id
        self.port = sock.port
        self.sock: RtpSocket | None = sock
        self.transport = sock.transport  # sock's, kept here for the relay's per-packet path
        # where to send; latched_addr is the source actually seen (None: not latched yet)
        self.remote: Any = None
        self.latched_addr: Any = None
        self.latched_ssrc = -1
        # (host, port, ssrc) of the stream the previous leg on this port latched to: never latched
        self.stale = stale
        self.codec: Codec | None = None
        self.pt = -1  # audio payload type; -1 until set_remote, so every packet is dropped
        self.dtmf_pt = -1
        # control state
        self.bridge: Bridge | None = None
        self.held = False
        self.muted = False
        self.music = False
        self.heard_by: frozenset[str] | None = None  # None: every bridge mate hears it
        self.recordings: set[str] = set()
        # derived by _rewire
        self.mode = Mode.NONE
        self.audible = True
        self.relay_to: Leg | None = None
        self.relay_table: bytes | None = None
        self.decode = False
        # receive buffer and the tick's frame
        self.buffer = FrameBuffer()
        self.frame: bytes | None = None
        self.frame_arrival = 0.0
        # outgoing stream: one SSRC, seq +1 per packet, ts = source ts + offset of that source
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.pos_ts = random.getrandbits(32)  # the stream's timestamp at pos_time
        self.pos_time: float | None = None
        self.src_leg: Leg | None = None
        self.src_ssrc = -3  # matches no source, so the first packet sets the offset
        self.ts_off = 0
        # DTMF
        self.dtmf_in_ts = -1
        self.dtmf_jobs: deque[DtmfJob] = deque()
        self.dtmf_busy = False  # an event is being sent: nothing else goes to the leg
        # statistics
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_out = 0
        self.bytes_out = 0
        self.dropped = 0
        self.last_seen: float | None = None

    @property
    def hears_music(self) -> bool:
        return self.held or self.music


@dataclass(eq=False)
class Bridge:
    id: str
    legs: list[Leg] = field(default_factory=list)


@dataclass(eq=False)
class Recording:
    recorder: Recorder
    legs: list[Leg]


def peer(leg: Leg) -> Leg:
    """The other leg of a two-leg bridge."""
    assert leg.bridge is not None
    a, b = leg.bridge.legs
    return b if a is leg else a


def predict_ts(out: Leg, now: float) -> int:
    """The timestamp ``out``'s stream should carry at ``now``: where it was plus the wall time
    since (at least one frame, so timestamps never repeat)."""
    if out.pos_time is None:
        return out.pos_ts
    elapsed = round((now - out.pos_time) * g711.SAMPLE_RATE)
    return (out.pos_ts + max(elapsed, g711.FRAME_SAMPLES)) & MASK32
