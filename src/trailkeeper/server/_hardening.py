"""What every response gets: ``nosniff``, and a problem (never a traceback) for a crash.

Both are pure ASGI middleware (``BaseHTTPMiddleware`` would break the contextvars that
request context travels in), and both wrap streaming responses without buffering them.
"""

from __future__ import annotations

import logging
import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_log = logging.getLogger("trailkeeper")

#: Headers every HTTP response carries (JSON, exports, health, problems, the docs).
ALWAYS = [(b"x-content-type-options", b"nosniff")]


class SecurityHeaders:
    """Adds ``ALWAYS`` to every response that does not set those headers itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in ALWAYS if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class InternalErrors:
    """An exception the app did not handle becomes ``500 internal_error`` as a problem.

    The client gets no internals, only an id to quote; the log gets the traceback under the
    same id. A response already under way (a stream, an export) can only be cut short.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            error_id = scope.get("state", {}).get("request_id") or uuid.uuid4().hex
            _log.exception(
                "internal error %s in %s %s", error_id, scope.get("method"), scope.get("path")
            )
            if started:
                raise
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"x-request-id", error_id.encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": problem_body(error_id)})


def problem_body(error_id: str) -> bytes:
    return orjson.dumps(
        {
            "type": "urn:trailkeeper:problem:internal_error",
            "title": "Internal server error",
            "status": 500,
            "code": "internal_error",
            "detail": f"the server failed to answer; quote {error_id} when reporting it",
            "errors": [],
            "request_id": error_id,
        }
    )
