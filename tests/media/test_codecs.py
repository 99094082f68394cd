"""RTP packets, G.711, RFC 4733 payloads, the receive buffer and the music source."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.media.phones import tone, tone_ratio

from callbridge.media import g711
from callbridge.media.dtmf import (
    DIGITS,
    END_PACKETS,
    GAP_TICKS,
    TONE_PACKETS,
    DtmfSender,
    TelephoneEvent,
    event_code,
)
from callbridge.media.mixer import MAX_BUFFERED_FRAMES, FrameBuffer, mix_minus
from callbridge.media.moh import MusicSource, load_default, load_wav, synthesize_default
from callbridge.media.rtp import RtpPacket, payload_of

# --------------------------------------------------------------------------- RTP


def test_rtp_round_trip_plain() -> None:
    packet = RtpPacket(0, True, 65535, 0xFFFFFFFF, 0x12345678, b"\xff" * 160)
    data = bytes(packet)
    assert data[:12] == bytes.fromhex("8080ffffffffffff12345678")
    assert RtpPacket.parse(data) == packet
    assert payload_of(data) == packet.payload


def test_rtp_round_trip_with_csrc_extension_and_padding() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence_number=7,
        timestamp=160,
        ssrc=1,
        payload=b"abc",
        csrc=[10, 11],
        extension_profile=0xBEDE,
        extension=b"\x10\xaa\x00\x00",
        padding=4,
    )
    data = bytes(packet)
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    assert len(data) == 12 + 8 + 4 + 4 + 3 + 4
    assert RtpPacket.parse(data) == packet
    assert payload_of(data) == b"abc"


@given(
    pt=st.integers(0, 127),
    marker=st.booleans(),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=200),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    ext_words=st.none() | st.integers(0, 4),
    padding=st.integers(0, 255),
)
def test_rtp_round_trip_property(
    pt: int,
    marker: bool,
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    csrc: list[int],
    ext_words: int | None,
    padding: int,
) -> None:
    packet = RtpPacket(
        pt,
        marker,
        seq,
        ts,
        ssrc,
        payload,
        csrc,
        None if ext_words is None else 1,
        bytes(4 * (ext_words or 0)),
        padding,
    )
    data = bytes(packet)
    assert RtpPacket.parse(data) == packet
    assert payload_of(data) == payload


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00",
        bytes(12),  # version 0
        b"\xc0" + bytes(11),  # version 3
        b"\x81" + bytes(11),  # one CSRC missing
        b"\x90" + bytes(11) + b"\x00\x00\x00\x02",  # extension longer than the packet
        b"\xa0" + bytes(11),  # padding byte 0
        b"\xa0" + bytes(10) + b"\x40",  # padding longer than the packet
    ],
)
def test_rtp_parse_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError):
        RtpPacket.parse(data)


@given(st.binary(min_size=1, max_size=64))
def test_payload_of_agrees_with_parse(data: bytes) -> None:
    data = bytes([0x80 | data[0] & 0x3F]) + data[1:]  # any flags, version 2
    try:
        packet = RtpPacket.parse(data)
    except ValueError:
        if len(data) >= 12:
            assert payload_of(data) is None
    else:
        assert payload_of(data) == packet.payload


# --------------------------------------------------------------------------- G.711


def test_g711_known_values() -> None:
    # ITU-T G.711 tables (as 16-bit linear): µ-law 0x00/0x80 are the extremes, 0xFF/0x7F zero;
    # A-law 0xD5/0x55 are the smallest steps either side of zero, 0xAA/0x2A the extremes.
    assert g711.decode(bytes([0x00, 0x80, 0xFF, 0x7F]), "PCMU") == _pcm(-32124, 32124, 0, 0)
    assert g711.decode(bytes([0xD5, 0x55, 0xAA, 0x2A]), "PCMA") == _pcm(8, -8, 32256, -32256)
    assert g711.encode(_pcm(0), "PCMU") == b"\xff"
    assert g711.encode(_pcm(0), "PCMA") == b"\xd5"
    assert g711.encode(_pcm(32767, -32768), "PCMU") == b"\x80\x00"
    assert g711.SILENT_FRAME["PCMU"] == b"\xff" * 160
    assert g711.SILENT_FRAME["PCMA"] == b"\xd5" * 160


def test_g711_transcoding_tables() -> None:
    assert g711.transcode_table("PCMU", "PCMU") is None
    ulaw = bytes(range(256))
    alaw = ulaw.translate(g711.ULAW_TO_ALAW)
    assert alaw == g711.encode(g711.decode(ulaw, "PCMU"), "PCMA")
    # a tone survives PCMU -> PCMA -> PCMU
    pcm = tone(1000, 0, 800)
    back = g711.decode(g711.encode(pcm, "PCMU").translate(g711.ULAW_TO_ALAW), "PCMA")
    assert tone_ratio(back, 1000) > 0.95
    assert g711.SILENT_FRAME["PCMU"].translate(g711.ULAW_TO_ALAW) == g711.SILENT_FRAME["PCMA"]


def test_mix_saturates_and_mix_minus_leaves_the_listener_out() -> None:
    assert g711.mix([_pcm(30000), _pcm(10000)]) == _pcm(32767)
    assert g711.mix([]) == g711.SILENT_PCM
    frames = {"a": _pcm(1), "b": _pcm(10), "c": _pcm(100)}
    assert mix_minus(frames, "a") == _pcm(110)
    assert mix_minus(frames, "c") == _pcm(11)
    assert mix_minus({"a": _pcm(1)}, "a") is None


def _pcm(*samples: int) -> bytes:
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


# --------------------------------------------------------------------------- RFC 4733


def test_telephone_event_payload() -> None:
    event = TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert bytes(event) == bytes([11, 0x8A, 0x03, 0x20])
    assert TelephoneEvent.parse(bytes(event)) == event
    assert event.digit == "#"
    assert TelephoneEvent(16, False, 0, 0).digit is None  # flash
    assert [event_code(d) for d in "0*#Ad"] == [0, 10, 11, 12, 15]
    assert DIGITS[event_code("9")] == "9"
    for bad in ("", "E", "12", "x"):
        with pytest.raises(ValueError):
            event_code(bad)
    with pytest.raises(ValueError):
        TelephoneEvent.parse(b"\x01\x02")


# --------------------------------------------------------------------------- receive buffer


def test_frame_buffer_takes_20ms_frames_and_caps_delay() -> None:
    buf = FrameBuffer()
    assert buf.pop() is None
    buf.push(b"\x01" * 480, 1.0)  # a 30 ms packet
    buf.push(b"\x02" * 480, 2.0)
    first = buf.pop()
    assert first == (b"\x01" * 320, 1.0)
    second = buf.pop()
    assert second == (b"\x01" * 160 + b"\x02" * 160, 2.0)
    third = buf.pop()
    assert third == (b"\x02" * 320, 2.0)
    assert buf.pop() is None and len(buf) == 0
    for i in range(MAX_BUFFERED_FRAMES + 3):
        buf.push(bytes([i]) * 320, float(i))
    assert len(buf) == MAX_BUFFERED_FRAMES * 320
    oldest = buf.pop()
    assert oldest is not None and oldest[1] == 3.0  # the oldest were dropped


# --------------------------------------------------------------------------- music


def test_bundled_music_is_8khz_and_not_silent() -> None:
    pcm = load_default()
    assert len(pcm) % g711.FRAME_BYTES == 0
    assert 4 <= len(pcm) / 16000 <= 20  # seconds
    assert g711.rms(pcm) > 1000
    bundled = Path(__file__).parents[2] / "src/callbridge/media/sounds/hold.wav"
    with wave.open(str(bundled), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    assert len(synthesize_default()) == len(pcm)


def test_music_loads_other_formats_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "stereo16k.wav"
    mono = tone(500, 0, 16000)  # pretend 16 kHz: 1 s of stereo after duplication
    stereo = b"".join(mono[i : i + 2] * 2 for i in range(0, len(mono), 2))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(stereo)
    pcm = load_wav(path)
    assert abs(len(pcm) - 16000) <= g711.FRAME_BYTES  # 1 s at 8 kHz, 16-bit
    source = MusicSource(pcm[: 2 * g711.FRAME_BYTES])
    first = source.frame("PCMU")
    assert source.frame("PCMU") is first  # encoded once per frame
    source.advance()
    source.advance()
    assert source.frame("PCMU") == first  # looped
    with pytest.raises(ValueError):
        MusicSource(b"\x00" * 10)


def test_dtmf_sender_packet_sequence() -> None:
    sender = DtmfSender("1#")
    packets = []
    busy = []
    for tick in range(40):
        packet = sender.step(tick * 160)
        busy.append(sender.busy)
        packets.append(packet)
        if sender.finished:
            break
    assert sender.finished
    sent = [p for p in packets if p is not None]
    assert len(sent) == 2 * (TONE_PACKETS + END_PACKETS)
    assert len(packets) == 2 * (TONE_PACKETS + END_PACKETS) + GAP_TICKS
    first, second = sent[:8], sent[8:]
    for group, code in ((first, 1), (second, 11)):
        events = [TelephoneEvent.parse(p.payload) for p in group]
        assert {e.event for e in events} == {code}
        assert [p.marker for p in group] == [True] + [False] * 7
        assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800, 800]
        assert [e.end for e in events] == [False] * 5 + [True] * 3
        assert len({p.timestamp for p in group}) == 1
    assert second[0].timestamp - first[0].timestamp == 160 * (
        TONE_PACKETS + END_PACKETS + GAP_TICKS
    )
    # busy from the start packet until the last end packet, not during the gap
    assert busy[:8] == [True] * 7 + [False] and busy[8:11] == [False] * 3


def test_dtmf_sender_abort_finishes_the_event_in_progress() -> None:
    sender = DtmfSender("123")
    assert sender.step(0) is not None
    sender.aborted = True
    rest = []
    while not sender.finished:
        rest.append(sender.step(0))
    assert [TelephoneEvent.parse(p.payload).end for p in rest if p] == [False] * 4 + [True] * 3
    assert DtmfSender("").finished
    with pytest.raises(ValueError):
        DtmfSender("1x")
