"""What happened on the wire: a ``dumpcap`` capture of loopback, parsed into RTP flows.

The capture filter names only the test's ports (the media engine's RTP range and the switch's SIP
port), so other processes' traffic on the shared machine never reaches the file. Packets are
classified by their UDP ports: every RTP flow of a call goes through an engine port, and each
peer's RTP port (SIPp's ``-mp``, a baresip phone's ``rtp_ports`` range) says whose it is.

Also here: the pcap files SIPp plays (``play_pcap_audio``): a G.711 tone, optionally with RFC 4733
telephone-events in the middle.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import struct
from array import array
from collections import Counter
from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.media.phones import tone_ratio

from callbridge.media import g711
from callbridge.media.dtmf import TelephoneEvent, event_code

PCMU, PCMA, DTMF_PT = 0, 8, 101
RATE = 8000
FRAME = 160

# ---------------------------------------------------------------------------- making pcaps


def tone_pcm(freq: float, seconds: float, amplitude: int = 8000) -> bytes:
    n = int(seconds * RATE)
    step = 2 * math.pi * freq / RATE
    return array("h", (int(amplitude * math.sin(step * i)) for i in range(n))).tobytes()


def write_tone_wav(path: Path, freq: float, seconds: float) -> None:
    import wave

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(tone_pcm(freq, seconds))


def _udp_frame(sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    lo = bytes([127, 0, 0, 1])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 17, 0, lo, lo)
    return bytes(12) + b"\x08\x00" + ip + udp


def write_rtp_pcap(
    path: Path, freq: float, seconds: float, *, dtmf: Iterable[tuple[float, str]] = ()
) -> None:
    """A pcap of PCMU RTP carrying ``freq`` for ``seconds``; ``dtmf`` is ``(at_s, digit)``: from
    ``at_s`` the audio is replaced by a 100 ms RFC 4733 event (payload type 101) with three
    end packets. SIPp re-sends the RTP payloads with the pcap's timing."""
    pcm = tone_pcm(freq, seconds)
    events = sorted(dtmf)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    seq, ts, ssrc = 1000, 160000, 0x5EED0001
    t = 1_000_000.0

    def add(payload_type: int, marker: bool, timestamp: int, payload: bytes) -> None:
        nonlocal seq
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | payload_type, seq, timestamp, ssrc
        )
        frame = _udp_frame(6000, 6002, header + payload)
        sec, usec = int(t), round((t % 1) * 1e6)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
        seq = (seq + 1) & 0xFFFF

    frames = len(pcm) // (2 * FRAME)
    i = 0
    while i < frames:
        if events and i * FRAME >= events[0][0] * RATE:
            _, digit = events.pop(0)
            start = ts
            code = event_code(digit)
            for k in range(1, 6):  # 5 x 20 ms = 100 ms
                payload = bytes(TelephoneEvent(code, False, 10, k * FRAME))
                add(DTMF_PT, k == 1, start, payload)
                t += 0.02
            for _ in range(3):
                add(DTMF_PT, False, start, bytes(TelephoneEvent(code, True, 10, 5 * FRAME)))
            ts = (ts + 5 * FRAME) & 0xFFFFFFFF
            i += 5
            continue
        chunk = pcm[i * 2 * FRAME : (i + 1) * 2 * FRAME]
        add(PCMU, i == 0, ts, g711.encode(chunk, "PCMU"))
        ts = (ts + FRAME) & 0xFFFFFFFF
        t += 0.02
        i += 1
    path.write_bytes(b"".join(out))


# ---------------------------------------------------------------------------- reading pcaps


@dataclass(frozen=True, slots=True)
class Datagram:
    at: float  # epoch seconds
    sport: int
    dport: int
    payload: bytes


def read_pcap(path: Path) -> list[Datagram]:
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    else:
        endian = ">"
        magic = struct.unpack_from(">I", data)[0]
    divisor = 1e9 if magic == 0xA1B23C4D else 1e6
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    link_len = {1: 14, 113: 16, 0: 4, 276: 20}.get(linktype)
    if link_len is None:
        raise ValueError(f"unexpected pcap link type {linktype}")
    out: list[Datagram] = []
    off = 24
    record = struct.Struct(endian + "IIII")
    while off + 16 <= len(data):
        sec, frac, incl, _ = record.unpack_from(data, off)
        off += 16
        frame = data[off : off + incl]
        off += incl
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        udp = ip[ihl:]
        if len(udp) < 8:
            continue
        sport, dport, length = struct.unpack_from("!HHH", udp)
        out.append(Datagram(sec + frac / divisor, sport, dport, bytes(udp[8:length])))
    return out


@dataclass(frozen=True, slots=True)
class Rtp:
    at: float
    sport: int
    dport: int
    pt: int
    marker: bool
    seq: int
    ts: int
    payload: bytes


