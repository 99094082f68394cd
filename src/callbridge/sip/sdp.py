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

A peer's SDP is read in one pass over its lines (:func:`_read`) that keeps only what
:class:`RemoteMedia` needs; anything it is not sure of (a body that is an error, or a line
aiosipua's :func:`~aiosipua.sdp.parse_sdp` would read in an unusual way) goes the reference way
instead: the text checked here first, then aiosipua's parser (wrapped: it raises ``ValueError`` on
bad numbers and silently skips malformed lines and ``m=`` lines). Both give the same result for
every body the fast reader accepts (a differential test holds them to it); the reference way
decides every error and its reason. Our SDP is written directly in the layout of aiosipua's
:func:`~aiosipua.sdp.serialize_sdp`, the audio stream's part cached per codec set. aiosipua's
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

from aiosipua.sdp import ConnectionData, SdpMessage, parse_sdp

from callbridge.media.port import Codec, MediaAddress
from callbridge.memo import MAX_IP_CHARS, short_text_cache

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
_CACHED_KEY_CHARS = 256
"""The most text a remembered result is kept for (its key's characters, and items): a peer's body
may be 64 kB, and the caches keep only the short values real peers repeat, never a hostile
peer's long ones (those are worked out every time)."""


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


@short_text_cache(maxsize=1024, max_chars=MAX_IP_CHARS)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``ipaddress.ip_address``, remembered: a call reads and writes the same few addresses
    six times (offer, answer, both legs) and parsing one costs more than the rest of a c= line.
    The objects are immutable; a ``ValueError`` is raised again each time (not cached)."""
    return ipaddress.ip_address(text)


def _addr_type(host: str) -> Literal["IP4", "IP6"]:
    return "IP6" if _ip(host).version == 6 else "IP4"


def _sdp_text(host: str, session_id: int, version: int, media: str) -> bytes:
    """Our SDP: the session part, then ``media`` (its ``m=`` sections, each line CRLF-ended).

    The lines and their order are aiosipua's ``serialize_sdp`` of the session we used to build
    with it (``s=-``, a session-level ``c=``, ``t=0 0``, no session attributes); the tests
    compare the bytes with that serialiser's."""
    addr_type = _addr_type(host)
    return (
        f"v=0\r\no=- {session_id} {version} IN {addr_type} {host}\r\ns=-\r\n"
        f"c=IN {addr_type} {host}\r\nt=0 0\r\n{media}"
    ).encode()


@functools.lru_cache(maxsize=256)
def _audio_tail(
    codecs: tuple[Codec, ...], dtmf_pt: int | None, events: str, direction: Direction
) -> str:
    """Our audio ``m=`` section after its port: the formats, then the ``a=`` lines (rtpmaps,
    telephone-event's fmtp, ptime, direction). The same for every call with the same codecs, so
    remembered; ``events`` is already normalised by :func:`_events` (a few distinct values)."""
    formats = [str(STATIC_PT[c]) for c in codecs]
    lines = [f"a=rtpmap:{STATIC_PT[c]} {c}/8000\r\n" for c in codecs]
    if dtmf_pt is not None:
        formats.append(str(dtmf_pt))
        lines.append(f"a=rtpmap:{dtmf_pt} telephone-event/8000\r\na=fmtp:{dtmf_pt} {events}\r\n")
    return f" RTP/AVP {' '.join(formats)}\r\n{''.join(lines)}a=ptime:{_PTIME}\r\na={direction}\r\n"


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
    audio = f"m=audio {address.port}{_audio_tail(codecs, dtmf_pt, _EVENTS, direction)}"
    return _sdp_text(address.host, session_id, version, audio)


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


@dataclass(slots=True)
class _Media:
    """One ``m=`` section as aiosipua's parser would give it, with just the fields we read."""

    media: str
    port: int
    proto: str
    formats: list[str]
    connection: tuple[str, str, str] | None  # c= network type, address type, address
    attributes: dict[str, list[str]]  # name -> values, a flag (no ``:``) with no value


@dataclass(slots=True)
class _Body:
    """A peer's SDP as aiosipua's parser would give it, with just the fields we read."""

    session_id: str
    session_version: str
    connection: tuple[str, str, str] | None
    attributes: dict[str, list[str]]
    media: list[_Media]


