"""``callbridge serve --demo`` as a real process: start, call, SIGTERM, restart on the same data."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.serve_process import ServeProcess, serve_processes

pytestmark = pytest.mark.e2e


class Server(ServeProcess):
    def __init__(self, data_dir: Path, log: Path) -> None:
        super().__init__(data_dir, log, ["--sim-answer-after", "0"])


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[], ServeProcess]]:
    with serve_processes(
        lambda n: Server(tmp_path / "data", tmp_path / f"server-{n}.log")
    ) as starter:
        yield starter


def _wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_serve_demo_call_restart(start: Callable[[], Server], tmp_path: Path) -> None:
    server = start()
    creds_path = tmp_path / "data" / "demo-credentials.json"
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        health = http.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}

        assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
        creds = json.loads(creds_path.read_text())
        assert creds["base_url"] == server.url
        assert set(creds["tokens"]) >= {"telco_admin", "tenant_admin", "agent"}
        assert creds["native"]["openapi"] == server.url + "/api/v1/openapi.json"
        tid = creds["tenant_id"]
        auth = {"Authorization": f"Bearer {creds['tokens']['tenant_admin']}"}

        me = http.get("/api/v1/me", headers=auth)
        assert me.status_code == 200, me.text
        assert me.json()["tenant_id"] == tid
        assert "Simulator Control" in me.json()["permissions"]

        created = http.post(
            f"/api/v1/tenants/{tid}/calls",
            json={"extension_id": creds["extensions"]["112"], "target": "113"},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        call_id = created.json()["id"]

        def answered() -> bool:
            r = http.get(f"/api/v1/tenants/{tid}/calls/{call_id}", headers=auth)
            assert r.status_code == 200, r.text
            return bool(r.json()["state"] == "answered")

        _wait_for(answered, "the call to be answered")
        killed = http.post(f"/api/v1/tenants/{tid}/calls/{call_id}/kill", headers=auth)
        assert killed.status_code == 200, killed.text
        assert killed.json()["state"] == "ended"

    started = time.monotonic()
    assert server.terminate() == 0, server.log_text()
    assert time.monotonic() - started < 5.0

    again = start()
    creds2 = json.loads(creds_path.read_text())
    assert creds2["tokens"] == creds["tokens"], "still-valid demo tokens are reused"
    assert creds2["base_url"] == again.url
    with httpx.Client(base_url=again.url, timeout=10.0) as http:
        cdrs = http.get(f"/api/v1/tenants/{tid}/cdrs", headers=auth)
        assert cdrs.status_code == 200, cdrs.text
        record = next(c for c in cdrs.json()["items"] if c["call_id"] == call_id)
        assert record["answered_at"] is not None
        assert record["cause"] == "killed"

        page = http.get(f"/api/v1/tenants/{tid}/events", params={"limit": 1000}, headers=auth)
        assert page.status_code == 200, page.text
        types = [e["type"] for e in page.json()["items"] if e["call_id"] == call_id]
        assert "leg.answered" in types
        assert types[-1] == "call.ended"

        exts = http.get(f"/api/v1/tenants/{tid}/extensions", headers=auth)
        assert exts.status_code == 200, exts.text
        numbers = sorted(e["number"] for e in exts.json())
        assert numbers == ["112", "113", "114", "120"]
        queues = http.get(f"/api/v1/tenants/{tid}/queues", headers=auth).json()
        assert sorted(q["name"] for q in queues) == ["Outbound", "Q386", "Q3878"]
        presence = http.get(f"/api/v1/tenants/{tid}/presence-options", headers=auth).json()
        assert len(presence) == 4

    assert again.terminate() == 0, again.log_text()
    for log in tmp_path.glob("server-*.log"):
        text = log.read_text()
        for secret in creds["tokens"].values():
            assert secret not in text, f"a token leaked into {log.name}"
