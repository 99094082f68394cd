"""``callbridge serve --demo --switch sip`` as a real process: OPTIONS, a demo phone's REGISTER,
a refused call and an answered one carrying RTP.

The SIP traffic is raw UDP datagrams built here (the digest is computed by hand, RFC 2617 MD5
with ``qop=auth``), so the test needs no SIP tool installed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.serve_process import ServeProcess
from tests.media.phones import Phone as RtpPhone
from tests.media.phones import absent, hears, random_port_range

pytestmark = pytest.mark.e2e

SIP_LINE = "callbridge SIP on udp+tcp "


class SipServer(ServeProcess):
    """``serve --demo --switch sip`` on free SIP and random RTP ports; ``sip`` is HOST:PORT."""

    def __init__(self, data_dir: Path, log: Path, env_extra: dict[str, str]) -> None:
        args = ["--switch", "sip", "--sip-host", "127.0.0.1", "--sip-port", "0"]
        low, high = random_port_range()  # below the ephemeral ports other processes bind
        args += ["--rtp-port-min", str(low), "--rtp-port-max", str(high)]
        super().__init__(data_dir, log, args, env_extra)
        self.sip = self.wait_for(SIP_LINE)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., SipServer]]:
    servers: list[SipServer] = []

    def _start(**env: str) -> SipServer:
        server = SipServer(tmp_path / "data", tmp_path / f"server-{len(servers)}.log", env)
        servers.append(server)
        return server

    try:
        yield _start
    finally:
        for server in servers:
            server.close()


class UdpPhone:
    """Sends SIP requests as UDP datagrams from one local port and reads the responses."""

    def __init__(self, host: str, port: int) -> None:
        self.server = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        self.port = int(self.sock.getsockname()[1])
        self.call_id = secrets.token_hex(8)
        self.tag = secrets.token_hex(4)
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def request(
        self, method: str, uri: str, user: str, headers: tuple[str, ...] = ()
    ) -> tuple[int, str]:
        self.cseq += 1
        host, port = self.server
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{host}>;tag={self.tag}",
            f"To: <sip:{user}@{host}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {method}",
            f"Contact: <sip:{user}@127.0.0.1:{self.port}>",
            *headers,
            "Content-Length: 0",
        ]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), self.server)
        while True:
            data, _ = self.sock.recvfrom(65535)
            text = data.decode(errors="replace")
            status = int(text.split(" ", 2)[1])
            if status >= 200:
                return status, text


def _headers(text: str, name: str) -> list[str]:
    prefix = name.lower() + ":"
    return [
        line.split(":", 1)[1].strip()
        for line in text.split("\r\n")
        if line.lower().startswith(prefix)
    ]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _md5_authorization(challenge: str, user: str, password: str, uri: str) -> str:
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.removeprefix("Digest ")))
    assert params.get("algorithm", "MD5") == "MD5", challenge
    realm, nonce, cnonce, nc = params["realm"], params["nonce"], secrets.token_hex(8), "00000001"
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"REGISTER:{uri}")
    response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    opaque = f', opaque="{params["opaque"]}"' if "opaque" in params else ""
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"{opaque}'
    )


def _register(phone: UdpPhone, user: str, password: str) -> tuple[int, str]:
    uri = f"sip:{phone.server[0]}:{phone.server[1]}"
    status, text = phone.request("REGISTER", uri, user, ("Expires: 300",))
    assert status == 401, text
    offered = _headers(text, "WWW-Authenticate")
    md5 = [c for c in offered if "algorithm=MD5" in c.replace('"', "")]
    assert md5, offered
    auth = _md5_authorization(md5[0], user, password, uri)
    return phone.request("REGISTER", uri, user, ("Expires: 300", f"Authorization: {auth}"))


def test_serve_demo_sip_options_register_restart(
    start: Callable[..., SipServer], tmp_path: Path
) -> None:
    # Old softphones give up when SHA-256 is offered at all: the documented setting for them.
    server = start(CALLBRIDGE_SIP_DIGEST_ALGORITHMS="MD5")
    creds_path = tmp_path / "data" / "demo-credentials.json"
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    creds = json.loads(creds_path.read_text())
    sip = creds["sip"]
    assert server.sip == f"{sip['host']}:{sip['port']}"
    assert sip["host"] == "127.0.0.1"
    assert sip["port"] > 0
    assert sip["realm"] == "callbridge"
    phones = {p["extension"]: p for p in sip["phones"]}
    assert sorted(phones) == ["112", "113", "114"]
    server.wait_for("callbridge demo phone 114")
    for phone in phones.values():
        assert phone["username"] == phone["extension"]
        assert any(phone["password"] in line for line in server.seen), "credentials printed"

    phone = UdpPhone(sip["host"], sip["port"])
    try:
        status, text = phone.request("OPTIONS", f"sip:{sip['host']}:{sip['port']}", "probe")
        assert status == 200, text
        assert "REGISTER" in _headers(text, "Allow")[0]

        p112 = phones["112"]
        status, text = _register(phone, p112["username"], p112["password"])
        assert status == 200, text
        assert f"127.0.0.1:{phone.port}" in _headers(text, "Contact")[0]

        status, text = _register(phone, p112["username"], "not-the-password")
        assert status in (401, 403), text
    finally:
        phone.close()

    started = time.monotonic()
    assert server.terminate() == 0, server.log_text()
    assert time.monotonic() - started < 5.0

    again = start(CALLBRIDGE_SIP_DIGEST_ALGORITHMS="MD5")
    creds2 = json.loads(creds_path.read_text())
    assert creds2["sip"]["phones"] == sip["phones"], "still-valid demo SIP passwords are reused"
    assert again.terminate() == 0, again.log_text()


def _reply(request: str, status: int, reason: str) -> bytes:
    """A response to ``request`` echoing its Via/From/To/Call-ID/CSeq (with a To tag)."""
    head = request.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    keep = ("via:", "from:", "to:", "call-id:", "cseq:")
    lines = [f"SIP/2.0 {status} {reason}"]
    for line in head:
        if line.lower().startswith(keep):
            if line.lower().startswith("to:") and ";tag=" not in line:
                line += f";tag={secrets.token_hex(4)}"
            lines.append(line)
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_serve_sip_calls_a_registered_demo_phone(start: Callable[..., SipServer]) -> None:
    """With the default algorithms (SHA-256 and MD5 offered), an MD5 phone registers; an API call
    from its extension sends it an INVITE; its 486 ends the call."""
    server = start()
    server.wait_for("callbridge demo phone 114")
    creds = json.loads((Path(server.data_dir) / "demo-credentials.json").read_text())
    sip = creds["sip"]
    p112 = next(p for p in sip["phones"] if p["extension"] == "112")
    phone = UdpPhone(sip["host"], sip["port"])
    try:
        status, text = _register(phone, p112["username"], p112["password"])
        assert status == 200, text
        tid = creds["tenant_id"]
        auth = {"Authorization": f"Bearer {creds['tokens']['tenant_admin']}"}
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            created = http.post(
                f"/api/v1/tenants/{tid}/calls",
                json={"extension_id": creds["extensions"]["112"], "target": "113"},
                headers=auth,
            )
            assert created.status_code == 201, created.text
            call_id = created.json()["id"]
            while True:
                data, addr = phone.sock.recvfrom(65535)
                invite = data.decode(errors="replace")
                if invite.startswith("INVITE "):
                    break
            assert invite.startswith("INVITE sip:112@"), invite
            assert "application/sdp" in invite.lower()
            phone.sock.sendto(_reply(invite, 486, "Busy Here"), addr)
            deadline = time.monotonic() + 10.0
            while True:
                r = http.get(f"/api/v1/tenants/{tid}/calls/{call_id}", headers=auth)
                if r.status_code == 404 or r.json()["state"] == "ended":
                    break
                assert r.status_code == 200, r.text
                assert time.monotonic() < deadline, r.json()
                time.sleep(0.05)
            cdrs = http.get(f"/api/v1/tenants/{tid}/cdrs", headers=auth)
            assert cdrs.status_code == 200, cdrs.text
            record = next(c for c in cdrs.json()["items"] if c["call_id"] == call_id)
            assert record["answered_at"] is None
            assert record["cause"] == "busy", record
    finally:
        phone.close()
    assert server.terminate() == 0, server.log_text()


def _sdp_answer(rtp_port: int) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
    )


def _ok_with_sdp(invite: str, phone: UdpPhone, user: str, rtp_port: int) -> bytes:
    """``200 OK`` to ``invite`` with our Contact and an SDP answer for ``rtp_port``."""
    head = _reply(invite, 200, "OK").decode().split("\r\n\r\n", 1)[0].split("\r\n")
    body = _sdp_answer(rtp_port)
    head = [line for line in head if not line.lower().startswith("content-length")]
    head += [
        f"Contact: <sip:{user}@127.0.0.1:{phone.port}>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


async def _next_request(phone: UdpPhone, method: str) -> tuple[str, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(10):
        while True:
            data, addr = await loop.sock_recvfrom(phone.sock, 65535)
            text = data.decode(errors="replace")
            if text.startswith(method + " "):
                return text, addr


async def _answer(phone: UdpPhone, user: str, rtp: RtpPhone) -> None:
    """Answer the INVITE ringing ``phone`` with ``rtp``'s address, wait for the ACK, and start
    sending ``rtp``'s tone to the engine's address from the offer."""
    invite, addr = await _next_request(phone, "INVITE")
    assert invite.startswith(f"INVITE sip:{user}@"), invite
    media = re.search(r"^m=audio (\d+) ", invite, re.M)
    conn = re.search(r"^c=IN IP4 (\S+)", invite, re.M)
    assert media and conn, invite
    phone.sock.sendto(_ok_with_sdp(invite, phone, user, rtp.addr[1]), addr)
    await _next_request(phone, "ACK")
    rtp.target = (conn.group(1), int(media.group(1)))
    rtp.start()


async def test_serve_sip_answered_call_carries_rtp_and_kill_byes_both(
    start: Callable[..., SipServer],
) -> None:
    """Through the real process: two registered demo phones, an API call from 112 to 113 that
    both answer, each hearing the other's tone through the engine; a kill BYEs both."""
    server = start()
    server.wait_for("callbridge demo phone 114")
    creds = json.loads((Path(server.data_dir) / "demo-credentials.json").read_text())
    sip = creds["sip"]
    users = {p["extension"]: p for p in sip["phones"]}
    phones = {ext: UdpPhone(sip["host"], sip["port"]) for ext in ("112", "113")}
    rtps = {"112": await RtpPhone.open(1400.0), "113": await RtpPhone.open(1900.0)}
    try:
        for ext, phone in phones.items():
            status, text = _register(phone, users[ext]["username"], users[ext]["password"])
            assert status == 200, text
            phone.sock.setblocking(False)
        tid = creds["tenant_id"]
        auth = {"Authorization": f"Bearer {creds['tokens']['tenant_admin']}"}
        async with httpx.AsyncClient(base_url=server.url, timeout=10.0, headers=auth) as http:
            created = await http.post(
                f"/api/v1/tenants/{tid}/calls",
                json={"extension_id": creds["extensions"]["112"], "target": "113"},
            )
            assert created.status_code == 201, created.text
            call_id = created.json()["id"]
            await _answer(phones["112"], "112", rtps["112"])  # the agent first, then the target
            await _answer(phones["113"], "113", rtps["113"])
            await asyncio.sleep(0.5)
            marks = {ext: rtp.mark() for ext, rtp in rtps.items()}
            await asyncio.sleep(1.5)
            heard = {ext: rtp.audio(marks[ext]) for ext, rtp in rtps.items()}
            counts = {ext: len(rtp.packets(marks[ext], pt=0)) for ext, rtp in rtps.items()}
            assert all(60 <= n <= 90 for n in counts.values()), counts  # ~50 packets/s each
            assert hears(heard["112"], 1900.0) and absent(heard["112"], 1400.0)
            assert hears(heard["113"], 1400.0) and absent(heard["113"], 1900.0)

            killed = await http.post(f"/api/v1/tenants/{tid}/calls/{call_id}/kill")
            assert killed.status_code == 200, killed.text
            for phone in phones.values():
                bye, addr = await _next_request(phone, "BYE")
                phone.sock.sendto(_reply(bye, 200, "OK"), addr)
            deadline = time.monotonic() + 10.0
            while True:
                cdrs = await http.get(f"/api/v1/tenants/{tid}/cdrs")
                assert cdrs.status_code == 200, cdrs.text
                found = [c for c in cdrs.json()["items"] if c["call_id"] == call_id]
                if found:
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert found[0]["answered_at"] is not None
            assert found[0]["cause"] == "killed", found[0]
    finally:
        for phone in phones.values():
            phone.close()
        for rtp in rtps.values():
            await rtp.close()
    assert server.terminate() == 0, server.log_text()
