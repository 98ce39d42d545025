"""The ``trailkeeper`` command (Typer + Rich).

Two kinds of commands: those that administer a database directly (``serve``, ``demo``,
``keys``, ``ingest``: ``--db URL``) and those that read the log through a server like any
other client (``search``, ``tail``, ``export``, ``operations``: ``--url`` and ``--key``).
Each command parses its options and makes one call.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..client import TrailkeeperError
from ..config import ConfigError
from ..events import EventValidationError
from ..query import QuerySyntaxError
from ..service import QueryError
from ..store import ConflictError, StoreSetupError, StoreUnavailableError
from . import _local, _remote  # noqa: F401  (each registers its commands on ``app``)
from ._app import Unreachable, app

#: Every command; tests/test_docs.py checks that docs/cli.md documents each.
COMMANDS = (
    "serve", "demo", "keys", "ingest", "import", "search", "tail", "export", "operations",
)  # fmt: skip

__all__ = ["COMMANDS", "app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for any refused input)."""
    args = list(argv) if argv is not None else sys.argv[1:]
    stray = _stray_switch_value(args)
    if stray:
        print(f"trailkeeper: {stray}", file=sys.stderr)
        return 2
    try:
        app(args=args, prog_name="trailkeeper")
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except TrailkeeperError as exc:
        print(f"trailkeeper: {exc.detail} ({exc.status} {exc.code})", file=sys.stderr)
        for error in exc.errors:
            said = (error.get("message"), f"{error.get('field')}: {error.get('message')}")
            if exc.detail in said:
                continue  # the detail already said it
            where = f"event {error['index']}: " if "index" in error else ""
            print(f"  {where}{error.get('field', '')}: {error.get('message', '')}", file=sys.stderr)
        return 2
    except (
        EventValidationError,
        QueryError,
        QuerySyntaxError,
        ConflictError,
        ConfigError,
        Unreachable,
        ValueError,
    ) as exc:
        print(f"trailkeeper: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:  # str() of a KeyError is the repr of its message
        print(f"trailkeeper: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except (StoreUnavailableError, StoreSetupError) as exc:
        print(f"trailkeeper: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    return 0


def _stray_switch_value(args: list[str]) -> str | None:
    """Why ``--failed true`` is refused, or None.

    Click reads a switch alone, so the ``true`` after it would become the query's free text
    (``search --failed true`` would search for the word "true").
    """
    from typer.core import TyperGroup, TyperOption
    from typer.main import get_command

    command = get_command(app)
    for number, arg in enumerate(args):
        if arg == "--":
            return None
        if isinstance(command, TyperGroup) and arg in command.commands:
            command = command.commands[arg]
            continue
        switches = {
            name
            for param in command.params
            if isinstance(param, TyperOption) and param.is_flag
            for name in (*param.opts, *param.secondary_opts)
        }
        value = args[number + 1] if number + 1 < len(args) else ""
        if arg in switches and value.lower() in ("true", "false"):
            return (
                f"{arg} is a switch and takes no value: write {arg} alone to turn it on, "
                f"leave it out to keep it off (not {arg} {value})"
            )
    return None
