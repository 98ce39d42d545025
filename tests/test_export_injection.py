"""CSV exports open safely in a spreadsheet: formulas are neutralised, every cell quoted
(OWASP CSV injection guidance, RFC 4180); JSON Lines carry the values unchanged (#13)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ASGIClient
from trailkeeper.cli._render import Format, write
from trailkeeper.server import create_app
from trailkeeper.service import AuditService

FAILED = {"success": False, "error": {"code": "denied", "message": "x"}}
FORMULAS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, event fields, CSV column, the value sent)
    ("= in the user agent", {"user_agent": "=HYPERLINK(\"http://evil\",\"x\")"}, "user_agent",
     "=HYPERLINK(\"http://evil\",\"x\")"),
    ("+ in the description", {"description": "+1+cmd|' /C calc'!A0"}, "description",
     "+1+cmd|' /C calc'!A0"),
    ("- in the actor id", {"actor": {"id": "-2+3"}}, "actor_id", "-2+3"),
    ("@ in the actor name", {"actor": {"id": "a", "name": "@SUM(1+1)"}}, "actor_name",
     "@SUM(1+1)"),
    ("tab in the error message", {**FAILED, "error": {"code": "e", "message": "\t=1+1"}},
     "error_message", "\t=1+1"),
    ("CR in a details line", {"details": ["\r=1+1"]}, "details", "\r=1+1"),
    ("LF in the description", {"description": "\n=1"}, "description", "\n=1"),
    ("= in the app id", {"app_id": "=cmd"}, "app_id", "=cmd"),
    ("+ in the request id", {"request_id": "+cmd"}, "request_id", "+cmd"),
    ("- in the error code", {**FAILED, "error": {"code": "-1", "message": "m"}}, "error_code",
     "-1"),
    ("negative-looking number in the description", {"description": "-42"}, "description",
     "-42"),
]  # fmt: skip


@pytest.fixture
def client(service: AuditService) -> Iterator[ASGIClient]:
    opened = ASGIClient(
        create_app(service),
        {"Authorization": f"Bearer {service.keys.create('acme', ['admin'])[1]}"},
    )
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("fields", "column", "value"),
    [case[1:] for case in FORMULAS],
    ids=[case[0] for case in FORMULAS],
)
def test_csv_cells_that_start_a_formula_are_neutralised_and_jsonl_is_unchanged(
    service: AuditService, client: ASGIClient, fields: dict[str, Any], column: str, value: str
) -> None:
    event = {"actor": "alice", "operation": "model.create", **fields}
    stored = client.post("/v1/events", json={"events": [event]})
    assert stored.status_code == 202, stored.text

    exported = client.get("/v1/events/export", params={"format": "csv", "operation": "model.*"})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    assert len(rows) == 1
    assert rows[0][column] == "'" + value
    assert rows[0]["operation"] == "model.create"  # a plain cell is left as it is
    header, row = exported.text.split("\n", 1)  # every cell quoted, also the header's
    assert header.startswith('"seq","id",')
    assert row.startswith('"')
    assert row.endswith('"\n')

    jsonl = client.get("/v1/events/export", params={"format": "jsonl", "operation": "model.*"})
    assert jsonl.status_code == 200
    assert value in strings(json.loads(jsonl.text.split("\n")[0]))  # as it was sent
    assert "'" + value not in strings(json.loads(jsonl.text.split("\n")[0]))

    assert client.post("/v1/events", json={"events": [event]}).status_code == 202


def strings(value: Any) -> list[str]:
    """Every string inside ``value``."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_the_cli_csv_output_is_neutralised_too(capsys: pytest.CaptureFixture[str]) -> None:
    event = {"id": "e1", "seq": 1, "time": "2026-11-26T11:00:00.000000Z", "operation": "x.y",
             "actor": {"id": "=cmd", "type": "user"}, "targets": [], "success": True}  # fmt: skip
    write([event], Format.csv)
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out, newline="")))
    assert "'=cmd" in rows[1][1]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
