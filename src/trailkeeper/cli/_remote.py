"""Commands that read the log through a server, as any client does: search, tail, export,
operations. The server and key come from ``--url`` / ``--key`` or ``TRAILKEEPER_URL`` /
``TRAILKEEPER_KEY``.
"""

from __future__ import annotations

import enum
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from itertools import islice
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from . import _render
from ._app import Unreachable, app
from ._render import Format

DEFAULT_URL = "http://127.0.0.1:8000"


class CatalogueFormat(enum.StrEnum):
    """``operations`` has no CSV: it lists operations, not events."""

    table = "table"
    json = "json"
    jsonl = "jsonl"


Url = Annotated[
    str,
    typer.Option("--url", envvar="TRAILKEEPER_URL", metavar="URL", help="The Trailkeeper server."),
]
Key = Annotated[
    str,
    typer.Option(
        "--key",
        envvar="TRAILKEEPER_KEY",
        metavar="KEY",
        help="A read key's secret (tk_...).",
        show_default=False,
        show_envvar=True,
    ),
]
Query = Annotated[
    str | None,
    typer.Argument(
        metavar="QUERY",
        help="The query language, e.g. 'operation:model.* status:failure since:7d'.",
    ),
]


OwnReads = Annotated[
    bool,
    typer.Option(
        "--include-own-reads",
        metavar="",
        help="Also show the log's own reads (audit_log.search, .export, .stream), "
        "this command's among them.",
    ),
]

#: The log's own reads, hidden unless asked for, as the console hides them: each search,
#: export and tail is one, so they would crowd out what the log is kept for.
OWN_READS = "-operation:audit_log.search -operation:audit_log.export -operation:audit_log.stream"


def _without_own_reads(query: str | None, include: bool, *named: str) -> str | None:
    # A query that names audit_log operations asks for them, and gets what it asks.
    if include or any("audit_log" in text for text in (query or "", *named)):
        return query
    return f"{query or ''} {OWN_READS}".strip()


def _repeat(metavar: str, help: str) -> Any:
    return typer.Option(metavar=metavar, help=f"{help} Repeatable.", show_default=False)


def _switch(name: str, help: str) -> Any:
    return typer.Option(name, metavar="", help=help)  # no "<bool>": a switch takes no value


_WHEN = "a date, an RFC 3339 date-time or a span back (7d, 12h), as in the query."


def _time(value: str | None, flag: str) -> str | None:
    """``--since``/``--until`` read by the query language's rules (``since:7d`` there)."""
    from datetime import UTC, datetime

    from ..query import parse_time

    if value is None:
        return None
    try:
        return parse_time(value, datetime.now(UTC)).isoformat()
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{flag}: {exc}") from None


@contextmanager
def _client(url: str, key: str | None) -> Iterator[Any]:
    import httpx

    from ..client import Client

    if key is not None and not key:
        raise typer.BadParameter("give a read key: --key tk_... or TRAILKEEPER_KEY=tk_...")
    with Client(url, key or "") as client:
        try:
            yield client
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the server at {url}: {exc}") from None


@app.command()
def search(
    query: Query = None,
    operation: Annotated[list[str] | None, _repeat("NAME", "Name or resource.* pattern.")] = None,
    actor: Annotated[list[str] | None, _repeat("ID", "Actor id.")] = None,
    target: Annotated[list[str] | None, _repeat("TYPE:ID", "type:id or a bare id.")] = None,
    app_: Annotated[
        list[str] | None, typer.Option("--app", metavar="ID", help="App id. Repeatable.")
    ] = None,
    ip: Annotated[list[str] | None, _repeat("IP|CIDR", "IP address or CIDR network.")] = None,
    request: Annotated[list[str] | None, _repeat("ID", "Request id.")] = None,
    failed: Annotated[bool, _switch("--failed", "Only failures.")] = False,
    succeeded: Annotated[bool, _switch("--succeeded", "Only successes.")] = False,
    since: Annotated[str | None, typer.Option(metavar="WHEN", help=f"Inclusive: {_WHEN}")] = None,
    until: Annotated[str | None, typer.Option(metavar="WHEN", help=f"Exclusive: {_WHEN}")] = None,
    order: Annotated[
        str, typer.Option(metavar="desc|asc", help="desc (newest first) or asc.")
    ] = "desc",
    limit: Annotated[
        int, typer.Option(min=1, max=1_000_000, metavar="N", help="Events to show.")
    ] = 50,
    format: Annotated[Format, typer.Option(help="How to print them.")] = Format.table,
    include_own_reads: OwnReads = False,
    url: Url = DEFAULT_URL,
    key: Key = "",
) -> None:
    """Search the key's org (filters combine with AND; repeated values with OR)."""
    if failed and succeeded:
        raise typer.BadParameter("--failed and --succeeded exclude each other")
    if order not in ("desc", "asc"):
        raise typer.BadParameter("desc or asc", param_hint="--order")
    q = _without_own_reads(query, include_own_reads, *(operation or []))
    filters = {
        "q": q, "operation": operation, "actor": actor, "target": target, "app": app_,
        "source_ip": ip, "request_id": request, "success": False if failed else True if succeeded
        else None, "since": _time(since, "--since"), "until": _time(until, "--until"),
        "order": order,
    }  # fmt: skip
    with _client(url, key) as client:
        found = list(islice(client.events.list(page_size=min(limit, 1000), **filters), limit))
    _render.write(found, format)


