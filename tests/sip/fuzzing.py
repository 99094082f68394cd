"""Seeds and a seeded byte-level mutator for fuzzing the SIP parse guard (shared by tests)."""

from __future__ import annotations

import random
from pathlib import Path

TORTURE = Path(__file__).parent / "torture"
EXTRA_SEEDS = [
    b"OPTIONS sip:100@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n"
    b"From: <sip:sipp@127.0.0.1:5070>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\n"
    b"Call-ID: 1-fuzz@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
    b"Contact: <sip:sipp@127.0.0.1:5070>\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n",
    b"REGISTER sip:127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:5071;branch=z9hG4bK-2\r\n"
    b'From: "Agent 201" <sip:201@127.0.0.1>;tag=2\r\nTo: "Agent 201" <sip:201@127.0.0.1>\r\n'
    b"Call-ID: reg-2@127.0.0.1\r\nCSeq: 7 REGISTER\r\nMax-Forwards: 70\r\nExpires: 300\r\n"
    b'Authorization: Digest username="201", realm="cb", nonce="n", uri="sip:127.0.0.1", '
    b'response="00", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c"\r\n'
    b"Contact: <sip:201@127.0.0.1:5071;transport=tcp>;expires=300\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-3;received=127.0.0.1\r\n"
    b"From: <sip:a@127.0.0.1>;tag=3\r\nTo: <sip:b@127.0.0.1>;tag=4\r\nCall-ID: c-3\r\n"
    b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
]

TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"<",
    b">",
    b'"',
    b"\\",
    b"@",
    b"%00",
    b"\x00",
    b"\xff",
    b"\xc3\x28",
    b"SIP/2.0",
    b"SIP/7.0",
    b"Via: ",
    b"v: ",
    b"Content-Length: ",
    b"l: ",
    b"CSeq: ",
    b"Max-Forwards: ",
    b";branch=z9hG4bK",
    b";rport",
    b";received=",
    b";tag=",
    b"-1",
    b"4294967296",
    b"99999999999999999999999",
    b"0" * 50,
    b"\r\n\r\n",
    b"ACK",
    b"INVITE",
    b"sip:",
    b"sips:",
    b"[::1]",
    b"\r\n ",
]


def load_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(TORTURE.glob("*.dat"))] + EXTRA_SEEDS


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    """One to four random edits: bit flips, truncation, duplication, splicing, noise."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        size = len(out)
        op = rng.randrange(12)
        if op == 0 and size:  # flip bits
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(size)
                out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and size:  # truncate
            del out[rng.randrange(size) :]
        elif op == 2 and size:  # duplicate a slice in place
            i = rng.randrange(size)
            j = min(size, i + rng.randint(1, 200))
            out[j:j] = out[i:j] * rng.randint(1, 3)
        elif op == 3 and size:  # delete a slice
            i = rng.randrange(size)
            del out[i : i + rng.randint(1, 64)]
        elif op == 4:  # splice header lines of another message
            donor = lines_of(rng.choice(seeds))
            mine = lines_of(bytes(out))
            k = rng.randint(1, 6)
            pick = [rng.choice(donor) for _ in range(k)]
            pos = rng.randint(0, len(mine))
            out = bytearray(b"\r\n".join(mine[:pos] + pick + mine[pos:]))
        elif op == 5:  # insert a grammar-significant token
            i = rng.randint(0, size)
            out[i:i] = rng.choice(TOKENS)
        elif op == 6:  # random bytes
            i = rng.randint(0, size)
            out[i:i] = rng.randbytes(rng.randint(1, 32))
        elif op == 7:  # shuffle or drop header lines
            mine = lines_of(bytes(out))
            head = mine[1:]
            if rng.random() < 0.5:
                rng.shuffle(head)
            elif head:
                del head[rng.randrange(len(head))]
            out = bytearray(b"\r\n".join(mine[:1] + head))
        elif op == 8:  # repeat one header line many times (header-count cap)
            mine = lines_of(bytes(out))
            if len(mine) > 1:
                i = rng.randrange(1, len(mine))
                mine[i:i] = [mine[i]] * rng.choice((2, 50, 300))
                out = bytearray(b"\r\n".join(mine))
        elif op == 9:  # line-ending mangling
            old, new = rng.choice(((b"\r\n", b"\n"), (b"\r\n", b"\r"), (b"\n", b"\r\n\r\n")))
            out = bytearray(bytes(out).replace(old, new, rng.randint(1, 8)))
        elif op == 10 and size:  # overwrite a number
            digits = [i for i in range(size) if 48 <= out[i] <= 57]
            if digits:
                i = rng.choice(digits)
                out[i : i + 1] = rng.choice((b"-1", b"4294967296", b"9" * 30, b"", b"x"))
        else:  # replace everything with noise now and then
            if rng.random() < 0.1:
                out = bytearray(rng.randbytes(rng.randint(0, 600)))
    return bytes(out)
