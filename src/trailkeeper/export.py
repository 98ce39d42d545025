"""Export formats (CSV and JSON Lines), written incrementally in constant memory.

CSV is written to be opened in a spreadsheet safely (OWASP's CSV injection guidance): every
cell is quoted (RFC 4180, a quote doubled inside), and a cell that starts with ``=``, ``+``,
``-``, ``@``, tab, carriage return or line feed, which a spreadsheet may run as a formula,
gets a single quote ``'`` in front. No column is exempt: none holds a negative number, and
ids, names and the user agent are chosen by whoever sends the event.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from .events import StoredEvent, format_time

FORMATS = ("csv", "jsonl")
MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
CSV_COLUMNS = [
    "seq", "id", "time", "app_id", "actor_id", "actor_type", "actor_name", "operation",
    "description", "targets", "success", "error_code", "error_message", "source_ip",
    "user_agent", "request_id", "details", "leaf_hash",
]  # fmt: skip


#: First characters that make a spreadsheet read a cell as a formula (OWASP), and LF.
FORMULA_STARTS = frozenset("=+-@\t\r\n")


class _Writes(Protocol):
    def write(self, text: str, /) -> Any: ...


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text, never runs as a formula.

    The start is read as a spreadsheet may read it: blanks trimmed (an import option) and
    full-width forms folded (U+FF1D, the full-width equals sign, is ``=`` to some).
    """
    text = value if isinstance(value, str) else str(value)
    start = unicodedata.normalize("NFKC", text[:16]).lstrip(" \u00a0\u3000")[:1]
    return "'" + text if text[:1] in FORMULA_STARTS or start in FORMULA_STARTS else text


def csv_writer(out: _Writes) -> Any:
    """A CSV writer whose ``writerow`` quotes every cell and neutralises formulas."""
    return _SafeWriter(out)


class _SafeWriter:
    __slots__ = ("_writer",)

    def __init__(self, out: _Writes) -> None:
        self._writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([csv_cell(cell) for cell in row])


def csv_row(stored: StoredEvent) -> list[Any]:
    """One CSV row: targets as ``type:id`` joined by ``;``, details joined by `` | ``."""
    e = stored.event
    return [
        stored.seq, e.id, format_time(e.time), e.app_id or "", e.actor.id, e.actor.type,
        e.actor.name or "", e.operation, e.description,
        ";".join(f"{t.type}:{t.id}" for t in e.targets), "true" if e.success else "false",
        e.error.code if e.error else "", e.error.message if e.error else "",
        e.source_ip or "", e.user_agent or "", e.request_id or "", " | ".join(e.details),
        stored.leaf_hash.hex(),
    ]  # fmt: skip


def encode(events: Iterable[StoredEvent], fmt: str, *, chunk: int = 200) -> Iterator[bytes]:
    """The export of ``events`` in ``fmt``, as byte chunks of about ``chunk`` events each.

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use csv or jsonl")
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    if fmt == "csv":
        writer.writerow(CSV_COLUMNS)
    parts: list[bytes] = []
    for count, stored in enumerate(events, 1):
        if fmt == "jsonl":
            parts.append(stored.to_json() + b"\n")
        else:
            writer.writerow(csv_row(stored))
        if count % chunk == 0:
            yield _drain(buffer, parts)
    yield _drain(buffer, parts)


def _drain(buffer: io.StringIO, parts: list[bytes]) -> bytes:
    data = buffer.getvalue().encode() + b"".join(parts)
    buffer.seek(0)
    buffer.truncate()
    parts.clear()
    return data
