"""End to end: `trailkeeper serve` on a real port, keys made by the CLI, the Python client."""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from trailkeeper.client import AuthenticationError, Client


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trailkeeper.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    db = f"sqlite:///{tmp_path / 'e2e.db'}"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "trailkeeper.cli", "serve", "--db", db, "--port", str(port),
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the server did not come up in 30 s"
            time.sleep(0.1)
        yield url, db
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()


def make_key(db: str, *args: str) -> str:
    result = cli("keys", "create", "--db", db, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]  # the secret is alone on the last line


def test_a_producer_and_a_reader_over_real_http(server: tuple[str, str]) -> None:
    url, db = server
    writer = make_key(db, "--org", "acme", "--scope", "events:write", "--name", "platform")
    reader = make_key(db, "--org", "acme", "--scope", "events:read")
    with Client(url, writer) as producer:
        ids = [
            producer.record(
                "model.create",
                actor={"id": f"user-{i}", "name": f"User {i}"},
                targets=[{"type": "model", "id": f"m{i}"}],
                source_ip=f"10.0.0.{i + 1}",
                app_id="main",
            )["id"]
            for i in range(30)
        ]
        denied = {"code": "DENIED", "message": "not an admin"}
        producer.record_many(
            [{"actor": "ci", "operation": "team.create", "success": False, "error": denied}]
        )
    with Client(url, reader) as analyst:
        found = [e["id"] for e in analyst.events.list(operation="model.*", page_size=7)]
        assert sorted(found) == sorted(ids)
        failures = list(analyst.events.search("status:failure"))
        assert [e["operation"] for e in failures] == ["team.create"]
        assert analyst.events.get(ids[0])["actor"]["id"] == "user-0"
        exported = b"".join(analyst.events.export("csv", q="ip:10.0.0.0/24"))
        rows = list(csv.DictReader(io.StringIO(exported.decode())))
        assert len(rows) == 30
        with pytest.raises(AuthenticationError):
            analyst.record("model.create", actor="x")

    listed = cli("keys", "list", "--db", db, "--org", "acme")
    assert "platform" in listed.stdout
    tailed = cli("tail", "--db", db, "--org", "acme", "--once", "--last", "100", "operation:team.*")
    assert '"team.create"' in tailed.stdout
    searched = cli("search", "--db", db, "--org", "acme", "status:failure", "--format", "csv")
    assert "ci" in searched.stdout


def test_a_revoked_key_stops_working_at_once(server: tuple[str, str]) -> None:
    url, db = server
    secret = make_key(db, "--org", "acme", "--scope", "events:write")
    key_id = secret.split("_")[1]
    with Client(url, secret) as producer:
        producer.record("model.create", actor="ana")
        assert cli("keys", "revoke", "--db", db, "--org", "acme", key_id).returncode == 0
        with pytest.raises(AuthenticationError) as caught:
            producer.record("model.create", actor="ana")
        assert caught.value.code == "revoked_key"
