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
    try:
        app(args=list(argv) if argv is not None else None, prog_name="trailkeeper")
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except TrailkeeperError as exc:
        print(f"trailkeeper: {exc.detail} ({exc.status} {exc.code})", file=sys.stderr)
        for error in exc.errors:
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
        KeyError,
        ValueError,
    ) as exc:
        print(f"trailkeeper: {exc}", file=sys.stderr)
        return 2
    except (StoreUnavailableError, StoreSetupError) as exc:
        print(f"trailkeeper: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    return 0
