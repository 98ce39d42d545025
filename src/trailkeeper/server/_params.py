"""Reading search filters from query parameters or a JSON body into ``Filters``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..filters import Filters, Match, TooManyValuesError, check_size
from ..query import QuerySyntaxError, parse_query
from ..store import Order
from ._problems import Problem

#: Filter parameters: name → kind. GET takes them as query parameters (repeatable ones may
#: repeat), POST /v1/events/search as a JSON object (repeatable ones as arrays).
FILTER_PARAMS = {
    "operation": "list",
    "actor": "list",
    "target": "list",
    "app": "list",
    "source_ip": "list",
    "request_id": "list",
    "success": "bool",
    "since": "time",
    "until": "time",
    "q": "str",
}
PAGE_PARAMS = {"order": "str", "limit": "int", "cursor": "str"}

_DOCS = {
    "operation": "Operation name or resource.* pattern; repeatable (OR).",
    "actor": "Actor id; repeatable.",
    "target": "type:id or a bare id; repeatable.",
    "app": "App id; repeatable.",
    "source_ip": "IP address or CIDR network; repeatable.",
    "request_id": "Request id; repeatable.",
    "success": "true: only successes; false: only failures.",
    "since": "RFC 3339 date-time, inclusive.",
    "until": "RFC 3339 date-time, exclusive.",
    "q": "The query language (docs/api.md), ANDed with the other filters.",
}


def _parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


# The OpenAPI description of the parameters. They are declared here rather than in the route
# signatures so that FastAPI does not validate them a second time per request: the handlers
# validate every one (filters_from, page_from) with messages of their own.
FILTER_PARAMETERS: list[dict[str, Any]] = [
    _parameter(name, {"type": "array", "items": {"type": "string"}}, _DOCS[name])
    if kind == "list"
    else _parameter(
        name, {"type": "boolean"} if kind == "bool" else {"type": "string"}, _DOCS[name]
    )
    for name, kind in FILTER_PARAMS.items()
]
PAGE_PARAMETERS: list[dict[str, Any]] = [
    _parameter("order", {"type": "string", "enum": ["desc", "asc"], "default": "desc"},
               "desc: newest first; asc: oldest first."),
    _parameter("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
               "Page size."),
    _parameter("cursor", {"type": "string"}, "next_cursor of the previous page."),
]  # fmt: skip
EXPORT_FORMAT = _parameter(
    "format", {"type": "string", "enum": ["csv", "jsonl"], "default": "jsonl"}, "Export format."
)
BUCKET = _parameter(
    "bucket", {"type": "string", "enum": ["hour", "day"], "default": "hour"}, "Bucket size."
)


def _bad(field: str, message: str) -> Problem:
    return Problem(
        400, "invalid_query", f"{field}: {message}", errors=[{"field": field, "message": message}]
    )


def _time(field: str, value: object) -> datetime:
    if not isinstance(value, str):
        raise _bad(field, "must be an RFC 3339 date-time string")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise _bad(
            field, f"{value[:64]!r} is not an RFC 3339 date-time (like 2026-11-01T00:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise _bad(field, "needs a time zone, like Z or +01:00")
    return parsed


def filters_from(values: Mapping[str, Any], *, allowed: set[str]) -> Filters:
    """``Filters`` from parameter values (lists for repeatable ones), de-duplicated.

    Raises:
        Problem: 400 for an unknown parameter, a malformed value, or more distinct values
            than ``filters.MAX_FILTER_VALUES`` in one filter or ``MAX_REQUEST_VALUES`` in all.
    """
    for name in values:
        if name not in allowed:
            raise _bad(name, f"is not a parameter here; known: {', '.join(sorted(allowed))}")
    lists: dict[str, tuple[str, ...]] = {}
    for name, kind in FILTER_PARAMS.items():
        if kind != "list" or name not in values:
            continue
        raw = values[name]
        items = raw if isinstance(raw, list) else [raw]
        if not all(isinstance(i, str) for i in items):
            raise _bad(name, "must be a string or a list of strings")
        lists[name] = tuple(items)
    success = values.get("success")
    if success is not None and not isinstance(success, bool):
        if success in ("true", "false"):
            success = success == "true"
        else:
            raise _bad("success", "must be true or false")
    since = _time("since", values["since"]) if values.get("since") is not None else None
    until = _time("until", values["until"]) if values.get("until") is not None else None
    filters = Filters(
        match=Match(
            operations=lists.get("operation", ()),
            actors=lists.get("actor", ()),
            targets=lists.get("target", ()),
            apps=lists.get("app", ()),
            source_ips=lists.get("source_ip", ()),
            request_ids=lists.get("request_id", ()),
        ),
        success=success,
        since=since,
        until=until,
    )
    q = values.get("q")
    if q:
        if not isinstance(q, str):
            raise _bad("q", "must be a string")
        if len(q) > 4096:
            raise _bad("q", "is longer than 4,096 characters")
        try:
            parsed = parse_query(q)
        except QuerySyntaxError as exc:
            raise Problem(
                400,
                "invalid_query",
                f"q: {exc}",
                errors=[{"field": "q", "message": str(exc), "position": exc.position}],
            ) from None
        try:
            filters = filters.combine(parsed)
        except ValueError as exc:
            raise _bad("q", str(exc)) from None
    try:
        return check_size(filters)
    except TooManyValuesError as exc:
        raise _bad(exc.field, exc.message) from None


def page_from(values: Mapping[str, Any]) -> tuple[Order, int, str | None]:
    order = values.get("order", "desc")
    if order != "desc" and order != "asc":
        raise _bad("order", "must be desc or asc")
    raw_limit = values.get("limit", 50)
    try:
        limit = int(raw_limit)
        if isinstance(raw_limit, bool) or (
            isinstance(raw_limit, float) and not raw_limit.is_integer()
        ):
            raise ValueError
    except (TypeError, ValueError):
        raise _bad("limit", "must be a whole number from 1 to 1000") from None
    if not 1 <= limit <= 1000:
        raise _bad("limit", "must be a whole number from 1 to 1000")
    cursor = values.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise _bad("cursor", "must be a string")
    return order, limit, cursor or None


def multi_params(items: list[tuple[str, str]]) -> dict[str, Any]:
    """Query parameters as a dict: repeatable filters as lists, others the last value."""
    out: dict[str, Any] = {}
    for name, value in items:
        if FILTER_PARAMS.get(name) == "list":
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out
