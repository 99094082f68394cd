"""SDP offer/answer for the B2BUA's media legs (RFC 4566, RFC 3264), sans-I/O.

The B2BUA puts the engine's :class:`~callbridge.media.port.MediaAddress` into offers and answers
(:func:`build_offer`, :func:`answer`, :class:`SdpSession`) and reads the peer's SDP with
:func:`parse_remote` to call ``MediaEngine.set_remote(leg_id, host, port, codec, dtmf_pt)``
(:func:`answer` or :func:`choose` say which codec and telephone-event payload type).

Nothing here raises on peer input: a body that cannot be used comes back as :class:`SdpError`
whose ``status`` is the SIP response the B2BUA sends to an offer (400 malformed, 488 Not
Acceptable Here).

What we offer is what the embedded engine carries: G.711 at the static payload types only
(PCMU 0, PCMA 8; the engine sends and accepts no other audio payload type), telephone-event at a
dynamic payload type (96-127), ``a=ptime:20``, no comfort noise, and no ``a=rtcp`` (the engine
has no RTCP socket). A peer that maps PCMU/PCMA to a dynamic payload type is understood
(:attr:`RemoteMedia.codecs`), but such a mapping is not chosen, since the engine would send and
expect the static one.

aiosipua's :mod:`aiosipua.sdp` does the line parsing (:func:`~aiosipua.sdp.parse_sdp`, wrapped:
it raises ``ValueError`` on bad numbers and silently skips malformed lines and ``m=`` lines, so
the text is checked here first) and the serialising (:func:`~aiosipua.sdp.serialize_sdp`). Its
:func:`~aiosipua.sdp.build_sdp` and :func:`~aiosipua.sdp.negotiate_sdp` are *not* used: they
offer a single codec, tie the session version to the session id (so a re-offer cannot raise it),
match codecs by payload type only (a dynamic PCMU is missed), ignore session-level direction
attributes and ``c=0.0.0.0`` hold, answer telephone-event at our payload type rather than the
offer's, and pick a rejected (port 0) or non-RTP/AVP audio stream if it comes first.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from aiosipua.sdp import (
    ConnectionData,
    MediaDescription,
    Origin,
    SdpMessage,
    TimingField,
    parse_sdp,
    serialize_sdp,
)

from callbridge.media.port import Codec, MediaAddress

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
"""An ``a=`` direction attribute (RFC 3264 §5.1), as seen by the side that wrote the SDP."""

DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

STATIC_PT: dict[Codec, int] = {"PCMU": 0, "PCMA": 8}
"""The payload types the engine sends and accepts for each codec (RFC 3551)."""

_STATIC_NAMES: dict[int, str] = {0: "PCMU", 8: "PCMA"}
_ANSWER_DIRECTION: dict[Direction, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
_SENDS: frozenset[Direction] = frozenset({"sendrecv", "sendonly"})
_RECEIVES: frozenset[Direction] = frozenset({"sendrecv", "recvonly"})
_PTIME = 20
_EVENTS = "0-16"  # the DTMF events 0-15 and flash (RFC 4733 §3.2)
_LINE = re.compile(r"[a-z]=")
_TOKEN = re.compile(r"[0-9]+")
_HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})
_MAX_SESSION_NUMBER = 2**63 - 1  # o= numbers: keep them in a signed 64-bit integer for peers


@dataclass(frozen=True, slots=True)
class SdpError:
    """Why an SDP body cannot be used; ``status`` is the response to an offer carrying it."""

    reason: str
    status: Literal[400, 488] = 488


@dataclass(frozen=True, slots=True)
class Stream:
    """One ``m=`` line of a remote SDP, kept so an answer can mirror every offered stream."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemoteMedia:
    """What the B2BUA needs from a peer's SDP (offer or answer) for its one audio stream.

    ``codecs`` are the G.711 codecs the peer lists, best first, with ``payload_types`` the payload
    type it uses for each (parallel). ``direction`` is the peer's, media-level attribute over the
    session-level one; an old-style hold (``c=`` 0.0.0.0, RFC 2543) makes it ``inactive`` (or
    keeps ``sendonly``), as the peer cannot receive. ``host``/``port`` are where to send RTP;
    on an old-style hold ``host`` is ``0.0.0.0`` (or ``::``): keep the leg's previous remote then,
    since a datagram sent to 0.0.0.0 reaches the local host on Linux.

    ``ptime`` is informational: the engine sends 20 ms packets and we ask for 20 ms
    (``a=ptime:20``) whatever the peer says. ``session_id``/``session_version`` come from the
    peer's ``o=`` line (a re-offer with an unchanged version changes nothing, RFC 3264 §8).
    """

    host: str
    port: int
    codecs: tuple[Codec, ...]
    payload_types: tuple[int, ...]
    dtmf_pt: int | None
    dtmf_events: str | None  # the telephone-event a=fmtp value, if any
    direction: Direction
    ptime: int | None
    session_id: str
    session_version: int
    streams: tuple[Stream, ...] = field(repr=False)
    audio_index: int  # which of ``streams`` is the audio stream described here

    @property
    def on_hold(self) -> bool:
        """The peer does not want our audio (``sendonly``/``inactive`` or ``c=`` 0.0.0.0)."""
        return self.direction in ("sendonly", "inactive")


