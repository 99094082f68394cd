"""Caches of peer-supplied text keep only short values (a hostile peer cannot fill memory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from callbridge.media import embedded
from callbridge.memo import short_text_cache
from callbridge.sip import endpoint, parse, responses, sdp


def test_short_texts_are_remembered_and_long_ones_worked_out_every_time() -> None:
    calls: list[str] = []

    @short_text_cache(maxsize=8, max_chars=5)
    def upper(text: str) -> str:
        calls.append(text)
        return text.upper()

    assert [upper("ab"), upper("ab")] == ["AB", "AB"]
    assert calls == ["ab"]
    assert [upper("abcdef"), upper("abcdef")] == ["ABCDEF", "ABCDEF"]
    assert calls == ["ab", "abcdef", "abcdef"]
    assert upper.cache_info().currsize == 1  # type: ignore[attr-defined]


def test_an_error_is_raised_for_long_and_short_texts_alike() -> None:
    @short_text_cache(maxsize=8, max_chars=5)
    def number(text: str) -> int:
        return int(text)

    for text in ("x", "x" * 50):
        with pytest.raises(ValueError):
            number(text)


HUGE = "z9hG4bK" + "a" * 60_000

CASES: list[tuple[Callable[[str], Any], str, str]] = [
    (
        endpoint._branch_and_sent_by,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx1",
        f"SIP/2.0/UDP 192.0.2.1:5060;branch={HUGE}",
    ),
    (
        parse._via_destination,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx1",
        f"SIP/2.0/UDP 192.0.2.1:5060;branch={HUGE}",
    ),
    (responses.header_tag, "<sip:a@example.com>;tag=abc", f"<sip:a@example.com>;tag={HUGE}"),
    (embedded._ip_address, "192.0.2.7", "fe80::1%" + "e" * 60_000),
]


@pytest.mark.parametrize("function,short,long", CASES, ids=lambda c: getattr(c, "__name__", "x"))
def test_the_sip_and_media_caches_never_keep_a_long_value(
    function: Callable[[str], Any], short: str, long: str
) -> None:
    function.cache_clear()  # type: ignore[attr-defined]
    function(long)
    assert function.cache_info().currsize == 0  # type: ignore[attr-defined]
    function(short)
    assert function.cache_info().currsize == 1  # type: ignore[attr-defined]


def test_the_sdp_address_cache_never_keeps_a_long_zone() -> None:
    sdp._ip.cache_clear()  # type: ignore[attr-defined]
    assert sdp._ip("fe80::1%" + "e" * 60_000).version == 6
    assert sdp._ip.cache_info().currsize == 0  # type: ignore[attr-defined]
    sdp._ip("192.0.2.1")
    assert sdp._ip.cache_info().currsize == 1  # type: ignore[attr-defined]
