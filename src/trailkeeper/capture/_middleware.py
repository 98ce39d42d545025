"""Pure-ASGI middleware: binds the request context, and records mapped routes by itself.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``) so the context set here is the context
the endpoint runs in: contextvars do not cross ``BaseHTTPMiddleware``'s task boundary.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from ..events._ip import client_address
from ._context import Actor, RequestContext, _request
from ._ids import new_id
from ._operation import Operation
from ._recorder import Recorder, resolve

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._~@+:/=-]{1,128}")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class AuditRoute:
    """What a route records: ``operation``, and targets made from path parameters
    (``{"app": "app_id"}``: a target of type ``app`` whose id is the ``{app_id}`` part)."""

    operation: str
    targets: dict[str, str] = field(default_factory=dict)


class _Compiled:
    __slots__ = ("pattern", "route")

    def __init__(self, template: str, route: AuditRoute) -> None:
        parts = _PARAM.split(template)  # literal, name, literal, name, ...
        self.pattern = re.compile(
            "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
        )
        self.route = route


class AuditMiddleware:
    """Binds a ``RequestContext`` for every HTTP request and, optionally, records events.

    Args:
        app: the ASGI application.
        recorder: where route-map events go (default: the default recorder).
        actor: ``scope -> actor`` (``{"id", "type", "name"?}``, an id, or ``None``); the
            application's own notion of who is calling, from its headers or cookies.
        org: ``scope -> org id`` for multi-tenant recorders. app: ``scope -> app id``.
        trusted_proxies: addresses or networks of proxies whose ``X-Forwarded-For`` is
            believed; the source IP is the last address in the chain that is not one of
            them. With none, it is the connection's peer.
        request_id_header: taken from the request when it is a valid id, else made here;
            echoed on the response.
        routes: ``{"POST /apps/{app_id}/models": "model.create" | AuditRoute(...)}``; a
            request that matches records one event when it ends, successful when the
            response status is below 400.
        flush_timeout: seconds to flush the recorder at ASGI lifespan shutdown.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        recorder: Recorder | None = None,
        actor: Callable[[Scope], Actor | None] | None = None,
        org: Callable[[Scope], str | None] | None = None,
        app_id: Callable[[Scope], str | None] | None = None,
        trusted_proxies: Iterable[str] = (),
        request_id_header: str = "x-request-id",
        routes: dict[str, str | AuditRoute] | None = None,
        flush_timeout: float = 5.0,
    ) -> None:
        self.app = app
        self.recorder = recorder
        self._actor = actor
        self._org = org
        self._app_id = app_id
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self._header = request_id_header.lower().encode("latin-1")
        self._flush_timeout = flush_timeout
        self._routes: dict[str, list[_Compiled]] = {}
        for spec, route in (routes or {}).items():
            method, _, template = spec.partition(" ")
            if not template.startswith("/"):
                raise ValueError(f"route {spec!r}: write 'METHOD /path/{{param}}'")
            compiled = _Compiled(template, AuditRoute(route) if isinstance(route, str) else route)
            self._routes.setdefault(method.upper(), []).append(compiled)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        request_id = user_agent = forwarded = None
        for name, value in scope["headers"]:
            if name == self._header:
                text = value.decode("latin-1")
                request_id = text if _REQUEST_ID.fullmatch(text) else None
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")[:1024]
            elif name == b"x-forwarded-for" and self._proxies:
                hops = value.decode("latin-1")
                forwarded = hops if forwarded is None else f"{forwarded},{hops}"
        request_id = request_id or new_id()
        client = scope.get("client")
        context = RequestContext(
            actor=self._actor(scope) if self._actor else None,
            source_ip=client_address(client[0] if client else None, forwarded, self._proxies),
            request_id=request_id,
            user_agent=user_agent,
            app_id=self._app_id(scope) if self._app_id else None,
            org_id=self._org(scope) if self._org else None,
        )
        route = self._match(scope["method"], scope["path"]) if self._routes else None
        if route is not None:
            audit, params = route
            context.route_event = Operation(
                self.recorder,
                audit.operation,
                targets=[
                    {"type": kind_, "id": params[name]}
                    for kind_, name in audit.targets.items()
                    if params.get(name)
                ],
                started_ns=resolve(self.recorder).clock(),
            )
        token = _request.set(context)
        status = 500
        header = (self._header, request_id.encode("latin-1"))

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if context.route_event is not None:
                context.route_event.finish(exc)
            raise
        else:
            if context.route_event is not None:
                event = context.route_event
                if status >= 400:
                    phrase = _phrase(status)
                    code = phrase.upper().replace(" ", "_").replace("-", "_")
                    event.finish(error={"code": code, "message": f"HTTP {status} {phrase}"})
                else:
                    event.finish()
        finally:
            _request.reset(token)

    def _match(self, method: str, path: str) -> tuple[AuditRoute, dict[str, str]] | None:
        for compiled in self._routes.get(method, ()):
            found = compiled.pattern.fullmatch(path)
            if found:
                return compiled.route, found.groupdict()
        return None

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                recorder = self.recorder
                if recorder is not None or _has_default():
                    await asyncio.to_thread(resolve(recorder).flush, self._flush_timeout)
            return message

        return wrapped


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _has_default() -> bool:
    from . import _recorder

    return _recorder._default is not None