def combine(first: Direction, second: Direction) -> Direction:
    """The direction allowed by both (each as seen by the same side): sends iff both send,
    receives iff both receive (``sendonly`` + ``recvonly`` -> ``inactive``)."""
    sends = first in _SENDS and second in _SENDS
    receives = first in _RECEIVES and second in _RECEIVES
    if sends and receives:
        return "sendrecv"
    if sends:
        return "sendonly"
    return "recvonly" if receives else "inactive"


def is_hold_address(host: str) -> bool:
    """An RFC 2543 hold address (``c=`` 0.0.0.0 or ``::``): keep the previous remote address."""
    return host in _HOLD_ADDRESSES


@functools.lru_cache(maxsize=1024)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``ipaddress.ip_address``, remembered: a call reads and writes the same few addresses
    six times (offer, answer, both legs) and parsing one costs more than the rest of a c= line.
    The objects are immutable; a ``ValueError`` is raised again each time (not cached)."""
    return ipaddress.ip_address(text)


def _addr_type(host: str) -> Literal["IP4", "IP6"]:
    return "IP6" if _ip(host).version == 6 else "IP4"


def _sdp_text(
    host: str, session_id: int, version: int, media: list[MediaDescription], name: str = "-"
) -> bytes:
    addr_type = _addr_type(host)
    message = SdpMessage(
        version=0,
        origin=Origin("-", str(session_id), str(version), "IN", addr_type, host),
        session_name=name,
        connection=ConnectionData("IN", addr_type, host),
        timing=TimingField(0, 0),
        media=media,
    )
    return serialize_sdp(message).encode()


def _audio_attributes(
    codecs: tuple[Codec, ...], dtmf_pt: int | None, events: str, direction: Direction
) -> dict[str, list[str]]:
    rtpmap = [f"{STATIC_PT[c]} {c}/8000" for c in codecs]
    attributes: dict[str, list[str]] = {"rtpmap": rtpmap}
    if dtmf_pt is not None:
        rtpmap.append(f"{dtmf_pt} telephone-event/8000")
        attributes["fmtp"] = [f"{dtmf_pt} {events}"]
    attributes["ptime"] = [str(_PTIME)]
    attributes[direction] = []
    return attributes


def _check_common(
    address: MediaAddress, session_id: int, version: int, dtmf_pt: int | None
) -> None:
    _ip(address.host)  # ValueError for a name: c= must be an address here
    if not 0 < address.port <= 65535:
        raise ValueError(f"bad RTP port {address.port}")
    if not (0 <= session_id <= _MAX_SESSION_NUMBER and 0 <= version <= _MAX_SESSION_NUMBER):
        raise ValueError("session id and version must be 0 to 2**63-1")
    if dtmf_pt is not None and not 96 <= dtmf_pt <= 127:
        raise ValueError(f"telephone-event payload type must be dynamic (96-127): {dtmf_pt}")


def build_offer(
    address: MediaAddress,
    *,
    session_id: int,
    version: int,
    codecs: tuple[Codec, ...] = ("PCMU", "PCMA"),
    dtmf_pt: int | None = 101,
    direction: Direction = "sendrecv",
) -> bytes:
    """An SDP offer for one audio stream at ``address`` (our code's arguments, so ``ValueError``
    on bad ones: a non-IP host, no or unknown codecs, a static ``dtmf_pt``, a bad direction)."""
    _check_common(address, session_id, version, dtmf_pt)
    if not codecs or len(set(codecs)) != len(codecs) or not set(codecs) <= set(STATIC_PT):
        raise ValueError(f"codecs must be distinct PCMU/PCMA: {codecs!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"bad direction {direction!r}")
    formats = [str(STATIC_PT[c]) for c in codecs]
    if dtmf_pt is not None:
        formats.append(str(dtmf_pt))
    audio = MediaDescription(
        media="audio",
        port=address.port,
        proto="RTP/AVP",
        formats=formats,
        attributes=_audio_attributes(codecs, dtmf_pt, _EVENTS, direction),
    )
    return _sdp_text(address.host, session_id, version, [audio])


@dataclass(slots=True)
class SdpSession:
    """Our ``o=`` line for one leg: a fixed session id and a version raised on every new SDP.

    RFC 3264 §8: every SDP we send in a dialog carries the same session id and the previous
    version plus one (an unchanged SDP may keep its version; raising it anyway is allowed and
    simpler). A retransmitted INVITE or 200 resends the same bytes, not a new SDP.
    """

    session_id: int
    version: int = 0

    def next_offer(
        self,
        address: MediaAddress,
        *,
        codecs: tuple[Codec, ...] = ("PCMU", "PCMA"),
        dtmf_pt: int | None = 101,
        direction: Direction = "sendrecv",
    ) -> bytes:
        """The next offer (initial INVITE, or a re-INVITE such as ``sendonly`` for hold)."""
        sdp = build_offer(
            address,
            session_id=self.session_id,
            version=self.version,
            codecs=codecs,
            dtmf_pt=dtmf_pt,
            direction=direction,
        )
        self.version += 1
        return sdp

    def answer(
        self,
        offer: RemoteMedia,
        address: MediaAddress,
        *,
        supported: tuple[Codec, ...] = ("PCMU", "PCMA"),
        direction: Direction = "sendrecv",
    ) -> tuple[bytes, Codec, int | None] | SdpError:
        """:func:`answer` with this session's id and next version (unchanged on an error)."""
        result = answer(
            offer,
            address,
            session_id=self.session_id,
            version=self.version,
            supported=supported,
            direction=direction,
        )
        if not isinstance(result, SdpError):
            self.version += 1
        return result


