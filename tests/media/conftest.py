"""Fixtures for the media engine tests: a running engine on a random port range, and phones."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest
import uvloop
from tests.media.phones import MUSIC_FREQ, Phone, PhoneFactory, random_port_range, tone

from callbridge.media import EmbeddedMediaEngine
from callbridge.media.port import Codec

# The server runs on uvloop; these run on both loops (the rest on the stock one, to stay fast).
ON_BOTH_LOOPS = (
    "test_two_party_relay",
    "test_conference_mix_minus_and_kick",
    "test_latches_to_the_source_actually_seen",
    "test_receives_rfc4733_events_and_relays_them",
    "test_garbage_is_dropped_and_counted",
    "test_stop_releases_everything",
    "test_stray_packets_on_a_recycled_port_never_reach_or_latch_the_new_leg",
    "test_stop_closes_parked_sockets_and_a_restarted_engine_gets_every_port",
)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if getattr(item, "originalname", item.name) in ON_BOTH_LOOPS:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture
def music_file(tmp_path: Path) -> Path:
    path = tmp_path / "music.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(tone(MUSIC_FREQ, 0, 8000))  # 1 s, a whole number of cycles
    return path


@pytest.fixture
async def engine(music_file: Path) -> AsyncIterator[EmbeddedMediaEngine]:
    low, high = random_port_range()
    eng = EmbeddedMediaEngine("127.0.0.1", low, high, music=music_file)
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop()


@pytest.fixture
async def phone(engine: EmbeddedMediaEngine) -> AsyncIterator[PhoneFactory]:
    """``await phone(leg_id, freq, codec=..., dtmf_pt=...)``: a sending phone on an allocated leg
    whose remote is set to the phone."""
    phones: list[Phone] = []

    async def make(
        leg_id: str,
        freq: float | None,
        codec: Codec = "PCMU",
        dtmf_pt: int | None = None,
        start: bool = True,
    ) -> Phone:
        p = await Phone.open(freq, codec)
        phones.append(p)
        addr = await engine.allocate(leg_id)
        p.target = (addr.host, addr.port)
        await engine.set_remote(leg_id, *p.addr, codec, dtmf_pt)
        if start:
            p.start()
        return p

    try:
        yield make
    finally:
        for p in phones:
            await p.close()
