"""Request context in ``contextvars``: who is acting, from where, in which request.

The middleware binds one ``RequestContext`` per request; ``record()`` reads it on the
caller's thread. The object itself is mutable on purpose: an endpoint that learns the actor
late (``set_actor``) changes the same object the middleware holds, even from a worker thread
that runs on a copy of the context.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._operation import Operation

Actor = dict[str, Any] | str


class RequestContext:
    """What the current request says about every event recorded while it runs.

    Attributes:
        actor: ``{"id", "type", "name"?, "email"?}`` or a bare id; ``None`` if unknown.
        source_ip, request_id, user_agent, app_id: as in the event model.
        org_id: the org whose log receives the events (for multi-tenant recorders).
    """

    __slots__ = (
        "actor",
        "app_id",
        "org_id",
        "request_id",
        "route_event",
        "source_ip",
        "user_agent",
    )

    def __init__(
        self,
        *,
        actor: Actor | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
        user_agent: str | None = None,
        app_id: str | None = None,
        org_id: str | None = None,
    ) -> None:
        self.actor = actor
        self.source_ip = source_ip
        self.request_id = request_id
        self.user_agent = user_agent
        self.app_id = app_id
        self.org_id = org_id
        # The event the middleware's route map will record for this request, if any.
        self.route_event: Operation | None = None

    def __repr__(self) -> str:
        return (
            f"RequestContext(actor={self.actor!r}, source_ip={self.source_ip!r}, "
            f"request_id={self.request_id!r}, app_id={self.app_id!r}, org_id={self.org_id!r})"
        )


_request: ContextVar[RequestContext | None] = ContextVar("trailkeeper_request", default=None)
_operation: ContextVar[Operation | None] = ContextVar("trailkeeper_operation", default=None)


def current_context() -> RequestContext | None:
    """The request context bound to this task or thread, or ``None`` outside a request."""
    return _request.get()


@contextmanager
def bind(**fields: Any) -> Iterator[RequestContext]:
    """Bind a request context for the block (for code outside the ASGI middleware).

    Takes the keyword arguments of ``RequestContext``; fields not given are inherited from
    an enclosing context.
    """
    outer = _request.get()
    if outer is not None:
        for name in ("actor", "source_ip", "request_id", "user_agent", "app_id", "org_id"):
            fields.setdefault(name, getattr(outer, name))
    context = RequestContext(**fields)
    token = _request.set(context)
    try:
        yield context
    finally:
        _request.reset(token)


def set_actor(actor: Actor | None) -> None:
    """Name the actor of the current request (once the application has authenticated it).

    Raises:
        RuntimeError: no request context is bound.
    """
    context = _request.get()
    if context is None:
        raise RuntimeError("no request context is bound (use the middleware or capture.bind)")
    context.actor = actor


def annotate(
    *,
    targets: list[dict[str, Any]] | None = None,
    details: list[str] | None = None,
    changes: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> bool:
    """Add to the innermost open ``operation()``, else to this request's route-map event.

    Returns ``False`` (and changes nothing) when there is neither, so library code may call
    it whether or not it runs inside an audited block.
    """
    target = _operation.get()
    if target is None:
        context = _request.get()
        target = context.route_event if context is not None else None
    if target is None:
        return False
    if targets:
        target.targets.extend(targets)
    if details:
        target.details.extend(details)
    if changes:
        target.changes.update(changes)
    if metadata:
        target.metadata.update(metadata)
    return True
