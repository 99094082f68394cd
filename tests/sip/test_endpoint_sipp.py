"""SipEndpoint answers real SIPp OPTIONS over UDP and TCP.

Needs ``sipp`` (Debian package ``sip-tester``). Without it the test is skipped, except under CI
(``CI`` set), where it fails: CI installs the package.

SIPp pitfalls handled here (see shared/notes/telephony.md): its control socket defaults to
0.0.0.0:8888, so ``-ci 127.0.0.1 -cp <free port>``; signalling and media bound to loopback with
``-i``/``-mi``; every port chosen free; ``-timeout`` bounds the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosipua.message import SipRequest, SipResponse

from callbridge.sip.endpoint import SipEndpoint, Source

SCENARIO = Path(__file__).parent / "scenarios" / "options_uac.xml"
CALLS = 10


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("sipp is not installed (Debian package sip-tester); CI must install it")
        pytest.skip("sipp is not installed (apt-get install sip-tester)")
    return path


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_both() -> int:
    """A port free on UDP and TCP at once (SIPp's -p is used for either)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    try:
        yield ep
    finally:
        await ep.stop()


async def run_sipp(sipp: str, endpoint: SipEndpoint, transport: str, cwd: Path) -> str:
    args = [
        sipp,
        f"127.0.0.1:{endpoint.port}",
        "-sf",
        str(SCENARIO),
        "-t",
        transport,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port_both()),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port(socket.SOCK_DGRAM)),
        "-ci",
        "127.0.0.1",
        "-cp",
        str(free_port(socket.SOCK_DGRAM)),
        "-m",
        str(CALLS),
        "-r",
        "50",
        "-timeout",
        "10s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
    ]
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(30):
            output, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode(errors="replace")
    assert process.returncode == 0, (
        f"sipp exited {process.returncode}\n{text[-3000:]}\n{error_logs(cwd)}"
    )
    return text


def error_logs(directory: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in directory.glob("*_errors.log"))


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
async def test_sipp_options_get_200(endpoint: SipEndpoint, transport: str, tmp_path: Path) -> None:
    sipp = sipp_binary()
    seen: list[str] = []

    async def on_options(request: SipRequest, source: Source) -> SipResponse:
        seen.append(source.transport)
        return endpoint.options_response(request)

    endpoint.register("OPTIONS", on_options)
    await run_sipp(sipp, endpoint, transport, tmp_path)
    # every OPTIONS reached the endpoint as a well-formed request over the transport asked for
    assert len(seen) >= CALLS
    assert set(seen) == {"UDP" if transport == "u1" else "TCP"}
    assert endpoint.stats.malformed_answered == 0
    assert endpoint.stats.malformed_dropped == 0
