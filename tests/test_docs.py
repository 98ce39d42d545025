"""The docs keep up with the code: every command, setting and operation is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

import trailkeeper
from trailkeeper.cli import COMMANDS, build_parser
from trailkeeper.config import ENVIRONMENT, Settings
from trailkeeper.events import BUILTIN_OPERATIONS, TARGET_TYPES

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def test_public_api_is_pinned() -> None:
    assert trailkeeper.__all__ == [
        "AuditService",
        "ConflictError",
        "EventValidationError",
        "FieldError",
        "Filters",
        "IngestResult",
        "Match",
        "Page",
        "QueryError",
        "StoredEvent",
        "__version__",
    ]
    for name in trailkeeper.__all__:
        assert hasattr(trailkeeper, name)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_cli_command_is_documented(command: str) -> None:
    assert f"## `trailkeeper {command}" in (DOCS / "cli.md").read_text()


def test_the_parser_has_exactly_the_listed_commands() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)  # type: ignore[arg-type]


@pytest.mark.parametrize("variable", sorted(ENVIRONMENT))
def test_every_setting_is_documented(variable: str) -> None:
    assert f"`{variable}`" in (DOCS / "configuration.md").read_text()
    assert ENVIRONMENT[variable] in Settings.__dataclass_fields__


def test_every_target_type_is_documented() -> None:
    text = (DOCS / "events.md").read_text()
    for target_type in TARGET_TYPES:
        assert f" {target_type} " in text or f" {target_type}`" in text


def test_every_operation_is_listed_by_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from trailkeeper.cli import main

    assert main(["operations"]) == 0
    listed = capsys.readouterr().out
    for operation in BUILTIN_OPERATIONS:
        assert operation.name in listed
