"""``GET /v1/events/stream``: new events as server-sent events, in seq order, as they arrive.

Follows the org's log by ``seq``, not by time, so an event that arrives late with an old
``time`` is still delivered. Each message carries ``id: <seq>``: a client that reconnects
with ``Last-Event-ID`` (browsers' EventSource does it by itself) resumes exactly after the
last event it got, skipping nothing and repeating nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from .._reader import FOLLOW_BATCH, MAX_BACKLOG
from ..events import StoredEvent
from ..keys import AuthError
from ..service import QueryError
from ..store import StoreUnavailableError
from . import _routes as routes
from ._access import ReadAccess
from ._params import FILTER_PARAMETERS, FILTER_PARAMS, filters_from, multi_params
from ._problems import Problem

#: How often an idle stream looks for new events (one indexed read of the org's head).
POLL_SECONDS = 0.25
#: A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15.0

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


def _message(stored: StoredEvent) -> bytes:
    return b"id: %d\ndata: " % stored.seq + stored.to_json() + b"\n\n"


#: What the last message of a stream says when its key stops being usable.
_ENDED = {
    "revoked_key": "key_revoked",
    "expired_key": "key_expired",
    "ended_session": "session_ended",
    "expired_session": "session_expired",
}


def _last(code: str, message: str) -> bytes:
    """A stream's last message: why it ends."""
    data = orjson.dumps({"code": code, "message": message})
    return b"event: error\ndata: " + data + b"\n\n"


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
async def stream(request: Request, reader: ReadAccess) -> Response:
    """Matching events as they are stored, in seq order, as `text/event-stream`.

    The key is checked again on every poll: within a second of its revocation or expiry the
    stream sends an `event: error` message (`key_revoked`, `key_expired`) and ends, and no
    event stored after that is sent.
    """
    values = multi_params(list(request.query_params.multi_items()))
    after_value = request.headers.get("last-event-id") or values.pop("after", None)
    values.pop("after", None)
    backlog = _integer(values.pop("backlog", 0), "backlog", 0, MAX_BACKLOG)
    after = _integer(after_value, "after", -1, 2**63 - 1) if after_value is not None else None
    filters = filters_from(values, allowed=set(FILTER_PARAMS))
    try:
        follow = await routes.read(
            request,
            reader.org_id,
            partial(
                reader.follow,
                filters,
                after=after,
                backlog=backlog,
                request={
                    **values,
                    "backlog": backlog,
                    "resumed": "last-event-id" in request.headers,
                },
            ),
        )
    except QueryError as exc:
        raise routes._query_error(exc) from None

    async def messages() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n: streaming the log of org " + reader.org_id.encode() + b"\n\n"
        idle = 0.0
        draining: asyncio.Event = request.app.state.draining
        while True:
            if draining.is_set():  # the server is stopping: say so, the client reconnects
                yield _last("shutting_down", "the server is shutting down; reconnect")
                return
            try:
                batch = await routes.read(request, reader.org_id, follow.poll)
            except AuthError as exc:
                yield _last(_ENDED.get(exc.code, exc.code), exc.message)
                return
            except StoreUnavailableError:  # the headers are sent: end the stream, not a 503
                yield _last("store_unavailable", "the database is unreachable; reconnect")
                return
            for stored in batch:
                yield _message(stored)
            if len(batch) < FOLLOW_BATCH:
                await asyncio.sleep(POLL_SECONDS)
                idle = 0.0 if batch else idle + POLL_SECONDS
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield b": keepalive\n\n"

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
