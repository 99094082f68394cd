"""A trunk INVITE to a DID on the real SIP switch (#3): both tenants have extension 101, so the
number alone is ambiguous (refused); the DID names the tenant, and its 101's registered phone
rings and answers, and the caller gets the 200. An unknown number gets 404."""

from __future__ import annotations

from tests.sip import test_sipswitch_core as core
from tests.sip.test_sipswitch import RawPeer, offer

from callbridge.domain.calls import CallState
from callbridge.service.auth import system_actor

site = core.site  # the fixture: alpha's phones 101-103 registered; beta also has a 101

DID = "+14155550100"


def trunk_invite(peer: RawPeer, port: int, to: str, call_id: str) -> str:
    return f"""
        INVITE sip:{to}@127.0.0.1:{port} SIP/2.0
        Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-{call_id}
        Max-Forwards: 70
        From: <sip:+19735550123@127.0.0.1>;tag=trunk-{call_id}
        To: <sip:{to}@127.0.0.1>
        Call-ID: {call_id}@trunk
        CSeq: 1 INVITE
        Contact: <sip:+19735550123@127.0.0.1:{peer.port}>
        Content-Type: application/sdp
    """


async def test_a_trunk_invite_to_a_did_reaches_the_right_tenants_phone(
    site: core.Site,
) -> None:
    assert site.c.sip is not None
    trunk = await RawPeer.open()
    try:
        # without a DID, "101" belongs to two tenants: refused 404 like any unrouted number
        for to in ("101", "+14155559999"):
            trunk.send(trunk_invite(trunk, site.port, to, f"no-{to}"), site.c.sip, offer(40300))
            refused = await trunk.response(404)
            assert refused.headers.get_first("call-id") == f"no-{to}@trunk"

        await site.c.dids.create(system_actor(), site.tenant, "+1 415 555 0100", "101")
        trunk.send(trunk_invite(trunk, site.port, DID, "did"), site.c.sip, offer(40302))
        await core.pick_up(site, "101", 40304)
        ok = await trunk.response(200)
        assert ok.headers.get_first("call-id") == "did@trunk"
        await site.settle()
        [call] = [c for c in site.c.calls.calls.values() if c.to_number == DID]
        assert call.tenant_id == site.tenant and call.state is CallState.ANSWERED
        assert {leg.number for leg in call.legs.values()} == {"+19735550123", "101"}
    finally:
        trunk.close()
