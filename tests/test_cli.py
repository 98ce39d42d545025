"""The command line, run as a user runs it: a real process on a real database file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trailkeeper.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_demo_loads_two_orgs_and_shows_them(db: str) -> None:
    result = run("demo", "--db", db, "--no-serve", "--port", "0")
    assert result.returncode == 0, result.stderr
    assert "acme:" in result.stdout
    assert "globex:" in result.stdout
    again = run("demo", "--db", db, "--no-serve", "--port", "0")  # a second run adds nothing
    first_count = result.stdout.split("acme: ")[1].split(" ")[0]
    assert again.stdout.split("acme: ")[1].split(" ")[0] == first_count


def test_ingest_then_search_round_trip(db: str) -> None:
    events = [
        {"actor": "ana", "operation": "model.create", "source_ip": "10.0.0.1"},
        {
            "actor": "raj",
            "operation": "team.create",
            "source_ip": "192.0.2.1",
            "success": False,
            "error": {"code": "DENIED", "message": "no"},
        },
    ]
    lines = "\n".join(json.dumps(e) for e in events) + "\n"
    ingested = run("ingest", "--db", db, "--org", "acme", "-", stdin=lines)
    assert ingested.returncode == 0, ingested.stderr
    assert "accepted 2" in ingested.stdout
    found = run("search", "--db", db, "--org", "acme", "--ip", "10.0.0.0/8", "--format", "jsonl")
    assert found.returncode == 0, found.stderr
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert [r["actor"]["id"] for r in rows] == ["ana"]
    failed = run("search", "--db", db, "--org", "acme", "--failed", "--format", "csv")
    assert failed.stdout.splitlines()[1].split(",")[1] == "raj"


def test_invalid_input_exits_2_with_the_reason(db: str) -> None:
    bad = run(
        "ingest", "--db", db, "--org", "acme", "-", stdin='{"actor": "a", "operation": "x.y"}\n'
    )
    assert bad.returncode == 2
    assert "unknown operation 'x.y'" in bad.stderr
    query = run("search", "--db", db, "--org", "acme", "--ip", "not-an-ip")
    assert query.returncode == 2
    assert "CIDR" in query.stderr
