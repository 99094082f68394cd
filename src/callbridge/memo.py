"""Memoising the parsing of short texts that peers repeat, without letting a peer fill memory.

Hot paths read the same few values call after call (a trunk's address, a Via branch, a From
tag) and remember the result in a bounded LRU cache. A bound on the number of entries is not a
bound on memory when the keys come from the network: a 60 kB Via branch in each of a few thousand
datagrams would pin a gigabyte. :func:`short_text_cache` caches a result only when its text is
short; a longer text is worked out every time, as if there were no cache.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

R = TypeVar("R")


def short_text_cache(
    maxsize: int, max_chars: int
) -> Callable[[Callable[[str], R]], Callable[[str], R]]:
    """Decorate a pure function of one string: an LRU cache of ``maxsize`` entries for texts of
    at most ``max_chars`` characters; longer texts bypass it (never stored)."""

    def decorate(function: Callable[[str], R]) -> Callable[[str], R]:
        cached = functools.lru_cache(maxsize=maxsize)(function)

        @functools.wraps(function)
        def lookup(text: str) -> R:
            if len(text) > max_chars:
                return function(text)
            return cached(text)

        lookup.cache_info = cached.cache_info  # type: ignore[attr-defined]
        lookup.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return lookup

    return decorate


#: Texts longer than this are not remembered: a Via, From or To value of a real peer is well
#: under it (a hostile one may be 60 kB).
SHORT_HEADER_CHARS = 256
#: The longest IPv6 address text with an IPv4 tail is 45 characters; a zone (``%eth0``) adds a
#: few. Anything longer is parsed every time (and is most likely refused).
MAX_IP_CHARS = 64
