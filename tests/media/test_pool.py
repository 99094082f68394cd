"""The pool of released RTP sockets: quarantine, exhaustion, shrinking, shutdown, stray packets."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import socket
from pathlib import Path

import pytest
from tests.media.phones import Phone, random_port_range

from callbridge.adapters.clock import FakeClock
from callbridge.media import EmbeddedMediaEngine, MediaError, rtp_pool
from callbridge.media.embedded import POOL_IDLE, REUSE_DELAY


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settle() -> None:
    """Let the loop read what is in flight and finish closing sockets."""
    for _ in range(5):
        await asyncio.sleep(0.01)


async def started_engine(music_file: Path) -> tuple[EmbeddedMediaEngine, FakeClock, int]:
    """A running engine on 5 free even ports (from ``low``) with a fake clock; stop it after."""
    clock = FakeClock()
    low, high = random_port_range(10)
    engine = EmbeddedMediaEngine("127.0.0.1", low, high, clock=clock, music=music_file)
    await engine.start()
    return engine, clock, low


async def test_a_released_port_stays_bound_and_is_reused_after_its_quarantine(
    music_file: Path,
) -> None:
    engine, clock, low = await started_engine(music_file)
    try:
        first = (await engine.allocate("a")).port
        await engine.release("a")
        assert not bindable(first)  # parked: still ours, so no other process gets it meanwhile
        second = (await engine.allocate("b")).port
        assert second != first  # in quarantine: a fresh port from the range instead
        await engine.release("b")
        clock.advance(REUSE_DELAY)
        # least recently released first
        assert (await engine.allocate("c")).port == first
        assert (await engine.allocate("d")).port == second
        assert {(await engine.allocate(f"e{i}")).port for i in range(3)}.isdisjoint({first, second})
    finally:
        await engine.stop()


async def test_exhaustion_fails_as_without_the_pool_and_takes_quarantined_ports_first(
    music_file: Path,
) -> None:
    low, _ = random_port_range()
    engine = EmbeddedMediaEngine("127.0.0.1", low, low + 3, music=music_file)  # 2 even ports
    await engine.start()
    try:
        x = await engine.allocate("x")
        await engine.allocate("y")
        with pytest.raises(MediaError, match="no free RTP port"):
            await engine.allocate("z")
        await engine.release("x")
        # the range has nothing else: the port comes out of quarantine early
        assert await engine.allocate("z") == x
        with pytest.raises(MediaError, match="no free RTP port"):
            await engine.allocate("w")
    finally:
        await engine.stop()
    assert bindable(low) and bindable(low + 2)


async def test_the_pool_is_bounded_and_shrinks_when_idle(music_file: Path) -> None:
    clock = FakeClock()
    low, high = random_port_range(20)
    engine = EmbeddedMediaEngine("127.0.0.1", low, high, clock=clock, music=music_file, pool_max=2)
    before = open_fds()
    await engine.start()
    try:
        ports = [(await engine.allocate(f"l{i}")).port for i in range(3)]
        for i in range(3):
            await engine.release(f"l{i}")
        await settle()
        # two parked, the third closed at once
        assert [bindable(p) for p in ports] == [False, False, True]
        clock.advance(POOL_IDLE - 1)
        await settle()
        assert not bindable(ports[0])
        clock.advance(1)
        await settle()
        assert all(bindable(p) for p in ports)
        gc.collect()
        assert open_fds() == before
        # and the pool fills again afterwards
        again = (await engine.allocate("m")).port
        await engine.release("m")
        assert not bindable(again)
    finally:
        await engine.stop()


async def test_stop_closes_parked_sockets_and_a_restarted_engine_gets_every_port(
    music_file: Path,
) -> None:
    low, high = random_port_range(12)  # 6 even ports
    before = open_fds()
    engine = EmbeddedMediaEngine("127.0.0.1", low, high, music=music_file)
    await engine.start()
    ports = [(await engine.allocate(f"l{i}")).port for i in range(6)]
    for i in range(4):
        await engine.release(f"l{i}")  # 4 parked, 2 live
    await engine.stop()
    gc.collect()  # a socket left open would raise ResourceWarning (an error here) now
    assert open_fds() == before
    assert all(bindable(p) for p in ports)
    with pytest.raises(MediaError):
        await engine.allocate("again")
    restarted = EmbeddedMediaEngine("127.0.0.1", low, high, music=music_file)
    await restarted.start()
    try:
        assert sorted([(await restarted.allocate(f"r{i}")).port for i in range(6)]) == ports
    finally:
        await restarted.stop()


async def test_stray_packets_on_a_recycled_port_never_reach_or_latch_the_new_leg(
    music_file: Path,
) -> None:
    engine, clock, low = await started_engine(music_file)
    old_peer = await Phone.open(440.0)
    new_peer = await Phone.open(880.0)
    try:
        address = await engine.allocate("old")
        await engine.set_remote("old", *old_peer.addr, "PCMU")
        old_peer.target = (address.host, address.port)
        old_peer.send_frame()
        await settle()
        assert engine.stats("old").last_seen is not None  # latched to the old peer's stream
        await engine.release("old")

        for _ in range(3):  # the old peer goes on sending to the parked port: nobody gets it
            old_peer.send_frame()
        await settle()
        clock.advance(REUSE_DELAY)
        assert await engine.allocate("new") == address
        assert engine.stats("new").packets_in == 0
        await engine.set_remote("new", *new_peer.addr, "PCMU")

        for _ in range(3):  # after the reuse: counted and dropped, never latched
            old_peer.send_frame()
        await settle()
        stats = engine.stats("new")
        assert (stats.packets_in, stats.dropped, stats.last_seen) == (3, 3, None)
        clock.advance(1.0)  # not even once the leg has been silent for a while
        old_peer.send_frame()
        await settle()
        assert engine.stats("new").last_seen is None

        new_peer.target = (address.host, address.port)
        new_peer.send_frame()
        await settle()
        assert engine.stats("new").last_seen is not None  # the new call's own peer latches
        await engine.release("new")

        # The new peer's phone places another call and lands on the same port: its last call's
        # stream (the same SSRC) is still refused, its new stream (a new SSRC) is accepted.
        clock.advance(REUSE_DELAY)
        assert await engine.allocate("again") == address
        await engine.set_remote("again", *new_peer.addr, "PCMU")
        new_peer.send_frame()
        await settle()
        assert engine.stats("again").last_seen is None
        new_peer.ssrc ^= 0x5A5A5A5A
        new_peer.send_frame()
        await settle()
        assert engine.stats("again").last_seen is not None
    finally:
        await old_peer.close()
        await new_peer.close()
        await engine.stop()


async def test_the_pool_keeps_to_a_quarter_of_the_file_descriptor_limit(
    music_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    monkeypatch.setattr(rtp_pool.resource, "getrlimit", lambda _: (8, hard))
    low, high = random_port_range(20)
    engine = EmbeddedMediaEngine("127.0.0.1", low, high, music=music_file)
    await engine.start()
    try:
        ports = [(await engine.allocate(f"l{i}")).port for i in range(4)]
        for i in range(4):
            await engine.release(f"l{i}")
        assert [bindable(p) for p in ports] == [False, False, True, True]  # 8 // 4 parked
    finally:
        await engine.stop()


async def test_a_parked_socket_closed_under_the_pool_is_never_handed_out(
    music_file: Path,
) -> None:
    engine, clock, low = await started_engine(music_file)
    try:
        first = (await engine.allocate("a")).port
        await engine.allocate("b")
        sock = engine._legs["a"].sock
        assert sock is not None and sock.transport is not None
        await engine.release("a")
        sock.transport.close()  # as the loop does on a fatal socket error
        await settle()
        assert bindable(first)
        clock.advance(REUSE_DELAY)
        address = await engine.allocate("c")
        assert address.port != first
        await engine.set_remote("c", "127.0.0.1", 9, "PCMU")
    finally:
        await engine.stop()
