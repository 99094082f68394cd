"""A sans-I/O guard around aiosipua's SIP parser: hostile bytes in, a verdict out, never raises.

:func:`parse_datagram` turns one received message (a UDP datagram, or one message framed off a
TCP stream) into exactly one of

* :class:`ParsedRequest` / :class:`ParsedResponse` — a well-formed message, parsed by
  ``aiosipua.message.SipMessage.parse``;
* :class:`ParseFailure` — with the reason, and either a ready response to send back
  (``400 Bad Request`` naming the problem in a ``Warning`` header, or ``505 Version Not
  Supported``) or ``None``, meaning: drop it silently.

Why a guard: aiosipua's parser is deliberately lenient (it skips header lines without a colon,
accepts any start line with three words, trims or logs a bad ``Content-Length``) and raises
``ValueError`` on some inputs. This module checks, on the raw lines and before the library sees
them, what RFC 3261 requires and what the RFC 4475 torture messages probe:

* size caps (whole message, header count) before any parsing work;
* a request line of exactly ``Method SP Request-URI SP SIP-Version`` (RFC 3261 §7.1), a URI
  without ``<>``, whitespace or (for sip/sips) escaped headers; ``SIP/2.0`` only (else 505);
* a status line ``SIP/2.0 SP 3DIGIT SP Reason`` with a code in 100-699;
* every header line ``token HCOLON value`` (folded lines unfolded); a folded first line,
  a line without a colon, a bare CR: malformed;
* the mandatory request headers of RFC 3261 §8.1.1 (``To``, ``From``, ``CSeq``, ``Call-ID``,
  ``Max-Forwards``, ``Via``), each single-valued one exactly once; ``CSeq`` number within
  2**32-1 and its method equal to the request method; ``Max-Forwards`` 0-255;
* ``Via`` values, ``From``/``To``/``Contact`` addresses against the RFC 3261 grammar (quoted
  display names closed, no spaces inside ``<>``, addr-spec without ``?``/``,``, no empty params);
* ``Content-Length`` (digits only, one value): over UDP a body shorter than declared is an error
  (400 for a request, drop for a response, RFC 3261 §18.3) and extra octets are discarded.

A response is never answered, and neither is an ``ACK`` (RFC 3261 §17): those are dropped when
malformed. A malformed request is answered only when its ``Via``, ``From``, ``To``, ``Call-ID``
and ``CSeq`` are good enough to build a response that is itself well formed (the client matches
it on the top ``Via`` branch and the ``CSeq`` method); otherwise it is dropped.

Passing ``source=(host, port)`` stamps the top ``Via`` of a parsed request, and of a failure's
reply, with ``received`` and, when asked for, ``rport`` (RFC 3261 §18.2.1, RFC 3581), so the
response can be routed back with :func:`response_destination`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from aiosipua.headers import MULTI_INSTANCE_HEADERS, CaseInsensitiveDict, expand_compact_header
from aiosipua.message import MAX_HEADERS as LIBRARY_MAX_HEADERS
from aiosipua.message import SipRequest, SipResponse
from aiosipua.message import _split_multi_value as _library_split

from callbridge.memo import SHORT_HEADER_CHARS, short_text_cache
from callbridge.sip.responses import make_response

__all__ = [
    "MAX_HEADERS",
    "MAX_MESSAGE_BYTES",
    "ParseFailure",
    "Parsed",
    "ParsedRequest",
    "ParsedResponse",
    "parse_datagram",
    "response_destination",
    "split_header_values",
    "stamp_via",
]

#: Largest message accepted: the largest UDP payload over IPv4.
MAX_MESSAGE_BYTES: Final = 65_535
#: Most header fields (after unfolding) accepted in one message (aiosipua's own cap too).
MAX_HEADERS: Final = 256
#: ``warn-agent`` of the ``Warning`` header in our 400s.
WARN_AGENT: Final = "callbridge"

_MAX_UINT32: Final = 2**32 - 1

# --- RFC 3261 §25 grammar pieces ---------------------------------------------------------------
# Every repetition is possessive or atomic (Python 3.11+): once a piece matched it is never
# re-split, so no header value can make the matching backtrack exponentially (a REGISTER with a
# few hundred ";expires=1" Contact parameters and a bad last octet took minutes before).
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]++"
_QSTRING = r'"(?:[^"\\\r\n]|\\[^\r\n])*+"'
_SWS = r"[ \t]*+"
_IPV6_REF = r"\[[0-9A-Fa-f:.]++\]"
_HOST = rf"(?:{_IPV6_REF}|[A-Za-z0-9\-.]++)"
# host names are tokens, so a value is a token, an IPv6 reference or a quoted string: the three
# start differently, which keeps the alternation unambiguous.
_PARAM_VALUE = rf"(?:{_TOKEN}|{_IPV6_REF}|{_QSTRING})"
_PARAMS = rf"(?>{_SWS};{_SWS}{_TOKEN}(?:{_SWS}={_SWS}{_PARAM_VALUE})?)*+{_SWS}"
# An unquoted display name: tokens separated by LWS. UTF-8 letters are tolerated (phones send
# them), separators such as , " < are not (RFC 4475 §3.1.2.15).
_DISPLAY_WORD = r"(?:[A-Za-z0-9\-.!%*_+`'~]|[^\x00-\x7f])++"
_DISPLAY = rf"(?:{_DISPLAY_WORD}(?>[ \t]++{_DISPLAY_WORD})*+|{_QSTRING})"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*+"
_NAME_ADDR = rf"(?:{_DISPLAY})?{_SWS}<{_SCHEME}:[^\s<>]*+>"
# In addr-spec form the URI may not contain ; , ? (RFC 3261 §20.10): what follows ; is a header
# parameter, and a ? means the sender forgot the angle brackets (RFC 4475 §3.1.2.13).
_ADDR_SPEC = rf'{_SCHEME}:[^\s;,?<>"]++'

_TOKEN_RE: Final = re.compile(_TOKEN)
_ADDRESS_RE: Final = re.compile(rf"(?:{_NAME_ADDR}|{_ADDR_SPEC}){_PARAMS}")
_VIA_HEAD = (
    rf"{_TOKEN}{_SWS}/{_SWS}{_TOKEN}{_SWS}/{_SWS}{_TOKEN}[ \t]+{_HOST}(?:{_SWS}:{_SWS}\d{{1,5}})?"
)
_VIA_RE: Final = re.compile(rf"{_VIA_HEAD}{_PARAMS}")
# Good enough to route a response: protocol, transport and sent-by, whatever the params.
_VIA_LOOSE_RE: Final = re.compile(rf"{_VIA_HEAD}{_SWS}(?:;.*)?", re.DOTALL)
_VIA_SENT_BY_RE: Final = re.compile(
    rf"{_TOKEN}{_SWS}/{_SWS}{_TOKEN}{_SWS}/{_SWS}({_TOKEN})[ \t]+({_HOST})"
    rf"(?:{_SWS}:{_SWS}(\d{{1,5}}))?"
)
_VIA_PARTS_RE: Final = re.compile(
    rf"({_TOKEN}){_SWS}/{_SWS}({_TOKEN}){_SWS}/{_SWS}({_TOKEN})[ \t]+({_HOST})"
    rf"(?:{_SWS}:{_SWS}(\d{{1,5}}))?({_PARAMS})"
)
_CSEQ_RE: Final = re.compile(rf"(\d{{1,10}})[ \t]+({_TOKEN})")
_VERSION_RE: Final = re.compile(r"SIP/\d{1,9}\.\d{1,9}", re.IGNORECASE)
_STATUS_RE: Final = re.compile(
    r"(SIP/\d{1,9}\.\d{1,9}) (\d{3})(?: (.*))?", re.IGNORECASE | re.DOTALL
)
_URI_RE: Final = re.compile(rf"{_SCHEME}:[^\s<>]+")
_CALL_ID_RE: Final = re.compile(r"[^\s]+")

_SINGLETONS: Final = ("from", "to", "call-id", "cseq", "max-forwards", "content-length")
_REQUIRED: Final = ("to", "from", "cseq", "call-id", "max-forwards", "via")


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A well-formed request."""

    request: SipRequest
    kind: Literal["request"] = "request"


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    """A well-formed response."""

    response: SipResponse
    kind: Literal["response"] = "response"


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """A message that must not be processed: answer it with ``reply``, or drop it (``None``)."""

    reason: str
    reply: SipResponse | None = None
    call_id: str | None = None
    kind: Literal["failure"] = "failure"

    @property
    def action(self) -> Literal["reply", "drop"]:
        return "drop" if self.reply is None else "reply"