def as_rtp(d: Datagram) -> Rtp | None:
    p = d.payload
    if len(p) < 12 or p[0] >> 6 != 2:
        return None
    pt = p[1] & 0x7F
    if 72 <= pt <= 76:  # RTCP
        return None
    seq, ts = struct.unpack_from("!HI", p, 2)
    cc = p[0] & 0x0F
    return Rtp(d.at, d.sport, d.dport, pt, bool(p[1] & 0x80), seq, ts, p[12 + 4 * cc :])


class Ports:
    """A set of UDP ports (a range, or single ports) with a name for messages."""

    def __init__(self, name: str, ports: Container[int]) -> None:
        self.name = name
        self.ports = ports

    def __contains__(self, port: object) -> bool:
        return port in self.ports

    def __repr__(self) -> str:
        return self.name


@dataclass
class Flow:
    """RTP packets from ``src`` ports to ``dst`` ports within a time window."""

    name: str
    packets: list[Rtp]
    start: float
    end: float

    @property
    def rate(self) -> float:
        return len(self.audio_packets) / (self.end - self.start)

    @property
    def audio_packets(self) -> list[Rtp]:
        return [p for p in self.packets if p.pt in (PCMU, PCMA)]

    def per_second(self) -> list[int]:
        counts = Counter(int(p.at - self.start) for p in self.audio_packets)
        return [counts.get(i, 0) for i in range(int(self.end - self.start))]

    def pcm(self) -> bytes:
        return b"".join(
            g711.decode(p.payload, "PCMU" if p.pt == PCMU else "PCMA") for p in self.audio_packets
        )

    def tone(self, freq: float) -> float:
        """The share of the received audio's energy at ``freq`` (see ``tone_ratio``)."""
        return tone_ratio(self.pcm(), freq)

    def level(self) -> float:
        """RMS of the received audio (0 for digital silence)."""
        pcm = array("h", self.pcm())
        return math.sqrt(sum(x * x for x in pcm) / len(pcm)) if pcm else 0.0

    def events(self) -> list[tuple[str | None, bool]]:
        """The RFC 4733 packets as ``(digit, end)``."""
        return [
            (TelephoneEvent.parse(p.payload).digit, TelephoneEvent.parse(p.payload).end)
            for p in self.packets
            if p.pt not in (PCMU, PCMA) and len(p.payload) >= 4
        ]

    def describe(self, tones: dict[str, float]) -> str:
        heard = ", ".join(f"{n}={self.tone(f):.3f}" for n, f in tones.items())
        return (
            f"{self.name}: {len(self.audio_packets)} pkts in {self.end - self.start:.1f}s "
            f"({self.rate:.1f}/s, per second {self.per_second()}), rms {self.level():.0f}, {heard}"
        )


class Wire:
    """A finished capture."""

    def __init__(self, datagrams: list[Datagram]) -> None:
        self.datagrams = datagrams
        self.rtp = [r for d in datagrams if (r := as_rtp(d)) is not None]

    def flow(self, src: Ports, dst: Ports, start: float, end: float) -> Flow:
        packets = [r for r in self.rtp if r.sport in src and r.dport in dst and start <= r.at < end]
        return Flow(f"{src!r}->{dst!r}", packets, start, end)

    def sip(self, port: int) -> list[tuple[float, int, int, str]]:
        """SIP datagrams to or from ``port``: ``(at, sport, dport, first line)``."""
        out = []
        for d in self.datagrams:
            if port in (d.sport, d.dport) and d.payload[:1].isalpha():
                line = d.payload.split(b"\r\n", 1)[0].decode(errors="replace")
                out.append((d.at, d.sport, d.dport, line))
        return out


class Capture:
    """``dumpcap`` on ``lo`` with a port filter, written as pcap to ``path``.

    libpcap hands packets over in blocks, so stopping dumpcap at once loses the last fraction of a
    second. :meth:`stop` first sends a sentinel datagram (to a port of its own, in the filter)
    and waits until dumpcap has written it to the file (it flushes the file several times a
    second for live readers): everything before it is in the file too.
    """

    def __init__(self, dumpcap: str, path: Path, bpf: str) -> None:
        self.dumpcap = dumpcap
        self.path = path
        self._sentinel = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sentinel.bind(("127.0.0.1", 0))
        self.bpf = f"({bpf}) or udp port {self._sentinel.getsockname()[1]}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.dumpcap,
            *["-i", "lo", "-f", self.bpf, "-P", "-w", str(self.path), "-q"],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        async with asyncio.timeout(15):
            seen = b""
            while b"Capturing on" not in seen:
                line = await self.proc.stderr.readline()
                if not line:
                    await self.proc.wait()
                    raise AssertionError(f"dumpcap failed ({self.proc.returncode}): {seen!r}")
                seen += line

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self) -> Wire:
        assert self.proc is not None
        token = b"wire-sentinel-" + os.urandom(8).hex().encode()
        async with asyncio.timeout(15):
            while True:
                self._sentinel.sendto(token, self._sentinel.getsockname())
                await asyncio.sleep(0.1)
                if self.path.exists() and token in self.path.read_bytes():
                    break
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            await self.proc.communicate()
        self._sentinel.close()
        return Wire(read_pcap(self.path))

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._sentinel.close()
