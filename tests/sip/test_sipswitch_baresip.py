"""SipSwitch with baresip as an agent's phone: the phone calls in, puts the call on hold and
resumes (HELD / RESUMED), is held by the core (our ``sendonly`` re-INVITE), then presses blind
transfer (REFER -> TRANSFER_REQUESTED; our NOTIFYs and BYE end its call).

baresip 1.0.0 is driven over ctrl_tcp (netstring-framed JSON, ``shared/notes`` §2.4); it sends a
300 s sox tone so RTP reaches the engine. Skipped without baresip/sox unless ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.sip.test_registrar_sipp import free_udp_port, need, wait_until
from tests.sip.test_sipswitch import TENANT, Stack

from callbridge.adapters.sipswitch import HoldReinvite
from callbridge.domain.calls import HangupCause
from callbridge.ports.switch import SwitchEvent, SwitchEventKind


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Baresip:
    """One baresip process and its ctrl_tcp connection (commands and events)."""

    def __init__(self, process: asyncio.subprocess.Process, ctrl: int) -> None:
        self.process = process
        self.ctrl = ctrl
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        for _ in range(100):
            try:
                self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl)
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("baresip ctrl_tcp did not come up")
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        while True:
            length = await self._reader.readuntil(b":")
            data = await self._reader.readexactly(int(length[:-1]) + 1)
            self.events.put_nowait(json.loads(data[:-1]))

    async def command(self, command: str, params: str | None = None) -> None:
        assert self._writer is not None
        message: dict[str, str] = {"command": command, "token": command}
        if params is not None:
            message["params"] = params
        data = json.dumps(message).encode()
        self._writer.write(b"%d:%s," % (len(data), data))
        await self._writer.drain()

    async def event(self, type_: str, wait_s: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(wait_s):
            while True:
                event = await self.events.get()
                if event.get("type") == type_:
                    return event

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._writer is not None:
            self._writer.close()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.communicate(), 10)


@contextlib.asynccontextmanager
async def baresip_phone(tmp_path: Path, switch_port: int) -> AsyncIterator[Baresip]:
    binary = need("baresip")
    sox = need("sox")
    tone = tmp_path / "tone440.wav"
    made = await asyncio.create_subprocess_exec(
        sox, "-n", *["-r", "8000", "-c", "1", "-b", "16"], str(tone), "synth", "300", "sine", "440"
    )
    assert await made.wait() == 0
    sip_port = free_udp_port(pairs=2)  # baresip also binds sip_port + 1
    ctrl = free_tcp_port()
    rtp = free_udp_port(pairs=10)
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
                f"audio_source aufile,{tone}",
                "audio_alert aubridge,nil",
                f"rtp_ports {rtp}-{rtp + 9}",
                "module g711.so",
                "module aufile.so",
                "module aubridge.so",
                "module_tmp account.so",
                "module_app menu.so",
                "module_app ctrl_tcp.so",
                f"ctrl_tcp_listen 127.0.0.1:{ctrl}",
                "",
            ]
        )
    )
    (conf / "accounts").write_text(
        f"<sip:1001@127.0.0.1:{switch_port};transport=udp>;regint=0;audio_codecs=PCMU\n"
    )
    process = await asyncio.create_subprocess_exec(
        binary,
        "-f",
        str(conf),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    phone = Baresip(process, ctrl)
    try:
        await phone.connect()
        yield phone
    finally:
        await phone.close()


async def next_kind(stack: Stack, kind: SwitchEventKind, wait_s: float = 10.0) -> SwitchEvent:
    async with asyncio.timeout(wait_s):
        while True:
            event = await stack.events.get()
            if event.kind is kind:
                return event


async def test_baresip_hold_resume_core_hold_and_refer(stack: Stack, tmp_path: Path) -> None:
    stack.switch.hold_reinvite = HoldReinvite.ALL  # this baresip does not register
    async with baresip_phone(tmp_path, stack.endpoint.port) as phone:
        await phone.command("dial", f"sip:2000@127.0.0.1:{stack.endpoint.port}")
        incoming = await next_kind(stack, SwitchEventKind.INCOMING)
        assert incoming.from_number == "1001" and incoming.to_number == "2000"
        leg = incoming.leg_id
        await stack.switch.accept(leg, "call-bs", TENANT)
        await stack.switch.answer(leg)
        await phone.event("CALL_ESTABLISHED")
        await wait_until(lambda: stack.media.stats(leg).packets_in > 20, 5, "RTP from baresip")

        await phone.command("hold")
        assert await next_kind(stack, SwitchEventKind.HELD) == SwitchEvent(
            SwitchEventKind.HELD, leg
        )
        await phone.command("resume")
        assert await next_kind(stack, SwitchEventKind.RESUMED) == SwitchEvent(
            SwitchEventKind.RESUMED, leg
        )

        # the core holds the phone: our sendonly re-INVITE is answered, no event comes back
        await stack.switch.hold(leg)
        await wait_until(lambda: stack.switch._legs[leg].sent == "sendonly", 5, "re-INVITE")
        await stack.switch.unhold(leg)
        await wait_until(lambda: stack.switch._legs[leg].sent == "sendrecv", 5, "re-INVITE")

        await phone.command("transfer", "sip:103@127.0.0.1")
        request = await next_kind(stack, SwitchEventKind.TRANSFER_REQUESTED)
        assert request == SwitchEvent(SwitchEventKind.TRANSFER_REQUESTED, leg, to_number="103")
        await stack.switch.hangup(leg, HangupCause.TRANSFERRED)  # NOTIFY 200, then BYE
        await phone.event("CALL_CLOSED")
        await asyncio.sleep(0.2)
        assert all(e.kind is not SwitchEventKind.HUNGUP for e in _drain(stack))


def _drain(stack: Stack) -> list[SwitchEvent]:
    return [stack.events.get_nowait() for _ in range(stack.events.qsize())]
