"""The test rig: the stack, two baresip agents, SIPp customers on demand, and the wire capture.

Tones: agent 112 sends 1400 Hz, agent 113 1900 Hz, customers 2600 Hz (a second customer
3100 Hz). The default music on hold (an arpeggio below ~1.2 kHz) contains none of them, so
"music" is detected as: audio present, none of the parties' tones.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.wire.peers import Baresip, Sipp, require
from tests.wire.rtp import Capture, Flow, Ports, Wire, write_rtp_pcap
from tests.wire.stack import WireStack

TONES = {"112": 1400.0, "113": 1900.0, "customer": 2600.0, "customer2": 3100.0}

HEARS = 0.15  # share of the energy at a tone for "hears it" (a 3-party mix gives ~0.5 each)
ABSENT = 0.02  # below this: the tone is not there
SILENT_RMS = 50.0  # G.711 silence decodes to 0 (PCMU 0xFF) or +-8 (PCMA 0xD5)


@dataclass
class Tools:
    sipp: str
    baresip: str
    dumpcap: str

    @classmethod
    def find(cls) -> Tools:
        return cls(
            sipp=require("sipp", "sip-tester"),
            baresip=require("baresip", "baresip-core"),
            dumpcap=require("dumpcap", "tshark"),
        )


def port_bound(port: int) -> bool:
    """Whether some process holds UDP ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


async def wait_bound(port: int, wait_s: float = 10.0) -> None:
    async with asyncio.timeout(wait_s):
        while True:
            if port_bound(port):
                return
            await asyncio.sleep(0.02)


@dataclass
class Rig:
    tools: Tools
    dir: Path
    stack: WireStack
    rtp: range
    agents: dict[str, Baresip] = field(default_factory=dict)
    sipps: list[Sipp] = field(default_factory=list)
    _n: int = 0

    @property
    def engine(self) -> Ports:
        return Ports("engine", self.rtp)

    def agent_ports(self, number: str) -> Ports:
        return Ports(f"agent{number}", self.agents[number].rtp_ports)

    @staticmethod
    def sipp_ports(sipp: Sipp, name: str = "customer") -> Ports:
        return Ports(name, {sipp.media_port})

    def bpf(self) -> str:
        return (
            f"udp portrange {self.rtp.start}-{self.rtp.stop - 1} or udp port {self.stack.sip_port}"
        )

    def capture(self) -> Capture:
        self._n += 1
        return Capture(self.tools.dumpcap, self.dir / f"wire-{self._n}.pcap", self.bpf())

    async def add_agent(self, number: str) -> Baresip:
        phone = self.stack.phones[number]
        agent = Baresip(
            self.tools.baresip,
            self.dir / f"baresip-{number}",
            user=phone["username"],
            password=phone["password"],
            registrar=("127.0.0.1", self.stack.sip_port),
            tone_hz=TONES[number],
        )
        self.agents[number] = agent
        await agent.start()
        await self.stack.wait_registered(phone["username"])
        return agent

    def new_sipp(self, scenario: str, tone: str, dtmf: tuple[tuple[float, str], ...] = ()) -> Sipp:
        self._n += 1
        workdir = self.dir / f"sipp-{self._n}"
        workdir.mkdir()
        write_rtp_pcap(workdir / "tone.pcap", TONES[tone], 30.0, dtmf=dtmf)
        sipp = Sipp(self.tools.sipp, workdir, scenario)
        self.sipps.append(sipp)
        return sipp

    async def customer_uas(
        self, tone: str = "customer", dtmf: tuple[tuple[float, str], ...] = ()
    ) -> Sipp:
        """A SIPp customer behind the trunk playing ``tone`` (and ``dtmf``) once answered."""
        sipp = self.new_sipp("uas_tone.xml", tone, dtmf)
        await sipp.start()
        await wait_bound(sipp.port)
        self.stack.set_trunk(sipp.port)
        return sipp

    async def refusing_uas(self, status: int, reason: str) -> Sipp:
        sipp = self.new_sipp("uas_reject.xml", "customer")
        # SIPp checks status codes when it loads the scenario: fill them in first
        template = sipp.scenario.read_text()
        sipp.scenario = sipp.dir / sipp.scenario.name
        sipp.scenario.write_text(template.replace("[status] [reason]", f"{status} {reason}"))
        await sipp.start()
        await wait_bound(sipp.port)
        self.stack.set_trunk(sipp.port)
        return sipp

    async def ringing_uas(self) -> Sipp:
        """A SIPp customer behind the trunk who never answers."""
        sipp = self.new_sipp("uas_ring_forever.xml", "customer")
        await sipp.start()
        await wait_bound(sipp.port)
        self.stack.set_trunk(sipp.port)
        return sipp

    async def customer_uac(
        self, to: str, tone: str = "customer", dtmf: tuple[tuple[float, str], ...] = ()
    ) -> Sipp:
        """A SIPp trunk calling ``to`` at the switch, playing ``tone`` once answered."""
        sipp = self.new_sipp("uac_tone.xml", tone, dtmf)
        await sipp.start("-s", to, remote=f"127.0.0.1:{self.stack.sip_port}")
        return sipp

    async def cleanup(self) -> None:
        """Kill every live call and stray SIPp; agents back to idle."""
        for call in await self.stack.api("GET", "/calls"):
            with contextlib.suppress(AssertionError):
                await self.stack.api("POST", f"/calls/{call['id']}/kill")
        for sipp in self.sipps:  # let each answer our BYE (no retransmissions into the next test)
            if sipp.proc is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await sipp.proc.wait()
            await sipp.kill()
        self.sipps.clear()

    def peer_ports(self) -> set[int]:
        """The SIP ports of this test's peers (the agents and the SIPps started since cleanup)."""
        return {a.sip_port for a in self.agents.values()} | {s.port for s in self.sipps}

    def byes(self, wire: Wire) -> list[int]:
        """The peers (SIP ports) the switch sent a BYE to, in order; retransmissions count once."""
        ports = [p for _, p in sip_requests(wire, self.stack.sip_port, "BYE")]
        return [p for p in dict.fromkeys(ports) if p in self.peer_ports()]