def _read(text: str) -> _Body | None:
    """The fast reader: ``text`` as :func:`_check_lines` and ``parse_sdp`` would see it, or
    ``None`` when this reader is not sure, and then they decide (every error among others).

    ``None`` for: a character that is not ASCII (so ``isdigit()`` means ``[0-9]+``, what
    ``int()`` surely reads), line ends other than CRLF/LF, anything before ``v=0``, a line that
    :func:`_check_lines` would refuse (not ``x=``, a control character or tab, a bad ``m=``), a
    session-level ``o=`` or any ``c=`` with too few fields (aiosipua substitutes defaults), and a
    number aiosipua reads with ``int()`` (``v=``, ``t=``, ``b=``, ``a=rtpmap``/``fmtp`` payload
    types, clock rates and channels) that is not plain ASCII digits. Otherwise the fields are
    what aiosipua reads: each line stripped (only spaces can be: the lines are printable), the
    last ``o=``/``c=`` of a level wins, ``a=`` lines go into a dict by name in order, and
    ``v=``/``o=``/``s=``/``t=`` inside a media section are ignored.
    """
    if not text.isascii():
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    if not text.replace("\n", "").isprintable():  # a control character or a tab somewhere
        return None
    lines = text.split("\n")
    if lines[0] != "v=0":
        return None
    origin: list[str] | None = None
    connection: tuple[str, str, str] | None = None
    attributes: dict[str, list[str]] = {}
    media: list[_Media] = []
    current: _Media | None = None
    for line in lines:
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not "a" <= line[0] <= "z":
            return None
        if line[-1] == " ":
            line = line.rstrip(" ")
        kind = line[0]
        value = line[2:]
        if kind == "a":
            attrs = attributes if current is None else current.attributes
            key, colon, val = value.partition(":")
            if colon:
                attrs.setdefault(key, []).append(val)
            else:
                attrs.setdefault(key, [])
        elif kind == "m":
            parts = value.split()
            # A space after "m=" would move _check_lines' port field (it splits the whole line).
            if len(parts) < 4 or value[0] == " " or not parts[1].isdigit():
                return None
            current = _Media(parts[0], int(parts[1]), parts[2], parts[3:], None, {})
            media.append(current)
        elif kind == "c":
            parts = value.split()
            if len(parts) < 3:
                return None
            if current is None:
                connection = (parts[0], parts[1], parts[2])
            else:
                current.connection = (parts[0], parts[1], parts[2])
        elif kind == "b":
            if ":" in value and not value.partition(":")[2].isdigit():
                return None
        elif current is None:
            if kind == "o":
                origin = value.split()
                if len(origin) < 6:
                    return None
            elif kind == "v":
                if not value.isdigit():
                    return None
            elif kind == "t":
                parts = value.split()
                if len(parts) >= 2 and not (parts[0].isdigit() and parts[1].isdigit()):
                    return None
    if origin is None:
        return None
    for section in media:  # aiosipua reads every section's rtpmap and fmtp numbers
        for value in section.attributes.get("rtpmap", ()):
            space = value.find(" ")
            if space == -1:
                continue
            numbers = value[space + 1 :].split("/")  # name/clock/channels
            if not value[:space].isdigit() or (len(numbers) > 1 and not numbers[1].isdigit()):
                return None
            if len(numbers) > 2 and not numbers[2].isdigit():
                return None
        for value in section.attributes.get("fmtp", ()):
            space = value.find(" ")
            if space != -1 and not value[:space].isdigit():
                return None
    return _Body(origin[1], origin[2], connection, attributes, media)


def _from_message(message: SdpMessage) -> _Body:
    """The fields of aiosipua's parse that :func:`_remote` reads."""
    return _Body(
        message.origin.session_id,
        message.origin.session_version,
        _from_connection(message.connection),
        message.attributes,
        [
            _Media(
                m.media, m.port, m.proto, m.formats, _from_connection(m.connection), m.attributes
            )
            for m in message.media
        ],
    )


def _from_connection(conn: ConnectionData | None) -> tuple[str, str, str] | None:
    return None if conn is None else (conn.net_type, conn.addr_type, conn.address)


def _connection(net_type: str, addr_type: str, address: str) -> str | SdpError:
    """The host of a ``c=`` line, or why it cannot be used; remembered, as :func:`_ip` is (the
    result is immutable either way), unless the line is long."""
    if len(net_type) + len(addr_type) + len(address) > _CACHED_KEY_CHARS:
        return _check_connection(net_type, addr_type, address)
    return _remembered_connection(net_type, addr_type, address)


def _check_connection(net_type: str, addr_type: str, address: str) -> str | SdpError:
    if net_type != "IN" or addr_type not in ("IP4", "IP6"):
        return SdpError(f"unsupported c= network {net_type} {addr_type}", 488)
    try:
        ip = _ip(address)
    except ValueError:
        return SdpError(f"c= address is not an IP address: {address[:60]!r}", 488)
    if (ip.version == 6) != (addr_type == "IP6"):
        return SdpError(f"c= {addr_type} with address {address}", 400)
    if ip.is_multicast:
        return SdpError("multicast media is not supported", 488)
    return str(ip)


_remembered_connection = functools.lru_cache(maxsize=1024)(_check_connection)


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


