"""End to end: `trailkeeper serve` on a real port, keys made by the CLI, the Python client."""

from __future__ import annotations

import csv
import io

import pytest

from conftest import LiveServer, new_key
from conftest import run_cli as cli
from trailkeeper.client import AuthenticationError, Client


@pytest.fixture
def server(live_server: LiveServer) -> tuple[str, str]:
    return live_server.url, live_server.db


def make_key(db: str, *args: str) -> str:
    return new_key(db, *args)


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
    remote = ("--url", url, "--key", reader)
    tailed = cli("tail", *remote, "--last", "100", "--count", "1", "--format", "jsonl",
                 "operation:team.*")  # fmt: skip
    assert tailed.returncode == 0, tailed.stderr
    assert '"team.create"' in tailed.stdout
    searched = cli("search", *remote, "status:failure", "--format", "csv")
    assert list(csv.reader(io.StringIO(searched.stdout)))[1][1] == "ci"


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