# --- reading a peer's SDP ------------------------------------------------------------------


def _check_lines(text: str) -> SdpError | None:
    # Blank lines (a trailing CRLF too many is common) are skipped, as aiosipua's parser does.
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "v=0":
        return SdpError("SDP must start with v=0", 400)
    if not any(line.startswith("o=") for line in lines):
        return SdpError("no o= line", 400)
    for line in lines:
        if not _LINE.match(line):
            return SdpError(f"not an SDP line: {line[:40]!r}", 400)
        if not line.replace("\t", "").isprintable():  # a tab is the one control allowed
            return SdpError("control character in SDP", 400)
        if line[0] == "m" and (len(line.split()) < 4 or not _TOKEN.fullmatch(line.split()[1])):
            return SdpError(f"bad m= line: {line[:60]!r}", 400)
    return None


def _connection(conn: ConnectionData) -> str | SdpError:
    if conn.net_type != "IN" or conn.addr_type not in ("IP4", "IP6"):
        return SdpError(f"unsupported c= network {conn.net_type} {conn.addr_type}", 488)
    try:
        ip = _ip(conn.address)
    except ValueError:
        return SdpError(f"c= address is not an IP address: {conn.address[:60]!r}", 488)
    if (ip.version == 6) != (conn.addr_type == "IP6"):
        return SdpError(f"c= {conn.addr_type} with address {conn.address}", 400)
    if ip.is_multicast:
        return SdpError("multicast media is not supported", 488)
    return str(ip)


def _direction(attributes: dict[str, list[str]]) -> Direction | SdpError | None:
    found = [d for d in DIRECTIONS if d in attributes]
    if len(found) > 1:
        return SdpError(f"conflicting direction attributes {found}", 400)
    return found[0] if found else None


def _ptime(*levels: dict[str, list[str]]) -> int | None:
    for attributes in levels:
        for value in attributes.get("ptime", []):
            if _TOKEN.fullmatch(value.strip()) and 0 < int(value) <= 1000:
                return int(value)
    return None