async def listen(seconds: float, settle: float = 0.4) -> tuple[float, float]:
    """Let audio flow: a window of ``seconds`` starting ``settle`` from now (wall clock, as the
    capture's timestamps)."""
    start = time.time() + settle
    await asyncio.sleep(settle + seconds)
    return start, start + seconds


def assert_flowing(flow: Flow) -> None:
    """About 50 packets/s (20 ms G.711) in every whole second of the window."""
    assert 44 <= flow.rate <= 56, flow.describe(TONES)
    assert all(n >= 40 for n in flow.per_second()), flow.describe(TONES)


def assert_stopped(flow: Flow) -> None:
    assert not flow.audio_packets, flow.describe(TONES)


def assert_hears(flow: Flow, *who: str) -> None:
    for name in who:
        assert flow.tone(TONES[name]) > HEARS, f"should hear {name}: " + flow.describe(TONES)


def assert_not_hears(flow: Flow, *who: str) -> None:
    for name in who:
        assert flow.tone(TONES[name]) < ABSENT, f"should not hear {name}: " + flow.describe(TONES)


def assert_music(flow: Flow) -> None:
    """Music on hold: audio is there, and it is none of the parties' tones."""
    assert_flowing(flow)
    assert flow.level() > 300, "music, not silence: " + flow.describe(TONES)
    assert_not_hears(flow, *TONES)


def assert_silent(flow: Flow) -> None:
    assert flow.level() < SILENT_RMS, "silence: " + flow.describe(TONES)


def sip_requests(wire: Wire, stack_port: int, method: str) -> list[tuple[float, int]]:
    """``(time, destination port)`` of each ``method`` request the switch sent."""
    return [
        (at, dport)
        for at, sport, dport, line in wire.sip(stack_port)
        if sport == stack_port and line.startswith(method + " ")
    ]


def sip_responses(wire: Wire, stack_port: int, status: int) -> list[tuple[float, int]]:
    """``(time, source port)`` of each ``status`` response the switch received."""
    return [
        (at, sport)
        for at, sport, dport, line in wire.sip(stack_port)
        if dport == stack_port and line.startswith(f"SIP/2.0 {status} ")
    ]


@contextlib.asynccontextmanager
async def captured(rig: Rig) -> AsyncIterator[Capture]:
    """A capture for the test's body; if the body fails, the SIP trace is printed (pytest shows
    it with the failure)."""
    capture = rig.capture()
    await capture.start()
    try:
        yield capture
    except BaseException:
        if capture.running:
            with contextlib.suppress(Exception):
                wire = await capture.stop()
                names = {a.sip_port: f"agent{n}" for n, a in rig.agents.items()}
                names |= {s.port: f"sipp{i}" for i, s in enumerate(rig.sipps)}
                names[rig.stack.sip_port] = "switch"
                print("SIP on the wire:")
                for at, sport, dport, line in wire.sip(rig.stack.sip_port):
                    print(
                        f"  {at:.3f} {names.get(sport, sport)} -> {names.get(dport, dport)}", line
                    )
        raise
    finally:
        await capture.kill()
