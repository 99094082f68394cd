"""The registrar against real SIP clients over UDP on loopback: SIPp, baresip and aiosipua.

A tiny asyncio UDP server feeds REGISTERs to :meth:`Registrar.handle_register` and sends back
``bytes(response)`` (it also answers retransmissions from a cache, as a transaction layer would).

Digest algorithms: SIPp 3.6.1 only computes MD5 (``createAuthHeader: authentication must use MD5
or AKAv1-MD5``) and baresip 1.0.0 (libre 1.1.0) answers any non-MD5 challenge with ``Register:
Function not implemented``; both give up when a SHA-256 challenge is listed at all, even before
an MD5 one. So they run against a registrar with ``allow_md5=True, algorithms=("MD5",)``, and
SHA-256 (RFC 8760) is proven over the wire with aiosipua's client (``aiosipua.registration``),
which is an independent implementation of the client side.

When ``sipp`` or ``baresip`` is missing the test is skipped, unless ``CI`` is set (then it fails:
``.ci/run`` installs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

import pytest
from aiosipua.auth import SipDigestAuth
from aiosipua.message import SipMessage, SipRequest, SipResponse
from aiosipua.registration import Registration, RegistrationState
from aiosipua.transport import UdpSipTransport
from aiosipua.uac import SipUAC

from callbridge.adapters.clock import SystemClock
from callbridge.sip.credentials import SipCredential, make_credential
from callbridge.sip.registrar import Registrar

REALM = "callbridge.test"
SCENARIO = Path(__file__).parent / "scenarios" / "register_auth.xml"
PASSWORDS = {"1001": "pw-1001-sipp", "1002": "pw-1002-baresip", "1003": "pw-1003-aiosipua"}
CREDENTIALS = {
    user: make_credential("tenant-a", f"ext-{user}", user, REALM, password)
    for user, password in PASSWORDS.items()
}


def lookup(username: str) -> SipCredential | None:
    return CREDENTIALS.get(username)


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed (CI must install it: see .ci/run)")
        pytest.skip(f"{binary} is not installed")
    return path


def free_udp_port(pairs: int = 1) -> int:
    """A loopback UDP port that is free now (and the next ``pairs - 1`` ports too)."""
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            try:
                for extra in range(1, pairs):
                    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                        s = stack.enter_context(socket.socket(socket.AF_INET, kind))
                        s.bind(("127.0.0.1", port + extra))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port found")


class RegistrarUdp(asyncio.DatagramProtocol):
    """REGISTER over UDP into a :class:`Registrar`; records the status codes it sent."""

    def __init__(self, registrar: Registrar) -> None:
        self.registrar = registrar
        self.transport: asyncio.DatagramTransport | None = None
        self.statuses: list[int] = []
        self._sent: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not isinstance(): on Python 3.11.7 the selector datagram transport does not inherit
        # from asyncio.DatagramTransport (aiosipua's own UDP transport trips on that too).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = SipMessage.parse(data)
        except ValueError:
            return
        if not isinstance(message, SipRequest) or message.method != "REGISTER":
            return
        vias = message.get_header_values("Via")
        key = (vias[0] if vias else "", message.get_header("CSeq") or "")
        cached = self._sent.get(key)
        if cached is not None:  # a retransmission: same answer, no second processing
            self._send(cached, addr)
            return
        task = asyncio.create_task(self._handle(message, addr, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(
        self, request: SipRequest, addr: tuple[str, int], key: tuple[str, str]
    ) -> None:
        response = await self.registrar.handle_register(request, ("UDP", addr[0], addr[1]))
        raw = bytes(response)
        self._sent[key] = raw
        while len(self._sent) > 256:
            self._sent.popitem(last=False)
        self.statuses.append(response.status_code)
        self._send(raw, addr)

    def _send(self, raw: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(raw, addr)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


Server = tuple[Registrar, int, RegistrarUdp]
ServerFactory = Callable[..., "contextlib.AbstractAsyncContextManager[Server]"]


@contextlib.asynccontextmanager
async def registrar_server(**options: object) -> AsyncIterator[Server]:
    registrar = Registrar(REALM, lookup, SystemClock(), **options)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: RegistrarUdp(registrar), local_addr=("127.0.0.1", 0)
    )
    port = int(transport.get_extra_info("sockname")[1])
    await registrar.start()
    try:
        yield registrar, port, protocol
    finally:
        await registrar.stop()
        await protocol.close()


async def run(argv: list[str], cwd: Path, limit: float) -> tuple[int, str]:
    """Run a process to completion within ``limit`` seconds (killed otherwise)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def sipp_register(
    port: int, tmp_path: Path, user: str, password: str
) -> tuple[int, str, int]:
    """Run the REGISTER scenario once; return SIPp's exit code, output and its SIP port."""
    sipp = need("sipp")
    local = free_udp_port()
    argv = [
        sipp,
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIO),
        "-s",
        user,
        "-au",
        user,
        "-ap",
        password,
        "-i",
        "127.0.0.1",
        "-p",
        str(local),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_udp_port()),
        "-ci",
        "127.0.0.1",
        "-cp",
        str(free_udp_port()),
        "-m",
        "1",
        "-nostdin",
        "-recv_timeout",
        "5000",
        "-timeout",
        "15s",
        "-timeout_error",
        "-trace_err",
    ]
    code, out = await run(argv, tmp_path, limit=30)
    return code, out + read_errors(tmp_path), local


