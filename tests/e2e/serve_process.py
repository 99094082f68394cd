"""``callbridge serve`` as a real subprocess, for the end-to-end tests.

stdout is read line by line by a thread (the start-up lines announce the addresses); stderr (the
JSON log) goes to a file that failure messages quote.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
LISTENING = "callbridge listening on "


class ServeProcess:
    """``callbridge serve --demo --host 127.0.0.1 --port 0 --data-dir D`` plus ``args``."""

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        args: Sequence[str],
        env_extra: dict[str, str] | None = None,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
        env.update(env_extra or {})
        self.data_dir = data_dir
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
                "--log-level",
                "info",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        self.url = self.wait_for(LISTENING)

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix: str) -> str:
        """The rest of the next stdout line starting with ``prefix``."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the server exited early; log:\n{self.log_text()}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
        raise AssertionError(f"no {prefix!r} line within {START_TIMEOUT_S}s:\n{self.log_text()}")

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


@contextmanager
def serve_processes(
    make: Callable[[int], ServeProcess],
) -> Iterator[Callable[[], ServeProcess]]:
    """A starter for servers (``make(n)`` builds the n-th); every one is closed at the end."""
    servers: list[ServeProcess] = []

    def start() -> ServeProcess:
        server = make(len(servers))
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()