def _rtpmaps(media: MediaDescription) -> dict[int, tuple[str, str]] | SdpError:
    """``pt -> (lower-case encoding name, rest)`` where rest is ``clock[/channels]``."""
    maps: dict[int, tuple[str, str]] = {}
    for value in media.attributes.get("rtpmap", []):
        pt_text, _, encoding = value.strip().partition(" ")
        name, _, rest = encoding.strip().partition("/")
        if not _TOKEN.fullmatch(pt_text) or int(pt_text) > 127 or not name:
            return SdpError(f"bad a=rtpmap:{value[:40]}", 400)
        maps.setdefault(int(pt_text), (name.lower(), rest))
    return maps


def _fmtp(media: MediaDescription, pt: int) -> str | None:
    for value in media.attributes.get("fmtp", []):
        pt_text, _, params = value.strip().partition(" ")
        if pt_text == str(pt):
            return params.strip()
    return None


def parse_remote(sdp: bytes) -> RemoteMedia | SdpError:
    """Read the peer's audio stream from an SDP body (an offer or an answer). Never raises.

    The first ``m=audio`` line with a non-zero port and ``RTP/AVP`` is the stream; none is an
    error (488): all rejected, SRTP only, or no audio at all.
    """
    try:
        text = sdp.decode("utf-8")
    except UnicodeDecodeError:
        return SdpError("SDP is not UTF-8", 400)
    problem = _check_lines(text)
    if problem is not None:
        return problem
    try:
        message = parse_sdp(text)
    except (ValueError, TypeError, IndexError) as exc:  # aiosipua's int() on b=, t=, rtpmap...
        return SdpError(f"malformed SDP: {exc}"[:120], 400)
    return _remote(message)


def _remote(message: SdpMessage) -> RemoteMedia | SdpError:
    origin = message.origin
    if not _TOKEN.fullmatch(origin.session_version) or not origin.session_id:
        return SdpError("missing or malformed o= line", 400)
    streams = tuple(Stream(m.media, m.port, m.proto, tuple(m.formats)) for m in message.media)
    if any(not 0 <= s.port <= 65535 for s in streams):
        return SdpError("m= port out of range", 400)
    index = next(
        (
            i
            for i, m in enumerate(message.media)
            if m.media == "audio" and m.port != 0 and m.proto.upper() == "RTP/AVP"
        ),
        None,
    )
    if index is None:
        return SdpError("no usable audio stream (RTP/AVP, port not 0)", 488)
    media = message.media[index]
    conn = media.connection or message.connection
    if conn is None:
        return SdpError("no c= line for the audio stream", 400)
    host = _connection(conn)
    if isinstance(host, SdpError):
        return host
    session_direction = _direction(message.attributes)
    media_direction = _direction(media.attributes)
    if isinstance(session_direction, SdpError):
        return session_direction
    if isinstance(media_direction, SdpError):
        return media_direction
    direction: Direction = media_direction or session_direction or "sendrecv"
    if host in _HOLD_ADDRESSES and direction != "sendonly":
        direction = "inactive"  # RFC 2543 hold: the peer cannot receive (RFC 3264 §8.4)
    rtpmaps = _rtpmaps(media)
    if isinstance(rtpmaps, SdpError):
        return rtpmaps
    codecs: list[Codec] = []
    pts: list[int] = []
    dtmf_pt: int | None = None
    for fmt in media.formats:
        if not _TOKEN.fullmatch(fmt) or int(fmt) > 127:
            return SdpError(f"bad RTP/AVP format {fmt[:20]!r}", 400)
        pt = int(fmt)
        if pt in rtpmaps:
            name, rest = rtpmaps[pt]
            clock, _, channels = rest.partition("/")
            if clock.strip() != "8000" or channels.strip() not in ("", "1"):
                continue
        elif pt in _STATIC_NAMES:
            name = _STATIC_NAMES[pt].lower()
        else:
            continue
        if name == "telephone-event":
            if dtmf_pt is None and 96 <= pt <= 127:
                dtmf_pt = pt
            continue
        codec: Codec | None = "PCMU" if name == "pcmu" else "PCMA" if name == "pcma" else None
        if codec is not None:
            codecs.append(codec)
            pts.append(pt)
    return RemoteMedia(
        host=host,
        port=media.port,
        codecs=tuple(codecs),
        payload_types=tuple(pts),
        dtmf_pt=dtmf_pt,
        dtmf_events=None if dtmf_pt is None else _fmtp(media, dtmf_pt),
        direction=direction,
        ptime=_ptime(media.attributes, message.attributes),
        session_id=origin.session_id,
        session_version=int(origin.session_version),
        streams=streams,
        audio_index=index,
    )