def read_errors(directory: Path) -> str:
    """SIPp's -trace_err files (small; read after SIPp has exited)."""
    return "".join(p.read_text(errors="replace") for p in directory.glob("*_errors.log"))


async def test_sipp_registers_with_digest(tmp_path: Path) -> None:
    need("sipp")
    async with registrar_server(allow_md5=True, algorithms=("MD5",)) as (registrar, port, udp):
        code, out, sipp_port = await sipp_register(port, tmp_path, "1001", PASSWORDS["1001"])
        assert code == 0, out
        assert udp.statuses == [401, 200]
        [binding] = registrar.contacts("1001")
        assert binding.contact == f"sip:1001@127.0.0.1:{sipp_port}"
        assert (binding.source.host, binding.source.port) == ("127.0.0.1", sipp_port)
        assert binding.expires_in(registrar.clock.monotonic()) in (119, 120)
        assert binding.user_agent == "SIPp"


async def test_sipp_with_a_wrong_password_is_refused(tmp_path: Path) -> None:
    need("sipp")
    async with registrar_server(allow_md5=True, algorithms=("MD5",)) as (registrar, port, udp):
        code, out, _ = await sipp_register(port, tmp_path, "1001", "not-the-password")
        assert code != 0
        assert udp.statuses == [401, 403]
        assert registrar.contacts("1001") == []


async def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``predicate`` (state changed by datagrams from another process) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_baresip_registers_and_unregisters(tmp_path: Path) -> None:
    baresip = need("baresip")
    async with registrar_server(allow_md5=True, algorithms=("MD5",)) as (registrar, port, udp):
        sip_port = free_udp_port(pairs=2)  # baresip also binds sip_port + 1 (TLS)
        conf = tmp_path / "baresip"
        conf.mkdir()
        (conf / "config").write_text(
            "\n".join(
                [
                    "module_path /usr/lib/baresip/modules",
                    "poll_method epoll",
                    f"sip_listen 127.0.0.1:{sip_port}",
                    "net_interface 127.0.0.1",
                    "dns_server 127.0.0.1:53",
                    "audio_player aubridge,nil",
                    "audio_source aubridge,nil",
                    "module g711.so",
                    "module aubridge.so",
                    "module_tmp account.so",
                    "",
                ]
            )
        )
        (conf / "accounts").write_text(
            f"<sip:1002@127.0.0.1:{port};transport=udp>;auth_pass={PASSWORDS['1002']};"
            "regint=120;audio_codecs=PCMU\n"
        )
        process = await asyncio.create_subprocess_exec(
            baresip,
            "-f",
            str(conf),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await wait_until(lambda: bool(registrar.contacts("1002")), 10, "baresip to register")
            [binding] = registrar.contacts("1002")
            assert binding.source.port == sip_port
            assert f"@127.0.0.1:{sip_port}" in binding.contact
            process.send_signal(signal.SIGTERM)  # baresip unregisters on the way out
            await wait_until(lambda: not registrar.contacts("1002"), 10, "baresip to unregister")
            assert 403 not in udp.statuses
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.communicate(), 10)


async def test_sha256_registration_over_udp() -> None:
    """RFC 8760 SHA-256 end to end, answered by aiosipua's client-side digest."""
    async with registrar_server() as (registrar, port, udp):
        transport = UdpSipTransport(local_addr=("127.0.0.1", 0))
        await transport.start()
        assert transport._udp_transport is not None
        transport.local_addr = transport._udp_transport.get_extra_info("sockname")[:2]
        uac = SipUAC(transport)

        def on_message(message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
            if isinstance(message, SipResponse):
                uac.handle_response(message, addr)

        transport.on_message = on_message
        registration = Registration(
            uac,
            f"sip:1003@{REALM}",
            ("127.0.0.1", port),
            expires=120,
            auth=SipDigestAuth("1003", PASSWORDS["1003"]),
            registrar_uri=f"sip:127.0.0.1:{port}",
            user_agent="aiosipua",
        )
        try:
            registration.register()
            await wait_until(
                lambda: registration.state is RegistrationState.REGISTERED, 5, "registration"
            )
            assert registration.granted_expires == 120
            assert udp.statuses == [401, 200]
            [binding] = registrar.contacts("1003")
            assert binding.source.port == transport.local_addr[1]
            registration.unregister()
            await wait_until(lambda: not registrar.contacts("1003"), 5, "unregistration")
        finally:
            uac.close()
            await transport.stop()
