"""The fast SDP reader and writer against the reference ones: equal results for every input.

``parse_remote`` reads a body in one pass (``_read``) and leaves anything unusual, every error
among it, to the reference way (``_parse_reference``: the line check, aiosipua's parser, then the
same ``_remote``). Here both ways read the test corpus, real peers' bodies, the SDP of the RFC
4475 torture messages, our own offers and answers, and thousands of seeded mutations of them:
the fast way must give the same ``RemoteMedia`` or leave the body to the reference way, which
decides every ``SdpError`` (its reason goes into a SIP reason phrase). Our offers and answers are
compared byte for byte with what aiosipua's serialiser made of them before.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from aiosipua.sdp import (
    ConnectionData,
    MediaDescription,
    Origin,
    SdpMessage,
    TimingField,
    serialize_sdp,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.sip.test_sdp import BASE, MALFORMED

from callbridge.media.port import Codec, MediaAddress
from callbridge.sip import sdp
from callbridge.sip.sdp import (
    DIRECTIONS,
    STATIC_PT,
    Direction,
    RemoteMedia,
    SdpError,
    answer,
    build_offer,
    combine,
    parse_remote,
)

DATA = Path(__file__).parent / "sdp"
TORTURE = Path(__file__).parent / "torture"

# The bodies SIPp sends in bench/sip.py (bench/sipp/uac.xml, uas.xml) and the sip_path bench.
SIPP = (
    b"v=0\r\no=- 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)

# Lines that take the reader's unusual turns (aiosipua's defaults, int(), strip, levels).
ODD_LINES = [
    "a=sendonly",
    "a=recvonly:x",
    "a=inactive",
    "a=ptime:30",
    "a=ptime: 20 ",
    "a=ptime",
    "a=ptime:0",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap: 0 PCMU/8000",
    "a=rtpmap:0 PCMU/ 8000",
    "a=rtpmap:0 PCMU/8000/x",
    "a=rtpmap:0 PCMU/8000/1",
    "a=rtpmap:0 PCMU/8000/2",
    "a=rtpmap:0",
    "a=rtpmap:200 PCMU/8000",
    "a=rtpmap:+0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=rtpmap:96 PCMA/8000",
    "a=fmtp:101 0-15",
    "a=fmtp:x y",
    "a=fmtp:101",
    "a=fmtp:101  1,2 ",
    "b=AS:64",
    "b=AS:x",
    "b=AS",
    "b=AS:",
    "t=0 0",
    "t=1 x",
    "t=1",
    "v=0",
    "v=1",
    "v=x",
    "o=- 1",
    "o=- 7 8 IN IP4 192.0.2.9",
    "o=- 7 x IN IP4 192.0.2.9",
    "c=IN IP4",
    "c=IN IP4 0.0.0.0",
    "c=IN IP6 ::",
    "c=IN IP6 2001:db8::1",
    "c=IN IP4 224.0.0.1",
    "c=IN IP4 pbx.example",
    "c=ATM NSAP 1",
    "c=IN IP4 192.0.2.7 ",
    "m=audio 4000 RTP/AVP 0 8",
    "m= audio 4000 RTP/AVP 0",
    "m=audio 0 RTP/AVP 0",
    "m=audio 4000 RTP/SAVP 0",
    "m=audio 4000 rtp/avp 8",
    "m=audio 99999 RTP/AVP 0",
    "m=video 4002 RTP/AVP 31",
    "m=audio 4000 RTP/AVP 0 x",
    "m=audio 4000",
    "s=",
    "s= ",
    "i=info",
    "x=unknown",
    "a=x\t",
    "",
    " ",
]

# What a mutation inserts: SDP's punctuation, digits, control and non-ASCII characters.
TOKENS = [
    "\r\n",
    "\n",
    "\r",
    " ",
    "\t",
    ":",
    "=",
    "/",
    "-",
    "+",
    "_",
    "0",
    "1",
    "8",
    "101",
    "a=",
    "m=",
    "c=",
    "IP6",
    "\x00",
    "\x0b",
    "\x1c",
    "\x85",
    "\u2028",
    "é",
    "٣",
    "²",
    "\u3000",
]


def corpus() -> list[bytes]:
    """Every SDP body the tests know, as sent on the wire (CRLF) and with bare LF line ends."""
    bodies = [SIPP]
    for path in sorted(DATA.iterdir()):
        raw = path.read_bytes().replace(b"\r\n", b"\n")
        bodies += [raw.replace(b"\n", b"\r\n"), raw]
    for path in sorted(TORTURE.glob("*.dat")):  # the RFC 4475 messages' bodies, SDP or not
        body = path.read_bytes().partition(b"\r\n\r\n")[2]
        if body:
            bodies.append(body)
    bodies += MALFORMED.values()
    for line in ODD_LINES:  # at the media level, then at the session level
        bodies.append((BASE + f"m=audio 4000 RTP/AVP 0 8 101\r\n{line}\r\n").encode())
        bodies.append((BASE + f"{line}\r\nm=audio 4000 RTP/AVP 0\r\n").encode())
    address = MediaAddress("203.0.113.5", 20000)
    for direction in DIRECTIONS:
        offer = build_offer(address, session_id=1, version=2, direction=direction)
        bodies.append(offer)
        parsed = parse_remote(offer)
        assert isinstance(parsed, RemoteMedia)
        reply = answer(parsed, address, session_id=3, version=4)
        assert not isinstance(reply, SdpError)
        bodies.append(reply[0])
    return bodies


CORPUS = corpus()


def reference(body: bytes) -> RemoteMedia | SdpError:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return SdpError("SDP is not UTF-8", 400)
    return sdp._parse_reference(text)


def same(body: bytes) -> None:
    assert parse_remote(body) == reference(body), body


def mutate(body: bytes, rng: random.Random) -> bytes:
    """A seeded mutation at the character or the line level."""
    text = body.decode("utf-8", "replace")
    for _ in range(rng.randint(1, 3)):
        lines = text.split("\r\n")
        op = rng.randrange(6)
        at = rng.randrange(len(lines))
        if op == 0:
            lines.insert(at, rng.choice(ODD_LINES))
        elif op == 1:
            del lines[at]
        elif op == 2:
            lines.insert(at, lines[rng.randrange(len(lines))])
        elif op == 3:
            other = rng.randrange(len(lines))
            lines[at], lines[other] = lines[other], lines[at]
        text = "\r\n".join(lines)
        if op >= 4:
            pos = rng.randrange(len(text) + 1)
            cut = rng.randint(0, 3)
            text = text[:pos] + rng.choice(TOKENS) * rng.randint(0, 2) + text[pos + cut :]
    return text.encode("utf-8")


def test_the_fast_reader_reads_the_usual_bodies() -> None:
    """Not vacuous: real peers' bodies and ours take the fast way, not the reference one."""
    usual = [SIPP, *(build_offer(MediaAddress("::1", 9), session_id=1, version=1),)]
    usual += [(DATA / name).read_bytes() for name in ("baresip_1_0_0.sdp", "desk_phone.sdp")]
    for body in usual:
        assert sdp._read(body.decode()) is not None


