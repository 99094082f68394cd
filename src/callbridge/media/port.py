"""The media engine port: what the SIP B2BUA asks of whatever moves the RTP.

The B2BUA owns signalling; the engine owns ports and packets. The interface speaks only of legs
(one RTP stream pair with one remote party, named by the caller's ``leg_id``), bridges (legs that
hear each other) and recordings, so an rtpengine (NG protocol) or Janus (AudioBridge) engine can
implement it later. There are no SIP or SDP types here: the B2BUA puts :class:`MediaAddress` into
its SDP and passes what it reads from the peer's SDP to :meth:`MediaEngine.set_remote`.

Semantics every implementation must keep:

* **Legs.** :meth:`~MediaEngine.allocate` reserves a local RTP address (an even port; no RTCP).
  The engine sends to the address given in :meth:`~MediaEngine.set_remote` until a packet arrives
  from the peer, then to the source address actually seen (*latching*, symmetric RTP for NAT).
* **Bridges.** Legs connected to the same bridge hear each other. Two legs: packets are relayed.
  Three or more: mix-minus, each leg hears the sum of the others, never itself. A leg is in at
  most one bridge; connecting it elsewhere moves it. A leg in no bridge hears nothing (no packets)
  unless music is started for it.
* **Hold.** A held leg hears music on hold and its audio reaches no one (nor any recording).
* **Mute.** A muted leg's audio reaches no one (nor any recording); it still hears the bridge.
* **Audibility (supervision).** A leg with a ``heard_by`` set is mixed only into the audio of
  those bridge mates (none: a listening supervisor; the agent: whispering); it hears everybody.
  Its audio still reaches the call's recording.
* **Music.** :meth:`~MediaEngine.start_music` plays music to a leg outside any bridge (parked or
  queued). Connecting the leg to a bridge stops it.
* **What a bridged leg receives when nobody audible is left** (its only peer is held or muted, or
  it is alone in the bridge): silence, as a continuous stream of silent frames (PCMU ``0xFF``,
  PCMA ``0xD5``) at the packet rate, so the phone's RTP timeout and NAT bindings stay happy.
* **Continuity.** Each leg's outgoing stream keeps one SSRC and contiguous sequence numbers for the
  leg's whole life, and timestamps that follow wall time, across re-bridging, hold, park and DTMF,
  so the far end's jitter buffer never sees a jump. The first packet after a change of source
  carries the marker bit.
* **DTMF.** Digits arriving as RFC 4733 telephone-events are reported once per event to
  :attr:`~MediaEngine.on_dtmf`. :meth:`~MediaEngine.send_dtmf` sends RFC 4733 events.
* **Recording.** A recording is a mono 8 kHz 16-bit PCM WAV of the mix of what the named legs say
  (a held or muted leg contributes silence). Paused stretches are *absent* from the file; where they
  were is kept in :class:`RecordingInfo`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Literal, Protocol, runtime_checkable

Codec = Literal["PCMU", "PCMA"]
"""The G.711 laws every engine must carry: PCMU (payload type 0) and PCMA (payload type 8)."""

DtmfListener = Callable[[str, str], None]
"""``listener(leg_id, digit)``; ``digit`` is one of ``0-9 * # A-D``. Must not block."""


class MediaError(Exception):
    """A media command could not be carried out (unknown leg, no free port, bad argument...)."""


@dataclass(frozen=True, slots=True)
class MediaAddress:
    """Where the peer must send a leg's RTP: put this in the SDP (``c=`` and ``m=audio``)."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class LegStats:
    """Counters of one leg since it was allocated.

    ``*_in`` counts every datagram that reached the leg's port (garbage included), ``dropped`` the
    ones thrown away (not RTP, a payload type other than the codec's and telephone-event -- comfort
    noise included, so offer no CN -- or a foreign source). Bytes are whole RTP
    packets (UDP payloads). ``last_seen`` is the engine clock's ``monotonic()`` reading of the last
    accepted packet, or ``None`` if none arrived: the B2BUA's RTP timeout can use it.
    """

    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int
    dropped: int
    last_seen: float | None


@dataclass(frozen=True, slots=True)
class RecordingGap:
    """A paused stretch: ``at_s`` seconds into the file, ``duration_s`` seconds of call missing."""

    at_s: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """What :meth:`MediaEngine.record_stop` returns: the file and where the pauses were."""

    recording_id: str
    path: str
    leg_ids: tuple[str, ...]
    duration_s: float  # of audio in the file
    gaps: tuple[RecordingGap, ...]


@runtime_checkable
class MediaEngine(Protocol):
    """An RTP media engine driven by the B2BUA. All methods are called on the event loop.

    Commands naming an unknown leg or recording raise :class:`MediaError`, except
    :meth:`release` and :meth:`disconnect`, which are idempotent.
    """

    on_dtmf: DtmfListener | None
    """Called for each RFC 4733 digit received on any leg (set by the B2BUA)."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stop every recording (files are finalised) and release every leg and port."""
        ...

    async def allocate(self, leg_id: str) -> MediaAddress:
        """Reserve a local RTP address for ``leg_id`` (the same one again if already allocated)."""
        ...

    async def set_remote(
        self, leg_id: str, host: str, port: int, codec: Codec, dtmf_pt: int | None = None
    ) -> None:
        """Send the leg's RTP to ``host:port`` in ``codec``; ``dtmf_pt`` is the negotiated
        telephone-event payload type (``None``: not negotiated). May be called again after a
        re-INVITE; the engine re-learns the source address from the next packet."""
        ...

    async def release(self, leg_id: str) -> None:
        """Take the leg out of its bridge and recordings and free its port."""
        ...

    async def connect(self, bridge_id: str, leg_ids: Sequence[str]) -> None:
        """Add legs to a bridge (created on first use), moving them out of any other bridge."""
        ...

    async def disconnect(self, bridge_id: str, leg_id: str) -> None:
        """Take a leg out of a bridge (kick); it then hears nothing. An empty bridge is gone."""
        ...

    async def hold(self, leg_id: str) -> None: ...

    async def unhold(self, leg_id: str) -> None: ...

    async def mute(self, leg_id: str) -> None: ...

    async def unmute(self, leg_id: str) -> None: ...

    async def set_audibility(self, leg_id: str, heard_by: Sequence[str] | None) -> None:
        """Only the listed legs of its bridge hear ``leg_id`` (``None``: all; ``[]``: none)."""
        ...

    async def start_music(self, leg_id: str) -> None: ...

    async def stop_music(self, leg_id: str) -> None: ...

    async def record_start(
        self, recording_id: str, leg_ids: Sequence[str], path: str | PathLike[str]
    ) -> None:
        """Start writing the mix of ``leg_ids`` to the WAV file ``path``."""
        ...

    async def record_pause(self, recording_id: str) -> None: ...

    async def record_resume(self, recording_id: str) -> None: ...

    async def record_stop(self, recording_id: str) -> RecordingInfo:
        """Finish the file and say where the pauses were."""
        ...

    async def send_dtmf(self, leg_id: str, digits: str) -> None:
        """Send ``digits`` (``0-9 * # A-D``) to the leg as RFC 4733 events; returns when sent."""
        ...

    def stats(self, leg_id: str) -> LegStats: ...
