"""A client that knows only the CCS spec, against ``callbridge serve --demo`` (#5 acceptance).

It reads the ``ccs`` section of demo-credentials.json, lists and updates everything of spec
section 4, changes agent states, clicks to call, suppresses and resumes recording, acts on a waiting
call, and receives the resulting events on ``/6/v2/sock`` — then reconnects with its cursor and
gets what it missed. The one thing it does outside the CCS API is what the outside world does: a
customer calls queue 386 (the simulator's inbound call, on the native API).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.serve_process import ServeProcess, serve_processes
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.e2e

EXT_112 = "az123456-7bee-4351-bcd6-ecc2d8620b83"
AGENTS = [
    EXT_112,
    "az123456-57be-4919-aa73-b2e6341fe461",  # 113
    "az123456-7c49-49a8-80fc-ae173a422a36",  # 114
]
Q3878 = "az123456-0817-40a5-86aa-0f43becbd6f6"
OUTBOUND_QUEUE = "az123456-c0ed-42b7-8e8c-d50c4991828c"
PRODUCT_JERIN = "az123456-c58d-48c1-90b9-4b3c65c22875"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    with serve_processes(
        lambda n: ServeProcess(
            tmp_path / "data", tmp_path / f"server-{n}.log", ["--sim-answer-after", "0"]
        )
    ) as start:
        yield start()


class Ccs:
    """The REST side, as a spec-only client writes it."""

    def __init__(self, http: httpx.Client, api: str, token: str) -> None:
        self.http, self.api = http, api.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def get(self, path: str, **params: str) -> Any:
        r = self.http.get(self.api + path, headers=self.headers, params=params)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        body = r.json()
        assert body["success"] is True
        return body

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        r = self.http.request(method, self.api + path, headers=self.headers, json=body)
        assert r.status_code == 200, f"{method} {path} {body}: {r.status_code} {r.text}"
        answer = r.json()
        assert answer["success"] is True
        return answer


class Sock:
    """The event WebSocket: connect message first, then frames."""

    def __init__(self, url: str, token: str, cursor: str | None = None) -> None:
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(connect(url, open_timeout=10))
        hello: dict[str, Any] = {"request": "connect", "token": token}
        if cursor is not None:
            hello["cursor"] = cursor
        self.ws.send(json.dumps(hello))
        self.ack = json.loads(self.ws.recv(timeout=10))
        assert self.ack["success"] is True, self.ack
        self.frames: list[dict[str, Any]] = []

    def until(self, what: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        for frame in self.frames:
            if match(frame):
                return frame
        deadline = time.monotonic() + 10
        while (left := deadline - time.monotonic()) > 0:
            frame = json.loads(self.ws.recv(timeout=left))
            self.frames.append(frame)
            if match(frame):
                return frame
        raise AssertionError(
            f"no {what} event; got {[(f['event'], f['type']) for f in self.frames]}"
        )

    def close(self) -> None:
        self._stack.close()


def _wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def test_a_spec_only_client_drives_the_demo(server: ServeProcess) -> None:
    creds = json.loads((server.data_dir / "demo-credentials.json").read_text())
    ccs = creds["ccs"]
    tenant = ccs["tenant_uuid"]
    with httpx.Client(timeout=10.0) as http:
        telco = Ccs(http, ccs["api"], ccs["tokens"]["telco_user"])
        admin = Ccs(http, ccs["api"], ccs["tokens"]["tenant_admin"])
        agent = Ccs(http, ccs["api"], ccs["tokens"]["agent"])
        sock = Sock(ccs["sock"], ccs["tokens"]["tenant_admin"])
        assert set(sock.ack["events"]) == {"call", "agent", "inbound_queue"}

        # ---- section 4 configuration, read and updated (4.1-4.14)
        assert {p["name"] for p in telco.get("/products/")["items"]} >= {"+AG", "Campaign"}
        assert [r["name"] for r in telco.get("/roles/")["items"]][:1] == ["Tenant Admin"]
        tenants = telco.get("/tenants")["items"]
        assert [t["sil_tenant_name"] for t in tenants] == ["CCSLab15"]
        details = telco.get(f"/tenants/{tenant}")
        assert details["name"] == "CCSLab15" and details["telco_id"]["name"] == "Broadview"
        assert telco.get(f"/tenants/{tenant}/roles")["total"] == "2"
        acds = admin.get("/acds")["items"][0]
        assert {"Q386", "Q3878"} <= {a["name"] for a in acds}
        names = {o["name"] for o in telco.get(f"/tenants/{tenant}/presence_options")["items"]}
        assert {"Coffee Break", "Sign Out", "Holiday In Bahamas"} <= names
        numbers = {e["extension"] for e in admin.get("/extensions")["items"]}
        assert {"112", "113", "114"} <= numbers
        telco.get(f"/tenants/{tenant}/text_count")
        telco.send("POST", f"/tenants/{tenant}/text_count", {"request": "reset_counter"})
        added = telco.send(
            "POST", f"/tenants/{tenant}", {"request": "add_product", "product": PRODUCT_JERIN}
        )
        assert added["uuid"] == PRODUCT_JERIN
        products = [p["uuid"] for p in telco.get(f"/tenants/{tenant}")["product_id"]]
        assert PRODUCT_JERIN in products
        telco.send(
            "POST", f"/tenants/{tenant}", {"request": "delete_product", "product": PRODUCT_JERIN}
        )
        telco.send("PUT", f"/tenants/{tenant}", {"max_agents": "50", "rec_extn_limit": "10"})
        assert telco.get(f"/tenants/{tenant}")["max_agents"] == "50"
        telco.send(
            "PUT",
            f"/tenants/{tenant}/extensions/{EXT_112}/",
            {
                "is_agent": "true",
                "recording_type": "Mandatory",
                "monitor": "false",
                "max_chats": "3",
            },
        )

        # ---- agent states (4.15-4.18)
        agent.send("POST", "/agent_state", {"request": "updateAgentState", "name": "Coffee Break"})
        state = telco.get(f"/tenants/{tenant}/extensions/{EXT_112}/agent_state")
        assert state["agent_state"]["state"] == {"type": "away", "name": "Coffee Break"}
        sock.until(
            "agent state",
            lambda f: (
                f["event"] == "agent"
                and f.get("agent_state", {}).get("state", {}).get("name") == "Coffee Break"
            ),
        )
        telco.send(
            "POST",
            f"/tenants/{tenant}/extensions/{EXT_112}",
            {"request": "updateAgentState", "name": "Ready"},
        )

        # ---- click-to-call (4.28), the call (4.20), suppression (4.22/4.23), kill (4.24)
        dialled = admin.send(
            "POST",
            f"/tenants/{tenant}/extensions/{EXT_112}",
            {"request": "dial", "target": "19735552106", "outbound_queue_uuid": OUTBOUND_QUEUE},
        )
        call_id = dialled["call_id"]
        assert len(call_id) == 13 and call_id.isalnum() and call_id.upper() == call_id
        _wait_for(lambda: admin.get(f"/calls/{call_id}")["state"] == "answered", "the answer")
        assert call_id in [c["call_id"] for c in admin.get("/calls")["items"]]
        _wait_for(
            lambda: admin.get(f"/calls/{call_id}")["recording"]["state"] == "active",
            "the Mandatory recording",
        )
        admin.send("POST", f"/calls/{call_id}", {"request": "startSuppression"})
        admin.send("POST", f"/calls/{call_id}", {"request": "stopSuppression"})
        admin.send("POST", f"/calls/{call_id}", {"request": "kill"})
        ended = sock.until("call ended", lambda f: f["event"] == "call" and f["type"] == "ended")
        assert ended["call_id"] == call_id
        types = [f["type"] for f in sock.frames if f.get("call_id") == call_id]
        assert "suppression_started" in types and "suppression_stopped" in types
        found = admin.get(
            "/calls/filter", calling_number="112", called_number="19735552106", time_z="UTC"
        )
        assert call_id in [c["call_id"] for c in found["items"]]

        # ---- a waiting call (4.25-4.27): every agent away, a customer calls queue 386
        for ext in AGENTS:
            admin.send(
                "POST", f"/extensions/{ext}", {"request": "updateAgentState", "name": "Lunch Break"}
            )
        native = {"Authorization": f"Bearer {creds['tokens']['tenant_admin']}"}
        r = http.post(
            f"{creds['base_url']}/api/v1/tenants/{tenant}/sim/calls",
            json={"from": "19735550123", "to": "386"},
            headers=native,
        )
        assert r.status_code == 202, r.text
        waiting = r.json()["call_id"]

        def queued() -> bool:  # the inbound call exists once the switch has delivered it
            r = http.get(f"{admin.api}/calls/{waiting}", headers=admin.headers)
            return r.status_code == 200 and r.json()["state"] == "queued"

        _wait_for(queued, "the call to wait in Q386")
        sock.until(
            "queue entered",
            lambda f: f["event"] == "inbound_queue" and f.get("call_id") == waiting,
        )
        cursor = sock.frames[-1]["cursor"]
        sock.close()  # the client goes away; what happens next it gets on resume

        admin.send("POST", f"/calls/{waiting}", {"request": "wait_redirect", "target": Q3878})
        admin.send("POST", f"/calls/{waiting}", {"request": "wait_kill"})
        _wait_for(lambda: admin.get(f"/calls/{waiting}")["state"] == "ended", "the wait_kill")

        again = Sock(ccs["sock"], ccs["tokens"]["tenant_admin"], cursor=cursor)
        ended = again.until(
            "the waiting call's end",
            lambda f: f["event"] == "call" and f["type"] == "ended" and f["call_id"] == waiting,
        )
        cursors = [int(f["cursor"]) for f in again.frames]
        assert cursors[0] > int(cursor), "nothing before the cursor is sent again"
        assert cursors == sorted(set(cursors)), "in order, each once"
        moved = [
            f for f in again.frames if f["event"] == "inbound_queue" and f["call_id"] == waiting
        ]
        assert any(f.get("to_queue_uuid") == Q3878 for f in moved), moved
        again.close()

    log = server.log_text()
    for secret in ccs["tokens"].values():
        assert secret not in log, "a token leaked into the server log"
