"""The embedded media engine on loopback UDP, proven by what python "phones" receive.

Every phone sends its own tone (20 ms µ-law frames, 50 packets/s); a Goertzel detector tells which
tones each phone heard in a short window after each step.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import socket
import wave
from pathlib import Path

import pytest
from tests.media.phones import (
    MUSIC_FREQ,
    Phone,
    PhoneFactory,
    absent,
    hears,
    random_port_range,
    tone_ratio,
)

from callbridge.adapters.clock import FakeClock
from callbridge.media import EmbeddedMediaEngine, MediaEngine, MediaError
from callbridge.media.dtmf import TelephoneEvent
from callbridge.media.embedded import _ip_address
from callbridge.media.rtp import RtpPacket

A, B, C = 440.0, 1000.0, 1800.0
SETTLE = 0.06  # after a change: in-flight packets and buffered frames drain
WINDOW = 0.16  # listening window: 8 frames


async def window(*phones: Phone, length: float = WINDOW) -> list[int]:
    """Let the last change settle, then listen for ``length``; return each phone's mark."""
    await asyncio.sleep(SETTLE)
    marks = [p.mark() for p in phones]
    await asyncio.sleep(length)
    return marks


def packet_rate_ok(count: int, length: float = WINDOW) -> bool:
    expected = length * 50
    return expected * 0.6 <= count <= expected * 1.4


def all_silent(phone: Phone, since: int) -> bool:
    packets = phone.packets(since)
    return bool(packets) and all(set(p.payload) <= {0xFF} for p in packets)


def test_engine_implements_the_port() -> None:
    assert isinstance(EmbeddedMediaEngine(), MediaEngine)


async def test_two_party_relay(engine: EmbeddedMediaEngine, phone: PhoneFactory) -> None:
    a = await phone("a", A)
    b = await phone("b", B)
    await engine.connect("br", ["a", "b"])
    ma, mb = await window(a, b)
    assert hears(a.audio(ma), B) and absent(a.audio(ma), A)
    assert hears(b.audio(mb), A) and absent(b.audio(mb), B)
    assert packet_rate_ok(len(a.packets(ma))) and packet_rate_ok(len(b.packets(mb)))
    # the engine's own stream, not the peer's: one SSRC per receiving leg, not the sender's
    ssrcs = {p.ssrc for p in a.packets(ma)}
    assert len(ssrcs) == 1 and b.ssrc not in ssrcs
    stats = engine.stats("a")
    assert stats.packets_in > 0 and stats.dropped == 0 and stats.last_seen is not None
    assert stats.packets_out >= len(a.received) and stats.bytes_out >= 172 * len(a.received)


async def test_transcodes_between_pcmu_and_pcma(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A, "PCMU")
    b = await phone("b", B, "PCMA")
    await engine.connect("br", ["a", "b"])
    ma, mb = await window(a, b)
    assert {p.payload_type for p in a.packets(ma)} == {0}
    assert {p.payload_type for p in b.packets(mb)} == {8}
    assert hears(a.audio(ma), B) and hears(b.audio(mb), A)


async def test_hold_plays_music_to_the_held_party_and_silence_to_the_other(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A)
    b = await phone("b", B)
    await engine.connect("br", ["a", "b"])
    await engine.hold("a")
    ma, mb = await window(a, b)
    # the held party hears only the music
    assert hears(a.audio(ma), MUSIC_FREQ) and absent(a.audio(ma), B)
    # the other party gets a steady stream of silence: neither the held party nor the music
    assert packet_rate_ok(len(b.packets(mb))) and all_silent(b, mb)
    await engine.unhold("a")
    ma, mb = await window(a, b)
    assert hears(a.audio(ma), B) and absent(a.audio(ma), MUSIC_FREQ)
    assert hears(b.audio(mb), A)


async def test_mute_silences_the_muted_party_only(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A)
    b = await phone("b", B)
    await engine.connect("br", ["a", "b"])
    await engine.mute("a")
    ma, mb = await window(a, b)
    assert packet_rate_ok(len(b.packets(mb))) and all_silent(b, mb)
    assert hears(a.audio(ma), B)
    await engine.unmute("a")
    (mb,) = await window(b)
    assert hears(b.audio(mb), A)


