"""The embedded media engine: an in-process asyncio RTP relay and mix-minus mixer for G.711.

One UDP socket per leg (an even port from the configured range; no RTCP), taken over from an
earlier leg when one is parked in the :class:`~.rtp_pool.PortPool` (see there for how a recycled
port is kept from mixing two calls). What each leg hears is
worked out once per state change (:meth:`EmbeddedMediaEngine._rewire`) and kept on the leg, so a
packet's path through the engine is a few attribute reads:

* **relay** (a bridge of two audible legs): each packet is forwarded as it arrives, with the
  receiving leg's own SSRC, sequence number and timestamp, transcoded PCMU<->PCMA by a 256-byte
  table when the two sides differ;
* **mix** (three or more legs, or a bridge whose other party is held or muted): one 20 ms frame per
  tick, the sum of the other audible legs' buffered audio, or silence;
* **music** (held, parked or queued legs): one frame of the shared music clip per tick.

A single owned task runs the 20 ms tick (mixing, music, recording, DTMF sending) and sleeps while
none of that is needed, so pure two-party relaying costs nothing between packets.

Every leg's outgoing stream is continuous for the leg's whole life: one SSRC, sequence numbers +1
per packet, and timestamps that follow wall time. When the source feeding a leg changes (a relayed
peer, the mixer, music, a DTMF event) the new source's timestamps are offset to continue from
where the stream is now, and the first packet carries the marker bit.

Garbage (not RTP version 2, truncated, unexpected payload type, a foreign source) is counted in
the leg's ``dropped`` statistic and otherwise ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Final

from ..memo import MAX_IP_CHARS, short_text_cache
from ..ports.clock import Clock, TimerHandle
from . import g711
from .dtmf import DtmfSender, TelephoneEvent
from .legs import MASK32, Bridge, DtmfJob, Leg, Mode, Recording, peer, predict_ts
from .mixer import mix_minus
from .moh import MusicSource, load_default, load_wav
from .port import Codec, DtmfListener, LegStats, MediaAddress, MediaError, RecordingInfo
from .recording import Recorder, open_wav
from .rtp import HEADER, payload_of
from .rtp_pool import PortPool, RtpSocket, fd_share

log = logging.getLogger(__name__)

TICK: Final = 0.02
MAX_CATCH_UP_TICKS: Final = 10  # after a stall longer than this (200 ms) ticks are skipped
MASK16: Final = 0xFFFF
SOCKET_BUFFER: Final = 1 << 20
# The pool of released RTP sockets (see .rtp_pool): at 300 calls/s (600 legs released a second)
# it holds about 1,200 sockets; a port is reused 2 s after its call at the soonest.
POOL_MAX: Final = 2048
REUSE_DELAY: Final = 2.0
POOL_IDLE: Final = 30.0
DSCP_EF: Final = 0xB8  # expedited forwarding, the usual marking for voice

# Source keys for a leg's outgoing stream, besides a relayed leg's SSRC (always >= 0).
_GENERATED: Final = -1  # mixer, silence and music share the tick's timeline
_DTMF: Final = -2


class EmbeddedMediaEngine:
    """The default :class:`~callbridge.media.port.MediaEngine`, inside the callbridge process.

    ``host`` is the address the RTP sockets bind to, ``public_host`` the one given to peers (by
    default ``host``; set it when binding a wildcard address). Ports are even numbers in
    ``[port_min, port_max]``, tried in rotation so a just-released port is not reused at once.
    A released leg's socket stays bound in a pool of at most ``pool_max`` sockets and is reused
    (least recently released first) once it has been parked ``reuse_delay`` seconds, or earlier if
    the range has no other port left; one parked ``pool_idle`` seconds is closed. ``pool_max=0``
    closes a released leg's socket at once; the pool never takes more than a quarter of the
    process's file descriptor limit.
    ``music`` is a PCM WAV file (any rate, mono or stereo) looped for held, parked and queued
    legs; by default the bundled clip. ``relatch_after``: a latched leg follows a new source
    address at once if the packet carries the SSRC it latched to (a NAT rebinding), otherwise only
    once the latched source has been silent this long (so a stray or hostile sender cannot steal
    a live stream).
    """

    on_dtmf: DtmfListener | None

    def __init__(
        self,
        host: str = "127.0.0.1",
        port_min: int = 20000,
        port_max: int = 29999,
        *,
        clock: Clock | None = None,
        public_host: str | None = None,
        music: str | PathLike[str] | None = None,
        socket_buffer: int = SOCKET_BUFFER,
        relatch_after: float = 0.5,
        pool_max: int = POOL_MAX,
        reuse_delay: float = REUSE_DELAY,
        pool_idle: float = POOL_IDLE,
    ) -> None:
        first = port_min + (port_min & 1)
        if not 0 < first <= port_max <= 65535:
            raise ValueError(f"empty or invalid RTP port range {port_min}-{port_max}")
        if pool_max < 0 or reuse_delay < 0 or pool_idle <= 0:
            raise ValueError("pool_max and reuse_delay must be >= 0, pool_idle > 0")
        self._host = host
        self._public_host = public_host or host
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._ports = range(first, port_max + 1, 2)
        self._cursor = 0
        self._clock = clock
        self._now = clock.monotonic if clock is not None else time.monotonic
        self._music_path = music
        self._music: MusicSource | None = None
        self._socket_buffer = socket_buffer
        self._relatch_after = relatch_after
        self.on_dtmf = None

        self._legs: dict[str, Leg] = {}
        self._used_ports: set[int] = set()  # bound by the engine: live legs' and parked ones
        self._pool_max = pool_max
        self._pool = PortPool(
            max_idle=pool_max,
            reuse_delay=reuse_delay,
            idle_timeout=pool_idle,
            now=self._now,
            call_later=self._call_later,
        )
        self._bridges: dict[str, Bridge] = {}
        self._recordings: dict[str, Recording] = {}
        # what the tick has to do, kept up to date by _rewire
        self._mix_bridges: set[Bridge] = set()
        self._music_legs: set[Leg] = set()
        self._decode_legs: set[Leg] = set()
        self._dtmf_legs: set[Leg] = set()

        self._running = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._tick_no = 0
        self.late_ticks = 0  # ticks skipped after event-loop stalls (diagnostics)
        self.tick_errors = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._running:
            return
        if self._music is None:
            pcm = load_default() if self._music_path is None else load_wav(self._music_path)
            self._music = MusicSource(pcm)
        self._pool.max_idle = min(self._pool_max, fd_share())  # the limit may have been raised
        self._running = True
        self._task = asyncio.get_running_loop().create_task(
            self._run_ticks(), name="media-engine-tick"
        )

    async def stop(self) -> None:
        self._running = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        now = self._now()
        for rec_id, rec in list(self._recordings.items()):
            del self._recordings[rec_id]
            for leg in rec.legs:
                leg.recordings.discard(rec_id)
            rec.recorder.stop(now)
            await asyncio.to_thread(rec.recorder.close)  # finalises the WAV header
        for leg_id in list(self._legs):
            await self.release(leg_id)  # not running: closes the leg's socket
        await self._pool.close()

    # ------------------------------------------------------------------ legs

    async def allocate(self, leg_id: str) -> MediaAddress:
        self._check_running()
        leg = self._legs.get(leg_id)
        if leg is not None:
            return MediaAddress(self._public_host, leg.port)
        sock = self._pool.take()
        if sock is None:
            try:
                raw, port = self._bind_free_port()
            except MediaError:
                # nothing left in the range (or no file descriptor): a port still in quarantine
                # is better than refusing the call, which is what happened without the pool
                sock = self._pool.take(early=True)
                if sock is None:
                    raise
            else:
                return await self._open(leg_id, raw, port)
        leg = Leg(leg_id, sock, sock.stale)
        sock.leg = leg
        self._legs[leg_id] = leg
        return MediaAddress(self._public_host, sock.port)

    async def _open(self, leg_id: str, raw: socket.socket, port: int) -> MediaAddress:
        """Make the event-loop endpoint of a freshly bound socket, for a new leg."""
        sock = RtpSocket(port, self._on_packet, self._used_ports.discard)
        leg = Leg(leg_id, sock)
        sock.leg = leg
        self._legs[leg_id] = leg
        self._used_ports.add(port)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: sock, sock=raw)
        except BaseException:
            raw.close()
            self._used_ports.discard(port)
            self._forget(leg)
            raise
        leg.transport = sock.transport = transport
        if self._legs.get(leg_id) is not leg:  # released while the endpoint was being made
            sock.close()
            await sock.closed
            raise MediaError(f"leg {leg_id} was released during allocation")
        return MediaAddress(self._public_host, port)

    def _bind_free_port(self) -> tuple[socket.socket, int]:
        n = len(self._ports)
        if len(self._used_ports) < n:
            for i in range(n):
                port = self._ports[(self._cursor + i) % n]
                if port in self._used_ports:
                    continue
                sock = socket.socket(self._family, socket.SOCK_DGRAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._socket_buffer)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._socket_buffer)
                    if self._family == socket.AF_INET:
                        with contextlib.suppress(OSError):
                            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, DSCP_EF)
                    sock.setblocking(False)
                    sock.bind((self._host, port))
                except OSError as exc:
                    sock.close()
                    if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                        continue  # taken by another process: try the next one
                    raise MediaError(f"cannot bind RTP port {self._host}:{port}: {exc}") from exc
                self._cursor = (self._cursor + i + 1) % n
                return sock, port
        raise MediaError(f"no free RTP port in {self._ports.start}-{self._ports.stop - 1}")

    async def set_remote(
        self, leg_id: str, host: str, port: int, codec: Codec, dtmf_pt: int | None = None
    ) -> None:
        leg = self._leg(leg_id)
        if codec not in g711.PAYLOAD_TYPES:
            raise MediaError(f"unsupported codec {codec!r}")
        if dtmf_pt is not None and not 96 <= dtmf_pt <= 127:
            raise MediaError(f"telephone-event payload type must be dynamic: {dtmf_pt}")
        ip = _ip_address(host)
        if ip is None:
            raise MediaError(f"remote host must be an IP address: {host!r}")
        text, version = ip
        if (version == 6) != (self._family == socket.AF_INET6):
            raise MediaError(f"remote {host} is not reachable from RTP sockets on {self._host}")
        if not 0 < port <= 65535:
            raise MediaError(f"bad remote port {port}")
        leg.remote = (text, port)
        leg.latched_addr = None  # learn the source again (a re-INVITE may have moved the peer)
        leg.latched_ssrc = -1
        leg.codec = codec
        leg.pt = g711.PAYLOAD_TYPES[codec]
        leg.dtmf_pt = -1 if dtmf_pt is None else dtmf_pt
        self._rewire(self._with_bridge_mates(leg))

    async def release(self, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        affected = [leg]
        if leg.bridge is not None:
            affected += self._leave_bridge(leg)
        for rec_id in leg.recordings:
            rec = self._recordings.get(rec_id)
            if rec is not None:
                rec.legs.remove(leg)
        leg.recordings.clear()
        for job in leg.dtmf_jobs:
            job.finish()
        leg.dtmf_jobs.clear()
        leg.dtmf_busy = False
        self._forget(leg)
        self._rewire(affected)
        sock, transport = leg.sock, leg.transport
        leg.sock = leg.transport = None
        if sock is None or transport is None or sock.leg is not leg:
            return  # still being allocated: allocate closes the socket
        if self._running and self._pool.park(sock, leg):
            return
        sock.close()
        await sock.closed  # the socket is closed when this returns

    def _forget(self, leg: Leg) -> None:
        if self._legs.get(leg.id) is leg:
            del self._legs[leg.id]
        self._music_legs.discard(leg)
        self._decode_legs.discard(leg)
        self._dtmf_legs.discard(leg)
        leg.mode = Mode.NONE
        leg.relay_to = None

    def stats(self, leg_id: str) -> LegStats:
        leg = self._leg(leg_id)
        return LegStats(
            packets_in=leg.packets_in,
            bytes_in=leg.bytes_in,
            packets_out=leg.packets_out,
            bytes_out=leg.bytes_out,
            dropped=leg.dropped,
            last_seen=leg.last_seen,
        )

    # ------------------------------------------------------------------ bridges

    async def connect(self, bridge_id: str, leg_ids: Sequence[str]) -> None:
        legs = [self._leg(leg_id) for leg_id in leg_ids]
        bridge = self._bridges.get(bridge_id)
        if bridge is None:
            bridge = self._bridges[bridge_id] = Bridge(bridge_id)
        affected: list[Leg] = []
        for leg in legs:
            leg.music = False  # music is for legs outside any bridge
            if leg.bridge is bridge:
                continue
            if leg.bridge is not None:
                affected += self._leave_bridge(leg)
            leg.bridge = bridge
            bridge.legs.append(leg)
        self._rewire([*affected, *legs, *bridge.legs])

    async def disconnect(self, bridge_id: str, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        bridge = self._bridges.get(bridge_id)
        if leg is None or bridge is None or leg.bridge is not bridge:
            return
        self._rewire([leg, *self._leave_bridge(leg)])

    def _leave_bridge(self, leg: Leg) -> list[Leg]:
        """Take ``leg`` out of its bridge; return the legs left in it (to rewire)."""
        bridge = leg.bridge
        assert bridge is not None
        bridge.legs.remove(leg)
        leg.bridge = None
        if not bridge.legs:
            self._bridges.pop(bridge.id, None)
            self._mix_bridges.discard(bridge)
        return list(bridge.legs)

    # ------------------------------------------------------------------ hold, mute, music

    async def hold(self, leg_id: str) -> None:
        await self._set_flag(leg_id, "held", True)

    async def unhold(self, leg_id: str) -> None:
        await self._set_flag(leg_id, "held", False)

    async def mute(self, leg_id: str) -> None:
        await self._set_flag(leg_id, "muted", True)

    async def unmute(self, leg_id: str) -> None:
        await self._set_flag(leg_id, "muted", False)

    async def set_audibility(self, leg_id: str, heard_by: Sequence[str] | None) -> None:
        leg = self._leg(leg_id)
        leg.heard_by = None if heard_by is None else frozenset(heard_by)
        self._rewire(self._with_bridge_mates(leg))

    async def start_music(self, leg_id: str) -> None:
        await self._set_flag(leg_id, "music", True)

    async def stop_music(self, leg_id: str) -> None:
        await self._set_flag(leg_id, "music", False)

    async def _set_flag(self, leg_id: str, name: str, value: bool) -> None:
        leg = self._leg(leg_id)
        setattr(leg, name, value)
        self._rewire(self._with_bridge_mates(leg))

    # ------------------------------------------------------------------ recordings

    async def record_start(
        self, recording_id: str, leg_ids: Sequence[str], path: str | PathLike[str]
    ) -> None:
        self._check_running()
        if recording_id in self._recordings:
            raise MediaError(f"recording {recording_id} already started")
        legs = list(dict.fromkeys(self._leg(leg_id) for leg_id in leg_ids))
        if not legs:
            raise MediaError("a recording needs at least one leg")
        try:
            wav = await asyncio.to_thread(open_wav, Path(path))
        except OSError as exc:
            raise MediaError(f"cannot write recording {path}: {exc}") from exc
        if recording_id in self._recordings or any(
            self._legs.get(leg.id) is not leg for leg in legs
        ):
            await asyncio.to_thread(wav.close)  # raced with another start, or a release
            raise MediaError(f"recording {recording_id} could not start")
        recorder = Recorder(
            recording_id, tuple(leg.id for leg in legs), Path(path), wav, self._now()
        )
        self._recordings[recording_id] = Recording(recorder, legs)
        for leg in legs:
            leg.recordings.add(recording_id)
        self._rewire(legs)

    async def record_pause(self, recording_id: str) -> None:
        self._recording(recording_id).recorder.pause(self._now())

    async def record_resume(self, recording_id: str) -> None:
        self._recording(recording_id).recorder.resume(self._now())

    async def record_stop(self, recording_id: str) -> RecordingInfo:
        rec = self._recording(recording_id)
        del self._recordings[recording_id]
        for leg in rec.legs:
            leg.recordings.discard(recording_id)
        self._rewire(rec.legs)
        info = rec.recorder.stop(self._now())
        await asyncio.to_thread(rec.recorder.close)
        if rec.recorder.error is not None:
            error = rec.recorder.error
            raise MediaError(f"recording {recording_id} failed: {error}") from error
        return info

    def _recording(self, recording_id: str) -> Recording:
        rec = self._recordings.get(recording_id)
        if rec is None:
            raise MediaError(f"no recording {recording_id}")
        return rec

    # ------------------------------------------------------------------ DTMF

    async def send_dtmf(self, leg_id: str, digits: str) -> None:
        self._check_running()
        leg = self._leg(leg_id)
        if leg.dtmf_pt < 0:
            raise MediaError(f"leg {leg_id}: no telephone-event payload type negotiated")
        try:
            sender = DtmfSender(digits, g711.FRAME_SAMPLES)
        except ValueError as exc:
            raise MediaError(str(exc)) from None
        if sender.finished:  # no digits
            return
        job = DtmfJob(sender, asyncio.get_running_loop().create_future())
        leg.dtmf_jobs.append(job)
        self._dtmf_legs.add(leg)
        self._wake.set()
        try:
            await asyncio.shield(job.done)
        except asyncio.CancelledError:
            sender.aborted = True  # the event in progress still gets its end packets
            raise

    def _dtmf_step(self, leg: Leg, now: float, gen_ts: int) -> None:
        """Advance the leg's DTMF sending by one tick (one packet at most)."""
        job = leg.dtmf_jobs[0]
        sender = job.sender
        packet = sender.step(gen_ts)
        if packet is not None:
            marker = 0x80 if packet.marker else 0
            self._send(
                leg, packet.payload, leg.dtmf_pt | marker, None, _DTMF, packet.timestamp, now
            )
            # the stream's clock is at the end of what the event has covered so far
            leg.pos_ts = (leg.pos_ts + packet.duration) & MASK32
        if sender.busy != leg.dtmf_busy:  # nothing else reaches the leg while an event is on
            leg.dtmf_busy = sender.busy
            self._rewire(self._with_bridge_mates(leg))
        if sender.finished:
            leg.dtmf_jobs.popleft().finish()
            if not leg.dtmf_jobs:
                self._dtmf_legs.discard(leg)

    # ------------------------------------------------------------------ wiring

    def _with_bridge_mates(self, leg: Leg) -> list[Leg]:
        return list(leg.bridge.legs) if leg.bridge is not None else [leg]

    def _rewire(self, legs: Iterable[Leg]) -> None:
        """Recompute what ``legs`` hear and which of them the tick must serve.

        Every leg whose situation may have changed must be passed, and with it the other members
        of its bridge (``_with_bridge_mates``): a leg's mode depends on its peers' flags.
        """
        legs = list(dict.fromkeys(legs))
        bridges: set[Bridge] = set()
        live = self._legs
        music_legs = self._music_legs
        decode_legs = self._decode_legs
        for leg in legs:
            leg.audible = not leg.held and not leg.muted
        for leg in legs:
            bridge = leg.bridge
            if live.get(leg.id) is not leg:  # released
                continue
            restricted = bridge is not None and _restricted(bridge)
            if leg.held or leg.music:  # hears_music
                leg.mode = Mode.MUSIC
            elif bridge is None or len(bridge.legs) < 2:
                # alone in its bridge only until the core hangs it up too (its peer just left):
                # generating silence for it would only cost CPU when the core is behind
                leg.mode = Mode.NONE
            elif len(bridge.legs) == 2 and peer(leg).audible and not restricted:
                leg.mode = Mode.RELAY
            else:
                leg.mode = Mode.MIX
            if bridge is not None:
                bridges.add(bridge)
            if leg.mode is Mode.MUSIC:
                music_legs.add(leg)
            else:
                music_legs.discard(leg)
            decode = leg.audible and (
                leg.recordings or (bridge is not None and (len(bridge.legs) >= 3 or restricted))
            )
            leg.decode = bool(decode) and leg.codec is not None
            if leg.decode:
                decode_legs.add(leg)
            else:
                decode_legs.discard(leg)
                leg.buffer.clear()
                leg.frame = None
            # relay_to is set below from the receiving side
            leg.relay_to = None
            leg.relay_table = None
        for leg in legs:
            if live.get(leg.id) is not leg:
                continue
            if leg.mode is Mode.RELAY and not leg.dtmf_busy and leg.codec is not None:
                source = peer(leg)
                if source.codec is not None:
                    source.relay_to = leg
                    source.relay_table = g711.transcode_table(source.codec, leg.codec)
        for bridge in bridges:
            if bridge.legs and any(m.mode is Mode.MIX for m in bridge.legs):
                self._mix_bridges.add(bridge)
            else:
                self._mix_bridges.discard(bridge)
        if self._mix_bridges or self._music_legs or self._recordings or self._dtmf_legs:
            self._wake.set()  # else the tick, if asleep, would only go back to sleep

    # ------------------------------------------------------------------ packets in

    def _on_packet(self, leg: Leg, data: bytes, addr: Any) -> None:
        size = len(data)
        leg.packets_in += 1
        leg.bytes_in += size
        if size < 12 or data[0] & 0xC0 != 0x80:
            leg.dropped += 1
            return
        first, second, seq, ts, ssrc = HEADER.unpack_from(data)
        pt = second & 0x7F
        if pt != leg.pt and pt != leg.dtmf_pt:
            leg.dropped += 1
            return
        now = self._now()
        if addr != leg.latched_addr and not self._latch(leg, addr, ssrc, now):
            leg.dropped += 1
            return
        leg.last_seen = now
        payload = data[12:] if first == 0x80 else payload_of(data)
        if not payload:
            leg.dropped += 1
            return
        if pt != leg.pt:
            self._on_event_packet(leg, payload, second, ts, ssrc, now)
            return
        if leg.decode:
            assert leg.codec is not None
            leg.buffer.push(g711.decode(payload, leg.codec), now)
        out = leg.relay_to
        if out is None:
            return
        # Relay. Inlined rather than calling _send: this is the per-packet path.
        if out.src_leg is not leg or out.src_ssrc != ssrc:
            out.ts_off = (predict_ts(out, now) - ts) & MASK32
            out.src_leg = leg
            out.src_ssrc = ssrc
            marker = 0x80
        else:
            marker = second & 0x80
        table = leg.relay_table
        if table is not None:
            payload = payload.translate(table)
        out_ts = (ts + out.ts_off) & MASK32
        out.seq = seq = (out.seq + 1) & MASK16
        out.pos_ts = out_ts
        out.pos_time = now
        packet = HEADER.pack(0x80, marker | out.pt, seq, out_ts, out.ssrc) + payload
        transport = out.transport
        if transport is not None:
            transport.sendto(packet, out.remote)
            out.packets_out += 1
            out.bytes_out += len(packet)

    def _latch(self, leg: Leg, addr: Any, ssrc: int, now: float) -> bool:
        """Decide whether a packet from ``addr`` (not the latched address) is accepted; if so,
        send to ``addr`` from now on. The stream the port's previous leg latched to never is."""
        stale = leg.stale
        if stale is not None and ssrc == stale[2] and addr[0] == stale[0] and addr[1] == stale[1]:
            return False
        if (
            leg.latched_addr is None
            or ssrc == leg.latched_ssrc
            or leg.last_seen is None
            or now - leg.last_seen >= self._relatch_after
        ):
            leg.latched_addr = leg.remote = addr
            leg.latched_ssrc = ssrc
            return True
        return False

    def _on_event_packet(
        self, leg: Leg, payload: bytes, second: int, ts: int, ssrc: int, now: float
    ) -> None:
        if len(payload) < 4:
            leg.dropped += 1
            return
        if ts != leg.dtmf_in_ts:  # every packet of one event has the event's start timestamp
            leg.dtmf_in_ts = ts
            digit = TelephoneEvent.parse(payload).digit
            listener = self.on_dtmf
            if digit is not None and listener is not None:
                try:
                    listener(leg.id, digit)
                except Exception:
                    log.exception("media: DTMF listener failed")
        out = leg.relay_to
        if out is not None and out.dtmf_pt >= 0:
            # Two-party bridges pass events through, on the same timeline as the audio.
            self._send(out, payload, out.dtmf_pt | (second & 0x80), leg, ssrc, ts, now)

    # ------------------------------------------------------------------ packets out

    def _send(
        self,
        out: Leg,
        payload: bytes,
        pt_marker: int,
        src_leg: Leg | None,
        src_key: int,
        in_ts: int,
        now: float,
    ) -> None:
        """Send one packet on ``out``'s stream from the source ``(src_leg, src_key)`` whose own
        timestamp is ``in_ts``."""
        transport = out.transport
        if transport is None or out.remote is None:
            return
        if out.src_leg is not src_leg or out.src_ssrc != src_key:
            out.ts_off = (predict_ts(out, now) - in_ts) & MASK32
            out.src_leg = src_leg
            out.src_ssrc = src_key
            pt_marker |= 0x80
        out_ts = (in_ts + out.ts_off) & MASK32
        out.seq = (out.seq + 1) & MASK16
        out.pos_ts = out_ts
        out.pos_time = now
        packet = HEADER.pack(0x80, pt_marker, out.seq, out_ts, out.ssrc) + payload
        transport.sendto(packet, out.remote)
        out.packets_out += 1
        out.bytes_out += len(packet)

    # ------------------------------------------------------------------ the tick

    async def _run_ticks(self) -> None:
        deadline: float | None = None
        while True:
            if not (self._mix_bridges or self._music_legs or self._recordings or self._dtmf_legs):
                self._wake.clear()
                await self._wake.wait()
                deadline = None
                continue
            now = self._now()
            if deadline is None:
                deadline = now + TICK
            if deadline > now:
                await self._sleep(deadline - now)
                now = self._now()
            behind = int((now - deadline) / TICK)
            if behind > MAX_CATCH_UP_TICKS:
                self.late_ticks += behind
                deadline += behind * TICK
            try:
                self._tick(deadline, now)
            except Exception:
                # a bug, not a packet: log it, but not 50 times a second
                self.tick_errors += 1
                if self.tick_errors in (1, 10, 100) or self.tick_errors % 1000 == 0:
                    log.exception("media: tick failed (%d so far)", self.tick_errors)
            deadline += TICK

    async def _sleep(self, delay: float) -> None:
        if self._clock is None:
            await asyncio.sleep(delay)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self._clock.call_later(delay, wake)
        try:
            await future
        finally:
            timer.cancel()

    def _tick(self, deadline: float, now: float) -> None:
        """One 20 ms step: take a frame from each decoded leg, then mix, play, record, DTMF."""
        self._tick_no += 1
        gen_ts = (self._tick_no * g711.FRAME_SAMPLES) & MASK32
        for leg in self._decode_legs:
            got = leg.buffer.pop()
            if got is None:
                leg.frame = None
            else:
                leg.frame, leg.frame_arrival = got
        for bridge in list(self._mix_bridges):
            frames: dict[str, bytes] = {}
            limited: list[Leg] = []
            for m in bridge.legs:
                if m.audible and m.frame is not None:
                    frames[m.id] = m.frame
                    if m.heard_by is not None:
                        limited.append(m)
            for leg in bridge.legs:
                if leg.mode is not Mode.MIX or leg.dtmf_busy or leg.codec is None:
                    continue
                heard = frames
                if limited:
                    heard = dict(frames)
                    for m in limited:
                        if m.heard_by is not None and leg.id not in m.heard_by:
                            del heard[m.id]
                pcm = mix_minus(heard, leg.id)
                payload = (
                    g711.SILENT_FRAME[leg.codec] if pcm is None else g711.encode(pcm, leg.codec)
                )
                self._send(leg, payload, leg.pt, None, _GENERATED, gen_ts, now)
        if self._music_legs:
            music = self._music
            assert music is not None
            music.advance()
            for leg in list(self._music_legs):
                if leg.dtmf_busy or leg.codec is None:
                    continue
                self._send(leg, music.frame(leg.codec), leg.pt, None, _GENERATED, gen_ts, now)
        for rec in self._recordings.values():
            recorder = rec.recorder
            if recorder.paused:
                continue
            frames_in = [
                leg.frame
                for leg in rec.legs
                if leg.decode
                and leg.frame is not None
                and leg.frame_arrival >= recorder.accept_after
            ]
            recorder.tick(deadline, g711.mix(frames_in))
        for leg in list(self._dtmf_legs):
            if leg.dtmf_jobs:
                self._dtmf_step(leg, now, gen_ts)

    # ------------------------------------------------------------------ helpers

    def _leg(self, leg_id: str) -> Leg:
        leg = self._legs.get(leg_id)
        if leg is None:
            raise MediaError(f"no media leg {leg_id}")
        return leg

    def _call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        if self._clock is not None:
            return self._clock.call_later(delay, callback)
        return asyncio.get_running_loop().call_later(delay, callback)

    def _check_running(self) -> None:
        if not self._running:
            raise MediaError("media engine is not running")


@short_text_cache(maxsize=4096, max_chars=MAX_IP_CHARS)
def _ip_address(host: str) -> tuple[str, int] | None:
    """``host`` as an IP address in its canonical text and its version, ``None`` if it is not one.

    Cached: parsing with :mod:`ipaddress` was a fifth of a bridged leg's set-up, and the same few
    peers (trunks, phones) come back call after call."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(ip), ip.version


def _restricted(bridge: Bridge) -> bool:
    """Some leg of the bridge is heard by only some of the others: the bridge must mix."""
    return any(m.heard_by is not None for m in bridge.legs)