def _rtpmaps(values: tuple[str, ...]) -> dict[int, tuple[str, str]] | SdpError:
    """``pt -> (lower-case encoding name, rest)`` where rest is ``clock[/channels]``."""
    maps: dict[int, tuple[str, str]] = {}
    for value in values:
        pt_text, _, encoding = value.strip().partition(" ")
        name, _, rest = encoding.strip().partition("/")
        if not _TOKEN.fullmatch(pt_text) or int(pt_text) > 127 or not name:
            return SdpError(f"bad a=rtpmap:{value[:40]}", 400)
        maps.setdefault(int(pt_text), (name.lower(), rest))
    return maps


_Codecs = tuple[tuple[Codec, ...], tuple[int, ...], int | None]


def _codecs(formats: tuple[str, ...], rtpmap: tuple[str, ...]) -> _Codecs | SdpError:
    """The audio stream's G.711 codecs, their payload types and telephone-event's payload type,
    from its formats and ``a=rtpmap`` values. Remembered (unless long): most peers send the
    same few lists on every call, and the result is immutable."""
    size = len(formats) + len(rtpmap) + sum(map(len, formats)) + sum(map(len, rtpmap))
    if size > _CACHED_KEY_CHARS:
        return _read_codecs(formats, rtpmap)
    return _remembered_codecs(formats, rtpmap)


def _read_codecs(formats: tuple[str, ...], rtpmap: tuple[str, ...]) -> _Codecs | SdpError:
    rtpmaps = _rtpmaps(rtpmap)
    if isinstance(rtpmaps, SdpError):
        return rtpmaps
    codecs: list[Codec] = []
    pts: list[int] = []
    dtmf_pt: int | None = None
    for fmt in formats:
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
    return tuple(codecs), tuple(pts), dtmf_pt


_remembered_codecs = functools.lru_cache(maxsize=512)(_read_codecs)


def _fmtp(media: _Media, pt: int) -> str | None:
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
    body = _read(text)
    return _remote(body) if body is not None else _parse_reference(text)


def _parse_reference(text: str) -> RemoteMedia | SdpError:
    """The reference way for a decoded body: :func:`_check_lines`, aiosipua's parser, then
    :func:`_remote`. Whatever :func:`_read` accepts, this gives the same result for."""
    problem = _check_lines(text)
    if problem is not None:
        return problem
    try:
        message = parse_sdp(text)
    except (ValueError, TypeError, IndexError) as exc:  # aiosipua's int() on b=, t=, rtpmap...
        return SdpError(f"malformed SDP: {exc}"[:120], 400)
    return _remote(_from_message(message))


def _remote(message: _Body) -> RemoteMedia | SdpError:
    if not _TOKEN.fullmatch(message.session_version) or not message.session_id:
        return SdpError("missing or malformed o= line", 400)
    streams = tuple([Stream(m.media, m.port, m.proto, tuple(m.formats)) for m in message.media])
    for s in streams:
        if not 0 <= s.port <= 65535:
            return SdpError("m= port out of range", 400)
    index = -1
    for i, m in enumerate(message.media):
        if m.media == "audio" and m.port != 0 and m.proto.upper() == "RTP/AVP":
            index = i
            break
    if index < 0:
        return SdpError("no usable audio stream (RTP/AVP, port not 0)", 488)
    media = message.media[index]
    conn = media.connection or message.connection
    if conn is None:
        return SdpError("no c= line for the audio stream", 400)
    host = _connection(*conn)
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
    found = _codecs(streams[index].formats, tuple(media.attributes.get("rtpmap", ())))
    if isinstance(found, SdpError):
        return found
    codecs, pts, dtmf_pt = found
    return RemoteMedia(
        host=host,
        port=media.port,
        codecs=codecs,
        payload_types=pts,
        dtmf_pt=dtmf_pt,
        dtmf_events=None if dtmf_pt is None else _fmtp(media, dtmf_pt),
        direction=direction,
        ptime=_ptime(media.attributes, message.attributes),
        session_id=message.session_id,
        session_version=int(message.session_version),
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
    """The telephone-events of ``offered`` (``a=fmtp`` list) that we know, 0-16 if unknown.
    Remembered (unless long): nearly every peer sends one of a few lists (``0-15``, ``0-16``,
    ``0-11,16``)."""
    if offered is not None and len(offered) > _CACHED_KEY_CHARS:
        return _known_events(offered)
    return _remembered_events(offered)


def _known_events(offered: str | None) -> str:
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


_remembered_events = functools.lru_cache(maxsize=256)(_known_events)


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
    tail = _audio_tail(
        (codec,),
        offer.dtmf_pt,
        _events(offer.dtmf_events),
        combine(_ANSWER_DIRECTION[offer.direction], direction),
    )
    media = "".join(
        f"m=audio {address.port}{tail}"
        if i == offer.audio_index
        else f"m={s.media} 0 {s.proto} {' '.join(s.formats[:1])}\r\n"
        for i, s in enumerate(offer.streams)
    )
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