@pytest.mark.parametrize("body", CORPUS)
def test_corpus_reads_the_same(body: bytes) -> None:
    same(body)


def test_seeded_mutations_read_the_same() -> None:
    rng = random.Random(4566)
    fast = 0
    for _ in range(6000):
        body = mutate(rng.choice(CORPUS), rng)
        same(body)
        fast += sdp._read(body.decode("utf-8", "replace")) is not None
    assert fast > 1000  # many mutants are still usual enough for the fast reader


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(ODD_LINES), max_size=12), st.sampled_from(["\r\n", "\n"]))
def test_random_line_mixes_read_the_same(lines: list[str], end: str) -> None:
    body = "v=0" + end + end.join(["o=- 1 1 IN IP4 192.0.2.1", *lines]) + end
    same(body.encode())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_reads_the_same(text: str) -> None:
    same(("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n" + text).encode("utf-8", "surrogatepass"))


# --- writing: byte for byte what aiosipua's serialiser made --------------------------------


def reference_text(
    host: str, session_id: int, version: int, media: list[MediaDescription]
) -> bytes:
    addr_type = "IP6" if ":" in host else "IP4"
    message = SdpMessage(
        version=0,
        origin=Origin("-", str(session_id), str(version), "IN", addr_type, host),
        session_name="-",
        connection=ConnectionData("IN", addr_type, host),
        timing=TimingField(0, 0),
        media=media,
    )
    return serialize_sdp(message).encode()


