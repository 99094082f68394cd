"""The real peers: baresip as agents' phones, SIPp as customers and trunks.

Every port is picked free at start (other engineers run SIPp and baresip on the same machine);
SIPp's control socket is pinned to loopback (``-ci``/``-cp``), and its signalling and media too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
from tests.wire.rtp import write_tone_wav

SCENARIOS = Path(__file__).parent / "scenarios"


def require(binary: str, package: str) -> str:
    """The binary's path; without it the test is skipped, except under CI where it fails."""
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed (Debian package {package}); CI must install it")
        pytest.skip(f"{binary} is not installed (apt-get install {package})")
    return path


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_RESERVED: list[range] = []  # port ranges handed out to this process's peers and engines


def _reserved(ports: range) -> bool:
    return any(ports.start < r.stop and r.start < ports.stop for r in _RESERVED)


def free_ports(count: int, *, step: int = 1, tcp: bool = True) -> int:
    """A base port with ``count`` ports from it (``step`` apart) free on UDP (and TCP), outside
    every range handed out before (so flows can be told apart by port)."""
    for _ in range(200):
        base = random.randrange(30000, 60000 - count * step)
        ports = [base + i * step for i in range(count)]
        if _reserved(range(base, ports[-1] + 1)):
            continue
        if all(_bindable(p, socket.SOCK_DGRAM) for p in ports) and (
            not tcp or all(_bindable(p, socket.SOCK_STREAM) for p in ports)
        ):
            return base
    raise RuntimeError("no free ports")


def random_range(size: int) -> range:
    """A random port range for an RTP user (the engine, a phone): below the kernel's ephemeral
    range (32768+), so no other process's ``bind(0)`` lands in it; free when chosen; disjoint
    from those handed out before. Parallel runs of other engineers rarely overlap, and the
    engine and baresip skip ports that are busy."""
    for _ in range(500):
        base = random.randrange(10000, 20000 - size, 2)
        candidate = range(base, base + size)
        if _reserved(candidate):
            continue
        if all(_bindable(port, socket.SOCK_DGRAM) for port in candidate):
            _RESERVED.append(candidate)
            return candidate
    raise RuntimeError(f"no free range of {size} ports in 10000-19999")


# ---------------------------------------------------------------------------- baresip


def _netstring(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


class Baresip:
    """A headless baresip registered to the switch: auto-answer, a tone from ``aufile``, audio
    played to nowhere, controlled over ``ctrl_tcp`` (netstring-framed JSON)."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        user: str,
        password: str,
        registrar: tuple[str, int],
        tone_hz: float,
    ) -> None:
        self.binary = binary
        self.dir = workdir
        self.user = user
        self.password = password
        self.registrar = registrar
        self.tone_hz = tone_hz
        self.sip_port = free_ports(2)  # baresip also binds port+1
        self.ctrl_port = free_port(socket.SOCK_STREAM)
        self.rtp_ports = random_range(20)
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._responses: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._token = 0

    @property
    def log(self) -> Path:
        return self.dir / "baresip.log"

    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        wav = self.dir / "tone.wav"
        write_tone_wav(wav, self.tone_hz, 120)
        host, port = self.registrar
        config = f"""
module_path /usr/lib/baresip/modules
poll_method epoll
sip_listen 127.0.0.1:{self.sip_port}
net_interface 127.0.0.1
call_local_timeout 120
call_max_calls 4
audio_player aubridge,nil
audio_source aufile,{wav}
audio_alert aubridge,nil
rtp_ports {self.rtp_ports.start}-{self.rtp_ports.stop - 1}
rtp_stats yes
jitter_buffer_delay 1-10
module g711.so
module aufile.so
module aubridge.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
dns_server 127.0.0.1:53
"""
        (self.dir / "config").write_text(config.lstrip())
        account = (
            f"<sip:{self.user}@{host}:{port};transport=udp>;auth_user={self.user};"
            f"auth_pass={self.password};answermode=auto;regint=300;audio_codecs=PCMU,PCMA\n"
        )
        (self.dir / "accounts").write_text(account)
        (self.dir / "contacts").write_text("")

    async def start(self) -> None:
        self._write_config()
        log = self.log.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary,
                "-f",
                str(self.dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        async with asyncio.timeout(15):
            while True:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                    break
                except OSError:
                    if self.proc.returncode is not None:
                        raise AssertionError(f"baresip exited: {self.log_text()}") from None
                    await asyncio.sleep(0.05)  # the control port is not open yet
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buf = b""
        while True:
            data = await reader.read(65536)
            if not data:
                return
            buf += data
            while b":" in buf:
                size, _, rest = buf.partition(b":")
                n = int(size)
                if len(rest) < n + 1:
                    break
                message = json.loads(rest[:n])
                buf = rest[n + 1 :]
                if message.get("response"):
                    future = self._responses.pop(str(message.get("token")), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message.get("event"):
                    self.events.append(message)
                    self._changed.set()

    async def command(self, command: str, params: str | None = None) -> dict[str, Any]:
        assert self._writer is not None
        self._token += 1
        token = str(self._token)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[token] = future
        message: dict[str, Any] = {"command": command, "token": token}
        if params is not None:
            message["params"] = params
        self._writer.write(_netstring(json.dumps(message).encode()))
        await self._writer.drain()
        async with asyncio.timeout(5):
            return await future

    def mark(self) -> int:
        return len(self.events)

    async def wait_event(self, kind: str, since: int = 0, wait_s: float = 10.0) -> dict[str, Any]:
        """The first event of type ``kind`` at index ``since`` or later."""
        try:
            async with asyncio.timeout(wait_s):
                while True:
                    for event in self.events[since:]:
                        if event.get("type") == kind:
                            return event
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = [(e.get("type"), e.get("param")) for e in self.events[since:]]
            raise AssertionError(
                f"baresip {self.user}: no {kind} within {wait_s}s; events since: {seen}\n"
                f"{self.log_text()}"
            ) from None

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# ---------------------------------------------------------------------------- SIPp


class Sipp:
    """One SIPp run of a scenario in ``workdir`` (relative pcap paths resolve there)."""

    def __init__(self, binary: str, workdir: Path, scenario: str) -> None:
        self.binary = binary
        self.dir = workdir
        self.scenario = SCENARIOS / scenario
        self.port = free_ports(1)
        self.media_port = free_ports(2, step=2, tcp=False)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, *args: str, remote: str | None = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        out = (self.dir / "sipp.out").open("ab")  # a file: a pipe nobody reads could fill up
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary,
                *([remote] if remote else []),
                *["-sf", str(self.scenario), "-p", str(self.port)],
                *["-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", str(self.media_port)],
                *["-ci", "127.0.0.1", "-cp", str(free_port())],
                *["-m", "1", "-timeout", "60s", "-timeout_error", "-nostdin", "-trace_err"],
                *args,
                cwd=self.dir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            out.close()

    def errors(self) -> str:
        logs = [self.dir / "sipp.out", *sorted(self.dir.glob("*_errors.log"))]
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists())

    async def done(self, wait_s: float = 20.0) -> None:
        """Wait for the scenario to end; it must have succeeded."""
        assert self.proc is not None
        try:
            async with asyncio.timeout(wait_s):
                await self.proc.wait()
        except TimeoutError:
            raise AssertionError(
                f"sipp {self.scenario.name} still running after {wait_s}s\n{self.errors()}"
            ) from None
        assert self.proc.returncode == 0, (
            f"sipp {self.scenario.name} exited {self.proc.returncode}\n{self.errors()}"
        )

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
