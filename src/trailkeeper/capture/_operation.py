"""``operation()`` and ``@audited``: one event for a block of work, success or failure."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._context import Actor, _operation

if TYPE_CHECKING:
    from ._recorder import Recorder

P = ParamSpec("P")
R = TypeVar("R")

_CODE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MESSAGE_MAX = 2_048


def error_of(exc: BaseException) -> dict[str, str]:
    """The ``error`` of an event from an exception: its ``code`` attribute if it has a usable
    one, else its class name; its message, cut to the event model's limit."""
    code = getattr(exc, "code", None)
    if not isinstance(code, str | int) or isinstance(code, bool):
        code = type(exc).__name__
    code = _CODE_UNSAFE.sub("_", str(code))[:128] or "error"
    message = str(exc) or type(exc).__name__
    return {"code": code, "message": message[:_MESSAGE_MAX]}


class Operation:
    """An event being built while a block runs; recorded when the block ends.

    The block may add ``targets``, ``details``, ``changes`` and ``metadata`` as it learns
    them (directly, or through ``trailkeeper.capture.annotate`` from deeper code), and may
    set ``actor`` or ``app_id``. Ending normally records success; an exception records a
    failure with the error's code and message, and then propagates.
    """

    def __init__(
        self,
        recorder: Recorder | None,
        name: str,
        *,
        actor: Actor | None = None,
        targets: list[dict[str, Any]] | None = None,
        details: list[str] | None = None,
        changes: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        app_id: str | None = None,
        org_id: str | None = None,
        started_ns: int | None = None,
    ) -> None:
        self.recorder = recorder
        self.name = name
        self.actor = actor
        self.targets: list[dict[str, Any]] = list(targets or ())
        self.details: list[str] = list(details or ())
        self.changes: dict[str, Any] = dict(changes or {})
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.app_id = app_id
        self.org_id = org_id
        self.id: str | None = None  # the event id, once recorded
        self._time_ns = started_ns  # the event's time: when the work started
        self._token: Token[Operation | None] | None = None

    def add_target(self, type: str, id: str, name: str | None = None) -> None:
        """Add a target (``type`` from the catalogue's target types)."""
        target = {"type": type, "id": id}
        if name is not None:
            target["name"] = name
        self.targets.append(target)

    def change(self, field: str, before: Any, after: Any) -> None:
        """Note that ``field`` went from ``before`` to ``after``."""
        self.changes[field] = {"from": before, "to": after}

    def __enter__(self) -> Operation:
        if self.recorder is None:
            from ._recorder import resolve  # here: _recorder imports this module

            self.recorder = resolve(None)
        if self._time_ns is None:
            self._time_ns = self.recorder.clock()
        self._token = _operation.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _operation.reset(self._token)
            self._token = None
        self.finish(exc)

    def finish(
        self, exc: BaseException | None = None, *, error: dict[str, str] | None = None
    ) -> str:
        """Record the event now: a failure if ``exc`` or ``error`` is given. Returns its id."""
        recorder = self.recorder
        if recorder is None:
            from ._recorder import resolve

            recorder = resolve(None)
        failure = error if error is not None else (error_of(exc) if exc is not None else None)
        self.id = recorder.record(
            self.name,
            actor=self.actor,
            targets=self.targets,
            success=failure is None,
            error=failure,
            details=self.details or None,
            changes=self.changes or None,
            metadata=self.metadata or None,
            app_id=self.app_id,
            org_id=self.org_id,
            time_ns=self._time_ns,
        )
        return self.id


def audited(
    name: str,
    *,
    targets: Callable[..., list[dict[str, Any]]] | list[dict[str, Any]] | None = None,
    recorder: Recorder | None = None,
    **fields: Any,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (sync or async) so each call records one ``name`` event.

    ``targets`` may be a list or a callable that gets the call's arguments and returns one.
    Inside the function, ``trailkeeper.capture.annotate`` adds to the event. The recorder is
    looked up at call time (the default one unless ``recorder`` is given).
    """

    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Operation:
        found = targets(*args, **kwargs) if callable(targets) else targets
        return Operation(recorder, name, targets=found, **fields)

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                with start(args, kwargs):
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with start(args, kwargs):
                return func(*args, **kwargs)

        return run

    return decorate