async def test_conference_mix_minus_and_kick(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A)
    b = await phone("b", B)
    c = await phone("c", C, "PCMA")
    await engine.connect("conf", ["a", "b"])
    await engine.connect("conf", ["c"])
    ma, mb, mc = await window(a, b, c)
    for p, mark, own, others in ((a, ma, A, (B, C)), (b, mb, B, (A, C)), (c, mc, C, (A, B))):
        heard = p.audio(mark)
        assert all(hears(heard, f) for f in others), p.freq
        assert absent(heard, own), p.freq
        assert packet_rate_ok(len(p.packets(mark)))
    # a held conference party hears music; the others stop hearing it
    await engine.hold("b")
    ma, mb = await window(a, b)
    assert hears(b.audio(mb), MUSIC_FREQ) and absent(b.audio(mb), A)
    assert hears(a.audio(ma), C) and absent(a.audio(ma), B) and absent(a.audio(ma), MUSIC_FREQ)
    await engine.unhold("b")
    # kick C: it hears nothing at all any more, and A and B no longer hear it
    await engine.disconnect("conf", "c")
    ma, mb, mc = await window(a, b, c)
    assert c.packets(mc) == []
    assert hears(a.audio(ma), B) and absent(a.audio(ma), C)
    assert hears(b.audio(mb), A) and absent(b.audio(mb), C)


async def test_a_leg_left_alone_in_its_bridge_gets_no_packets(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A)
    await phone("b", B)
    await engine.connect("br", ["a", "b"])
    await engine.release("b")  # its peer hung up: the core hangs A up next
    (ma,) = await window(a)
    assert a.packets(ma) == []
    await phone("c", C)  # a new peer joins: the relay resumes
    await engine.connect("br", ["c"])
    (ma,) = await window(a)
    assert hears(a.audio(ma), C) and packet_rate_ok(len(a.packets(ma)))


async def test_music_for_a_leg_outside_any_bridge(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A)
    b = await phone("b", B)
    await engine.start_music("a")
    ma, mb = await window(a, b)
    assert hears(a.audio(ma), MUSIC_FREQ) and packet_rate_ok(len(a.packets(ma)))
    assert b.packets(mb) == []  # no bridge, no music: nothing
    await engine.connect("br", ["a", "b"])  # connecting ends the music
    (ma,) = await window(a)
    assert hears(a.audio(ma), B) and absent(a.audio(ma), MUSIC_FREQ)


async def test_latches_to_the_source_actually_seen(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A, start=False)
    b = await phone("b", B)
    # the SDP said a port nobody listens on (a phone behind NAT): the engine must answer the
    # source of the packets instead
    await engine.set_remote("a", "127.0.0.1", 9, "PCMU")
    await engine.connect("br", ["a", "b"])
    a.start()
    (ma,) = await window(a)
    assert hears(a.audio(ma), B)
    # the NAT binding changes: same stream (SSRC) from a new port -> followed at once
    moved = await Phone.open(A)
    try:
        moved.ssrc, moved.target = a.ssrc, a.target
        await a.close()
        moved.start()
        (mm,) = await window(moved)
        assert hears(moved.audio(mm), B)
        assert hears(b.audio(b.mark() - 8), A)
        # a stranger with another SSRC cannot take the live stream over
        stranger = await Phone.open(C)
        try:
            stranger.target = moved.target
            stranger.start()
            dropped = engine.stats("a").dropped
            ms, mm, mb = await window(stranger, moved, b)
            assert stranger.packets(ms) == []
            assert hears(moved.audio(mm), B) and absent(b.audio(mb), C)
            assert engine.stats("a").dropped > dropped
        finally:
            await stranger.close()
    finally:
        await moved.close()