def reference_audio(
    port: int, codecs: tuple[Codec, ...], dtmf_pt: int | None, events: str, direction: Direction
) -> MediaDescription:
    rtpmap = [f"{STATIC_PT[c]} {c}/8000" for c in codecs]
    attributes: dict[str, list[str]] = {"rtpmap": rtpmap}
    formats = [str(STATIC_PT[c]) for c in codecs]
    if dtmf_pt is not None:
        formats.append(str(dtmf_pt))
        rtpmap.append(f"{dtmf_pt} telephone-event/8000")
        attributes["fmtp"] = [f"{dtmf_pt} {events}"]
    attributes["ptime"] = ["20"]
    attributes[direction] = []
    return MediaDescription("audio", port, "RTP/AVP", formats, attributes=attributes)


def reference_answer(
    offer: RemoteMedia, address: MediaAddress, session_id: int, version: int, codec: Codec
) -> bytes:
    audio = reference_audio(
        address.port,
        (codec,),
        offer.dtmf_pt,
        sdp._events(offer.dtmf_events),
        combine(sdp._ANSWER_DIRECTION[offer.direction], "sendrecv"),
    )
    media = [
        audio
        if i == offer.audio_index
        else MediaDescription(media=s.media, port=0, proto=s.proto, formats=list(s.formats[:1]))
        for i, s in enumerate(offer.streams)
    ]
    return reference_text(address.host, session_id, version, media)


CODEC_SETS: list[tuple[Codec, ...]] = [("PCMU", "PCMA"), ("PCMA", "PCMU"), ("PCMU",), ("PCMA",)]
ADDRESSES = [
    MediaAddress("203.0.113.5", 20000),
    MediaAddress("127.0.0.1", 1),
    MediaAddress("2001:db8::5", 65535),
]


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("codecs", CODEC_SETS)
@pytest.mark.parametrize("dtmf_pt", [None, 96, 101, 127])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_offers_are_the_reference_bytes(
    address: MediaAddress, codecs: tuple[Codec, ...], dtmf_pt: int | None, direction: Direction
) -> None:
    for session_id, version in [(0, 0), (1234, 5), (2**63 - 1, 2**63 - 1)]:
        ours = build_offer(
            address,
            session_id=session_id,
            version=version,
            codecs=codecs,
            dtmf_pt=dtmf_pt,
            direction=direction,
        )
        media = [reference_audio(address.port, codecs, dtmf_pt, "0-16", direction)]
        assert ours == reference_text(address.host, session_id, version, media)


def test_answers_are_the_reference_bytes() -> None:
    rng = random.Random(3264)
    offers = [parse_remote(body) for body in CORPUS]
    offers += [parse_remote(mutate(rng.choice(CORPUS), rng)) for _ in range(3000)]
    answered = 0
    for offer in offers:
        if not isinstance(offer, RemoteMedia):
            continue
        address = rng.choice(ADDRESSES)
        for supported in CODEC_SETS:
            result = answer(offer, address, session_id=77, version=3, supported=supported)
            if isinstance(result, SdpError):
                continue
            answered += 1
            assert result[0] == reference_answer(offer, address, 77, 3, result[1])
    assert answered > 1000


def test_long_values_are_read_the_same_but_not_remembered() -> None:
    """A hostile peer's long formats, rtpmaps, c= or telephone-event lists (up to 64 kB) are
    worked out every time, never kept in the caches meant for the few short ones peers repeat."""
    caches = [sdp._remembered_codecs, sdp._remembered_connection, sdp._remembered_events]
    for cache in caches:
        cache.cache_clear()
    events = ",".join(str(e % 17) for e in range(200))
    long_audio = (
        BASE + "m=audio 4000 RTP/AVP " + " ".join(["8"] * 150) + " 101\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n" + f"a=fmtp:101 {events}\r\n"
    ).encode()
    long_host = BASE.replace("192.0.2.1\r\nt", "1" * 300 + "\r\nt").encode()
    for body in (long_audio, long_host, long_host.replace(b"\r\n", b"\n")):
        same(body)
    offer = parse_remote(long_audio)
    assert isinstance(offer, RemoteMedia) and offer.dtmf_events == events
    reply = answer(offer, ADDRESSES[0], session_id=1, version=1)
    assert not isinstance(reply, SdpError)
    assert reply[0] == reference_answer(offer, ADDRESSES[0], 1, 1, "PCMA")
    assert b"a=fmtp:101 0-16\r\n" in reply[0]
    sizes = [cache.cache_info().currsize for cache in caches]
    assert sizes == [0, 1, 0]  # the short c= of long_audio only
    same(SIPP)  # and the usual body is remembered
    assert [cache.cache_info().currsize for cache in caches] == [1, 2, 0]
