"""CPU time of the SDP reading and writing of one SIP bench call, and µs per parse and build.

Run by hand (not in CI)::

    .venv/bin/python bench/sdp_path.py                    # ~20 s
    PYTHONPATH=<old tree>/src .venv/bin/python bench/sdp_path.py   # the same for another tree

A call of ``bench/sip.py`` reads two bodies (the UAC's offer, the phone's answer: SIPp's, as in
``sipp/uac.xml`` and ``uas.xml``), writes one offer (to the phone) and one answer (to the UAC) and
chooses the phone's codec; ``call`` does exactly that. ``baresip`` is a real phone's offer with
more attributes. Each figure is ``time.process_time()`` over ``--iterations`` runs, the minimum
and the median of ``--repeats``: on a shared machine the minimum moves least.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from callbridge.media.port import MediaAddress
from callbridge.sip.sdp import RemoteMedia, SdpSession, answer, build_offer, choose, parse_remote

SIPP = (
    b"v=0\r\no=- 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)
BARESIP = (
    (Path(__file__).parent.parent / "tests/sip/sdp/baresip_1_0_0.sdp")
    .read_bytes()
    .replace(b"\n", b"\r\n")
)
CALLER_SIDE = MediaAddress("127.0.0.1", 20000)
PHONE_SIDE = MediaAddress("127.0.0.1", 20002)


def call() -> None:
    """The SDP work of one bench call, in the order the B2BUA does it."""
    offer = parse_remote(SIPP)
    assert isinstance(offer, RemoteMedia)
    caller, phone = SdpSession(123456789), SdpSession(987654321)
    phone.next_offer(PHONE_SIDE)
    reply = parse_remote(SIPP)
    assert isinstance(reply, RemoteMedia)
    choose(reply)
    caller.answer(offer, CALLER_SIDE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    offer = parse_remote(SIPP)
    assert isinstance(offer, RemoteMedia)
    cases: dict[str, Callable[[], object]] = {
        "parse SIPp body": lambda: parse_remote(SIPP),
        "parse baresip body": lambda: parse_remote(BARESIP),
        "build_offer": lambda: build_offer(CALLER_SIDE, session_id=123456789, version=3),
        "answer": lambda: answer(offer, CALLER_SIDE, session_id=123456789, version=3),
        "call (2 parses, offer, answer, choose)": call,
    }
    results: dict[str, dict[str, float]] = {}
    for name, case in cases.items():
        samples = []
        for _ in range(args.repeats):
            start = time.process_time()
            for _ in range(args.iterations):
                case()
            samples.append((time.process_time() - start) / args.iterations * 1e6)
        results[name] = {"min_us": min(samples), "median_us": statistics.median(samples)}
        print(f"{name:40} {min(samples):8.2f} µs (median {statistics.median(samples):.2f})")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