Parsed = ParsedRequest | ParsedResponse | ParseFailure


class _Malformed(Exception):
    """Raised inside the parser with the reason and, for a request line, the reply status."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(slots=True)
class _Header:
    name: str  # lower-case, compact form expanded
    value: str  # unfolded, stripped
    raw_name: str = ""  # as received
    library_name: str = ""  # compact form expanded, case as received (aiosipua's key)


class _Fields(list[_Header]):
    """The header fields in order, plus an index by canonical name built while reading them.

    Why: the checks look single headers up a dozen times per message; a scan of the list each
    time cost more than reading the lines did.
    """

    __slots__ = ("by_name",)

    def __init__(self) -> None:
        super().__init__()
        self.by_name: dict[str, list[_Header]] = {}


def parse_datagram(
    data: bytes,
    max_size: int = MAX_MESSAGE_BYTES,
    *,
    max_headers: int = MAX_HEADERS,
    source: tuple[str, int] | None = None,
    require_max_forwards: bool = True,
) -> Parsed:
    """Judge one received SIP message; never raises (see the module docstring).

    ``max_size`` and ``max_headers`` cap the work done on hostile input; ``source`` (the
    sender's address) stamps ``received``/``rport`` on the top ``Via``; with
    ``require_max_forwards=False`` a request without ``Max-Forwards`` (RFC 2543 peers) is
    accepted.
    """
    # aiosipua refuses more than its own cap (256) of header lines: stay within it.
    max_headers = min(max_headers, LIBRARY_MAX_HEADERS)
    try:
        return _parse(bytes(data), max_size, max_headers, source, require_max_forwards)
    except Exception as exc:  # the contract is "never raises"
        return ParseFailure(f"unparseable message ({type(exc).__name__})")


def _parse(
    data: bytes,
    max_size: int,
    max_headers: int,
    source: tuple[str, int] | None,
    require_max_forwards: bool,
) -> Parsed:
    if len(data) > max_size:
        return ParseFailure(f"message larger than {max_size} bytes")
    # RFC 3261 §7.5: CRLFs before the start line are ignored (and a datagram of nothing but
    # CRLFs is a keep-alive, RFC 5626 §4.4.1).
    data = data.lstrip(b"\r\n")
    if not data:
        return ParseFailure("keep-alive")

    header_blob, body, has_end = _split_head(data)
    try:
        text = header_blob.decode("utf-8")
        utf8_error = None
    except UnicodeDecodeError:
        text = header_blob.decode("utf-8", errors="replace")
        utf8_error = "header section is not valid UTF-8"

    crlf = text.count("\r\n")
    if text.count("\r") == crlf == text.count("\n"):
        # Every line ends in CRLF (the usual case): the same lines as the general split below,
        # and no bare CR is left in any of them.
        lines = text.split("\r\n")
        bare_cr = False
    else:
        lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
        bare_cr = any("\r" in line for line in lines)
    if not has_end and len(lines) > 1 and not lines[-1]:
        lines.pop()  # the newline ending the last header line of a truncated message
    start = lines[0]
    is_response = start[:4].upper() == "SIP/"

    headers, header_error = _read_headers(lines[1:], max_headers)

    errors: list[tuple[str, int]] = []
    if utf8_error:
        errors.append((utf8_error, 400))
    if bare_cr:
        errors.append(("bare CR in header section", 400))
    if header_error:
        errors.append((header_error, 400))
    if not has_end:
        errors.append(("no empty line after the header section", 400))

    if is_response:
        return _judge_response(start, headers, body, errors)
    # A response echoes every Via: past the cap it could not be well formed itself.
    answerable = len(headers) + 8 <= max_headers
    return _judge_request(start, headers, body, errors, source, require_max_forwards, answerable)


def _split_head(data: bytes) -> tuple[bytes, bytes, bool]:
    """Header section, body, and whether the empty line ending the headers was there."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if lf != -1 and (crlf == -1 or lf < crlf):
        return data[:lf], data[lf + 2 :], True
    if crlf != -1:
        return data[:crlf], data[crlf + 4 :], True
    return data, b"", False


def _read_headers(lines: list[str], max_headers: int) -> tuple[_Fields, str | None]:
    """Unfold and split header lines; stop at the first structural error (returned)."""
    headers = _Fields()
    by_name = headers.by_name
    for line in lines:
        first = line[:1]
        if first == " " or first == "\t":
            if not headers:
                return headers, "folded line before the first header"
            folded = line.strip(" \t")
            headers[-1].value = f"{headers[-1].value} {folded}".strip(" \t")
            continue
        if not line:
            return headers, "empty line inside the header section"
        name, colon, value = line.partition(":")
        if not colon:
            return headers, "header line without a colon"
        name = name.rstrip(" \t")
        names = _NAMES.get(name, _UNSEEN)
        if names is _UNSEEN:
            names = _header_name(name)
        if names is None:
            return headers, "malformed header name"
        if len(headers) >= max_headers:
            return headers, f"more than {max_headers} header fields"
        key = names[0]
        header = _Header(key, value.strip(" \t"), name, names[1])
        headers.append(header)
        same = by_name.get(key)
        if same is None:
            by_name[key] = [header]
        else:
            same.append(header)
    return headers, None


# header name as received -> (canonical, aiosipua's name), None if malformed
_NAMES: dict[str, tuple[str, str] | None] = {}
_NAMES_CAP: Final = 1024  # names seen first are cached; junk from a flood cannot grow it
_UNSEEN: Final = ("", "")  # not in _NAMES yet (None there means malformed)


def _header_name(name: str) -> tuple[str, str] | None:
    """The lower-case expanded name of a header and the expanded name as received (the key and
    the name aiosipua stores), or None when the name is not a token."""
    try:
        return _NAMES[name]
    except KeyError:
        pass
    names = None
    if _TOKEN_RE.fullmatch(name):
        expanded = expand_compact_header(name)
        names = (expanded.lower(), expanded)
    if len(_NAMES) < _NAMES_CAP:
        _NAMES[name] = names
    return names


def _values(headers: _Fields, name: str) -> list[str]:
    return [h.value for h in headers.by_name.get(name, ())]


def _first(headers: _Fields, name: str) -> str | None:
    found = headers.by_name.get(name)
    return found[0].value if found else None


def split_header_values(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quoted strings and ``<...>``."""
    # Fast paths (the same result as the scan below): most values hold no comma at all, and
    # without quotes or angle brackets every comma separates.
    if "," not in value:
        return [value.strip(" \t")]
    if '"' not in value and "<" not in value:
        return [part.strip(" \t") for part in value.split(",")]
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and not quoted and depth == 0:
            parts.append("".join(current).strip(" \t"))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip(" \t"))
    return parts


def _cseq(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    match = _CSEQ_RE.fullmatch(value)
    if match is None:
        return None
    number = int(match.group(1))
    if number > _MAX_UINT32:
        return None
    return number, match.group(2)


def _address_ok(value: str | None) -> bool:
    return value is not None and _ADDRESS_RE.fullmatch(value) is not None


def _top_via(headers: _Fields) -> str | None:
    first = _first(headers, "via")
    if first is None:
        return None
    return split_header_values(first)[0]


def _answerable(headers: _Fields) -> bool:
    """Whether a response built by echoing these headers would itself be well formed.

    A response is matched to its transaction by the top Via branch and the CSeq method, so those
    must be usable; From and To are echoed as they are (a malformed display name in them is
    what the 400 complains about) and only need to be there.
    """
    top = _top_via(headers)
    call_id = _first(headers, "call-id")
    echoed = [h.value for h in headers if h.name in ("via", "from", "to", "call-id", "cseq")]
    return (
        not any("\r" in value or "\n" in value for value in echoed)
        and top is not None
        and _VIA_LOOSE_RE.fullmatch(top) is not None
        and bool(_first(headers, "from"))
        and bool(_first(headers, "to"))
        and call_id is not None
        and _CALL_ID_RE.fullmatch(call_id) is not None
        and _cseq(_first(headers, "cseq")) is not None
    )


def _check_common(headers: _Fields, body: bytes, errors: list[tuple[str, int]]) -> bytes:
    """Checks shared by requests and responses; returns the body cut to Content-Length."""
    by_name = headers.by_name
    for name in _SINGLETONS:
        if len(by_name.get(name, ())) > 1:
            errors.append((f"more than one {name} header", 400))
    call_id = _first(headers, "call-id")
    if call_id is not None and not _CALL_ID_RE.fullmatch(call_id):
        errors.append(("malformed Call-ID header", 400))
    cseq = _first(headers, "cseq")
    if cseq is not None and _cseq(cseq) is None:
        errors.append(("malformed or out-of-range CSeq header", 400))
    length = _first(headers, "content-length")
    if length is None:
        return body
    if not length.isdigit() or not length.isascii() or len(length) > 10:
        errors.append(("malformed Content-Length header", 400))
        return body
    declared = int(length)
    if declared > len(body):
        errors.append(("Content-Length larger than the message body", 400))
        return body
    return body[:declared]


def _judge_response(
    start: str,
    headers: _Fields,
    body: bytes,
    errors: list[tuple[str, int]],
) -> Parsed:
    call_id = _first(headers, "call-id")
    match = _STATUS_RE.fullmatch(start)
    if match is None:
        return ParseFailure("malformed Status-Line", None, call_id)
    if match.group(1).upper() != "SIP/2.0":
        return ParseFailure("unsupported SIP version in response", None, call_id)
    if not 100 <= int(match.group(2)) <= 699:
        return ParseFailure("status code out of range", None, call_id)
    body = _check_common(headers, body, errors)
    top = _top_via(headers)
    if top is None or _VIA_LOOSE_RE.fullmatch(top) is None:
        errors.append(("missing or malformed Via header", 400))
    for name in ("from", "to", "call-id", "cseq"):
        if not _first(headers, name):
            errors.append((f"missing {name} header", 400))
    if errors:
        return ParseFailure(errors[0][0], None, call_id)
    response = SipResponse(
        headers=_library_headers(headers),
        body=body,
        status_code=int(match.group(2)),
        reason_phrase=(match.group(3) or "").strip(),
    )
    return ParsedResponse(response)


def _judge_request(
    start: str,
    headers: _Fields,
    body: bytes,
    errors: list[tuple[str, int]],
    source: tuple[str, int] | None,
    require_max_forwards: bool,
    answerable: bool,
) -> Parsed:
    words = start.split()
    method = words[0] if words else ""
    looks_like_request = (
        len(words) >= 2
        and _TOKEN_RE.fullmatch(method) is not None
        and _VERSION_RE.fullmatch(words[-1]) is not None
    )
    try:
        _check_request_line(start)
    except _Malformed as exc:
        errors.insert(0, (exc.reason, exc.status))

    body = _check_common(headers, body, errors)
    missing = [name for name in _REQUIRED if _first(headers, name) is None]
    if not require_max_forwards and "max-forwards" in missing:
        missing.remove("max-forwards")
    if missing:
        errors.append((f"missing {', '.join(missing)} header", 400))
    cseq = _cseq(_first(headers, "cseq"))
    if cseq is not None and looks_like_request and cseq[1] != method:
        errors.append(("CSeq method does not match the request method", 400))
    max_forwards = _first(headers, "max-forwards")
    if max_forwards is not None and not (
        max_forwards.isascii()
        and max_forwards.isdigit()
        and int(max_forwards[-10:]) <= 255
        and len(max_forwards.lstrip("0")) <= 3
    ):
        errors.append(("malformed Max-Forwards header", 400))
    for value in _values(headers, "via"):
        if not all(_VIA_RE.fullmatch(part) for part in split_header_values(value)):
            errors.append(("malformed Via header", 400))
            break
    for name in ("from", "to"):
        address = _first(headers, name)
        if address is not None and not _address_ok(address):
            errors.append((f"malformed {name.capitalize()} header", 400))
    for value in _values(headers, "contact"):
        parts = split_header_values(value)
        if parts != ["*"] and not all(_address_ok(part) for part in parts):
            errors.append(("malformed Contact header", 400))
            break

    call_id = _first(headers, "call-id")
    if errors:
        reason, status = min(errors, key=lambda e: e[1] != 505)
        if not (answerable and looks_like_request and method != "ACK" and _answerable(headers)):
            return ParseFailure(reason, None, call_id)
        return ParseFailure(reason, _reply(headers, status, reason, source), call_id)

    uri = start.split(" ")[1]  # the Request-Line is exactly three parts (checked above)
    message = SipRequest(headers=_library_headers(headers), body=body, method=method, uri=uri)
    if source is not None:
        stamp_via(message, source)
    return ParsedRequest(message)


def _check_request_line(start: str) -> None:
    """``Method SP Request-URI SP SIP-Version`` exactly (RFC 3261 §7.1, §25.1)."""
    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        raise _Malformed("malformed Request-Line (extra, missing or trailing whitespace)")
    method, uri, version = parts
    if not _TOKEN_RE.fullmatch(method):
        raise _Malformed("malformed method in Request-Line")
    if not _VERSION_RE.fullmatch(version):
        raise _Malformed("malformed SIP-Version in Request-Line")
    if version.upper() != "SIP/2.0":
        raise _Malformed(f"SIP version {version} not supported", 505)
    if not _URI_RE.fullmatch(uri):
        raise _Malformed("malformed Request-URI")
    scheme, _, rest = uri.partition(":")
    if scheme.lower() in ("sip", "sips"):
        hostpart = rest.partition("@")[2] if "@" in rest else rest
        if "?" in hostpart:
            raise _Malformed("Request-URI carries escaped headers")


def _library_headers(headers: list[_Header]) -> CaseInsensitiveDict:
    """The checked header fields as aiosipua's own parser would store them.

    Built directly (the message is not re-serialised and parsed a second time): the same names
    (compact forms expanded, case as received), the same values in the same order, and the
    multi-instance headers split on commas by the library's own splitter, exactly as
    ``SipMessage.parse(_canonical(...))`` does (the tests check that they agree).

    The dictionary's two stores are filled directly rather than through ``append``, which
    lower-cases the name again and re-checks every value for line breaks: the names here are
    tokens and a header section with a CR or LF left in a value was refused already.
    """
    out = CaseInsensitiveDict()
    store = out._store
    original = out._original
    for header in headers:
        key = header.name
        value = header.value
        if key == "via":
            if "," in value:
                value = ", ".join(_tidy_via(part) for part in split_header_values(value))
            else:
                value = _tidy_via(value.strip(" \t"))
        value = value.strip()
        if key in MULTI_INSTANCE_HEADERS:
            if "," in value:
                parts = _library_split(value)
                if not parts:
                    continue
            elif value:
                parts = [value]
            else:
                continue
        else:
            parts = [value]
        values = store.get(key)
        if values is None:
            store[key] = parts
            original[key] = header.library_name or expand_compact_header(header.raw_name)
        else:
            values.extend(parts)
    return out


def _canonical(start: str, headers: list[_Header], body: bytes) -> bytes:
    """The checked message re-serialised for the library: unfolded lines, CRLF, tidy Vias.

    The reference for :func:`_library_headers` (``SipMessage.parse`` of this gives the same
    message). The caller passes the start line with an upper-case ``SIP/2.0`` (RFC 3261 §7.1
    makes it case-insensitive; aiosipua does not). Via values are rewritten without the LWS
    that RFC 3261 allows around ``/``, ``;`` and ``=`` (aiosipua's ``parse_via`` misreads
    ``SIP / 2.0 / UDP``): the same value, and clients match responses on it.
    """
    lines = [start]
    for header in headers:
        value = header.value
        if header.name == "via":
            value = ", ".join(_tidy_via(part) for part in split_header_values(value))
        lines.append(f"{header.raw_name}: {value}")
    return "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body


def _tidy_via(value: str) -> str:
    if "\t" not in value and value.count(" ") == 1:
        return value  # the one space is the one after the transport: nothing to tidy
    match = _VIA_PARTS_RE.fullmatch(value)
    if match is None or '"' in value:
        return value
    protocol, version, transport, host, port, params = match.groups()
    sent_by = f"{host}:{port}" if port else host
    params = re.sub(r"[ \t]*([;=])[ \t]*", r"\1", params).rstrip(" \t")
    return f"{protocol}/{version}/{transport} {sent_by}{params}"


def _reply(
    headers: _Fields, status: int, reason: str, source: tuple[str, int] | None
) -> SipResponse:
    """The 400 (or 505) to a malformed request whose dialog headers are usable."""
    request = SipRequest()
    for value in _values(headers, "via"):
        request.headers.append("Via", value)
    for name, pretty in (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq")):
        first = _first(headers, name)
        if first is not None:
            request.headers.append(pretty, first)
    if source is not None:
        stamp_via(request, source)
    text = "".join(ch if ch.isprintable() and ch not in '"\\' else " " for ch in reason)
    extra = {"Warning": f'399 {WARN_AGENT} "{text}"'} if status == 400 else {}
    return make_response(request, status, headers=extra)


def stamp_via(message: SipRequest | SipResponse, source: tuple[str, int]) -> None:
    """Add ``received`` (always) and fill a valueless ``rport`` in the top ``Via`` value.

    Works on the raw text of the first Via value: the sent-by and the other parameters are kept
    as they were; an existing ``received`` is replaced.
    """
    vias = message.headers.get("via")
    if not vias:
        return
    host, port = source
    parts = split_header_values(vias[0])
    top = parts[0]
    head, _, params = top.partition(";")
    kept: list[str] = []
    for param in params.split(";") if params else []:
        name, sep, _value = param.partition("=")
        key = name.strip(" \t").lower()
        if key == "received":
            continue
        if key == "rport" and not sep:
            kept.append(f"rport={port}")
            continue
        kept.append(param.strip(" \t"))
    kept.append(f"received={host}")
    parts[0] = ";".join([head.rstrip(" \t"), *kept])
    rest = vias[1:]
    message.headers.remove("via")
    message.headers.append("Via", ", ".join(parts) if len(parts) > 1 else parts[0])
    for value in rest:
        message.headers.append("Via", value)


def response_destination(response: SipResponse) -> tuple[str, str, int] | None:
    """``(transport, host, port)`` a response goes to, from its top ``Via`` (RFC 3261 §18.2.2).

    ``received`` overrides the sent-by host and a valued ``rport`` the port (RFC 3581); the
    port defaults to 5060. None when the top Via is unusable.
    """
    vias = response.headers.get("via")
    if not vias:
        return None
    return _via_destination(vias[0])


@short_text_cache(maxsize=4096, max_chars=SHORT_HEADER_CHARS)
def _via_destination(via: str) -> tuple[str, str, int] | None:
    """:func:`response_destination` of a top ``Via`` header value; remembered (bounded), since
    every response to a request (100, 180, 200...) goes where the same Via says."""
    top = split_header_values(via)[0]
    match = _VIA_SENT_BY_RE.match(top)
    if match is None:
        return None
    transport, host, port_text = match.group(1).upper(), match.group(2), match.group(3)
    port = int(port_text) if port_text else 5060
    _, _, params = top.partition(";")
    for param in params.split(";") if params else []:
        name, sep, value = param.partition("=")
        key, value = name.strip(" \t").lower(), value.strip(" \t")
        if key == "received" and sep and value:
            host = value
        elif key == "rport" and sep and value.isdigit() and len(value) <= 5:
            port = int(value)
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not 0 < port < 65536:
        return None
    return transport, host, port
