"""``GET /v1/events/stream``: new events as server-sent events, in seq order, as they arrive.

Follows the org's log by ``seq``, not by time, so an event that arrives late with an old
``time`` is still delivered. Each message carries ``id: <seq>``: a client that reconnects
with ``Last-Event-ID`` (browsers' EventSource does it by itself) resumes exactly after the
last event it got, skipping nothing and repeating nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import islice
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from ..events import StoredEvent
from ..filters import Filters
from ..service import AuditService, QueryError
from . import _routes as routes
from ._params import FILTER_PARAMETERS, FILTER_PARAMS, filters_from, multi_params
from ._problems import Problem

#: How often an idle stream looks for new events (one indexed read of the org's head).
POLL_SECONDS = 0.25
#: A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
#: Events read from the store per step.
BATCH = 500
#: The most events ``backlog`` may replay when a stream opens.
MAX_BACKLOG = 1000

router = APIRouter(prefix="/v1")

_STREAM_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "after",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": -1},
        "description": "Start after this seq (the Last-Event-ID header takes precedence). "
        "Default: the org's newest event, so only new events are sent.",
    },
    {
        "name": "backlog",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_BACKLOG},
        "description": "Start with the matching events among the org's last N (0 by default).",
    },
]


def _integer(value: Any, name: str, low: int, high: int | None = None) -> int:
    text = str(value).strip()
    if not text.lstrip("-").isdigit() or len(text) > 20:
        raise Problem(400, "invalid_query", f"{name}: must be an integer",
                      errors=[{"field": name, "message": "must be an integer"}])  # fmt: skip
    number = int(text)
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise Problem(400, "invalid_query", f"{name}: must be {bound}",
                      errors=[{"field": name, "message": f"must be {bound}"}])  # fmt: skip
    return number


def _batch(service: AuditService, org_id: str, filters: Filters, after: int) -> list[StoredEvent]:
    # Read whole in one thread: a SQLite reader connection belongs to its thread, and closing
    # the scan ends its read transaction at once instead of holding back checkpoints.
    events = service.scan(org_id, filters, after_seq=after)
    try:
        return list(islice(events, BATCH))
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def _message(stored: StoredEvent) -> bytes:
    return b"id: %d\ndata: " % stored.seq + stored.to_json() + b"\n\n"


@router.get(
    "/events/stream",
    responses={
        200: {
            "description": "Server-sent events: one message per event, id = seq",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **routes._ERRORS,
    },
    openapi_extra={"parameters": [*FILTER_PARAMETERS, *_STREAM_PARAMETERS]},
)
async def stream(request: Request, key: routes.ReadKey) -> Response:
    """Matching events as they are stored, in seq order, as `text/event-stream`."""
    values = multi_params(list(request.query_params.multi_items()))
    after_value = request.headers.get("last-event-id") or values.pop("after", None)
    values.pop("after", None)
    backlog = _integer(values.pop("backlog", 0), "backlog", 0, MAX_BACKLOG)
    service = routes.service_of(request)
    filters = service.limit_to_key(filters_from(values, allowed=set(FILTER_PARAMS)), key)
    org = key.org_id
    head = await routes.read(request, service.size, org) - 1
    if after_value is not None:
        after = _integer(after_value, "after", -1)
    else:
        after = max(head - backlog, -1)
    try:
        first = await routes.read(request, _batch, service, org, filters, after)
    except QueryError as exc:
        raise routes._query_error(exc) from None
    service.record_read(key, "audit_log.search", {**values, "stream": True})

    async def messages() -> AsyncIterator[bytes]:
        # Invariant: every event up to ``position`` was sent or does not match. A read that
        # returns less than a full batch has seen every event up to ``horizon``, the head
        # observed before it was made.
        position, horizon, batch = after, head, first
        yield b"retry: 2000\n: streaming the log of org " + org.encode() + b"\n\n"
        while True:
            for stored in batch:
                yield _message(stored)
            if batch:
                position = batch[-1].seq
            if len(batch) < BATCH:
                position = max(position, horizon)
                idle = 0.0
                while (horizon := await routes.read(request, service.size, org) - 1) <= position:
                    await asyncio.sleep(POLL_SECONDS)
                    idle += POLL_SECONDS
                    if idle >= KEEPALIVE_SECONDS:
                        idle = 0.0
                        yield b": keepalive\n\n"
            batch = await routes.read(request, _batch, service, org, filters, position)

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
