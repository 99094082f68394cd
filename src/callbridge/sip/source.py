"""Where a SIP message came from, or where one goes."""

from __future__ import annotations

from typing import NamedTuple


class Source(NamedTuple):
    """``(transport, host, port)``; transport is ``"UDP"`` or ``"TCP"``."""

    transport: str
    host: str
    port: int
