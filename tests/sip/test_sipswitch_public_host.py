"""``public_host``: a switch bound to 0.0.0.0 tells peers an address they can reach (Via, Contact,
SDP), and the settings refuse a wildcard SIP host without one."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosipua.message import SipRequest
from click.testing import CliRunner
from pydantic import ValidationError
from tests.sip.test_sipswitch import TENANT, RawPeer, Stack, invite_text, offer, open_stack
from tests.sip.test_sipswitch_indialog import ack, remote, reply, request_from

from callbridge.adapters.sipswitch import HoldReinvite
from callbridge.cli import main
from callbridge.settings import Settings

PUBLIC = "127.0.0.1"


@pytest.fixture
async def wildcard_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(
        tmp_path,
        host="0.0.0.0",
        public_host=PUBLIC,
        hold_reinvite=HoldReinvite.ALL,  # the test's caller is not a registered phone
        username_for=lambda tenant, number: None,
    ) as opened:
        yield opened


async def test_bound_to_0000_the_switch_advertises_its_public_host(
    wildcard_stack: Stack, peer: RawPeer
) -> None:
    stack = wildcard_stack
    peer.send(invite_text(peer, stack, "pub-1@test"), stack, offer(40000))
    incoming = await stack.next_event()
    await stack.switch.accept(incoming.leg_id, "call-pub", TENANT)
    await stack.switch.answer(incoming.leg_id)
    ok = await peer.response(200)
    assert f"@{PUBLIC}:{stack.endpoint.port}" in (ok.headers.get_first("contact") or "")
    answer = remote(ok)
    assert answer.host == PUBLIC and answer.direction == "sendrecv"  # not c=0.0.0.0 (= hold)
    ack(peer, stack, "pub-1@test", ok.headers.get_first("to") or "", 1)
    await stack.switch.hold(incoming.leg_id)  # a request of ours: its Via names the public host
    reinvite: SipRequest = await request_from(peer, "INVITE")
    assert f"SIP/2.0/UDP {PUBLIC}:{stack.endpoint.port};" in (
        reinvite.headers.get_first("via") or ""
    )
    assert "0.0.0.0" not in bytes(reinvite).decode()
    reply(peer, stack, reinvite, 200, "OK", offer(40000).replace("sendrecv", "recvonly"))


def test_a_wildcard_sip_host_needs_a_public_host() -> None:
    with pytest.raises(ValidationError, match="sip_public_host"):
        Settings(switch="sip", sip_host="0.0.0.0")
    with pytest.raises(ValidationError, match="sip_public_host"):
        Settings(switch="sip", sip_host="0.0.0.0", sip_public_host="0.0.0.0")
    ok = Settings(switch="sip", sip_host="0.0.0.0", sip_public_host="192.0.2.7")
    assert ok.sip_public_host == "192.0.2.7"
    assert Settings(switch="simulated", sip_host="0.0.0.0").sip_hold_reinvite == "phones"


def test_serve_refuses_a_wildcard_sip_host_without_a_public_host(tmp_path: Path) -> None:
    runner = CliRunner(env={"CALLBRIDGE_DATA_DIR": str(tmp_path), "CALLBRIDGE_STORAGE": "memory"})
    args = ["serve", "--switch", "sip", "--sip-host", "0.0.0.0", "--sip-port", "0", "--port", "0"]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        result = runner.invoke(main, args, catch_exceptions=False)
    finally:  # serve configures logging for the process before it reads its settings
        root.handlers[:] = handlers
        root.setLevel(level)
    assert result.exit_code == 2
    assert "sip_public_host" in result.stderr
