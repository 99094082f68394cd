"""Supervision in the embedded engine, proven by what tone phones receive.

A (agent, 440 Hz) and B (customer, 1000 Hz) talk; S (supervisor, 1800 Hz) joins their bridge with
an audibility: heard by nobody (listen), by the agent only (whisper) or by everybody (barge). The
supervisor always hears both sides.
"""

from __future__ import annotations

import asyncio

from tests.media.phones import Phone, PhoneFactory, absent, hears

from callbridge.media import EmbeddedMediaEngine

A, B, S = 440.0, 1000.0, 1800.0
SETTLE = 0.06
WINDOW = 0.16

MODES: dict[str, list[str] | None] = {"listen": [], "whisper": ["a"], "barge": None}


async def window(*phones: Phone) -> list[int]:
    await asyncio.sleep(SETTLE)
    marks = [p.mark() for p in phones]
    await asyncio.sleep(WINDOW)
    return marks


async def check(a: Phone, b: Phone, s: Phone, mode: str) -> None:
    ma, mb, ms = await window(a, b, s)
    heard_a, heard_b, heard_s = a.audio(ma), b.audio(mb), s.audio(ms)
    # the supervisor hears both sides, never itself
    assert hears(heard_s, A) and hears(heard_s, B) and absent(heard_s, S), mode
    # the agent and the customer always hear each other
    assert hears(heard_a, B) and hears(heard_b, A), mode
    agent_hears_s = mode in ("whisper", "barge")
    customer_hears_s = mode == "barge"
    assert (hears if agent_hears_s else absent)(heard_a, S), mode
    assert (hears if customer_hears_s else absent)(heard_b, S), mode


async def test_listen_whisper_barge_and_switching(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A)
    b = await phone("b", B)
    s = await phone("s", S)
    await engine.connect("br", ["a", "b"])
    # as the core does it: the audibility first, then the bridge
    await engine.set_audibility("s", MODES["listen"])
    await engine.connect("br", ["s"])
    await check(a, b, s, "listen")
    for mode in ("whisper", "barge", "listen"):
        await engine.set_audibility("s", MODES[mode])
        await check(a, b, s, mode)


async def test_a_listener_left_with_one_party_still_hears_it(
    engine: EmbeddedMediaEngine, phone: PhoneFactory
) -> None:
    a = await phone("a", A)
    await phone("b", B)
    s = await phone("s", S)
    await engine.set_audibility("s", [])
    await engine.connect("br", ["a", "b", "s"])
    await engine.disconnect("br", "b")  # two legs left, one of them restricted: still mixed
    ma, ms = await window(a, s)
    assert hears(s.audio(ms), A)
    assert absent(a.audio(ma), S)
    await engine.set_audibility("s", None)
    (ma,) = await window(a)
    assert hears(a.audio(ma), S)
