"""``to_bytes`` is aiosipua's ``bytes(message)``, byte for byte, side effect included: on every
message the guard accepts from the torture seeds and their mutations, on the replies it
builds, and on the responses and requests the B2BUA builds."""

from __future__ import annotations

import copy
import random

from aiosipua.message import SipRequest, SipResponse
from tests.sip.fuzzing import load_seeds, mutate

from callbridge.sip.dialogs import Dialog, build_invite
from callbridge.sip.parse import ParsedRequest, ParsedResponse, ParseFailure, parse_datagram
from callbridge.sip.responses import make_response
from callbridge.sip.wire import to_bytes

SOURCE = ("192.0.2.200", 5099)


def same(message: SipRequest | SipResponse) -> None:
    theirs = copy.deepcopy(message)
    assert to_bytes(message) == bytes(theirs)
    # the side effect: Content-Length set (added last when absent), as bytes() does
    assert list(message.headers.items()) == list(theirs.headers.items())
    assert to_bytes(message) == bytes(theirs)  # and again, now that it is there


def messages_of(data: bytes) -> list[SipRequest | SipResponse]:
    parsed = parse_datagram(data, source=SOURCE)
    if isinstance(parsed, ParsedRequest):
        request = parsed.request
        out: list[SipRequest | SipResponse] = [request]
        if request.method != "ACK":
            out.append(make_response(request, 200, body=b"v=0\r\n", headers={"X-Odd": "1"}))
            out.append(make_response(request, 100))
        return out
    if isinstance(parsed, ParsedResponse):
        return [parsed.response]
    assert isinstance(parsed, ParseFailure)
    return [parsed.reply] if parsed.reply is not None else []


def test_torture_seeds_and_their_responses() -> None:
    count = 0
    for seed in load_seeds():
        for message in messages_of(seed):
            same(message)
            count += 1
    assert count >= 30


def test_mutations() -> None:
    rng = random.Random(3)
    seeds = load_seeds()
    count = 0
    for _ in range(3000):
        for message in messages_of(mutate(rng, rng.choice(seeds), seeds)):
            same(message)
            count += 1
    assert count >= 500


def test_built_requests_and_odd_header_names() -> None:
    invite = build_invite(
        request_uri="sip:1001@192.0.2.1:5060",
        from_uri="sip:cb@192.0.2.9",
        from_tag="t1",
        to_uri="sip:1001@192.0.2.1",
        call_id="c1@192.0.2.9",
        contact="<sip:callbridge@192.0.2.9:5060>",
        sdp=b"v=0\r\n",
    )
    invite.headers.append("Via", "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKx;rport")
    invite.headers.append("x-lower-case", "1")
    invite.headers.append("P-Asserted-IDENTITY", "<sip:1@x>")
    invite.headers.append("accept", "application/sdp")
    same(invite)
    ok = make_response(invite, 200, body=b"v=0\r\n", to_tag="theirs")
    ok.headers.append("Contact", "<sip:1001@192.0.2.1:5060>")
    same(ok)
    dialog = Dialog.from_uac(invite, ok)
    same(dialog.new_request("BYE", extra_headers={"Reason": 'Q.850;cause=16;text="x"'}))
    empty = SipResponse(status_code=499, reason_phrase="")
    same(empty)
