"""Events on the terminal: a Rich table for people; JSON, JSON Lines or CSV for programs."""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.text import Text

from ..export import csv_writer


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


CSV_HEADER = ["time", "actor", "operation", "targets", "source_ip", "status", "id", "seq"]


def console() -> Console:
    return Console(soft_wrap=False)


def cut(text: str, width: int) -> str:
    """``text`` in ``width`` columns, its end replaced by an ellipsis when it is longer."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def fit(natural: Sequence[int], room: int, give: dict[int, int], gap: int = 2) -> list[int]:
    """Column widths for a terminal ``room`` wide.

    ``natural`` are the widths the cells want; ``give`` maps the columns that may be cut (in
    the order they give way) to the least width each keeps. A column missing from ``give``
    (the time) is never cut. When even the least widths don't fit, the line runs over.
    """
    widths = list(natural)
    for column, least in give.items():
        excess = sum(widths) + gap * (len(widths) - 1) - room
        if excess <= 0:
            break
        widths[column] = max(min(least, widths[column]), widths[column] - excess)
    return widths


def _lines(rows: Sequence[Sequence[str]], widths: Sequence[int], gap: str = "  ") -> list[str]:
    return [
        gap.join(cut(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


HEADER = ("WHEN (UTC)", "WHO", "WHAT", "TARGETS", "WHERE", "STATUS")
#: Which event columns give way on a narrow terminal, first to last, and the least each keeps.
GIVE = {3: 8, 1: 8, 4: 8, 2: 16, 5: 9}
#: A followed stream's columns, which can't be measured ahead: about what most events need.
TAIL_WIDTHS = (19, 14, 24, 20, 15, 14)


def print_rows(
    out: Console,
    rows: Sequence[Sequence[str]],
    *,
    header: Sequence[str] | None,
    give: dict[int, int],
    widths: Sequence[int] | None = None,
    failed: Sequence[bool] = (),
) -> None:
    """Rows as aligned columns fitted to a terminal, or tab-separated when piped.

    Piped, every cell is whole and one tab apart (no padding, no width), so the output
    does not change with the terminal and ``cut -f`` or ``awk -F'\t'`` can read it.
    """
    if not out.is_terminal:
        lines = ["\t".join(row) for row in ([header] if header else []) + list(rows)]
        out.file.write("".join(line + "\n" for line in lines))
        return
    every = ([header] if header else []) + list(rows)
    natural = widths or [max(len(row[n]) for row in every) for n in range(len(every[0]))]
    fitted = fit(natural, out.width, give)
    lines = _lines(every, fitted)
    # Never folded: where even the least widths are too wide, the line's end is cut.
    if header:
        out.print(Text(lines.pop(0), style="bold"), no_wrap=True, overflow="ellipsis")
    for line, bad in zip(lines, list(failed) or [False] * len(lines), strict=True):
        out.print(Text(line, style="bold red" if bad else ""), no_wrap=True, overflow="ellipsis")


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


def failed(event: dict[str, Any]) -> bool:
    return not event.get("success", True)


def write(events: Iterable[dict[str, Any]], fmt: Format, *, header: bool = True) -> None:
    """Print ``events`` in ``fmt``; ``header`` is the CSV header line (once per output)."""
    out = sys.stdout
    if fmt is Format.table:
        found = list(events)
        rows = [row(event) for event in found]
        marks = [failed(event) for event in found]
        print_rows(console(), rows, header=HEADER, give=GIVE, failed=marks)
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