# --- answering and choosing ------------------------------------------------------------------


def _pick(remote: RemoteMedia, ours: tuple[Codec, ...]) -> Codec | None:
    """The peer's most preferred codec that we have, at the payload type the engine uses."""
    for codec, pt in zip(remote.codecs, remote.payload_types, strict=True):
        if codec in ours and pt == STATIC_PT[codec]:
            return codec
    return None


def _events(offered: str | None) -> str:
    """The telephone-events of ``offered`` (``a=fmtp`` list) that we know, 0-16 if unknown."""
    if offered is None:
        return _EVENTS
    events: set[int] = set()
    for part in offered.split(","):
        low, _, high = part.strip().partition("-")
        if not _TOKEN.fullmatch(low) or (high and not _TOKEN.fullmatch(high)):
            return _EVENTS
        events.update(range(int(low), min(int(high or low), 16) + 1))
    known = sorted(e for e in events if e <= 16)
    if not known:
        return _EVENTS
    ranges: list[str] = []
    start = prev = known[0]
    for e in [*known[1:], -2]:
        if e != prev + 1:
            ranges.append(str(start) if start == prev else f"{start}-{prev}")
            start = e
        prev = e
    return ",".join(ranges)


def answer(
    offer: RemoteMedia,
    address: MediaAddress,
    *,
    session_id: int,
    version: int,
    supported: tuple[Codec, ...] = ("PCMU", "PCMA"),
    direction: Direction = "sendrecv",
) -> tuple[bytes, Codec, int | None] | SdpError:
    """Answer ``offer`` (RFC 3264 §6): ``(sdp, codec, dtmf_pt)`` for ``set_remote``, or 488.

    ``direction`` is what we want for ourselves (``sendonly`` while we hold the peer and play it
    music); the answer's direction is the offer's mirrored, combined with it (:func:`combine`).

    One m= line per offered one, the audio stream at ``address`` with the first offered codec we
    support (only that one) and telephone-event at the offer's payload type when offered; every
    other stream rejected with port 0. Direction mirrors the offer's (``sendonly`` hold is
    answered ``recvonly``, ``inactive`` and RFC 2543 hold ``inactive``).
    """
    _check_common(address, session_id, version, None)
    codec = _pick(offer, supported)
    if codec is None:
        offered = ",".join(
            f"{c}/{pt}" for c, pt in zip(offer.codecs, offer.payload_types, strict=True)
        )
        return SdpError(f"no common codec (offered {offered or 'none we know'})", 488)
    audio = MediaDescription(
        media="audio",
        port=address.port,
        proto="RTP/AVP",
        formats=[str(STATIC_PT[codec])] + ([] if offer.dtmf_pt is None else [str(offer.dtmf_pt)]),
        attributes=_audio_attributes(
            (codec,),
            offer.dtmf_pt,
            _events(offer.dtmf_events),
            combine(_ANSWER_DIRECTION[offer.direction], direction),
        ),
    )
    media = [
        audio
        if i == offer.audio_index
        else MediaDescription(media=s.media, port=0, proto=s.proto, formats=list(s.formats[:1]))
        for i, s in enumerate(offer.streams)
    ]
    return _sdp_text(address.host, session_id, version, media), codec, offer.dtmf_pt


def choose(
    answer: RemoteMedia, offered: tuple[Codec, ...] = ("PCMU", "PCMA")
) -> tuple[Codec, int | None] | SdpError:
    """Read the peer's answer to our offer: ``(codec, dtmf_pt)`` for ``set_remote``.

    The answer's first codec that we offered is used (RFC 3264 §7: the answerer may list several;
    we send the first). telephone-event counts only if the answer has it (at its payload type).
    """
    codec = _pick(answer, offered)
    if codec is None:
        return SdpError("the answer has no codec we offered", 488)
    return codec, answer.dtmf_pt
