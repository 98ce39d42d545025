"""The docs keep up with the code: every command, setting and operation is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

import trailkeeper
from trailkeeper.cli import COMMANDS, app
from trailkeeper.config import ENVIRONMENT, Settings
from trailkeeper.events import TARGET_TYPES

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


def _commands() -> dict[str, typer.core.TyperCommand]:
    group = typer.main.get_command(app)
    return group.commands  # type: ignore[attr-defined,no-any-return]


def test_the_cli_has_exactly_the_listed_commands() -> None:
    assert set(_commands()) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_every_command_is_documented(command: str) -> None:
    text = (DOCS / "cli.md").read_text()
    section = text.split(f"## `trailkeeper {command}")[1].split("\n## ")[0]
    found = _commands()[command]
    commands = getattr(found, "commands", {}).values() or [found]
    for each in commands:
        for param in each.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    mentioned = re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", section)
                    assert mentioned, f"{command}: {opt} is not in docs/cli.md"


@pytest.mark.parametrize("variable", sorted(ENVIRONMENT))
def test_every_setting_is_documented(variable: str) -> None:
    assert f"`{variable}`" in (DOCS / "configuration.md").read_text()
    assert ENVIRONMENT[variable] in Settings.__dataclass_fields__


def test_every_target_type_is_documented() -> None:
    text = (DOCS / "events.md").read_text()
    for target_type in TARGET_TYPES:
        assert f" {target_type} " in text or f" {target_type}`" in text
