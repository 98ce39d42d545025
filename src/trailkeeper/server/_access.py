"""Who is asking and from where: authentication, request ids and the reader of a request.

Routes get a ``Reader`` (or a write key) from the dependencies here and call it: they hold
no authorization and record nothing themselves (the reader does both, in the core).
Authentication reads the store, so it runs on a thread, never on the event loop, with a
short timeout: a slow key lookup answers 503 instead of freezing the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._reader import Reader
from .._trail import RequestContext, new_request_id, usable_request_id
from ..events._ip import client_address
from ..keys import ApiKey, AuthError
from ..service import AuditService
from ._lookup import off_loop
from ._problems import Problem
from .console._session import COOKIE, verify


class RequestIdMiddleware:
    """Gives every HTTP request an id: its ``X-Request-Id`` if usable, else a new one.

    The id is kept in ``scope["state"]["request_id"]`` for the request's records and sent
    back in the response's ``X-Request-Id`` header. Pure ASGI: keeps contextvars.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                sent = usable_request_id(value.decode("latin-1"))
                break
        request_id = sent or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_id)


def service_of(request: Request) -> AuditService:
    return request.app.state.service  # type: ignore[no-any-return]


def request_context(request: Request, face: str = "api") -> RequestContext:
    """Where ``request`` came from: the client's address (``X-Forwarded-For`` only from
    ``TRAILKEEPER_TRUSTED_PROXIES``), its user agent and the request's id."""
    peer = request.client.host if request.client else None
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    return RequestContext(
        source_ip=client_address(peer, forwarded, request.app.state.trusted_proxies),
        user_agent=_text(request.headers.get("user-agent")),
        request_id=request.scope.get("state", {}).get("request_id"),
        face=face,
    )


def _text(header: str | None) -> str | None:
    """A header as its sender most likely wrote it: ASGI gives latin-1; clients send UTF-8."""
    if header is None:
        return None
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return header


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


async def authenticate(request: Request, scope: str) -> ApiKey:
    """The key of the request (a bearer secret, or the console's session for reads).

    Raises:
        Problem: 401/403 for a missing, unknown, expired, revoked or too narrow key; 503 when
            the store does not answer in time.
    """
    keys = service_of(request).keys
    try:
        secret = bearer(request)
        if secret is None and scope == "events:read" and COOKIE in request.cookies:
            # The console: its signed session cookie stands in for a read key.
            session = verify(request.app.state.session_secret, request.cookies[COOKIE])
            if session is None:
                raise AuthError("invalid_session", "the console session has ended; sign in")
            lookup = partial(keys.authenticate_id, session.key_id, scope, session_id=session.id)
            return await off_loop(request, lookup)
        return await off_loop(request, partial(keys.authenticate, secret, scope))
    except AuthError as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="trailkeeper"'} if exc.status == 401 else {}
        raise Problem(exc.status, exc.code, exc.message, headers=headers) from None


def reader_for(request: Request, key: ApiKey) -> Reader:
    """The key-scoped reader of ``request``, whose reads are recorded with its context.

    Raises:
        Problem: the key may not read.
    """
    cookie_only = bearer(request) is None and COOKIE in request.cookies
    session = None
    if cookie_only:
        found = verify(request.app.state.session_secret, request.cookies[COOKIE])
        if found is not None:
            session = (found.id, datetime.fromtimestamp(found.expires, UTC))
    try:
        return service_of(request).reader(
            key, request_context(request, "console" if cookie_only else "api"), session=session
        )
    except AuthError as exc:
        raise Problem(exc.status, exc.code, exc.message) from None


def _require(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    # A dependency, so that authentication runs before FastAPI validates the parameters:
    # a caller without a key learns nothing about them.
    async def dependency(request: Request) -> ApiKey:
        return await authenticate(request, scope)

    return dependency


async def _reader(request: Request) -> Reader:
    return reader_for(request, await authenticate(request, "events:read"))


ReadAccess = Annotated[Reader, Depends(_reader)]
WriteKey = Annotated[ApiKey, Depends(_require("events:write"))]
