"""Stacks of their own: a restart leaves nothing behind (the stopping server BYEs its legs and
closes its RTP ports; the restarted one ends the calls it finds in storage with cause
``shutdown``), and a call the engine has no port for is refused rather than left ringing."""

from __future__ import annotations

import socket

import pytest
from tests.wire.peers import free_ports, random_range
from tests.wire.rig import (
    Rig,
    Tools,
    assert_music,
    captured,
    listen,
    port_bound,
    sip_requests,
)
from tests.wire.stack import WireStack

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_restart_byes_legs_frees_ports_and_ends_calls_with_shutdown(
    tools: Tools, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("restart")
    rtp = random_range(200)
    stack = await WireStack.start(workdir / "data", rtp)
    rig = Rig(tools, workdir, stack, rtp)
    restarted: WireStack | None = None
    stopped = False
    try:
        async with captured(rig) as capture:
            trunk = await rig.customer_uac("387")
            [call] = await stack.wait_calls("queued")
            window = await listen(1.0)
            sip_port = stack.sip_port
            await stack.stop()  # the server goes down with the caller waiting in the queue
            stopped = True
            await trunk.done()  # the caller got a BYE and answered it
            wire = await capture.stop()
        to_caller = wire.flow(rig.engine, rig.sipp_ports(trunk), *window)
        assert_music(to_caller)
        engine_ports = {p.sport for p in to_caller.packets}
        assert engine_ports, to_caller.describe({})
        assert [p for _, p in sip_requests(wire, sip_port, "BYE")][:1] == [trunk.port]
        for port in engine_ports:
            assert not port_bound(port), f"RTP port {port} still bound after stop"

        restarted = await WireStack.start(workdir / "data", rtp)
        assert await restarted.api("GET", "/calls") == []
        cdr = await restarted.cdr(call["id"])
        assert cdr["cause"] == "shutdown", cdr
        for port in engine_ports:
            assert not port_bound(port), f"RTP port {port} bound after the restart"
    finally:
        for sipp in rig.sipps:
            await sipp.kill()
        if not stopped:
            await stack.stop()
        if restarted is not None:
            await restarted.stop()


async def test_no_free_rtp_port_refuses_the_incoming_call(
    tools: Tools, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The engine's only RTP port is taken by another process: a trunk call to a queue gets a
    500 (not endless ringing), and the CDR says failed."""
    workdir = tmp_path_factory.mktemp("noport")
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        base = free_ports(2, tcp=False) & ~1
        blocker.bind(("127.0.0.1", base))
        rtp = range(base, base + 2)
        stack = await WireStack.start(workdir / "data", rtp)
        rig = Rig(tools, workdir, stack, rtp)
        try:
            sipp = rig.new_sipp("uac_refused.xml", "customer")
            await sipp.start("-s", "387", remote=f"127.0.0.1:{stack.sip_port}")
            await sipp.done()
            assert await stack.api("GET", "/calls") == []
            cdrs = (await stack.api("GET", "/cdrs"))["items"]
            assert [c["cause"] for c in cdrs] == ["failed"], cdrs
        finally:
            await rig.cleanup()
            await stack.stop()
    finally:
        blocker.close()
