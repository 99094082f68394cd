"""Building SIP responses to requests (RFC 3261 §8.2.6).

:func:`make_response` is the one place a response is derived from a request: it copies the
headers a response must echo (every ``Via`` in order, ``From``, ``To``, ``Call-ID``, ``CSeq``),
adds a ``To`` tag when the request had none (every response except ``100 Trying``), and fills in
the standard reason phrase. Header values are copied verbatim as received (no re-serialisation),
so odd but valid formatting survives and the client can match the response to its transaction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from aiosipua.message import SipRequest, SipResponse

from callbridge.memo import SHORT_HEADER_CHARS, short_text_cache

__all__ = ["REASON_PHRASES", "header_tag", "make_response", "new_tag"]

#: Standard reason phrases (RFC 3261 §21 and the extensions a B2BUA meets).
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    429: "Too Many Requests",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

_ECHOED = ("from", "to", "call-id", "cseq")
_PRETTY = {"from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}


def new_tag() -> str:
    """A fresh random ``tag`` value (64 bits, hex)."""
    return os.urandom(8).hex()


@short_text_cache(maxsize=4096, max_chars=SHORT_HEADER_CHARS)
def header_tag(value: str) -> str | None:
    """The ``tag`` parameter of a ``From``/``To`` header value, or None.

    Works on the raw value: the header parameters are what follows the closing ``>`` of a
    name-addr, or the first ``;`` of an addr-spec (RFC 3261 §20.10).

    Remembered (bounded): a call asks for the tags of the same few values about 17 times
    (responses, dialogs, client transactions, the B2BUA's lookups).
    """
    close = value.rfind(">")
    if close != -1:
        params = value[close + 1 :]
    else:
        semi = value.find(";")
        if semi == -1:
            return None
        params = value[semi:]
    for part in params.split(";"):
        name, sep, tag = part.partition("=")
        if sep and name.strip().lower() == "tag":
            return tag.strip() or None
    return None


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    to_tag: str | None = None,
) -> SipResponse:
    """A response to ``request`` with the headers RFC 3261 §8.2.6.2 requires.

    * ``Via`` (all values, in order), ``From``, ``Call-ID`` and ``CSeq`` are copied verbatim;
      ``To`` too, plus a tag when the request's ``To`` has none and ``status`` is not 100:
      ``to_tag`` if given, else a random one. An existing ``To`` tag is never replaced.
    * ``reason`` defaults to the standard phrase for ``status`` (``""`` for an unknown code).
    * ``headers`` are added after those (each set to exactly one value, replacing an echoed one
      of the same name); ``Content-Length`` is computed from ``body`` when the response is
      serialised with ``bytes(response)``.

    Raises ``ValueError`` if ``status`` is outside 100-699 or a header would inject a line break.
    """
    if not 100 <= status <= 699:
        raise ValueError(f"SIP status code out of range: {status}")
    response = SipResponse(
        status_code=status,
        reason_phrase=REASON_PHRASES.get(status, "") if reason is None else reason,
    )
    # The echoed values are copied into the header dictionary's stores directly (what
    # ``append`` would store): they were checked for line breaks when they entered the request.
    # A To with a tag added is checked again, since the tag may be the caller's.
    source = request.headers._store
    store = response.headers._store
    original = response.headers._original
    vias = source.get("via")
    if vias:
        store["via"] = list(vias)
        original["via"] = "Via"
    for name in _ECHOED:
        values = source.get(name)
        if not values:
            continue
        value = values[0]
        if name == "to" and status != 100 and header_tag(value) is None:
            value = f"{value};tag={to_tag or new_tag()}"
            if "\r" in value or "\n" in value:
                raise ValueError("Header value for To contains line breaks")
        store[name] = [value]
        original[name] = _PRETTY[name]
    if headers:
        for name, value in headers.items():
            response.headers.set_single(name, value)
    response.body = body
    return response
