"""The ASGI application: routes, error handlers and request metrics."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..service import AuditService
from ..store import StoreClosedError, StoreUnavailableError
from . import _schemas as schemas
from . import console
from ._access import RequestIdMiddleware, authenticate
from ._clarifai import router as clarifai_router
from ._docs import add_docs
from ._drain import Drain, DrainMiddleware, shutting_down
from ._fair import FairReaders
from ._hardening import InternalErrors, SecurityHeaders
from ._lookup import AUTH_THREADS, AUTH_TIMEOUT_SECONDS, UNREACHABLE
from ._metrics import Metrics
from ._problems import PROBLEM_SCHEMA, Problem
from ._routes import json, router
from ._stream import router as stream_router


class _MetricsMiddleware:
    """Counts requests and times them per route template (pure ASGI: keeps contextvars)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.observe(path, time.perf_counter() - started)
            self.metrics.inc(
                "trailkeeper_http_requests_total",
                route=path,
                status=str(status),
                method=scope["method"],
            )


#: Threads (each with its own SQLite connection) that answer searches, gets and charts ...
READERS = 4
#: ... and how many of them the reads of one org may hold at once (see _fair).
READERS_PER_ORG = READERS - 1
#: The detail of every 503 store_unavailable, whatever the backend said (that is logged).
RETRY = {"Retry-After": "1"}
_log = logging.getLogger("trailkeeper.server")


def create_app(
    service: AuditService,
    *,
    session_secret: bytes | None = None,
    trusted_proxies: Sequence[str] = (),
    metrics_key: str = "none",
) -> FastAPI:
    """The API and the console over ``service``; the caller owns the service and closes it.

    Args:
        session_secret: signs the console's session cookies. Processes that serve the same
            users behind one address must share it; by default each process makes its own,
            so a restart signs everyone out of the console.
        trusted_proxies: addresses or networks of proxies whose ``X-Forwarded-For`` names
            the client recorded as a read's source IP.
        metrics_key: ``"admin"`` to answer /metrics only to an admin key (``"none"``: anyone).

    Raises:
        ValueError: a trusted proxy is not an address or network.
    """
    readers = FairReaders(READERS, READERS_PER_ORG)
    authenticators = ThreadPoolExecutor(max_workers=AUTH_THREADS, thread_name_prefix="tk-auth")
    drain = Drain()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        drain.hook_signals()  # uvicorn has set its handlers by now; ours run first
        yield
        readers.shutdown()
        # Not waited for: a lookup stuck behind a lock must not hold up the shutdown.
        authenticators.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        lifespan=lifespan,
        title="Trailkeeper",
        version=__version__,
        description="A tamper-evident, searchable audit log. Errors are RFC 9457 problems.",
        docs_url=None,  # add_docs serves them without a CDN
        redoc_url=None,
    )
    metrics = Metrics()
    app.state.readers = readers
    app.state.authenticators = authenticators
    app.state.trusted_proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
    app.state.service = service
    app.state.metrics = metrics
    app.state.session_secret = session_secret or secrets.token_bytes(32)
    #: Set when the server starts shutting down (see _drain); long-lived responses watch it.
    app.state.draining = drain.event
    app.state.drain = drain
    # Before the main router: /v1/events/{event_id} would otherwise take /v1/events/stream.
    app.include_router(stream_router)
    app.include_router(router)
    app.include_router(console.router)
    app.mount("/console/static", console.static_files(), name="console-static")
    app.include_router(clarifai_router)

    @app.exception_handler(Problem)
    async def problem(_: Request, exc: Problem) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        in_query = all(e["loc"][0] == "query" for e in exc.errors())
        code = "invalid_query" if in_query else "invalid_request"
        return Problem(400, code, detail, errors=errors).response()

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(_: Request, exc: StoreUnavailableError) -> Response:
        # The database is down or restarting: the client may retry (ids make it safe). The
        # driver's text stays in the log: it can quote SQL, or rows of COPY data.
        _log.warning("503 store_unavailable: %s", exc)
        return Problem(503, "store_unavailable", UNREACHABLE, headers=RETRY).response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return Problem(exc.status_code, code, str(exc.detail)).response()

    @app.get("/healthz", responses={200: schemas.json_response(schemas.HEALTH, "Up")})
    async def healthz() -> Response:
        return json({"status": "ok"})

    @app.get(
        "/readyz",
        responses={
            200: schemas.json_response(schemas.HEALTH, "Ready: the store answers"),
            503: PROBLEM_SCHEMA,
        },
    )
    async def readyz() -> Response:
        """Readiness: 200 while the store answers and the server is not shutting down."""
        if drain.event.is_set():
            return shutting_down().response()
        try:
            # On the key-lookup threads with their timeout, not the readers: a long search
            # must not make a ready server look unready, nor a stuck database hang the probe.
            await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(authenticators, service.store.ping),
                AUTH_TIMEOUT_SECONDS,
            )
        except (StoreUnavailableError, StoreClosedError, TimeoutError) as exc:
            _log.warning("/readyz: the store is unavailable: %s", exc)
            return Problem(503, "store_unavailable", UNREACHABLE, headers=RETRY).response()
        return json({"status": "ready"})

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus(request: Request) -> Response:
        if metrics_key == "admin":
            await authenticate(request, "admin")
        extra: dict[str, Any] = {"trailkeeper_read_audit_failures": service.read_audit_failures}
        return PlainTextResponse(
            metrics.render(extra), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    add_docs(app)
    app.add_middleware(InternalErrors)  # inside the metrics: a crash counts as a 500
    app.add_middleware(DrainMiddleware, drain=drain)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestIdMiddleware)  # outermost: every response carries the id
    app.openapi = lambda: _with_security(app)  # type: ignore[method-assign]
    return app


def _with_security(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, saying which operations need a key (kept off the hot path)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key's secret: tk_<id>_<secret> (trailkeeper keys create)",
            }
        }
        for path, operations in schema["paths"].items():
            if path.startswith("/v1/") and path != "/v1/operations":
                for operation in operations.values():
                    operation["security"] = [{"apiKey": []}]
        app.openapi_schema = schema
    return app.openapi_schema
