"""The Typer application the command modules register on, and what they share."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="trailkeeper",
    help="A tamper-evident, searchable audit log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
keys = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys, name="keys")
imports = typer.Typer(help="Copy another audit log into Trailkeeper.", no_args_is_help=True)
app.add_typer(imports, name="import")


class Unreachable(Exception):
    """The server at ``--url`` could not be reached."""
