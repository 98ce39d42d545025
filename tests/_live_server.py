"""A real `trailkeeper serve` on a real port, that a test can stop and start again."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from trailkeeper.events import StoredEvent
from trailkeeper.service import AuditService


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The audit server as a subprocess on ``port`` over the SQLite file ``db``."""

    def __init__(self, db: Path, port: int | None = None) -> None:
        self.db_url = f"sqlite:///{db}"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def key(self, org: str, *scopes: str) -> str:
        """A new key of ``org`` (made through the service, as `trailkeeper keys` does)."""
        with AuditService.open(self.db_url) as service:
            _, secret = service.keys.create(org, list(scopes or ["events:write"]))
        return secret

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trailkeeper.cli", "serve", "--db", self.db_url,
             "--port", str(self.port), "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(self.process.stderr.read() if self.process.stderr else "")
            assert time.monotonic() < deadline, "the server did not come up in 30 s"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None

    def events(self, org: str) -> list[StoredEvent]:
        """The org's events in seq order, without the log's own records (key creation)."""
        with AuditService.open(self.db_url) as service:
            return [e for e in service.scan(org) if not e.event.operation.startswith("audit_log.")]
