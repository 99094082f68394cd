"""SIP messages to wire bytes: exactly what aiosipua's ``bytes(message)`` gives, for less CPU.

Every message the endpoint sends is serialised once (seven per bench call). aiosipua's
``SipMessage.__bytes__`` sets ``Content-Length`` through the checked setter and prettifies each
header name through a lower-casing dictionary lookup (a title-casing fallback for unknown names)
on every call; :func:`to_bytes` does the same with the pretty names cached per name as stored.
The output and the side effect (``Content-Length`` set to the body's length, added last when
absent) are the library's; the tests compare both on every torture message and on the messages
the B2BUA builds.
"""

from __future__ import annotations

from typing import Final

from aiosipua.headers import prettify_header_name
from aiosipua.message import SipRequest, SipResponse

__all__ = ["to_bytes"]

_PRETTY: dict[str, str] = {}  # header name as stored -> as written
_PRETTY_CAP: Final = 1024  # names seen first are cached; a flood of odd names cannot grow it


def _pretty(name: str) -> str:
    pretty = _PRETTY.get(name)
    if pretty is None:
        pretty = prettify_header_name(name)
        if len(_PRETTY) < _PRETTY_CAP:
            _PRETTY[name] = pretty
    return pretty


def to_bytes(message: SipRequest | SipResponse) -> bytes:
    """``bytes(message)``: the start line, every header value on its own line, the body."""
    headers = message.headers
    body = message.body
    store = headers._store
    original = headers._original
    store["content-length"] = [str(len(body))]
    original["content-length"] = "Content-Length"
    lines = [message._start_line()]
    for key, values in store.items():
        pretty = _PRETTY.get(original[key]) or _pretty(original[key])
        for value in values:
            lines.append(f"{pretty}: {value}")
    lines.append("")
    lines.append("")
    return "\r\n".join(lines).encode("utf-8") + body
