"""Events on the terminal: a Rich table for people; JSON, JSON Lines or CSV for programs."""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..export import csv_writer


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


CSV_HEADER = ["time", "actor", "operation", "targets", "source_ip", "status", "id", "seq"]


def console() -> Console:
    # Piped output is not cut to 80 columns: a person may still read it in a pager.
    return Console(width=None if sys.stdout.isatty() else 200, soft_wrap=False)


def aligned(rows: Sequence[Sequence[str]], gap: str = "  ") -> list[str]:
    """Rows as lines of space-padded columns, each as wide as its widest cell."""
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    return [gap.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _when(event: dict[str, Any]) -> str:
    when = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _who(event: dict[str, Any]) -> str:
    actor = event.get("actor") or {}
    return str(actor.get("name") or actor.get("id", ""))


def _targets(event: dict[str, Any]) -> str:
    return ", ".join(f"{t['type']}:{t['id']}" for t in event.get("targets") or [])


def _status(event: dict[str, Any]) -> str:
    if event.get("success", True):
        return "ok"
    error = event.get("error") or {}
    return f"FAILED {error.get('code', '')}".strip()


def row(event: dict[str, Any]) -> list[str]:
    return [
        _when(event), _who(event), str(event["operation"]), _targets(event),
        str(event.get("source_ip") or ""), _status(event),
    ]  # fmt: skip


def table(events: Sequence[dict[str, Any]], title: str | None = None) -> Table:
    grid = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for name in ("WHEN (UTC)", "WHO", "WHAT", "TARGETS", "WHERE", "STATUS"):
        grid.add_column(name, overflow="fold", max_width=48)
    for event in events:
        cells = row(event)
        status = Text(cells[-1], style="green" if cells[-1] == "ok" else "bold red")
        grid.add_row(*cells[:-1], status)
    return grid


def write(events: Iterable[dict[str, Any]], fmt: Format, *, header: bool = True) -> None:
    """Print ``events`` in ``fmt``; ``header`` is the CSV header line (once per output)."""
    out = sys.stdout
    if fmt is Format.table:
        console().print(table(list(events)))
    elif fmt is Format.json:
        out.write(orjson.dumps(list(events), option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt is Format.jsonl:
        for event in events:
            out.write(orjson.dumps(event).decode() + "\n")
    else:
        writer = csv_writer(out)
        if header:
            writer.writerow(CSV_HEADER)
        for event in events:
            writer.writerow([*row(event), event.get("id", ""), event.get("seq", "")])