async def test_outgoing_stream_stays_continuous_across_rebridging(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A)
    await phone("b", B)
    await phone("c", C)
    await engine.connect("br1", ["a", "b"])
    await asyncio.sleep(0.1)
    await engine.disconnect("br1", "a")  # park: silence, then music
    await asyncio.sleep(0.06)
    await engine.start_music("a")
    await asyncio.sleep(0.1)
    await engine.connect("br2", ["a", "c"])  # unpark to someone else
    await asyncio.sleep(0.1)
    await engine.hold("a")
    await asyncio.sleep(0.06)
    await engine.unhold("a")
    await asyncio.sleep(0.1)

    received = a.received
    assert len({r.packet.ssrc for r in received}) == 1
    for prev, cur in itertools.pairwise(received):
        assert cur.packet.sequence_number == (prev.packet.sequence_number + 1) & 0xFFFF
        dts = (cur.packet.timestamp - prev.packet.timestamp) & 0xFFFFFFFF
        assert 0 < dts < 0x80000000, "timestamp went backwards"
        # the timestamp follows wall time: no jump a jitter buffer would choke on
        assert abs(dts / 8000 - (cur.at - prev.at)) < 0.045
    heard = a.audio()
    assert hears(heard[: len(heard) // 4], B)
    assert sum(1 for r in received if r.packet.marker) >= 3  # each change of source is marked


async def test_recording_leaves_the_paused_stretch_out(
    engine: EmbeddedMediaEngine, phone: PhoneFactory, tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    secret = 2500.0  # what the caller says while the recording is paused (a card number)
    a = await phone("a", A)
    await phone("b", B)
    await engine.connect("br", ["a", "b"])
    await asyncio.sleep(0.06)
    path = tmp_path / "rec" / "call.wav"
    started = loop.time()
    await engine.record_start("r1", ["a", "b"], path)
    await asyncio.sleep(0.2)
    paused = loop.time()
    await engine.record_pause("r1")
    a.freq = secret
    await asyncio.sleep(0.2)
    a.freq = A
    await asyncio.sleep(0.06)
    resumed = loop.time()
    await engine.record_resume("r1")
    await asyncio.sleep(0.2)
    stopped = loop.time()
    info = await engine.record_stop("r1")

    unpaused = (paused - started) + (stopped - resumed)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        pcm = wav.readframes(wav.getnframes())
        duration = wav.getnframes() / 8000
    assert abs(duration - unpaused) <= 0.02, (duration, unpaused)
    assert info.duration_s == duration and info.path == str(path)
    assert info.leg_ids == ("a", "b")
    assert len(info.gaps) == 1
    gap = info.gaps[0]
    assert abs(gap.at_s - (paused - started)) <= 0.02
    assert abs(gap.duration_s - (resumed - paused)) <= 0.02
    assert tone_ratio(pcm, A) > 0.1 and tone_ratio(pcm, B) > 0.1
    assert absent(pcm, secret)


async def test_recording_excludes_muted_and_held_legs(
    engine: EmbeddedMediaEngine, phone: PhoneFactory, tmp_path: Path
) -> None:
    await phone("a", A)
    await phone("b", B)
    await engine.connect("br", ["a", "b"])
    await engine.mute("a")
    await engine.hold("b")
    await engine.record_start("r", ["a", "b"], tmp_path / "r.wav")
    await asyncio.sleep(0.2)
    info = await engine.record_stop("r")
    with wave.open(info.path, "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
    assert 0.18 <= info.duration_s <= 0.22 and info.gaps == ()
    assert pcm == bytes(len(pcm))
    with pytest.raises(MediaError):
        await engine.record_stop("r")


async def test_sends_rfc4733_events(engine: EmbeddedMediaEngine, phone: PhoneFactory) -> None:
    a = await phone("a", A, dtmf_pt=101)
    await phone("b", B)
    await engine.connect("br", ["a", "b"])
    await asyncio.sleep(0.06)
    mark = a.mark()
    await engine.send_dtmf("a", "1#")
    await asyncio.sleep(0.04)
    packets = a.packets(mark)
    events = [p for p in packets if p.payload_type == 101]
    by_ts: dict[int, list[RtpPacket]] = {}
    for p in events:
        by_ts.setdefault(p.timestamp, []).append(p)
    assert len(by_ts) == 2
    for (_ts, group), digit in zip(sorted(by_ts.items()), (1, 11), strict=True):
        parsed = [TelephoneEvent.parse(p.payload) for p in group]
        assert {e.event for e in parsed} == {digit}
        assert group[0].marker and not any(p.marker for p in group[1:])
        ends = [e for e in parsed if e.end]
        assert len(ends) == 3 and len({e.duration for e in ends}) == 1
        assert not any(e.end for e in parsed[:-3])
        durations = [e.duration for e in parsed]
        assert durations == sorted(durations) and durations[-1] == 800
        assert all(e.volume == 10 for e in parsed)
        # no audio is sent to the leg while an event is on
        first = packets.index(group[0])
        last = packets.index(group[-1])
        assert all(p.payload_type == 101 for p in packets[first : last + 1])
    # one continuous stream with the audio around it
    seqs = [p.sequence_number for p in packets]
    assert all((b - a_) & 0xFFFF == 1 for a_, b in itertools.pairwise(seqs))
    assert len({p.ssrc for p in packets}) == 1
    with pytest.raises(MediaError):
        await engine.send_dtmf("b", "1")  # no telephone-event negotiated on b
    with pytest.raises(MediaError):
        await engine.send_dtmf("a", "x")


async def test_receives_rfc4733_events_and_relays_them(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    heard: list[tuple[str, str]] = []
    engine.on_dtmf = lambda leg_id, digit: heard.append((leg_id, digit))
    a = await phone("a", None, dtmf_pt=101)
    b = await phone("b", B, dtmf_pt=96)
    await engine.connect("br", ["a", "b"])
    await asyncio.sleep(0.04)
    for code, ts in ((5, 16000), (10, 17600)):
        for duration in (160, 320, 480):
            a.send_event(code, ts, duration, end=False, pt=101)
            await asyncio.sleep(0.005)
        for _ in range(3):
            a.send_event(code, ts, 480, end=True, pt=101)
            await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert heard == [("a", "5"), ("a", "*")]
    relayed = [TelephoneEvent.parse(p.payload) for p in b.packets(pt=96)]
    assert [e.event for e in relayed] == [5] * 6 + [10] * 6


async def test_ports_are_released_and_reused(music_file: Path) -> None:
    """Without the pool (``pool_max=0``) a released port is closed at once; with it, see
    ``test_pool.py``."""
    low, _ = random_port_range()
    # 4 even ports
    engine = EmbeddedMediaEngine("127.0.0.1", low, low + 7, music=music_file, pool_max=0)
    await engine.start()
    try:
        addresses = [await engine.allocate(f"l{i}") for i in range(4)]
        ports = {a.port for a in addresses}
        assert len(ports) == 4 and all(p % 2 == 0 for p in ports)
        assert await engine.allocate("l0") == addresses[0]  # idempotent
        with pytest.raises(MediaError, match="no free RTP port"):
            await engine.allocate("l4")
        await engine.release("l2")
        await engine.release("l2")  # idempotent
        with pytest.raises(MediaError):
            engine.stats("l2")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", addresses[2].port))  # really closed
        assert (await engine.allocate("l4")).port == addresses[2].port
    finally:
        await engine.stop()


async def test_skips_ports_held_by_other_processes(music_file: Path) -> None:
    low, _ = random_port_range()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", low))
        engine = EmbeddedMediaEngine("127.0.0.1", low, low + 3, music=music_file)
        await engine.start()
        try:
            assert (await engine.allocate("x")).port == low + 2
        finally:
            await engine.stop()


GARBAGE = [
    b"",
    b"\x80",
    b"\x80\x00\x00",  # short
    bytes(12),  # version 0
    b"\x40" + bytes(171),  # version 1
    b"\x80\x63" + bytes(170),  # payload type 99, not negotiated
    b"\x8f\x00" + bytes(20),  # 15 CSRCs announced, not there
    b"\x90\x00" + bytes(10) + b"\x00\x00\xff\xff",  # extension longer than the packet
    b"\xa0\x00" + bytes(10) + b"\x00\x00\x00\xff",  # padding longer than the packet
    b"\x80\x65" + bytes(10) + b"\x01",  # telephone-event payload too short
    bytes(range(256)) * 4,
]


async def test_garbage_is_dropped_and_counted(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A, dtmf_pt=101)
    b = await phone("b", B)
    await engine.connect("br", ["a", "b"])
    address = a.target
    assert address is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        junk.bind(("127.0.0.1", 0))
        for _ in range(3):
            for datagram in GARBAGE:
                junk.sendto(datagram, address)
            for _ in range(50):
                junk.sendto(os.urandom(172), address)
        ma, mb = await window(a, b)
        junk.setblocking(False)
        with pytest.raises(BlockingIOError):
            junk.recv(2048)  # garbage never latched the leg to its source
    assert engine.stats("a").dropped >= 3 * len(GARBAGE) - 3  # the empty datagrams may be lost
    assert hears(a.audio(ma), B) and hears(b.audio(mb), A)


async def test_stop_releases_everything(music_file: Path, tmp_path: Path) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    low, high = random_port_range(20)
    engine = EmbeddedMediaEngine("127.0.0.1", low, high, music=music_file)
    before = open_fds()
    await engine.start()
    addresses = [await engine.allocate(f"l{i}") for i in range(6)]
    for i in range(len(addresses)):
        await engine.set_remote(f"l{i}", "127.0.0.1", 9, "PCMU", 101)
    await engine.connect("conf", ["l0", "l1", "l2"])
    await engine.start_music("l3")
    await engine.record_start("r", ["l0", "l1"], tmp_path / "r.wav")
    dtmf = asyncio.ensure_future(engine.send_dtmf("l4", "123"))
    await asyncio.sleep(0.05)
    await engine.stop()
    await asyncio.wait_for(dtmf, 1)  # a pending send ends with the leg
    gc.collect()  # a socket left open would raise ResourceWarning (an error here) now
    assert open_fds() == before
    for address in addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", address.port))
    with wave.open(str(tmp_path / "r.wav"), "rb") as wav:  # finalised
        assert wav.getnframes() > 0
    with pytest.raises(MediaError):
        await engine.allocate("again")
    await engine.stop()  # idempotent


async def test_rejects_bad_commands(engine: EmbeddedMediaEngine) -> None:
    await engine.allocate("a")
    for args in (
        ("a", "phone.example", 4000, "PCMU"),  # not an IP address: never resolve on the loop
        ("a", "::1", 4000, "PCMU"),  # IPv6 peer, IPv4 sockets
        ("a", "127.0.0.1", 0, "PCMU"),
        ("a", "127.0.0.1", 4000, "G722"),
        ("a", "127.0.0.1", 4000, "PCMU", 13),  # telephone-event must be dynamic
        ("nope", "127.0.0.1", 4000, "PCMU"),
    ):
        with pytest.raises(MediaError):
            await engine.set_remote(*args)  # type: ignore[arg-type]
    for call in (engine.hold("nope"), engine.connect("b", ["a", "nope"]), engine.record_pause("r")):
        with pytest.raises(MediaError):
            await call
    with pytest.raises(MediaError):
        await engine.record_start("r", [], "/tmp/never.wav")
    await engine.disconnect("no-bridge", "a")  # idempotent
    await engine.release("nope")


async def test_ticks_follow_the_injected_clock(music_file: Path) -> None:
    clock = FakeClock()
    low, high = random_port_range(10)
    engine = EmbeddedMediaEngine("127.0.0.1", low, high, clock=clock, music=music_file)
    await engine.start()
    listener = await Phone.open(None)
    try:
        await engine.allocate("a")
        await engine.set_remote("a", *listener.addr, "PCMU")
        await engine.start_music("a")
        await asyncio.sleep(0.06)
        assert listener.received == []  # real time passing does not tick this engine
        for _ in range(5):
            clock.advance(0.02)
            await asyncio.sleep(0.005)
        assert len(listener.received) == 5
        stamps = [r.packet.timestamp for r in listener.received]
        assert [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)] == [160] * 4
    finally:
        await listener.close()
        await engine.stop()


def test_remote_hosts_are_parsed_once_and_canonical() -> None:
    for _ in range(2):  # the second answer comes from the cache, and is the same
        assert _ip_address("0:0:0:0:0:0:0:1") == ("::1", 6)
        assert _ip_address("192.0.2.10") == ("192.0.2.10", 4)
        assert _ip_address("phone.example") is None
        assert _ip_address("192.0.2.300") is None
