"""SDP offer/answer for media legs: our offers, real peers' offers, holds, and bad bodies."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.media.port import MediaAddress
from callbridge.sip.sdp import (
    RemoteMedia,
    SdpError,
    SdpSession,
    answer,
    build_offer,
    choose,
    parse_remote,
)

DATA = Path(__file__).parent / "sdp"
ENGINE = MediaAddress("203.0.113.5", 20000)
ENGINE6 = MediaAddress("2001:db8::5", 20002)


def load(name: str) -> bytes:
    """A data file as sent on the wire (CRLF line ends)."""
    return (DATA / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def remote(sdp: bytes) -> RemoteMedia:
    parsed = parse_remote(sdp)
    assert isinstance(parsed, RemoteMedia), parsed
    return parsed


def answered(offer: bytes, address: MediaAddress = ENGINE) -> tuple[bytes, str, int | None]:
    result = answer(remote(offer), address, session_id=77, version=1)
    assert not isinstance(result, SdpError), result
    return result


def lines(sdp: bytes) -> list[str]:
    assert sdp.endswith(b"\r\n")
    return sdp.decode().split("\r\n")[:-1]


def m_lines(sdp: bytes) -> list[str]:
    return [line for line in lines(sdp) if line.startswith("m=")]


# --- our offers ----------------------------------------------------------------------------


def test_offer_text() -> None:
    sdp = build_offer(ENGINE, session_id=1234, version=5)
    assert lines(sdp) == [
        "v=0",
        "o=- 1234 5 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]


def test_offer_ipv6_codec_order_direction_and_no_dtmf() -> None:
    sdp = build_offer(
        ENGINE6, session_id=1, version=2, codecs=("PCMA",), dtmf_pt=None, direction="sendonly"
    )
    text = lines(sdp)
    assert "o=- 1 2 IN IP6 2001:db8::5" in text
    assert "c=IN IP6 2001:db8::5" in text
    assert "m=audio 20002 RTP/AVP 8" in text
    assert "a=sendonly" in text
    assert not any("telephone-event" in line or "rtcp" in line for line in text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"codecs": ()},
        {"codecs": ("PCMU", "PCMU")},
        {"codecs": ("G722",)},
        {"dtmf_pt": 0},
        {"dtmf_pt": 128},
        {"direction": "both"},
        {"session_id": -1},
        {"version": 2**63},
    ],
)
def test_offer_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"session_id": 1, "version": 1, **kwargs}
    with pytest.raises(ValueError):
        build_offer(ENGINE, **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build_offer(MediaAddress("media.example.com", 20000), session_id=1, version=1)
    with pytest.raises(ValueError):
        build_offer(MediaAddress("203.0.113.5", 0), session_id=1, version=1)


@pytest.mark.parametrize("direction", ["sendrecv", "sendonly", "recvonly", "inactive"])
@pytest.mark.parametrize("address", [ENGINE, ENGINE6])
def test_offer_round_trip(direction: str, address: MediaAddress) -> None:
    sdp = build_offer(address, session_id=9, version=3, dtmf_pt=110, direction=direction)  # type: ignore[arg-type]
    parsed = remote(sdp)
    assert (parsed.host, parsed.port) == (address.host, address.port)
    assert parsed.codecs == ("PCMU", "PCMA")
    assert parsed.payload_types == (0, 8)
    assert parsed.dtmf_pt == 110
    assert parsed.dtmf_events == "0-16"
    assert parsed.direction == direction
    assert parsed.ptime == 20
    assert (parsed.session_id, parsed.session_version) == ("9", 3)


def test_offer_answer_choose_round_trip() -> None:
    offer = build_offer(ENGINE, session_id=1, version=1, codecs=("PCMA", "PCMU"))
    sdp, codec, dtmf = answered(offer, ENGINE6)
    assert (codec, dtmf) == ("PCMA", 101)
    reply = remote(sdp)
    assert (reply.host, reply.port) == (ENGINE6.host, ENGINE6.port)
    assert choose(reply) == ("PCMA", 101)
    assert choose(reply, ("PCMU",)) == SdpError("the answer has no codec we offered", 488)


def test_session_version_increases_on_every_offer() -> None:
    session = SdpSession(session_id=4242)
    first = lines(session.next_offer(ENGINE))
    hold = lines(session.next_offer(ENGINE, direction="sendonly"))
    resume = lines(session.next_offer(ENGINE))
    assert [first[1], hold[1], resume[1]] == [
        "o=- 4242 0 IN IP4 203.0.113.5",
        "o=- 4242 1 IN IP4 203.0.113.5",
        "o=- 4242 2 IN IP4 203.0.113.5",
    ]
    assert "a=sendonly" in hold
    peer = remote(load("desk_phone.sdp"))
    result = session.answer(peer, ENGINE)
    assert not isinstance(result, SdpError)
    assert lines(result[0])[1] == "o=- 4242 3 IN IP4 203.0.113.5"
    assert isinstance(
        session.answer(remote(load("desk_phone.sdp")), ENGINE, supported=()), SdpError
    )
    assert session.version == 4  # an error spends no version


# --- real-world offers ---------------------------------------------------------------------


def test_sipp_uac_pcap_offer() -> None:
    offer = remote(load("sipp_uac_pcap.sdp"))
    assert (offer.host, offer.port, offer.codecs, offer.dtmf_pt) == (
        "127.0.0.1",
        6000,
        ("PCMA",),
        101,
    )
    assert offer.direction == "sendrecv"
    assert offer.ptime is None
    sdp, codec, dtmf = answered(load("sipp_uac_pcap.sdp"))
    assert (codec, dtmf) == ("PCMA", 101)
    text = lines(sdp)
    assert m_lines(sdp) == ["m=audio 20000 RTP/AVP 8 101"]
    assert "a=fmtp:101 0-11,16" in text  # the events both sides know
    assert "a=sendrecv" in text


def test_baresip_offer() -> None:
    offer = remote(load("baresip_1_0_0.sdp"))
    assert (offer.host, offer.port) == ("192.168.1.20", 10164)
    assert offer.codecs == ("PCMU", "PCMA")
    assert (offer.dtmf_pt, offer.ptime, offer.direction) == (101, 20, "sendrecv")
    sdp, codec, dtmf = answered(load("baresip_1_0_0.sdp"))
    assert (codec, dtmf) == ("PCMU", 101)
    assert m_lines(sdp) == ["m=audio 20000 RTP/AVP 0 101"]
    assert "a=rtpmap:8 PCMA/8000" not in lines(sdp)  # one codec in the answer


def test_desk_phone_offer_with_many_codecs_and_rtcp() -> None:
    offer = remote(load("desk_phone.sdp"))
    assert offer.codecs == ("PCMU", "PCMA")  # G722 and G729 are not ours
    assert offer.dtmf_pt == 101
    sdp, codec, dtmf = answered(load("desk_phone.sdp"))
    assert (codec, dtmf) == ("PCMU", 101)
    text = lines(sdp)
    assert m_lines(sdp) == ["m=audio 20000 RTP/AVP 0 101"]
    assert "a=fmtp:101 0-15" in text
    assert not any("rtcp" in line for line in text)
    pcma_only = answer(offer, ENGINE, session_id=1, version=1, supported=("PCMA",))
    assert not isinstance(pcma_only, SdpError)
    assert pcma_only[1:] == ("PCMA", 101)


def test_ipv6_offer_with_dynamic_telephone_event_96() -> None:
    offer = remote(load("ipv6.sdp"))
    assert (offer.host, offer.port, offer.ptime) == ("2001:db8::20", 40000, 30)
    sdp, codec, dtmf = answered(load("ipv6.sdp"), ENGINE6)
    assert (codec, dtmf) == ("PCMA", 96)
    text = lines(sdp)
    assert "c=IN IP6 2001:db8::5" in text
    assert m_lines(sdp) == ["m=audio 20002 RTP/AVP 8 96"]
    assert "a=rtpmap:96 telephone-event/8000" in text
    assert "a=fmtp:96 0-16" in text


def test_old_style_hold_is_inactive() -> None:
    offer = remote(load("hold_old_style.sdp"))
    assert offer.host == "0.0.0.0"
    assert offer.direction == "inactive"
    assert offer.on_hold
    assert offer.session_version == 20022
    sdp, codec, dtmf = answered(load("hold_old_style.sdp"))
    assert (codec, dtmf) == ("PCMU", 101)
    assert "a=inactive" in lines(sdp)


def test_sendonly_hold_is_answered_recvonly_with_the_offers_dtmf_pt_100() -> None:
    offer = remote(load("hold_sendonly.sdp"))
    assert offer.direction == "sendonly"
    assert offer.on_hold
    sdp, codec, dtmf = answered(load("hold_sendonly.sdp"))
    assert (codec, dtmf) == ("PCMU", 100)
    text = lines(sdp)
    assert "a=recvonly" in text
    assert m_lines(sdp) == ["m=audio 20000 RTP/AVP 0 100"]
    assert "a=rtpmap:100 telephone-event/8000" in text


def test_old_style_hold_variants() -> None:
    sendonly = load("hold_old_style.sdp").replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
    assert remote(sendonly).direction == "sendonly"  # the peer still sends (music on hold)
    assert "a=recvonly" in lines(answered(sendonly)[0])
    v6 = load("ipv6.sdp").replace(b"c=IN IP6 2001:db8::20", b"c=IN IP6 ::")
    assert (remote(v6).host, remote(v6).direction) == ("::", "inactive")
    media_level = load("baresip_1_0_0.sdp").replace(
        b"b=AS:80\r\n", b"c=IN IP4 0.0.0.0\r\nb=AS:80\r\n"
    )
    assert remote(media_level).on_hold


def test_inactive_is_answered_inactive() -> None:
    sdp = load("hold_sendonly.sdp").replace(b"a=sendonly", b"a=inactive")
    assert remote(sdp).direction == "inactive"
    assert "a=inactive" in lines(answered(sdp)[0])


def test_audio_and_video_video_rejected_with_port_0() -> None:
    offer = remote(load("audio_video.sdp"))
    assert offer.direction == "sendrecv"  # session level
    sdp, codec, dtmf = answered(load("audio_video.sdp"))
    assert (codec, dtmf) == ("PCMU", 96)
    assert m_lines(sdp) == ["m=audio 20000 RTP/AVP 0 96", "m=video 0 RTP/AVP 97"]


def test_no_common_codec_is_488() -> None:
    offer = remote(load("no_common_codec.sdp"))
    assert offer.codecs == ()
    result = answer(offer, ENGINE, session_id=1, version=1)
    assert isinstance(result, SdpError)
    assert result.status == 488
    assert isinstance(
        answer(remote(load("baresip_1_0_0.sdp")), ENGINE, session_id=1, version=1, supported=()),
        SdpError,
    )


# --- the finer points ----------------------------------------------------------------------


BASE = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def test_session_direction_overridden_by_media_level() -> None:
    sdp = BASE + "a=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n"
    assert remote(sdp.encode()).direction == "recvonly"
    sdp = BASE + "a=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n"
    assert remote(sdp.encode()).direction == "sendonly"


def test_media_level_connection_overrides_session_level() -> None:
    sdp = BASE + "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 198.51.100.7\r\n"
    assert remote(sdp.encode()).host == "198.51.100.7"


def test_rejected_first_audio_stream_is_skipped_and_mirrored() -> None:
    sdp = BASE + "m=audio 0 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 8\r\n"
    offer = remote(sdp.encode())
    assert (offer.port, offer.codecs) == (4002, ("PCMA",))
    assert m_lines(answered(sdp.encode())[0]) == [
        "m=audio 0 RTP/AVP 0",
        "m=audio 20000 RTP/AVP 8",
    ]


def test_srtp_only_or_all_rejected_is_488() -> None:
    for media in (
        "m=audio 4000 RTP/SAVP 0\r\n",
        "m=audio 0 RTP/AVP 0\r\n",
        "m=video 4 RTP/AVP 9\r\n",
    ):
        result = parse_remote((BASE + media).encode())
        assert isinstance(result, SdpError) and result.status == 488, media


def test_dynamic_g711_is_understood_but_only_static_payload_types_are_chosen() -> None:
    sdp = BASE + "m=audio 4000 RTP/AVP 97 8\r\na=rtpmap:97 pcmu/8000\r\n"
    offer = remote(sdp.encode())
    assert (offer.codecs, offer.payload_types) == (("PCMU", "PCMA"), (97, 8))
    assert answered(sdp.encode())[1] == "PCMA"  # the engine sends PCMU only as payload type 0
    only = remote((BASE + "m=audio 4000 RTP/AVP 97\r\na=rtpmap:97 PCMU/8000\r\n").encode())
    assert isinstance(answer(only, ENGINE, session_id=1, version=1), SdpError)


def test_telephone_event_outside_the_dynamic_range_or_at_another_rate_is_ignored() -> None:
    sdp = (
        BASE + "m=audio 4000 RTP/AVP 0 95 100 101\r\na=rtpmap:95 telephone-event/8000\r\n"
        "a=rtpmap:100 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    assert remote(sdp.encode()).dtmf_pt == 101
    no_dtmf = BASE + "m=audio 4000 RTP/AVP 0\r\n"
    sdp_answer, codec, dtmf = answered(no_dtmf.encode())
    assert dtmf is None
    assert not any("telephone-event" in line for line in lines(sdp_answer))


def test_lf_line_ends_and_blank_lines_are_accepted() -> None:
    assert remote((DATA / "baresip_1_0_0.sdp").read_bytes().replace(b"\r", b"")).port == 10164
    assert remote(load("baresip_1_0_0.sdp") + b"\r\n\r\n").port == 10164
    assert remote(load("baresip_1_0_0.sdp").replace(b"s=-\r\n", b"s=-\r\n\r\n")).port == 10164


def test_choose_reads_an_answer() -> None:
    reply = BASE + "m=audio 5000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    assert choose(remote(reply.encode())) == ("PCMA", 101)
    reply = BASE + "m=audio 5000 RTP/AVP 0\r\n"
    assert choose(remote(reply.encode())) == ("PCMU", None)
    reply = BASE + "m=audio 5000 RTP/AVP 9\r\n"
    assert isinstance(choose(remote(reply.encode())), SdpError)


# --- malformed bodies ----------------------------------------------------------------------

MALFORMED = {
    "empty": b"",
    "garbage": b"hello world\r\n",
    "binary": bytes(range(256)),
    "not utf-8": BASE.encode() + b"s=\xff\r\nm=audio 4000 RTP/AVP 0\r\n",
    "no v=": BASE.replace("v=0\r\n", "").encode() + b"m=audio 4000 RTP/AVP 0\r\n",
    "no o=": BASE.replace("o=- 1 1 IN IP4 192.0.2.1\r\n", "").encode() + b"m=audio 4 RTP/AVP 0\r\n",
    "bad o= version": BASE.replace("o=- 1 1", "o=- 1 x").encode() + b"m=audio 4 RTP/AVP 0\r\n",
    "missing c=": BASE.replace("c=IN IP4 192.0.2.1\r\n", "").encode() + b"m=audio 4 RTP/AVP 0\r\n",
    "bad port": (BASE + "m=audio 70000 RTP/AVP 0\r\n").encode(),
    "word port": (BASE + "m=audio http RTP/AVP 0\r\n").encode(),
    "negative port": (BASE + "m=audio -4 RTP/AVP 0\r\n").encode(),
    "port count": (BASE + "m=audio 4000/2 RTP/AVP 0\r\n").encode(),
    "short m=": (BASE + "m=audio 4000\r\n").encode(),
    "bad format": (BASE + "m=audio 4000 RTP/AVP zero\r\n").encode(),
    "format > 127": (BASE + "m=audio 4000 RTP/AVP 300\r\n").encode(),
    "bad rtpmap": (BASE + "m=audio 4000 RTP/AVP 0\r\na=rtpmap:x PCMU/8000\r\n").encode(),
    "bad b=": (BASE + "b=AS:lots\r\nm=audio 4000 RTP/AVP 0\r\n").encode(),
    "bad t=": BASE.replace("t=0 0", "t=now later").encode() + b"m=audio 4 RTP/AVP 0\r\n",
    "host name": BASE.replace("IP4 192.0.2.1\r\nt", "IP4 pbx.example\r\nt").encode()
    + b"m=audio 4 RTP/AVP 0\r\n",
    "IP6 with v4": BASE.replace("c=IN IP4", "c=IN IP6").encode() + b"m=audio 4 RTP/AVP 0\r\n",
    "multicast": BASE.replace("IP4 192.0.2.1\r\nt", "IP4 224.2.1.1/127\r\nt").encode()
    + b"m=audio 4 RTP/AVP 0\r\n",
    "two directions": (BASE + "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\na=recvonly\r\n").encode(),
    "no m=": BASE.encode(),
    "control char": (BASE + "m=audio 4000 RTP/AVP 0\x0b\r\n").encode(),
    "NUL": (BASE + "m=audio 4000 RTP/AVP 0\r\na=x\x00\r\n").encode(),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_sdp_is_an_error_not_an_exception(body: bytes) -> None:
    result = parse_remote(body)
    assert isinstance(result, SdpError), result
    assert result.status in (400, 488)
    assert result.reason


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_offers_never_raise(data: st.DataObject) -> None:
    body = bytearray(load(data.draw(st.sampled_from(sorted(p.name for p in DATA.iterdir())))))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body)))
        cut = data.draw(st.integers(0, 8))
        body[at : at + cut] = data.draw(st.binary(max_size=8))
    result = parse_remote(bytes(body))
    if isinstance(result, RemoteMedia):
        assert 0 < result.port <= 65535
        reply = answer(result, ENGINE, session_id=1, version=1)
        if not isinstance(reply, SdpError):
            assert isinstance(parse_remote(reply[0]), RemoteMedia)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(body: bytes) -> None:
    assert isinstance(parse_remote(b"v=0\r\n" + body), RemoteMedia | SdpError)