@app.command()
def tail(
    query: Query = None,
    last: Annotated[
        int,
        typer.Option(min=0, max=1000, metavar="N", help="Start with the matches among the last N."),
    ] = 10,
    count: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Stop after N events (default: follow forever)."),
    ] = None,
    format: Annotated[Format, typer.Option(help="How to print each event.")] = Format.table,
    include_own_reads: OwnReads = False,
    url: Url = DEFAULT_URL,
    key: Key = "",
) -> None:
    """Follow new events in seq order (late arrivals with an old time included)."""
    out = _render.console()
    with _client(url, key) as client:
        # The stream reconnects when it drops, so a server that was never there would be
        # waited for in silence: one plain request first says whether it is there at all.
        client.operations()
        events = client.events.tail(backlog=last, q=_without_own_reads(query, include_own_reads))
        for number, event in enumerate(islice(events, count), 1):
            if format is Format.table:
                _render.print_rows(
                    out, [_render.row(event)], header=None, give=_render.GIVE,
                    widths=_render.TAIL_WIDTHS, failed=[_render.failed(event)],
                )  # fmt: skip
            else:
                _render.write([event], format, header=number == 1)
            sys.stdout.flush()


@app.command()
def export(
    query: Query = None,
    format: Annotated[str, typer.Option(metavar="csv|jsonl", help="csv or jsonl.")] = "jsonl",
    output: Annotated[
        str,
        typer.Option(metavar="FILE", help="A file, or - for standard output (no progress bar)."),
    ] = "-",
    url: Url = DEFAULT_URL,
    key: Key = "",
) -> None:
    """Export every matching event in seq order, streamed, with a progress bar."""
    if format not in ("csv", "jsonl"):
        raise typer.BadParameter("csv or jsonl", param_hint="--format")
    target: IO[bytes] | None = None
    if output != "-":
        # Before the server is asked anything (a typo in the path is the likelier mistake),
        # and beside the file, not over it: a failed export must not wipe what was there.
        try:
            target = tempfile.NamedTemporaryFile(  # noqa: SIM115  (closed by the with below)
                dir=Path(output).parent, prefix=f".{Path(output).name}.", delete=False
            )
        except OSError as exc:
            raise ValueError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        events = _export(target, format, query, url, key)
    except BaseException:
        if target is not None:
            Path(target.name).unlink(missing_ok=True)
        raise
    if target is not None:
        os.replace(target.name, output)
        print(f"exported {events:,} events to {output}", file=sys.stderr)


def _export(target: IO[bytes] | None, format: str, query: str | None, url: str, key: str) -> int:
    """Write the export to ``target`` (standard output if ``None``); the events written."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with target or nullcontext() as out, _client(url, key) as client:
        chunks = client.events.export(format, q=query)
        if out is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            return 0
        # The total for the bar: the day counts of the same filter (one small request).
        total = sum(b["events"] for b in client.activity(bucket="day", q=query))
        written = 0
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=not sys.stderr.isatty(),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task("exporting", total=total or None)
            for chunk in chunks:
                out.write(chunk)
                written += chunk.count(b"\n")
                progress.update(task, completed=min(written, total) if total else written)
    return written - 1 if format == "csv" else written


@app.command()
def operations(
    format: Annotated[CatalogueFormat, typer.Option(help="How to print it.")] = (
        CatalogueFormat.table
    ),
    url: Url = DEFAULT_URL,
) -> None:
    """The server's operation catalogue, with Clarifai's EventType for each that has one."""
    with _client(url, None) as client:
        ops = client.operations()
    if format is not CatalogueFormat.table:
        _render.write(ops, Format(format.value))
        return
    rows = []
    for op in ops:
        clarifai = op.get("clarifai")
        rows.append([
            op["name"], op["description"],
            f"{clarifai['name']} = {clarifai['number']}" if clarifai else "-",
        ])  # fmt: skip
    header = ("OPERATION", "DESCRIPTION", "CLARIFAI EVENT TYPE")
    _render.print_rows(_render.console(), rows, header=header, give={1: 20, 2: 16, 0: 24})
