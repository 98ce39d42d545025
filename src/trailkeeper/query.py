"""The query language: one parser for the API (``q=``), the console and the CLI.

    operation:model.* -actor:ci-bot status:failure ip:10.0.0.0/8 since:7d "permission denied"

A query is a list of terms separated by white space, all of which must hold:

- ``qualifier:value``: ``operation:`` (a name or ``resource.*``), ``actor:``, ``target:``
  (``type:id`` or an id), ``app:``, ``status:`` (``success`` or ``failure``), ``ip:`` (an
  address or a CIDR network), ``since:`` and ``until:`` (a date ``2026-11-01``, a date-time
  ``2026-11-01T09:30:00Z``, or a span back from now: ``15m``, ``24h``, ``7d``, ``2w``),
  ``request:`` (a request id). The same qualifier twice means either value (OR).
- ``-qualifier:value`` excludes what the qualifier matches (not for status, since, until).
- A value may be quoted: ``actor:"svc account"``; inside quotes ``\\"`` is a quote.
- Any other word, or a quoted phrase, is free text that must occur in the event.

A malformed query raises ``QuerySyntaxError`` naming the bad term and its position, and so
does a query with more distinct values than ``filters.MAX_FILTER_VALUES`` for one qualifier
(or for the free text) or ``filters.MAX_REQUEST_VALUES`` in all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .filters import MAX_FILTER_VALUES, MAX_REQUEST_VALUES, Filters, Match

QUALIFIERS = ("operation", "actor", "target", "app", "status", "ip", "since", "until", "request")
_MATCH_FIELDS = {
    "operation": "operations",
    "actor": "actors",
    "target": "targets",
    "app": "apps",
    "ip": "source_ips",
    "request": "request_ids",
}
_SPAN = re.compile(r"(\d{1,6})([mhdw])")
_SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(?P<tz>[Zz]|[+-]\d{2}:\d{2})?"
)


class QuerySyntaxError(ValueError):
    """A query that can't be read; ``position`` is the 0-based offset of ``token``."""

    def __init__(self, message: str, token: str, position: int) -> None:
        self.token = token
        self.position = position
        self.reason = message
        super().__init__(f"at position {position} ({token!r}): {message}")


@dataclass(slots=True)
class _Term:
    text: str
    position: int
    quoted_value: bool = False
    values: list[str] = field(default_factory=list)


def _tokens(query: str) -> list[tuple[str, int, int, bool]]:
    """Split into (term, start, end, quoted) respecting double quotes; end is exclusive."""
    out: list[tuple[str, int, int, bool]] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        start = i
        buf: list[str] = []
        quoted = False
        while i < n and not query[i].isspace():
            if query[i] == '"':
                quoted = True
                i += 1
                closed = False
                while i < n:
                    ch = query[i]
                    if ch == "\\" and i + 1 < n and query[i + 1] in '"\\':
                        buf.append(query[i + 1])
                        i += 2
                        continue
                    if ch == '"':
                        closed = True
                        i += 1
                        break
                    buf.append(ch)
                    i += 1
                if not closed:
                    raise QuerySyntaxError("this quote is never closed", query[start:], start)
            else:
                buf.append(query[i])
                i += 1
        out.append(("".join(buf), start, i, quoted))
    return out


def parse_time(value: str, now: datetime) -> datetime:
    """A ``since:``/``until:`` value: a date (UTC midnight), a date-time, or a span back.

    Raises:
        ValueError: none of those. OverflowError: a span reaching before year 1.
    """
    span = _SPAN.fullmatch(value)
    if span:
        return now - timedelta(**{_SPAN_UNITS[span.group(2)]: int(span.group(1))})
    if _DATE.fullmatch(value):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a date, an RFC 3339 date-time or a span")
    if match.group("tz") is None:
        raise ValueError("a date-time needs a time zone, like Z or +01:00")
    return datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))


def parse_query(query: str, *, now: Callable[[], datetime] | None = None) -> Filters:
    """Read a query into ``Filters``.

    Raises:
        QuerySyntaxError: naming the bad term and its position.
    """
    clock = now or (lambda: datetime.now(UTC))
    include: dict[str, list[str]] = {}
    exclude: dict[str, list[str]] = {}
    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    relative = False
    text: list[str] = []
    distinct = 0

    def add(values: list[str], value: str, name: str, raw: str, position: int) -> None:
        # Repeats are kept (they change nothing) but only distinct values count.
        nonlocal distinct
        if value in values:
            values.append(value)
            return
        if len(set(values)) >= MAX_FILTER_VALUES:
            raise QuerySyntaxError(
                f"{name} has more than {MAX_FILTER_VALUES} distinct values; "
                f"at most {MAX_FILTER_VALUES} in one filter",
                raw,
                position,
            )
        if distinct >= MAX_REQUEST_VALUES:
            raise QuerySyntaxError(
                f"more than {MAX_REQUEST_VALUES} distinct values; "
                f"at most {MAX_REQUEST_VALUES} in one query",
                raw,
                position,
            )
        values.append(value)
        distinct += 1

    for token, position, end, quoted in _tokens(query):
        raw = query[position:end]  # the term as written, quotes included
        negate = token.startswith("-") and ":" in token
        body = token[1:] if negate else token
        name, sep, value = body.partition(":")
        if not sep or (quoted and query[position] == '"') or raw.startswith('-"'):
            if raw.startswith("-"):
                raise QuerySyntaxError(
                    "'-' excludes a qualifier, like -actor:ci-bot; free text can't be negated",
                    raw,
                    position,
                )
            add(text, token, "free text", raw, position)
            continue
        if name not in QUALIFIERS:
            close = [q for q in QUALIFIERS if q.startswith(name[:2])] if name else []
            hint = f"; did you mean {close[0]}:?" if close else ""
            raise QuerySyntaxError(
                f"unknown qualifier {name!r}; known: {', '.join(QUALIFIERS)}{hint}", raw, position
            )
        if not value:
            raise QuerySyntaxError(f"{name}: needs a value", raw, position)
        if name in ("status", "since", "until") and negate:
            raise QuerySyntaxError(f"{name}: can't be negated", raw, position)
        if name == "status":
            if value not in ("success", "failure"):
                raise QuerySyntaxError("status: is success or failure", raw, position)
            wanted = value == "success"
            if success is not None and success != wanted:
                raise QuerySyntaxError(
                    "status: is given twice with different values", raw, position
                )
            success = wanted
        elif name in ("since", "until"):
            try:
                moment = parse_time(value, clock())
            except (ValueError, OverflowError) as exc:
                if "time zone" in str(exc):
                    raise QuerySyntaxError(f"{name}: {exc}", raw, position) from None
                raise QuerySyntaxError(
                    f"{name}: takes a date (2026-11-01), an RFC 3339 date-time "
                    "(2026-11-01T09:30:00Z) or a span like 15m, 24h, 7d, 2w",
                    raw,
                    position,
                ) from None
            relative = relative or _SPAN.fullmatch(value) is not None
            if name == "since":
                since = moment if since is None else max(since, moment)
            else:
                until = moment if until is None else min(until, moment)
        else:
            values = (exclude if negate else include).setdefault(_MATCH_FIELDS[name], [])
            add(values, value, ("-" if negate else "") + name + ":", raw, position)
    return Filters(
        match=Match(**{k: tuple(v) for k, v in include.items()}),
        exclude=Match(**{k: tuple(v) for k, v in exclude.items()}),
        success=success,
        since=since,
        until=until,
        text=tuple(text),
        relative=relative,
    )
