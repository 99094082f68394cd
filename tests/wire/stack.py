"""The whole callbridge stack in-process, driven through its native HTTP API.

``build(Settings(switch="sip"))``: the SIP B2BUA with the embedded media engine on a random free
SIP port and an RTP range of the test's own, SQLite in the test's directory, the demo tenant
seeded (extensions 112-114 with SIP accounts, queues 386/387). The registrar challenges with MD5
only: SIPp 3.6.1 and baresip 1.0.0 give up when SHA-256 is offered.

The API is called through httpx's ASGI transport: the same routes, auth and serialisation as a
real server, without a second event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from callbridge.adapters.sipswitch import SipSwitch
from callbridge.api.native.app import create_app
from callbridge.bootstrap import Container, build
from callbridge.demo import seed_demo
from callbridge.settings import Settings
from callbridge.sip.source import Source

API = "/api/v1"


class WireStack:
    def __init__(self, container: Container, http: httpx.AsyncClient, creds: dict[str, Any]):
        self.container = container
        self.http = http
        self.creds = creds
        self.tenant: str = creds["tenant_id"]
        self.auth = {"Authorization": f"Bearer {creds['tokens']['tenant_admin']}"}
        self.phones = {p["extension"]: p for p in creds["sip"]["phones"]}
        self.extensions: dict[str, str] = creds["extensions"]

    @classmethod
    async def start(cls, data_dir: Path, rtp: range, sip_port: int = 0) -> WireStack:
        settings = Settings(
            switch="sip",
            sip_host="127.0.0.1",
            sip_port=sip_port,
            rtp_port_min=rtp.start,
            rtp_port_max=rtp.stop - 1,
            data_dir=data_dir,
            storage="sqlite",
            sip_allow_md5=True,
            sip_digest_algorithms="MD5",
            demo=True,
        )
        container = build(settings)
        await container.start()
        try:
            app = create_app(container, manage_lifecycle=False)
            http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://wire", timeout=10.0
            )
            creds = await seed_demo(container, "http://wire", data_dir / "demo-credentials.json")
        except BaseException:
            await container.stop()
            raise
        return cls(container, http, creds)

    async def stop(self) -> None:
        await self.http.aclose()
        await self.container.stop()

    @property
    def sip_port(self) -> int:
        assert self.container.sip is not None
        return self.container.sip.endpoint.port

    def set_trunk(self, port: int) -> None:
        """Send external numbers to ``127.0.0.1:port`` (the SIPp of the test)."""
        switch = self.container.switch
        assert isinstance(switch, SipSwitch)
        switch.trunk = Source("UDP", "127.0.0.1", port)

    def registered(self, username: str) -> bool:
        assert self.container.sip is not None
        return bool(self.container.sip.registrar.contacts(username))

    async def wait_registered(self, username: str, wait_s: float = 15.0) -> None:
        async with asyncio.timeout(wait_s):
            while True:
                if self.registered(username):
                    return
                await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ the API

    async def api(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        r = await self.http.request(
            method, f"{API}/tenants/{self.tenant}{path}", json=body, headers=self.auth
        )
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    async def originate(self, extension: str, target: str) -> str:
        call = await self.api(
            "POST",
            "/calls",
            {"extension_id": self.extensions[extension], "target": target},
            expect=201,
        )
        return str(call["id"])

    async def call(self, call_id: str) -> dict[str, Any] | None:
        r = await self.http.get(f"{API}/tenants/{self.tenant}/calls/{call_id}", headers=self.auth)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def wait_call(self, call_id: str, state: str, wait_s: float = 15.0) -> dict[str, Any]:
        """Poll the call until it reaches ``state`` (``ended``: gone from the live calls)."""
        async with asyncio.timeout(wait_s):
            while True:
                call = await self.call(call_id)
                if call is None:
                    if state == "ended":
                        return {}
                    raise AssertionError(f"call {call_id} ended while waiting for {state}")
                if call["state"] == state:
                    return call
                await asyncio.sleep(0.05)

    async def wait_bridged(
        self, call_id: str, parties: int, wait_s: float = 15.0
    ) -> dict[str, Any]:
        """Poll until a bridge of the call holds ``parties`` answered legs."""
        async with asyncio.timeout(wait_s):
            while True:
                call = await self.call(call_id)
                assert call is not None, f"call {call_id} ended"
                if any(len(b["leg_ids"]) == parties for b in call["bridges"].values()):
                    return call
                await asyncio.sleep(0.05)

    @staticmethod
    def leg(call: dict[str, Any], number: str) -> str:
        """The id of the live leg of ``number`` in ``call``."""
        legs = [
            leg
            for leg in call["legs"].values()
            if leg["number"] == number and leg["state"] != "hungup"
        ]
        assert len(legs) == 1, (number, call["legs"])
        return str(legs[0]["id"])

    async def cdr(self, call_id: str, wait_s: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(wait_s):
            while True:
                r = await self.http.get(
                    f"{API}/tenants/{self.tenant}/cdrs/{call_id}", headers=self.auth
                )
                if r.status_code == 200:
                    result: dict[str, Any] = r.json()
                    return result
                assert r.status_code == 404, r.text
                await asyncio.sleep(0.05)

    async def wait_calls(self, state: str, wait_s: float = 10.0) -> list[dict[str, Any]]:
        """Poll until there is a live call in ``state``; the live calls."""
        async with asyncio.timeout(wait_s):
            while True:
                calls: list[dict[str, Any]] = await self.api("GET", "/calls")
                if any(c["state"] == state for c in calls):
                    return calls
                await asyncio.sleep(0.05)

    async def timeline(self, call_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.api("GET", f"/calls/{call_id}/timeline")
        return result
