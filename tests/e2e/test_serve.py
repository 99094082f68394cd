"""``callbridge serve --demo`` as a real process: start, call, SIGTERM, restart on the same data."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
LISTENING = "callbridge listening on "


class Server:
    """A ``callbridge serve`` subprocess; its stdout is read by a thread, stderr goes to a file."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "callbridge.cli",
                "serve",
                "--demo",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
                "--sim-answer-after",
                "0",
                "--log-level",
                "info",
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        self.url = self._wait_for_url()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the server exited early; log:\n{self.log_text()}")
            if line.startswith(LISTENING):
                return line.removeprefix(LISTENING).strip()
        raise AssertionError(f"no listening line within {START_TIMEOUT_S}s:\n{self.log_text()}")

    def log_text(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-5000:]

    def terminate(self) -> int:
        """SIGTERM and wait; the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STOP_TIMEOUT_S)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        self._reader.join(timeout=STOP_TIMEOUT_S)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[], Server]]:
    servers: list[Server] = []

    def _start() -> Server:
        server = Server(tmp_path / "data", tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server

    try:
        yield _start
    finally:
        for server in servers:
            server.close()


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
