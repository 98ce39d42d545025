"""Draining: what a server does between SIGTERM (or Ctrl-C) and exit.

uvicorn, on the signal, stops accepting connections, closes idle ones, and waits up to its
graceful-shutdown timeout (``TRAILKEEPER_DRAIN_SECONDS``) for the requests in flight; then it
cancels what is left. On the same signal the app:

- sets ``app.state.draining`` (an ``asyncio.Event``), which anything long-lived may watch;
- answers every new request but ``/healthz`` and ``/metrics`` with 503 ``shutting_down`` and
  ``Retry-After`` (``/readyz`` included, so load balancers stop sending work);
- ends each open event stream (``text/event-stream``) with a last ``event: error`` message
  whose data names ``shutting_down``: streams never end by themselves, and would otherwise
  hold the shutdown for the whole drain period;
- answers a request still running when uvicorn gives up with 503 ``shutting_down`` instead
  of uvicorn's plain-text 500 (an ingest cut that way may have been stored: ids make a
  resend safe).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._problems import Problem

#: Answered while draining: liveness (the process is alive, finishing its work) and metrics.
EXEMPT = frozenset({"/healthz", "/metrics"})
#: What a client is told to wait before retrying, in seconds (another server will answer).
RETRY_AFTER = "1"
DETAIL = "the server is shutting down; retry (another server, or this one once restarted)"
_LAST_MESSAGE = (
    b"event: error\ndata: "
    + orjson.dumps(
        {
            "code": "shutting_down",
            "detail": "the server is shutting down; reconnect (Last-Event-ID resumes the "
            "stream where it stopped)",
        }
    )
    + b"\n\n"
)


def shutting_down() -> Problem:
    """The 503 a draining server answers."""
    return Problem(503, "shutting_down", DETAIL, headers={"Retry-After": RETRY_AFTER})


class Drain:
    """The draining state of one app: the event, and the open event streams to end."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._streams: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        """Start draining (on the event loop's thread)."""
        if self.event.is_set():
            return
        self.event.set()
        for task in list(self._streams):
            task.cancel()

    def hook_signals(self) -> None:
        """Start draining when SIGTERM or SIGINT arrives, then let the handler installed
        before (uvicorn's) do its part. Call from the running loop, after uvicorn set its
        handlers (at lifespan startup); does nothing outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            signal.signal(sig, _chain(loop, self.start, previous))


def _chain(
    loop: asyncio.AbstractEventLoop, start: Callable[[], None], previous: Any
) -> Callable[[int, FrameType | None], None]:
    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(start)
        if callable(previous):
            previous(sig, frame)
        elif previous == signal.SIG_DFL and sig == signal.SIGINT:
            raise KeyboardInterrupt

    return handler


class DrainMiddleware:
    """Refuses new requests while draining and ends streams (pure ASGI: keeps contextvars)."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        drain = self.drain
        if drain.event.is_set() and scope["path"] not in EXEMPT:
            await shutting_down().response()(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        started = streaming = False

        async def tracked(message: Message) -> None:
            nonlocal started, streaming
            if message["type"] == "http.response.start":
                started = True
                headers = dict(message.get("headers", ()))
                streaming = headers.get(b"content-type", b"").startswith(b"text/event-stream")
                if streaming:
                    drain._streams.add(task)
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if not drain.event.is_set():
                raise
            # Cancelled by the drain (a stream) or by uvicorn at the end of the drain period.
            task.uncancel()
            if not started:
                await shutting_down().response()(scope, receive, send)
            elif streaming:
                await send({"type": "http.response.body", "body": _LAST_MESSAGE})
            else:
                raise
        finally:
            drain._streams.discard(task)
