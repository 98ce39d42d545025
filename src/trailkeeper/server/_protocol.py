"""The HTTP protocol uvicorn runs: its httptools one, plus a deadline for slow clients.

uvicorn times out only idle keep-alive connections: a client that connects and sends half a
request line, or headers one byte a minute, or a body that stops half way, holds its
connection (and the request's task) for as long as it likes, and a few hundred of them use
up a server's file descriptors and ``limit_concurrency``. ASGI middleware cannot help, since
the app is called only once the headers are complete. So this protocol arms a timer when a
connection opens and when a request's first byte arrives; the headers must be complete
before it fires, and afterwards each piece of the body must follow the one before within the
same time, and the whole body arrive within ``BODY_GAPS`` times it. A late client gets
``408`` (when no response has begun) and the connection is
closed. The deadline is ``TRAILKEEPER_HEADER_TIMEOUT`` (``config.Settings.header_timeout``),
read once per process, so ``serve --workers`` processes get it through the environment.

``trailkeeper serve`` passes this class to uvicorn (``http=``) in place of uvicorn's choice
between httptools and h11; httptools comes with the ``server`` extra.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..config import Settings

_BODY = orjson.dumps(
    {
        "type": "urn:trailkeeper:problem:request_timeout",
        "title": "Request timeout",
        "status": 408,
        "code": "request_timeout",
        "detail": "the request did not arrive in time; the connection is closed",
        "errors": [],
    }
)
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/problem+json\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


#: A whole body must arrive within this many header timeouts (60 s by default), however
#: steadily its pieces come: 5 MiB at the slowest rate a real client sends is far quicker.
BODY_GAPS = 6


@functools.cache
def header_timeout() -> float:
    """Seconds a client has for its headers, and between pieces of its body."""
    return Settings.from_env().header_timeout


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that hangs up on clients too slow to send a request."""

    _deadline: asyncio.TimerHandle | None = None
    #: When the whole body must have arrived (loop time): a client sending a byte just
    #: before each gap's deadline must not hold a connection for days.
    _body_due: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a client that connects and sends nothing at all

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._body_due = self.loop.time() + header_timeout() * BODY_GAPS
        self._arm()  # for the body; a request without one completes at once and disarms

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        self._body_due = None
        super().on_message_complete()

    def _arm(self) -> None:
        self._disarm()
        wait = header_timeout()
        if self._body_due is not None:
            wait = min(wait, self._body_due - self.loop.time())
        self._deadline = self.loop.call_later(max(wait, 0.0), self._late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle: Any = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()
