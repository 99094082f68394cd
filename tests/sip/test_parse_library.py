"""The guard builds aiosipua messages directly: they must equal what aiosipua's own parser makes
of the checked message (``SipMessage.parse`` of ``_canonical``, which is what the guard used to
do), for the torture seeds and seeded mutations of them."""

from __future__ import annotations

import random

from aiosipua.message import SipMessage, SipRequest, SipResponse
from tests.sip.fuzzing import load_seeds, mutate

from callbridge.sip import parse as guard
from callbridge.sip.parse import ParsedRequest, ParsedResponse, parse_datagram

MESSAGES = 20_000


def reference(data: bytes) -> SipRequest | SipResponse:
    """What the library parser makes of the message the guard accepted."""
    head, body, _ = guard._split_head(data.lstrip(b"\r\n"))
    lines = [line.removesuffix("\r") for line in head.decode("utf-8").split("\n")]
    headers, error = guard._read_headers(lines[1:], guard.MAX_HEADERS)
    assert error is None
    start = lines[0]
    length = guard._first(headers, "content-length")
    if length is not None:
        body = body[: int(length)]
    if start[:4].upper() == "SIP/":
        match = guard._STATUS_RE.fullmatch(start)
        assert match is not None
        start = f"SIP/2.0 {match.group(2)} {match.group(3) or ''}"
    else:
        start = start[: -len("SIP/2.0")] + "SIP/2.0"
    return SipMessage.parse(guard._canonical(start, headers, body))


def same(ours: SipRequest | SipResponse, theirs: SipRequest | SipResponse) -> None:
    assert type(ours) is type(theirs)
    assert list(ours.headers.items()) == list(theirs.headers.items())
    assert ours.body == theirs.body
    if isinstance(ours, SipRequest):
        assert isinstance(theirs, SipRequest)
        assert (ours.method, ours.uri) == (theirs.method, theirs.uri)
    else:
        assert isinstance(theirs, SipResponse)
        assert (ours.status_code, ours.reason_phrase) == (theirs.status_code, theirs.reason_phrase)


def check(data: bytes) -> bool:
    parsed = parse_datagram(data)  # no source: the Via is not stamped
    if isinstance(parsed, ParsedRequest):
        same(parsed.request, reference(data))
        return True
    if isinstance(parsed, ParsedResponse):
        same(parsed.response, reference(data))
        return True
    return False


def test_seeds_parse_as_the_library_parses_them() -> None:
    assert sum(check(seed) for seed in load_seeds()) >= 10


def test_mutations_parse_as_the_library_parses_them() -> None:
    rng = random.Random(20261126)
    seeds = load_seeds()
    parsed = 0
    for _ in range(MESSAGES):
        data = mutate(rng, rng.choice(seeds), seeds)
        try:
            parsed += check(data)
        except AssertionError as exc:
            raise AssertionError(f"differs for {data!r}") from exc
    assert parsed >= MESSAGES // 20
