"""Settings from the environment, and a deployment's own operations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import ASGIClient
from trailkeeper.clarifai import entry_from
from trailkeeper.config import ConfigError, Settings
from trailkeeper.events import Catalogue, EventValidationError, parse_event
from trailkeeper.query import parse_query
from trailkeeper.server import create_app
from trailkeeper.service import AuditService
from trailkeeper.store import open_store


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///./trailkeeper.db"
    assert settings.max_future_seconds == 300
    assert settings.read_database_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "TRAILKEEPER_DATABASE_URL": "sqlite:////tmp/x.db",
            "TRAILKEEPER_MAX_FUTURE_SECONDS": "60",
            "TRAILKEEPER_REDACT_KEYS": "ssn, pin",
            "TRAILKEEPER_HOST": "0.0.0.0",  # noqa: S104 - a value, not a bind
            "TRAILKEEPER_PORT": "9000",
            "TRAILKEEPER_READ_DATABASE_URL": "postgresql://replica/tk",
            "TRAILKEEPER_MAX_PAST_DAYS": "30",
            "TRAILKEEPER_DRAIN_SECONDS": "5",
        }
    )
    assert settings.database_url == "sqlite:////tmp/x.db"
    assert settings.read_database_url == "postgresql://replica/tk"
    assert settings.rules().limits.max_future == timedelta(seconds=60)
    assert settings.redact_keys == ("ssn", "pin")
    assert settings.port == 9000
    assert settings.rules().limits.max_past == timedelta(days=30)
    assert settings.drain_seconds == 5


def test_the_drain_period_and_the_past_limit_have_documented_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.drain_seconds == 25
    assert settings.rules().limits.max_past == timedelta(days=3653)


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("TRAILKEEPER_MAX_FUTURE_SECONDS", "soon", "whole number"),
        ("TRAILKEEPER_MAX_FUTURE_SECONDS", "-5", "negative"),
        ("TRAILKEEPER_MAX_PAST_DAYS", "a decade", "whole number"),
        ("TRAILKEEPER_DRAIN_SECONDS", "-1", "negative"),
        ("TRAILKEEPER_PORT", "http", "port number"),
        ("TRAILKEEPER_PORT", "70000", "port number"),
    ],
)
def test_malformed_values_are_refused_naming_the_variable(
    variable: str, value: str, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value)


def test_empty_redact_keys_turn_redaction_off() -> None:
    rules = Settings.from_env({"TRAILKEEPER_REDACT_KEYS": ""}).rules()
    assert rules.redactor is None


def test_a_deployment_registers_its_own_operations(tmp_path: Path) -> None:
    path = tmp_path / "ops.json"
    path.write_text(
        json.dumps(
            [
                {
                    "name": "billing.invoice.pay",
                    "description": "Invoice paid",
                    "target_types": ["organization"],
                }
            ]
        )
    )
    rules = Settings(operations_file=str(path)).rules()
    now = datetime(2026, 11, 26, tzinfo=UTC)
    event = parse_event(
        {"actor": "ana", "operation": "billing.invoice.pay"},
        org_id="acme",
        received_at=now,
        rules=rules,
    ).event
    assert event.description == "Invoice paid"
    with pytest.raises(EventValidationError):
        parse_event(
            {"actor": "ana", "operation": "billing.invoice.pay"},
            org_id="acme",
            received_at=now,
            rules=Settings().rules(),
        )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "operations file"),
        ('{"name": "x.y"}', "expected a list"),
        ('[{"name": "Bad Name", "description": "d"}]', "dotted lower case"),
        ('[{"name": "model.create", "description": "d"}]', "already registered"),
        ('[{"name": "a.b", "description": "d", "target_types": ["planet"]}]', "unknown target"),
    ],
)
def test_a_bad_operations_file_is_refused(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "ops.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        Settings(operations_file=str(path)).rules()


def test_a_missing_operations_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="operations file"):
        Settings(operations_file=str(tmp_path / "nope.json")).rules()


def test_a_deployment_registers_its_own_target_types_and_every_face_accepts_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ops.json"
    path.write_text(
        json.dumps(
            {
                "target_types": ["ticket"],
                "operations": [
                    {
                        "name": "ticket.close",
                        "description": "Ticket closed",
                        "target_types": ["ticket"],
                    }
                ],
            }
        )
    )
    rules = Settings(operations_file=str(path)).rules()
    assert {"ticket", "prompt", "agent", "tool_call"} <= rules.catalogue.target_types
    raw = {
        "actor": "ana",
        "operation": "ticket.close",
        "time": "2026-11-26T11:00:00Z",
        "targets": [{"type": "ticket", "id": "t1"}, {"type": "prompt", "id": "p1"}],
    }
    with pytest.raises(EventValidationError, match="'ticket' is not a target type"):
        parse_event(raw, org_id="acme", received_at=NOW, rules=Settings().rules())
    service = AuditService(
        open_store(f"sqlite:///{tmp_path / 'log.db'}"), rules=rules, clock=lambda: NOW
    )
    try:
        service.ingest("acme", [raw])
        for q in ("target:ticket:t1", "target:prompt:p1"):
            (found,) = service.search("acme", parse_query(q)).events
            assert found.event.operation == "ticket.close"
        entry = entry_from(found, rules.catalogue)  # Clarifai has no such kinds: left out
        assert list(entry.targets) == []
        http = ASGIClient(create_app(service))
        listed = http.get("/v1/operations").json()
        http.close()
        assert {"ticket", "inference_endpoint"} <= set(listed["target_types"])
        (closing,) = [op for op in listed["operations"] if op["name"] == "ticket.close"]
        assert closing["target_types"] == ["ticket"]
    finally:
        service.close()


def test_a_target_type_name_must_be_lower_case() -> None:
    with pytest.raises(ValueError, match="lower case"):
        Catalogue.default(target_types=["Ticket"])


NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
